package actors

import (
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/subscription"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// session is the actor of one bound resource (RFC 6120 §7). It is a child of its user's user actor. It owns
// what belongs to this resource alone: its full JID, its directed presences (RFC 6121 §4.6) and, later, its
// per-session features (carbons, CSI, stream management). It stamps 'from' on everything its client sends, answers
// what the server answers itself, and hands the rest to its user actor or the router. Supervised with Stop.
type session struct {
	env  *env
	full jid.JID
	bare jid.JID
	conn *actor.PID
	log  zerolog.Logger

	available bool
	directed  map[jid.JID]struct{} // who got directed presence while we were not broadcasting to them
	connGone  bool                 // the conn has ended: stanzas for the client go back to the user actor

	// Per-session state of features (actors/feature_*.go).
	carbons       bool                   // XEP-0280 enabled on this resource
	carbonPeers   int                    // sessions of this user with carbons on, this one included (from the user actor)
	presenceTo    []jid.JID              // contacts that get our broadcast presence (from the user actor)
	csiInactive   bool                   // XEP-0352: the client said <inactive/>
	csiHeld       []csiHeld              // stanzas held back while inactive, in arrival order
	blocked       blockSet               // XEP-0191: immutable snapshot pushed by the user actor
	capsQueries   map[string]capsPending // XEP-0115 disco#info queries to our client, by IQ id
	cmdSessions   map[string]string      // XEP-0050 sessionid → node of forms handed out
	onlineQueries map[string]*cmdRun     // XEP-0133 online-users collectors by PID id
}

func newSessionProps(e *env, full jid.JID, conn *actor.PID) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &session{env: e, full: full, bare: full.Bare(), conn: conn, directed: make(map[jid.JID]struct{})}
	}, withInspection(e, kindSession))
}

func (s *session) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.log = s.env.log.With().Str("jid", s.full.String()).Logger()
		ctx.Watch(s.conn)
		s.env.metrics.sessions.Inc()
	case *elementIn:
		s.fromClient(ctx, m.el)
	case *Deliver:
		if s.connGone {
			s.returnUndelivered(ctx, parseUndelivered(m.Stanza)) // undelivered.go
			return
		}
		s.deliver(ctx, m) // feature hooks (CSI) first
	case *undelivered:
		s.returnUndelivered(ctx, m.stanzas)
	case *offlineMore:
		if !s.connGone {
			ctx.Send(s.conn, m) // undelivered.go: the conn asks for the next page once its writer has drained
		}
	case *offlineNext:
		ctx.Send(ctx.Parent(), &offlineNext{resource: s.full.Resource()})
	case sessionMsg:
		m.onSession(s, ctx)
	case *presenceTargets:
		s.presenceTo = m.list
	case *sessionEnd:
		// The conn writes the stream error and stops; we follow when it is gone (Terminated below). Stopping
		// here would reach the conn first (system messages overtake) and turn the error into
		// internal-server-error.
		ctx.Send(s.conn, &closeStream{condition: m.condition, text: m.text})
	case *actor.Terminated:
		if m.Who.Equal(s.conn) {
			// Our user actor forgets us and then poisons us (undelivered.go): stanzas the conn forwarded before
			// it ended, and any it routed to us meanwhile, are still handled (routed, stored offline) first.
			s.connGone = true
			ctx.Send(ctx.Parent(), &sessionClosed{resource: s.full.Resource(), pid: ctx.Self()})
		}
	case *actor.Stopping:
		s.env.metrics.sessions.Dec()
		// RFC 6121 §4.6.3: entities that got directed presence learn that we are gone.
		for to := range s.directed {
			s.route(ctx, stanza.Build("presence", s.full.String(), to.String(), "unavailable", "", ""), "presence", "unavailable", to)
		}
	}
}

// toClient writes a stanza to our own client.
func (s *session) toClient(ctx actor.Context, raw string) {
	ctx.Send(s.conn, &Deliver{Stanza: raw})
}

func (s *session) errorToClient(ctx actor.Context, h stanza.Head, from string, e stanza.Error) {
	if h.Type == "error" {
		return // never answer an error with an error (RFC 6120 §8.3.1)
	}
	h.From = s.full.String()
	s.toClient(ctx, stanza.ErrorReply(h, from, e))
}

// fromClient handles one stanza the client sent (RFC 6120 §8.1.2.1, RFC 6121 §8).
func (s *session) fromClient(ctx actor.Context, el *xmlstream.Element) {
	if h := findNonza(&s.env.cfg, el.Name); h != nil {
		h(s, ctx, el) // a feature's top-level element (XEP-0352 <active/>, <inactive/>)
		return
	}
	if el.Name.Space != stanza.NSClient {
		ctx.Send(s.conn, &closeStream{condition: stanza.UnsupportedStanzaType})
		return
	}
	switch el.Name.Local {
	case "message", "presence", "iq":
	default:
		ctx.Send(s.conn, &closeStream{condition: stanza.UnsupportedStanzaType})
		return
	}
	// RFC 6120 §8.1.2.1: the server stamps the full JID; a client that claims another address is in error.
	if el.From != "" {
		f, err := jid.Parse(el.From)
		if err != nil || (f != s.full && f != s.bare) {
			ctx.Send(s.conn, &closeStream{condition: stanza.InvalidFrom})
			return
		}
	}
	h := stanza.Head{Name: el.Name.Local, ID: el.ID, Type: el.Type, From: s.full.String(), To: el.To}
	var to jid.JID
	if el.To != "" {
		var err error
		if to, err = jid.Parse(el.To); err != nil {
			if el.Name.Local != "presence" {
				s.errorToClient(ctx, h, el.To, stanza.NewError(stanza.JIDMalformed))
			}
			return
		}
	}
	raw := xmlstream.SetHeadAttr(el.Raw, "from", s.full.String())
	if !to.IsZero() && el.To != to.String() {
		raw = xmlstream.SetHeadAttr(raw, "to", to.String()) // canonical form, so receivers compare exactly
		h.To = to.String()
	}
	st := &Stanza{Head: h, From: s.full, To: to, Raw: raw, Parsed: time.Now()}
	if !s.hooksOut(ctx, st) {
		return
	}
	switch el.Name.Local {
	case "message":
		s.message(ctx, st)
	case "presence":
		s.presence(ctx, st)
	case "iq":
		s.iq(ctx, st, el)
	}
}

// route hands a stanza from this session to another user through the router, or bounces it when its domain
// is not ours (no server-to-server yet: RFC 6120 §10.4.3 remote-server-not-found).
func (s *session) route(ctx actor.Context, raw, name, typ string, to jid.JID) {
	ctx.Send(s.env.router, &Route{St: &Stanza{
		Head: stanza.Head{Name: name, Type: typ, From: s.full.String(), To: to.String()},
		From: s.full, To: to, Raw: raw,
	}})
}

func (s *session) isServer(to jid.JID) bool {
	return to.Local() == "" && to.Resource() == "" && s.env.cfg.Serves(to.Domain())
}

func (s *session) message(ctx actor.Context, st *Stanza) {
	if st.To.IsZero() {
		// RFC 6121 §8.1.1.1 (no 'to'): treated as addressed to the sender's bare JID.
		st.To = s.bare
		st.Raw = xmlstream.SetHeadAttr(st.Raw, "to", s.bare.String())
		st.Head.To = s.bare.String()
	}
	switch {
	case !s.env.cfg.Serves(st.To.Domain()):
		s.errorToClient(ctx, st.Head, st.To.String(), stanza.NewError(stanza.RemoteServerNotFound))
	case s.isServer(st.To):
		// Messages to the server itself: nothing here consumes them (announcements come with admin commands).
		if st.Head.Type != "error" && st.Head.Type != "groupchat" && st.Head.Type != "headline" {
			s.errorToClient(ctx, st.Head, st.To.String(), stanza.NewError(stanza.ServiceUnavailable))
		}
	default:
		ctx.Send(s.env.router, &Route{St: st})
	}
}

func (s *session) presence(ctx actor.Context, st *Stanza) {
	typ := st.Head.Type
	if st.To.IsZero() {
		switch typ {
		case "", "unavailable":
			s.broadcastPresence(ctx, st)
		}
		// other types without 'to' have no meaning from a client (RFC 6121 §4.7.1); drop them
		return
	}
	if subscription.IsSubscriptionType(typ) {
		if !s.env.cfg.Serves(st.To.Domain()) || s.isServer(st.To) {
			return // no s2s: a subscription to a remote contact cannot be routed
		}
		ctx.Send(ctx.Parent(), &subscriptionOut{st: st})
		return
	}
	switch typ {
	case "probe":
		return // probes are the server's business (RFC 6121 §4.3)
	case "", "unavailable":
		// Directed presence (RFC 6121 §4.6).
		if typ == "" {
			s.directed[st.To] = struct{}{}
		} else {
			delete(s.directed, st.To)
		}
	}
	if !s.env.cfg.Serves(st.To.Domain()) || s.isServer(st.To) {
		return
	}
	ctx.Send(s.env.router, &Route{St: st})
}

func (s *session) broadcastPresence(ctx actor.Context, st *Stanza) {
	available := st.Head.Type == ""
	prio := 0
	if available {
		if n, err := parsePriority(st.Raw); err == nil {
			prio = n
		} else {
			s.errorToClient(ctx, st.Head, "", stanza.NewError(stanza.BadRequest).WithText("priority must be an integer from -128 to 127"))
			return
		}
	}
	s.available = available
	if !available {
		// §4.6.3: after broadcasting unavailable, directed presence is cleaned up too.
		for to := range s.directed {
			s.route(ctx, stanza.Build("presence", s.full.String(), to.String(), "unavailable", "", ""), "presence", "unavailable", to)
		}
		clear(s.directed)
	}
	for _, c := range s.presenceTo {
		s.route(ctx, xmlstream.SetHeadAttr(st.Raw, "to", c.String()), "presence", st.Head.Type, c)
	}
	ctx.Send(ctx.Parent(), &presenceOut{resource: s.full.Resource(), raw: st.Raw, available: available, priority: prio})
}

// parsePriority reads <priority/> (RFC 6121 §4.7.2.3); absent means 0.
func parsePriority(raw string) (int, error) {
	if !strings.Contains(raw, "priority") {
		return 0, nil
	}
	n, err := xmlstream.ParseNode(raw, stanza.NSClient)
	if err != nil {
		return 0, err
	}
	p := n.Child(stanza.NSClient, "priority")
	if p == nil {
		return 0, nil
	}
	v, err := strconv.Atoi(strings.TrimSpace(p.TextContent()))
	if err != nil || v < -128 || v > 127 {
		return 0, strconv.ErrRange
	}
	return v, nil
}

func (s *session) iq(ctx actor.Context, st *Stanza, el *xmlstream.Element) {
	switch st.Head.Type {
	case "get", "set", "result", "error":
	default:
		s.errorToClient(ctx, st.Head, "", stanza.NewError(stanza.BadRequest).WithText("iq type must be get, set, result or error"))
		return
	}
	if st.Head.ID == "" {
		ctx.Send(s.conn, &closeStream{condition: stanza.InvalidXML, text: "an iq needs an id"})
		return
	}
	if !st.To.IsZero() && !s.env.cfg.Serves(st.To.Domain()) {
		s.errorToClient(ctx, st.Head, st.To.String(), stanza.NewError(stanza.RemoteServerNotFound))
		return
	}
	forAccount := st.To.IsZero() || st.To == s.bare
	if !forAccount && !s.isServer(st.To) {
		ctx.Send(s.env.router, &Route{St: st})
		return
	}
	if st.Head.Type == "result" || st.Head.Type == "error" {
		return // answers to the server's own requests (pings); nothing waits for them yet
	}
	n, err := el.Parse()
	if err != nil {
		ctx.Send(s.conn, &closeStream{condition: stanza.NotWellFormed})
		return
	}
	kids := n.Elements()
	if len(kids) != 1 {
		// RFC 6120 §8.2.3: a get or set carries exactly one payload.
		s.errorToClient(ctx, st.Head, "", stanza.NewError(stanza.BadRequest))
		return
	}
	s.serverIQ(ctx, st, kids[0], forAccount)
}
