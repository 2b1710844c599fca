package actors

import (
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// Messages that were routed to a session but never reached its client go back to the user actor, which delivers
// them again by RFC 6121 §8.5 as if that session had never existed: to another resource or to offline storage.
// This covers
//   - a slow consumer: the writer's pending bytes and the stanza that overflowed the queue (conn.send);
//   - a client that went away: the writer's pending bytes (conn.onReadEnded);
//   - stanzas that reach the conn or the session after the stream ended (conn.Receive, session.Receive).
//
// Guarantee (ARCHITECTURE.md "Durability"): a message stanza handed to a session is either written to the
// socket by a flush (handed to the kernel: the end of what a server can know without XEP-0198), or handed back
// here. Only <message/> comes back; the user actor applies §8.5 to it (chat/normal go offline when no resource
// takes them; headline and error are dropped as for any offline user). IQs and presence are not retried: an IQ
// to a resource that is gone gets no answer either way, and presence is state, re-sent by the next broadcast.

// undelivered carries stanzas back: conn → session (resource and pid empty), session → its user actor.
type undelivered struct {
	resource string
	pid      *actor.PID
	stanzas  []*Stanza
}

// streamPrefix gives the decoder the stream context our own output lives in.
const streamPrefix = "<stream:stream xmlns='" + stanza.NSClient + "' xmlns:stream='" + stanza.NSStream + "'>"

// parseUndelivered splits bytes we had queued for a client (whole top-level elements, see writer.takePending)
// into the message stanzas among them.
func parseUndelivered(b string) []*Stanza {
	if !strings.Contains(b, "<message") {
		return nil
	}
	dec := xmlstream.NewDecoder(strings.NewReader(streamPrefix+b), len(streamPrefix)+len(b)+1)
	var out []*Stanza
	for {
		kind, err := dec.Next()
		if err != nil {
			return out
		}
		if kind != xmlstream.KindElement {
			continue
		}
		el := dec.Element()
		if el.Name.Local != "message" || el.Name.Space != stanza.NSClient {
			continue
		}
		st := &Stanza{Head: stanza.Head{Name: "message", ID: el.ID, Type: el.Type, From: el.From, To: el.To}, Raw: el.Raw}
		st.From, _ = jid.Parse(el.From)
		var perr error
		if st.To, perr = jid.Parse(el.To); perr != nil {
			continue
		}
		out = append(out, st)
	}
}

// returnUndelivered hands the messages in b back to the session, if there is one.
func (c *conn) returnUndelivered(ctx actor.Context, b string) {
	if c.session == nil || b == "" {
		return
	}
	if sts := parseUndelivered(b); len(sts) > 0 {
		c.log.Info().Int("messages", len(sts)).Msg("returning undelivered messages to the user actor")
		ctx.Send(c.session, &undelivered{stanzas: sts})
	}
}

// redeliver: the user actor's part. The session that failed is forgotten first (if it still is the resource's
// session), so §8.5 picks another resource or the offline queue.
func (r *userActor) redeliver(ctx actor.Context, m *undelivered) {
	if rs, ok := r.resources[m.resource]; ok && m.pid != nil && rs.pid.Equal(m.pid) {
		r.dropResource(ctx, m.resource, rs)
	}
	for _, st := range m.stanzas {
		r.inbound(ctx, st)
	}
}

// sessionClosed: a session's conn has ended. The user actor forgets the resource and poisons the session; the
// poison is queued behind everything the user actor already sent it, so those stanzas come back as undelivered
// instead of dying in a stopped mailbox.
type sessionClosed struct {
	resource string
	pid      *actor.PID
}

func (s *session) returnUndelivered(ctx actor.Context, sts []*Stanza) {
	if len(sts) > 0 {
		ctx.Send(ctx.Parent(), &undelivered{resource: s.full.Resource(), pid: ctx.Self(), stanzas: sts})
	}
}

func (r *userActor) sessionClosed(ctx actor.Context, m *sessionClosed) {
	if rs, ok := r.resources[m.resource]; ok && rs.pid.Equal(m.pid) {
		r.dropResource(ctx, m.resource, rs)
	}
	ctx.Poison(m.pid)
}

// Offline delivery is paged so that a backlog never overflows the client's write queue (which would make a
// client that reads look like a slow consumer): the user actor sends one page of at most half the write queue,
// then offlineMore along the same path (user actor → session → conn); the conn waits until its writer has handed
// everything before it to the socket and answers offlineNext (conn → session → user actor), which sends the next
// page. A page is deleted from storage when it is handed to the session, as before paging.
type (
	offlineMore    struct{}
	offlineDrained struct{}
	offlineNext    struct{ resource string }
)

// offlinePage cuts msgs to the first page: at most half of c2s.write_queue_bytes, at least one message.
func (r *userActor) offlinePage(msgs []storage.OfflineMessage) ([]storage.OfflineMessage, bool) {
	budget := r.env.cfg.C2S.WriteQueueBytes / 2
	size := 0
	for i, m := range msgs {
		size += len(m.Stanza) + 160 // the <delay/> we add
		if size > budget && i > 0 {
			return msgs[:i], true
		}
	}
	return msgs, false
}
