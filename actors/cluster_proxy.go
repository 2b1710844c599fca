package actors

import (
	"strconv"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/nodewire"
	"github.com/xmppd/xmppd/protocol/sm"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// A session split across two nodes: the client's conn is on the edge (the node it connected to), its session
// under the user actor at the account's home. Two stand-ins join them, so that neither the conn nor the session
// knows: on the edge a sessionProxy is the conn's session, at the home a connProxy is the session's conn. They
// translate the conn ↔ session messages to the wire (protocol/nodewire) and back, and watch each other across
// the nodes: when either node dies, protoactor's remote reports the other stand-in Terminated (AddressTerminated),
// and the surviving side ends as if its peer actor had stopped.
//
// End of a stream, without losing a stanza in flight: the edge's conn ends; its sessionProxy sends Detach and
// hands every Deliver that still arrives back as Undelivered; the connProxy answers Detached after the last
// stanza it forwarded (one ordered stream between the two nodes), then stops, and the session sees its conn end.

// sessionProxy stands in, on the edge, for a session at another node.
type sessionProxy struct {
	env    *env
	home   string     // the home node's address
	conn   *actor.PID // the local conn
	attach *nodewire.Attach
	peer   *actor.PID // the connProxy at the home, known from its first answer
	// homeCluster is the home's cluster actor, watched for the home's end.
	homeCluster *actor.PID
	// detaching: the conn is gone; waiting for Detached.
	detaching bool
	full      string
}

func (p *sessionProxy) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		ctx.Watch(p.conn)
		p.attach.Proxy = ctx.Self().Id
		// Watching the home's cluster actor: a home that is gone (or dies before answering) ends the stream
		// with <system-shutdown/> at once, and the client reconnects, instead of waiting on a bind.
		p.homeCluster = actor.NewPID(p.home, clusterActorName)
		ctx.Watch(p.homeCluster)
		ctx.Send(p.homeCluster, p.attach)
	// From the home (the connProxy's answers; the first one tells who it is).
	case *nodewire.Bound, *nodewire.Resumed, *nodewire.Deliver, *nodewire.Raw, *nodewire.Close,
		*nodewire.OfflineMore, *nodewire.Bind2Done, *nodewire.Detached:
		p.fromHome(ctx, m)
	// From the conn.
	case *elementIn:
		el := m.el
		p.toHome(ctx, &nodewire.Element{Raw: el.Raw, Space: el.Name.Space, Local: el.Name.Local, To: el.To,
			From: el.From, Type: el.Type, Id: el.ID, Lang: el.Lang})
	case *undelivered:
		p.toHome(ctx, &nodewire.Undelivered{Stanzas: wireStanzas(m.stanzas)})
	case *offlineNext:
		p.toHome(ctx, &nodewire.OfflineNext{Resource: m.resource})
	case *connFinished:
		p.toHome(ctx, &nodewire.ConnFinished{})
	case *actor.Terminated:
		switch {
		case m.Who.Equal(p.conn):
			if p.peer == nil {
				ctx.Stop(ctx.Self()) // never attached: the home's connProxy (if any) sees us end
				return
			}
			p.detaching = true
			p.toHome(ctx, &nodewire.Detach{})
		case p.peer != nil && m.Who.Equal(p.peer), m.Who.Equal(p.homeCluster) && (p.peer == nil || m.Why == actor.TerminatedReason_AddressTerminated):
			// The stand-in at the home ended before our conn did: its node is shutting down (its actor system
			// stops what is left) or gone (AddressTerminated). A session that ends on its own has its conn
			// closed first (Close before the stand-in stops), and a session that failed sent
			// <internal-server-error/> first; this end may overtake that Close (system messages come first), so
			// it is <system-shutdown/>: the client reconnects, to any node, and binds anew.
			p.env.log.Info().Str("jid", p.full).Str("home", p.home).Bool("node_gone", m.Why == actor.TerminatedReason_AddressTerminated).
				Msg("cluster: the session's stand-in at its node ended")
			ctx.Send(p.conn, &closeStream{condition: stream.SystemShutdown, text: "the session's cluster node is shutting down or gone"})
			ctx.Stop(ctx.Self())
		}
	}
}

func (p *sessionProxy) toHome(ctx actor.Context, msg any) {
	if p.peer == nil {
		return // not attached: nothing can reach a session yet (the conn holds what arrives while binding)
	}
	ctx.Request(p.peer, msg)
}

func (p *sessionProxy) fromHome(ctx actor.Context, msg any) {
	switch m := msg.(type) {
	case *nodewire.Bound:
		res := &bindResult{}
		if m.ErrCondition != "" {
			e := stanza.Error{Type: m.ErrType, Condition: stanza.Condition(m.ErrCondition), Text: m.ErrText}
			res.err = &e
		} else if full, err := jid.Parse(m.Full); err == nil && p.attached(ctx) {
			res.full, res.session, p.full = full, ctx.Self(), m.Full
		}
		ctx.Send(p.conn, res)
		if res.session == nil {
			ctx.Stop(ctx.Self()) // no session: the conn may bind again, with a new stand-in
		}
	case *nodewire.Resumed:
		res := &resumeResult{raw: m.Raw}
		if m.Ok {
			if full, err := jid.Parse(m.Full); err == nil && p.attached(ctx) {
				res.full, res.session, p.full = full, ctx.Self(), m.Full
			}
		}
		ctx.Send(p.conn, res)
		if res.session == nil {
			ctx.Stop(ctx.Self())
		}
	case *nodewire.Deliver:
		st, err := routedStanza(m.Stanza)
		if err != nil {
			return
		}
		if p.detaching {
			p.toHome(ctx, &nodewire.Undelivered{Stanzas: []*nodewire.Stanza{m.Stanza}})
			return
		}
		ctx.Send(p.conn, &Deliver{St: st})
	case *nodewire.Raw:
		ctx.Send(p.conn, &rawOut{s: m.S})
	case *nodewire.Close:
		ctx.Send(p.conn, &closeStream{condition: stream.Condition(m.Condition), text: m.Text, app: m.App})
	case *nodewire.OfflineMore:
		ctx.Send(p.conn, &offlineMore{})
	case *nodewire.Bind2Done:
		ctx.Send(p.conn, &bind2Done{bound: m.Bound})
	case *nodewire.Detached:
		ctx.Stop(ctx.Self())
	}
}

// attached learns the home's connProxy from a successful answer (a Request: its sender) and watches it.
func (p *sessionProxy) attached(ctx actor.Context) bool {
	if p.peer == nil && ctx.Sender() != nil {
		p.peer = ctx.Sender()
		ctx.Watch(p.peer)
	}
	return p.peer != nil
}

func (p *sessionProxy) describe() map[string]string {
	return map[string]string{"jid": p.full, "home": p.home, "detaching": strconv.FormatBool(p.detaching)}
}

// connProxy stands in, at the home, for a conn on another node.
type connProxy struct {
	env     *env
	edge    *actor.PID // the sessionProxy on the edge
	attach  *nodewire.Attach
	session *actor.PID
	full    string
	gone    bool // Detach received: Deliver goes back to the session as undelivered
}

func (p *connProxy) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		ctx.Watch(p.edge)
		p.start(ctx)
	// From the session, its user actor (the bind) and the cluster actor.
	case *bindResult:
		if m.err != nil {
			p.toEdge(ctx, &nodewire.Bound{ErrType: m.err.Type, ErrCondition: string(m.err.Condition), ErrText: m.err.Text})
			ctx.Stop(ctx.Self())
			return
		}
		p.bound(ctx, m.full, m.session)
		p.toEdge(ctx, &nodewire.Bound{Full: m.full.String()})
	case *resumeResult:
		if m.session == nil {
			p.toEdge(ctx, &nodewire.Resumed{Raw: m.raw})
			ctx.Stop(ctx.Self())
			return
		}
		p.bound(ctx, m.full, m.session)
		p.toEdge(ctx, &nodewire.Resumed{Full: m.full.String(), Raw: m.raw, Ok: true})
	case *Deliver:
		if p.gone {
			if m.St.Head.Name == "message" && p.session != nil {
				ctx.Send(p.session, &undelivered{stanzas: []*stanza.Routed{m.St}})
			}
			return
		}
		p.toEdge(ctx, &nodewire.Deliver{Stanza: wireStanza(m.St)})
	case *rawOut:
		p.toEdge(ctx, &nodewire.Raw{S: m.s})
	case *closeStream:
		p.toEdge(ctx, &nodewire.Close{Condition: string(m.condition), Text: m.text, App: m.app})
	case *offlineMore:
		p.toEdge(ctx, &nodewire.OfflineMore{})
	case *bind2Done:
		p.toEdge(ctx, &nodewire.Bind2Done{Bound: m.bound})
	case *clusterClose:
		p.toEdge(ctx, &nodewire.Close{Condition: string(stream.SystemShutdown), Text: "this cluster node is shutting down"})
	// From the edge.
	case *nodewire.Element:
		if p.session != nil && !p.gone {
			ctx.Send(p.session, &elementIn{el: &xmlstream.Element{Raw: m.Raw, Name: xmlstream.Name{Space: m.Space, Local: m.Local},
				To: m.To, From: m.From, Type: m.Type, ID: m.Id, Lang: m.Lang}})
		}
	case *nodewire.Undelivered:
		if p.session != nil {
			var sts []*stanza.Routed
			for _, w := range m.Stanzas {
				if st, err := routedStanza(w); err == nil {
					sts = append(sts, st)
				}
			}
			ctx.Send(p.session, &undelivered{stanzas: sts})
		}
	case *nodewire.OfflineNext:
		if p.session != nil {
			ctx.Send(p.session, &offlineNext{resource: m.Resource})
		}
	case *nodewire.ConnFinished:
		if p.session != nil {
			ctx.Send(p.session, &connFinished{conn: ctx.Self()})
		}
	case *nodewire.Detach:
		p.gone = true
		p.toEdge(ctx, &nodewire.Detached{})
		ctx.Poison(ctx.Self()) // after what is already in the mailbox (Deliver goes back, above)
	case *actor.Terminated:
		switch {
		case m.Who.Equal(p.edge):
			// The edge's stand-in ended (the client's node is gone, or it never attached).
			p.gone = true
			ctx.Poison(ctx.Self())
		case p.session != nil && m.Who.Equal(p.session):
			// The session died under its conn (RFC 6120 §4.9.3.8), as conn.go does for a local session.
			p.toEdge(ctx, &nodewire.Close{Condition: string(stream.InternalServerError)})
		}
	}
}

// start asks the home's router for the session, as the conn would: a bind, or an XEP-0198 resumption.
func (p *connProxy) start(ctx actor.Context) {
	w := p.attach
	if w.Resume {
		bare, err := jid.Parse(w.Bare)
		if err != nil {
			ctx.Stop(ctx.Self())
			return
		}
		ctx.Send(p.env.router, &resumeRequest{bare: bare, previd: w.Previd, h: w.H, conn: ctx.Self(), addr: w.Addr, placed: true})
		return
	}
	full, err := jid.Parse(w.Full)
	if err != nil {
		ctx.Stop(ctx.Self())
		return
	}
	req := &bindRequest{full: full, conn: ctx.Self(), addr: w.Addr, placed: true}
	if len(w.Inline) > 0 || w.SmEnable {
		in := &bind2Setup{}
		for _, s := range w.Inline {
			if n, err := xmlstream.ParseNode(s, ""); err == nil {
				in.els = append(in.els, n)
			}
		}
		if w.SmEnable {
			in.sm = &sm.Enable{Resume: w.SmResume, Max: int(w.SmMax)}
		}
		req.inline = in
	}
	ctx.Send(p.env.router, req)
}

func (p *connProxy) bound(ctx actor.Context, full jid.JID, session *actor.PID) {
	p.session, p.full = session, full.String()
	ctx.Watch(session)
}

func (p *connProxy) toEdge(ctx actor.Context, msg any) { ctx.Request(p.edge, msg) }

func (p *connProxy) describe() map[string]string {
	return map[string]string{"jid": p.full, "edge": p.edge.Address, "gone": strconv.FormatBool(p.gone)}
}

func wireStanzas(sts []*stanza.Routed) []*nodewire.Stanza {
	out := make([]*nodewire.Stanza, len(sts))
	for i, st := range sts {
		out[i] = wireStanza(st)
	}
	return out
}
