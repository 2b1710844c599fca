package actors

import (
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/sm"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/subscription"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// session is the actor of one bound resource (RFC 6120 §7). It is a child of its user actor. It owns what
// belongs to this resource alone: its full JID, its directed presences (RFC 6121 §4.6) and the session parts of
// the features (one slot per enabled feature, by registry index). It stamps 'from' on everything its client
// sends, answers what the server answers itself, and hands the rest to its user actor or the router. Supervised
// with Stop.
type session struct {
	env  *env
	full jid.JID
	bare jid.JID
	conn *actor.PID
	addr string // the client's address, for the XEP-0133 user statistics
	log  zerolog.Logger
	// ctx is the context of the message being handled: the hosts' methods run only inside Receive.
	ctx actor.Context

	available bool
	directed  map[jid.JID]struct{} // who got directed presence while we were not broadcasting to them
	connGone  bool                 // the conn has ended: stanzas for the client go back to the user actor
	// presenceTo: contacts that get our broadcast presence, an immutable snapshot from the user actor.
	presenceTo []jid.JID

	parts     []any // feature parts by registry index (nil: the feature has none)
	rewriters []hooked[feature.Rewriter]
	outbound  []hooked[feature.Outbound]
	inbound   []hooked[feature.Inbound]
	// waiting: Survey/Ask callbacks by collector id.
	waiting map[string]func([]any)
	// sm is XEP-0198 stream management (session_sm.go), nil until the client enables it.
	sm *smState
	// inline: the XEP-0386 features to enable when the session starts (session_bind2.go), then nil. gated: the
	// conn has not yet written the <success/> that announces this session; what is for the client waits in gatedOut.
	inline   *bind2Setup
	gated    bool
	gatedOut []*stanza.Routed
	// w is the conn's writer while the session writes to it directly (writeDirect, toConn): a delivery then costs
	// no hop through the conn actor. nil: everything goes through the conn actor, as it does once the stream ends
	// or is resumed, and with the transports other than TCP or a XEP-0386 bind. viaConn: something already went
	// through the conn actor, so a writer handed over later is not used (what is in its mailbox would come after).
	w       *writer
	viaConn bool
}

func newSessionProps(e *env, full jid.JID, conn *actor.PID, addr string, inline *bind2Setup, direct bool) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &session{env: e, full: full, bare: full.Bare(), conn: conn, addr: addr, directed: make(map[jid.JID]struct{}),
			inline: inline, gated: direct}
	}, withInspection(e, kindSession))
}

// writeDirect: the conn has queued the bind result; w is its writer, to which the session writes from now on.
type writeDirect struct{ w *writer }

func (s *session) Receive(ctx actor.Context) {
	s.ctx = ctx
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.log = withField(s.env.log, "jid", s.full.String())
		ctx.Watch(s.conn)
		s.env.metrics.sessions.Inc()
		s.startParts()
		if s.inline != nil {
			s.bind2Start(ctx)
		}
	case *elementIn:
		s.fromClient(ctx, m.el)
	case *Deliver:
		if s.connGone && s.sm == nil {
			s.returnUndelivered(ctx, []*stanza.Routed{m.St})
			return
		}
		s.deliverFrom(-1, m.St) // feature hooks (CSI) first
	case *undelivered:
		if s.sm == nil {
			s.returnUndelivered(ctx, m.stanzas)
		} // with stream management the queue holds them already, until the client acknowledges them
	case *connFinished:
		if s.sm != nil && m.conn.Equal(s.conn) {
			s.sm.finished = true
		}
	case *connLost:
		s.connLost(ctx, m)
	case *smTick:
		s.smTick()
	case *smExpire:
		s.smExpire(ctx, m)
	case *resumeRequest:
		s.w = nil // another conn: its writer is not ours
		s.resume(ctx, m)
	case *stanzaHandled:
		s.handledAt(m.seq)
	case *smAckDue:
		s.ackDue(m)
	case *bind2Go:
		s.ungate()
	case *writeDirect:
		if !s.connGone && !s.viaConn {
			s.w = m.w
		}
		s.ungate()
	case *smShutdown:
		if s.sm != nil && s.sm.hibernating {
			s.smEnd(ctx) // the unacknowledged messages go offline before the server stops
		}
	case *offlineMore:
		if !s.connGone {
			ctx.Send(s.conn, m) // user_offline.go: the conn asks for the next page once its writer has drained
		}
	case *offlineNext:
		ctx.Send(ctx.Parent(), &offlineNext{resource: s.full.Resource()})
	case *featureMsg:
		partHandle(s.parts[m.idx], m.msg)
	case *capsUnknown:
		partHandle(s.parts[m.idx], feature.CapsUnknown{Hash: m.hash, Ver: m.ver, Node: m.node})
	case *surveyDone:
		if done := s.waiting[m.id]; done != nil {
			delete(s.waiting, m.id)
			done(m.answers)
		}
	case *presenceTargets:
		s.presenceTo = m.list
	case *sessionEnd:
		// The conn writes the stream error and stops; we follow when it is gone (Terminated below). Stopping
		// here would reach the conn first (system messages overtake) and turn the error into
		// internal-server-error.
		if s.sm != nil {
			s.sm.finished = true // ended by the server: not resumable
			if s.connGone {
				s.smEnd(ctx)
				return
			}
		}
		s.closeConn(&closeStream{condition: m.condition, text: m.text})
	case *actor.Terminated:
		if m.Who.Equal(s.conn) && !s.connGone {
			s.connGone = true
			s.w = nil
			s.ungate() // the stream ended before <success/>: what waited takes the path of an undelivered stanza
			if s.sm != nil {
				ctx.Send(ctx.Self(), &connLost{conn: m.Who}) // after what the conn sent before it ended
				return
			}
			// Our user actor forgets us and then poisons us (undelivered.go): stanzas the conn forwarded before
			// it ended, and any it routed to us meanwhile, are still handled (routed, stored offline) first.
			ctx.Send(ctx.Parent(), &sessionClosed{resource: s.full.Resource(), pid: ctx.Self()})
		}
	case *actor.Stopping:
		s.env.metrics.sessions.Dec()
		if s.sm != nil && s.sm.hibernating {
			s.env.metrics.smHibernating.Dec()
		}
		// RFC 6121 §4.6.3: entities that got directed presence learn that we are gone.
		s.unavailableToDirected(ctx)
	}
}

// startParts gives every feature that has one its session part, with the host it sees.
func (s *session) startParts() {
	list := s.env.reg.list
	s.parts = make([]any, len(list))
	for i, f := range list {
		if f.NewSession != nil {
			s.parts[i] = f.NewSession(&sessionHost{s: s, idx: i})
		}
	}
	s.rewriters = collect[feature.Rewriter](s.parts)
	s.outbound = collect[feature.Outbound](s.parts)
	s.inbound = collect[feature.Inbound](s.parts)
}

// deliverFrom writes st to the client after the Inbound hooks of the features after index after (-1: all).
func (s *session) deliverFrom(after int, st *stanza.Routed) {
	for _, h := range s.inbound {
		if h.idx > after && !h.h.Inbound(st) {
			return
		}
	}
	s.out(st)
}

// toConn writes st to the conn's writer when the session has it (writeDirect), else hands it to the conn actor.
// A writer that refuses it (the stream is ending, the socket failed, or the client does not read: the queue is
// full) is not used again, and st goes to the conn actor, which handles those cases as it always did: it hands
// st back (undelivered.go) or ends the stream of a slow consumer. Either way what follows st goes the same way,
// so the client gets the session's stanzas in the order the session wrote them (RFC 6120 §10.1).
func (s *session) toConn(st *stanza.Routed) {
	if s.w != nil {
		if s.w.offer(st.Raw) {
			s.env.metrics.written(st)
			return
		}
		s.w = nil
	}
	s.viaConn = true
	s.ctx.Send(s.conn, &Deliver{St: st})
}

// closeConn asks the conn to end the stream. Nothing more is written directly: what the session has for its
// client after this reaches the conn behind the request, and the conn hands it back once the stream is over.
func (s *session) closeConn(c *closeStream) {
	s.w = nil
	s.viaConn = true
	s.ctx.Send(s.conn, c)
}

// toClient writes a stanza the session generated to its own client.
func (s *session) toClient(_ actor.Context, st *stanza.Routed) { s.out(st) }

// errorToClient answers the client's st with a stanza error from 'from' (RFC 6120 §8.3).
func (s *session) errorToClient(ctx actor.Context, st *stanza.Routed, from string, e stanza.Error) {
	if st.Head.Type == "error" {
		return // never answer an error with an error (RFC 6120 §8.3.1)
	}
	h := st.Head
	h.From = s.full.String()
	raw := stanza.ErrorReply(h, from, e)
	s.toClient(ctx, stanza.New(stanza.Head{Name: h.Name, ID: h.ID, Type: "error", From: from, To: h.From}, st.To, s.full, raw))
}

// resultToClient answers the client's IQ st with a result.
func (s *session) resultToClient(ctx actor.Context, st *stanza.Routed, from, payload string) {
	raw := stanza.IQResult(stanza.Head{ID: st.Head.ID, From: s.full.String()}, from, payload)
	s.toClient(ctx, stanza.New(stanza.Head{Name: "iq", ID: st.Head.ID, Type: "result", From: from, To: s.full.String()}, st.To, s.full, raw))
}

// fromClient handles one stanza the client sent (RFC 6120 §8.1.2.1, RFC 6121 §8).
func (s *session) fromClient(ctx actor.Context, el *xmlstream.Element) {
	if idx, ok := s.env.reg.nonzas[el.Name]; ok {
		if h, ok := s.parts[idx].(feature.NonzaHandler); ok {
			h.Nonza(el) // a feature's top-level element (XEP-0352 <active/>, <inactive/>)
			return
		}
	}
	if el.Name.Space == sm.NS {
		s.smNonza(ctx, el)
		return
	}
	if el.Name.Space != stanza.NSClient {
		s.closeConn(&closeStream{condition: stream.UnsupportedStanzaType})
		return
	}
	switch el.Name.Local {
	case "message", "presence", "iq":
	default:
		s.closeConn(&closeStream{condition: stream.UnsupportedStanzaType})
		return
	}
	if s.sm != nil {
		s.sm.in++ // XEP-0198 §4: every stanza received counts, whatever becomes of it
	}
	// RFC 6120 §8.1.2.1: the server stamps the full JID; a client that claims another address is in error.
	if el.From != "" {
		f, err := jid.Parse(el.From)
		if err != nil || (f != s.full && f != s.bare) {
			s.closeConn(&closeStream{condition: stream.InvalidFrom})
			return
		}
	}
	h := stanza.Head{Name: el.Name.Local, ID: el.ID, Type: el.Type, From: s.full.String(), To: el.To}
	var to jid.JID
	if el.To != "" {
		var err error
		if to, err = jid.Parse(el.To); err != nil {
			if el.Name.Local != "presence" {
				s.errorToClient(ctx, stanza.New(h, s.full, jid.JID{}, el.Raw), el.To, stanza.NewError(stanza.JIDMalformed))
			}
			return
		}
	}
	raw := xmlstream.SetHeadAttr(el.Raw, "from", s.full.String())
	if !to.IsZero() && el.To != to.String() {
		raw = xmlstream.SetHeadAttr(raw, "to", to.String()) // canonical form, so receivers compare exactly
		h.To = to.String()
	}
	st := stanza.New(h, s.full, to, raw)
	st.Accepted = time.Now()
	for _, w := range s.rewriters {
		st = w.h.Rewrite(st)
	}
	for _, o := range s.outbound {
		if !o.h.Outbound(st) {
			return
		}
	}
	switch el.Name.Local {
	case "message":
		s.message(ctx, st)
	case "presence":
		s.presence(ctx, st)
	case "iq":
		s.iq(ctx, st)
	}
}

// route hands a stanza from this session to another entity through the router, unless its domain is neither
// ours nor a service's (no server-to-server yet: nothing leaves this server).
func (s *session) route(ctx actor.Context, st *stanza.Routed) {
	if s.env.routable(st.To.Domain()) {
		ctx.Send(s.env.router, &Route{St: st})
	}
}

func (s *session) isServer(to jid.JID) bool {
	return to.Local() == "" && to.Resource() == "" && s.env.cfg.Serves(to.Domain())
}

func (s *session) message(ctx actor.Context, st *stanza.Routed) {
	if st.To.IsZero() {
		// RFC 6121 §8.1.1.1 (no 'to'): treated as addressed to the sender's bare JID. A copy: the hooks may
		// have passed st on.
		st = st.Retarget(s.bare)
	}
	switch {
	case !s.env.routable(st.To.Domain()):
		s.errorToClient(ctx, st, st.To.String(), stanza.NewError(stanza.RemoteServerNotFound))
	case s.isServer(st.To):
		// Messages to the server itself: nothing consumes them (announcements are an admin command).
		if st.Head.Type != "error" && st.Head.Type != "groupchat" && st.Head.Type != "headline" {
			s.errorToClient(ctx, st, st.To.String(), stanza.NewError(stanza.ServiceUnavailable))
		}
	default:
		s.routeMessage(ctx, st)
	}
}

func (s *session) presence(ctx actor.Context, st *stanza.Routed) {
	typ := st.Head.Type
	if st.To.IsZero() {
		switch typ {
		case "", "unavailable":
			s.broadcastPresence(ctx, st)
		}
		// other types without 'to' have no meaning from a client (RFC 6121 §4.7.1); drop them
		return
	}
	if !s.env.routable(st.To.Domain()) || s.isServer(st.To) {
		return // no s2s: presence to a remote entity cannot be routed
	}
	if subscription.IsSubscriptionType(typ) {
		ctx.Send(ctx.Parent(), &subscriptionOut{st: st})
		return
	}
	switch typ {
	case "probe":
		return // probes are the server's business (RFC 6121 §4.3)
	case "":
		s.directed[st.To] = struct{}{} // directed presence (RFC 6121 §4.6)
	case "unavailable":
		delete(s.directed, st.To)
	}
	ctx.Send(s.env.router, &Route{St: st})
}

func (s *session) broadcastPresence(ctx actor.Context, st *stanza.Routed) {
	available := st.Head.Type == ""
	prio := 0
	if available {
		n, err := parsePriority(st)
		if err != nil {
			s.errorToClient(ctx, st, "", stanza.NewError(stanza.BadRequest).WithText("priority must be an integer from -128 to 127"))
			return
		}
		prio = n
	}
	s.available = available
	if !available {
		// §4.6.3: after broadcasting unavailable, directed presence is cleaned up too.
		s.unavailableToDirected(ctx)
		clear(s.directed)
	}
	for _, c := range s.presenceTo {
		ctx.Send(s.env.router, &Route{St: st.Retarget(c)})
	}
	ctx.Send(ctx.Parent(), &presenceOut{resource: s.full.Resource(), st: st, available: available, priority: prio})
}

func (s *session) unavailableToDirected(ctx actor.Context) {
	for to := range s.directed {
		s.route(ctx, stanza.Generate("presence", "unavailable", s.full, to, "", ""))
	}
}

// parsePriority reads <priority/> (RFC 6121 §4.7.2.3); absent means 0. The parse is shared through st's
// cached node (the caps hook reads the same presence).
func parsePriority(st *stanza.Routed) (int, error) {
	if !strings.Contains(st.Raw, "priority") {
		return 0, nil
	}
	n, err := st.Node()
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

func (s *session) iq(ctx actor.Context, st *stanza.Routed) {
	switch st.Head.Type {
	case "get", "set", "result", "error":
	default:
		s.errorToClient(ctx, st, "", stanza.NewError(stanza.BadRequest).WithText("iq type must be get, set, result or error"))
		return
	}
	if st.Head.ID == "" {
		s.closeConn(&closeStream{condition: stream.InvalidXML, text: "an iq needs an id"})
		return
	}
	if !st.To.IsZero() && !s.env.routable(st.To.Domain()) {
		s.errorToClient(ctx, st, st.To.String(), stanza.NewError(stanza.RemoteServerNotFound))
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
	n, err := st.Node()
	if err != nil {
		s.closeConn(&closeStream{condition: stream.NotWellFormed})
		return
	}
	kids := n.Elements()
	if len(kids) != 1 {
		// RFC 6120 §8.2.3: a get or set carries exactly one payload.
		s.errorToClient(ctx, st, "", stanza.NewError(stanza.BadRequest))
		return
	}
	s.serverIQ(ctx, st, kids[0], forAccount)
}

// serverIQ answers IQ get/set addressed to the server, to the user's own account or without 'to': the roster
// (RFC 6121 §2) in the user actor, everything else through the registry (see feature.IQRoute for where each
// handler runs).
func (s *session) serverIQ(ctx actor.Context, st *stanza.Routed, q *xmlstream.Node, forAccount bool) {
	from := ""
	if !st.To.IsZero() {
		from = st.To.String()
	}
	if forAccount && q.Name.Space == stanza.NSRoster && q.Name.Local == "query" {
		ctx.Send(ctx.Parent(), &rosterIQ{resource: s.full.Resource(), st: st, query: q})
		return
	}
	e, ok := s.env.reg.iqs[q.Name]
	if !ok {
		s.errorToClient(ctx, st, from, stanza.NewError(stanza.ServiceUnavailable))
		return
	}
	req := &feature.IQ{Session: &sessionHost{s: s, idx: e.idx}, Part: s.parts[e.idx], St: st, Payload: q, From: from}
	r := e.route
	switch {
	case !forAccount: // to the server's domain
		if r.Server == nil {
			req.Fail(stanza.NewError(stanza.ServiceUnavailable))
			return
		}
		r.Server(req)
	case r.Session != nil:
		r.Session(req)
	case r.Account != nil:
		ctx.Send(ctx.Parent(), &ownIQ{resource: s.full.Resource(), st: st, q: q, idx: e.idx, explicitTo: !st.To.IsZero()})
	case r.Server != nil && st.To.IsZero():
		r.Server(req)
	default:
		req.Fail(stanza.NewError(stanza.ServiceUnavailable))
	}
}

// ownIQ is an IQ from the user's session for the user's account, answered in the user actor.
type ownIQ struct {
	resource   string
	st         *stanza.Routed
	q          *xmlstream.Node
	idx        int
	explicitTo bool
}

// await runs a collector for a Survey or an Ask and remembers done until it reports.
func (s *session) await(c *surveyCollector, done func([]any)) {
	pid := s.ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return c }))
	if s.waiting == nil {
		s.waiting = map[string]func([]any){}
	}
	s.waiting[pid.Id] = done
}

// ---- what it says of itself in /debug/actors (inspect.go) ----

func (s *session) servedJID() string { return s.full.String() }

func (s *session) describe(_ actor.Context, a *ActorInfo) {
	a.Resource = s.full.Resource()
	a.BoundJID = s.full.String()
	a.State = "bound"
	a.Attrs = map[string]string{
		"available": strconv.FormatBool(s.available),
		"directed":  strconv.Itoa(len(s.directed)),
	}
	if s.conn != nil && !s.connGone {
		a.Attrs["conn"] = s.conn.Id
	}
	if s.sm != nil {
		a.Attrs["sm_resumable"] = strconv.FormatBool(s.sm.id != "")
		a.Attrs["sm_unacked"] = strconv.Itoa(len(s.sm.queue))
		if s.sm.hibernating {
			a.State = "hibernating" // XEP-0198: no connection, waiting to be resumed
		}
	}
}
