package actors

import (
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Messages that were routed to a session but never reached its client go back to the user actor, which delivers
// them again by RFC 6121 §8.5 as if that session had never existed: to another resource or to offline storage.
// This covers
//   - a slow consumer: the writer's pending elements and the stanza that overflowed the queue (conn.send);
//   - every stream end (conn.send, onReadEnded, finish): each element the writer did not completely hand to the
//     socket — queued, or in a Write that failed, timed out or was cut off, the element cut in the middle
//     included — comes back, once (writer.go "Per-stanza accounting", conn.stopWhenWritten);
//   - stanzas that reach the conn or the session after the stream ended (conn.Receive, session.Receive).
//
// Guarantee (ARCHITECTURE.md "Durability"): a message stanza handed to a session is either written to the
// socket completely (handed to the kernel: the end of what a server can know without XEP-0198), or handed back
// here. Only <message/> comes back; the user actor applies §8.5 to it (chat/normal go offline when no resource
// takes them; headline and error are dropped as for any offline user). IQs and presence are not retried: an IQ
// to a resource that is gone gets no answer either way, and presence is state, re-sent by the next broadcast.

// undelivered carries stanzas back: conn → session (resource and pid empty), session → its user actor.
type undelivered struct {
	resource string
	pid      *actor.PID
	stanzas  []*stanza.Routed
}

// streamPrefix gives the decoder the stream context our own output lives in.
const streamPrefix = "<stream:stream xmlns='" + stanza.NSClient + "' xmlns:stream='" + stream.NS + "'>"

// parseUndelivered splits bytes we had queued for a client (whole top-level elements: the writer hands back
// elements only, never the stream header or the closing bytes) into the message stanzas among them.
func parseUndelivered(b string) []*stanza.Routed {
	if !strings.Contains(b, "<message") {
		return nil
	}
	dec := xmlstream.NewDecoder(strings.NewReader(streamPrefix+b), len(streamPrefix)+len(b)+1)
	var out []*stanza.Routed
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
		st := &stanza.Routed{Head: stanza.Head{Name: "message", ID: el.ID, Type: el.Type, From: el.From, To: el.To}, Raw: el.Raw}
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

// stopWhenWritten ends the conn actor once its writer is finished, instead of at once: the stream is over (the
// caller has set stateClosed and told the writer: closeAfter, abort or takePending), but a Write may still be in
// progress. Elements the writer already knows are lost come back now; those it finds lost later (that Write fails
// or times out, or what is queued behind it never goes out) are parsed where they are found (parseUndelivered is
// a pure function of its own copy of the bytes) and come back as one *Deliver per message to this closed conn,
// which Receive hands back to the session; the poison follows them, from the same goroutine, so it is queued
// behind them. The writer finishes within a write timeout of the stream's end (it closes the socket at the
// deadline at the latest).
func (c *conn) stopWhenWritten(ctx actor.Context) {
	root, self := ctx.ActorSystem().Root, ctx.Self()
	lost := c.out.finally(
		func(b []byte) {
			for _, st := range parseUndelivered(string(b)) {
				root.Send(self, &Deliver{St: st})
			}
		},
		func() { root.Poison(self) })
	c.returnUndelivered(ctx, string(lost))
}

// redeliver: the user actor's part. The session that failed is forgotten first (if it still is the resource's
// session), so §8.5 picks another resource or the offline queue.
func (r *userActor) redeliver(ctx actor.Context, m *undelivered) {
	if rs, ok := r.resources[m.resource]; ok && m.pid != nil && rs.pid.Equal(m.pid) {
		r.dropResource(ctx, m.resource, rs)
	}
	r.redelivering = true // the Accepting hooks saw these once: the archive keeps its first copy
	for _, st := range m.stanzas {
		r.inbound(ctx, st)
	}
	r.redelivering = false
}

// sessionClosed: a session's conn has ended. The user actor forgets the resource and poisons the session; the
// poison is queued behind everything the user actor already sent it, so those stanzas come back as undelivered
// instead of dying in a stopped mailbox.
type sessionClosed struct {
	resource string
	pid      *actor.PID
}

func (s *session) returnUndelivered(ctx actor.Context, sts []*stanza.Routed) {
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
