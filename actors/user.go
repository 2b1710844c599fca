package actors

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/subscription"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// Messages a session sends to its user's user actor (its parent).
type (
	// presenceOut is broadcast presence from one resource (RFC 6121 §4.2, §4.4, §4.5): Raw is stamped with the
	// full JID and has no 'to'. The session has already sent it to the contacts (see presenceTargets); the
	// user actor records it and sends it to the user's own resources.
	presenceOut struct {
		resource  string
		raw       string
		available bool
		priority  int
	}
	// presenceTargets is the user actor's list of contacts that receive the user's broadcast presence
	// (subscription 'from' or 'both', not blocked), pushed to every session whenever it may have changed. The
	// session broadcasts through the router itself, on the same path as its messages, so a presence and a
	// message the client sends in that order reach a contact in that order (RFC 6120 §10.1).
	presenceTargets struct{ list []jid.JID }
	// rosterIQ is a roster get/set from the user's own session (RFC 6121 §2).
	rosterIQ struct {
		resource string
		st       *Stanza
		query    *xmlstream.Node
	}
	// subscriptionOut is a subscription stanza the user sends (RFC 6121 §3, outbound processing).
	subscriptionOut struct{ st *Stanza }
	// sessionEnd tells a session to end its stream (a resource conflict, account deleted).
	sessionEnd struct{ condition, text string }
)

// pendingInNS is the KV namespace of inbound subscription requests not yet answered. They are kept apart from
// the roster because a request from a stranger must not add an item to the user's roster (RFC 6121 §3.1.3).
const pendingInNS = "urn:xmppd:pending-in"

// idleAfter: a user actor without sessions stops after this much quiet; the next stanza spawns it again.
const idleAfter = 30 * time.Second

// resourceState is what the user actor knows of one of its user's sessions.
type resourceState struct {
	pid        *actor.PID
	full       jid.JID
	available  bool
	priority   int
	presence   string // last broadcast presence, stamped with the full JID, no 'to'
	interested bool   // requested the roster: gets roster pushes (RFC 6121 §2.1.6)
	versioning bool   // the client uses roster versioning (RFC 6121 §2.6)
	// blocklistWanted: the session asked for the XEP-0191 blocklist and gets its pushes.
	blocklistWanted bool
	carbons         bool // XEP-0280 enabled on this session (told by the session)
}

// userActor is the actor of one user (bare JID), spawned by the router. It owns the user's roster items and
// subscription states, the pending inbound subscription requests, the user's sessions (its children) with their
// presence and priority, and the delivery decisions of RFC 6121 §8 including offline storage. It is the only
// writer of that user's roster, pending requests and offline queue in storage.
type userActor struct {
	env       *env
	bare      jid.JID
	log       zerolog.Logger
	exists    bool
	items     map[jid.JID]*storage.RosterItem
	version   int64
	pendingIn map[jid.JID]string // contact → its subscribe stanza
	resources map[string]*resourceState
	received  uint64 // messages received from the router (see userIdle)
	pushID    uint64
	lastSeen  time.Time
	// lastPresence is the last unavailable presence not yet written to storage.
	lastPresence string
	// draining: the server is shutting down; retire as soon as no session is left.
	draining bool
	// strangerSubs limits subscription requests to strangers (roster.stranger_subscribes_per_minute).
	strangerSubs *tokenBucket
	// blocked is the XEP-0191 blocklist (feature_blocking.go); sessions get it as an immutable snapshot.
	blocked blockSet
}

func newUserProps(e *env, bare jid.JID, draining bool) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &userActor{env: e, bare: bare, draining: draining}
	}, actor.WithSupervisor(actor.NewOneForOneStrategy(0, 0, func(reason interface{}) actor.Directive {
		e.log.Error().Interface("panic", reason).Str("jid", bare.String()).Msg("session actor failed; stopping it")
		e.metrics.actorPanics.Inc()
		return actor.StopDirective
	})), withInspection(e, kindUser))
}

func (r *userActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		r.load()
		ctx.SetReceiveTimeout(idleAfter)
	case *Route:
		r.received++
		r.inbound(ctx, m.St)
	case *bindRequest:
		r.received++
		r.bind(ctx, m)
	case *presenceOut:
		r.presenceOut(ctx, m)
	case *rosterIQ:
		r.rosterIQ(ctx, m)
	case *subscriptionOut:
		r.subscriptionOut(ctx, m.st)
	case *accountRemoved:
		r.accountGone(ctx)
	case *sessionClosed:
		r.sessionClosed(ctx, m) // undelivered.go
	case *undelivered:
		r.redeliver(ctx, m)
	case *offlineNext:
		if rs, ok := r.resources[m.resource]; ok && rs.available && rs.priority >= 0 {
			r.deliverOffline(ctx, rs)
		}
	case *userCall:
		r.received++ // came through the router (see userIdle)
		m.msg.onUser(r, ctx)
	case userMsg:
		m.onUser(r, ctx) // a feature's own message (features.go)
	case *actor.Terminated:
		r.sessionGone(ctx, m.Who)
	case *actor.ReceiveTimeout:
		// Not while a session (child) is still finishing: what it hands back must find us (undelivered.go).
		if len(r.resources) == 0 && len(ctx.Children()) == 0 {
			ctx.Request(r.env.router, &userIdle{bare: r.bare, received: r.received})
		}
	case *drain:
		r.received++
		r.draining = true
	case *actor.Stopping:
		r.flushLastPresence()
		return
	}
	if r.draining && len(r.resources) == 0 && len(ctx.Children()) == 0 {
		ctx.Request(r.env.router, &userIdle{bare: r.bare, received: r.received})
	}
}

func (r *userActor) load() {
	r.log = r.env.log.With().Str("jid", r.bare.String()).Logger()
	r.items = make(map[jid.JID]*storage.RosterItem)
	r.pendingIn = make(map[jid.JID]string)
	r.resources = make(map[string]*resourceState)
	bg := context.Background()
	if !r.env.cfg.Serves(r.bare.Domain()) || r.bare.Local() == "" {
		return
	}
	if _, err := r.env.store.Credentials(bg, r.bare.String()); err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			r.log.Error().Err(err).Msg("account lookup failed")
		}
		return
	}
	r.exists = true
	items, ver, err := r.env.store.Roster(bg, r.bare.String())
	if err != nil {
		r.log.Error().Err(err).Msg("roster load failed")
	}
	r.version = ver
	for i := range items {
		j, err := jid.Parse(items[i].JID)
		if err != nil {
			continue
		}
		r.items[j] = &items[i]
	}
	pend, err := r.env.store.ListKV(bg, r.bare.String(), pendingInNS)
	if err != nil {
		r.log.Error().Err(err).Msg("pending subscriptions load failed")
	}
	for k, v := range pend {
		if j, err := jid.Parse(k); err == nil {
			r.pendingIn[j] = v
		}
	}
	if _, at, err := r.env.store.LastPresence(bg, r.bare.String()); err == nil {
		r.lastSeen = at
	}
	r.loadFeatures()
}

// ---- sessions ----

func (r *userActor) bind(ctx actor.Context, m *bindRequest) {
	reply := func(res *bindResult) { ctx.Send(m.conn, res) }
	if !r.exists {
		e := stanza.NewError(stanza.NotAllowed).WithText("the account does not exist")
		reply(&bindResult{err: &e})
		return
	}
	res := m.full.Resource()
	if old, ok := r.resources[res]; ok {
		// RFC 6120 §7.7.2.2: the newer session wins; the older stream ends with <conflict/>.
		ctx.Send(old.pid, &sessionEnd{condition: stanza.Conflict, text: "replaced by a new connection"})
		r.dropResource(ctx, res, old)
	} else if max := r.env.cfg.C2S.MaxSessionsPerUser; max > 0 && len(r.resources) >= max {
		r.env.metrics.hit(limitSessions)
		e := stanza.NewError(stanza.ResourceConstraintErr).WithText("too many sessions")
		reply(&bindResult{err: &e})
		return
	}
	props := newSessionProps(r.env, m.full, m.conn)
	name := url.PathEscape(res)
	pid, err := ctx.SpawnNamed(props, name)
	if err != nil {
		pid = ctx.SpawnPrefix(props, name+"~")
	}
	r.resources[res] = &resourceState{pid: pid, full: m.full}
	ctx.Send(pid, &presenceTargets{list: r.presenceTargets()}) // before any stanza of its client
	r.boundFeatures(ctx, r.resources[res])
	if n := r.carbonsOn(); n > 0 {
		ctx.Send(pid, &carbonPeers{n: n}) // the new session learns that others want copies
	}
	ctx.SetReceiveTimeout(0)
	reply(&bindResult{full: m.full, session: pid})
}

func (r *userActor) sessionGone(ctx actor.Context, who *actor.PID) {
	for res, rs := range r.resources {
		if rs.pid.Equal(who) {
			r.dropResource(ctx, res, rs)
			break
		}
	}
	if len(r.resources) == 0 {
		ctx.SetReceiveTimeout(idleAfter)
	}
}

// dropResource forgets a session and, if it was available, tells everyone who saw it (RFC 6121 §4.5.2: the
// server generates unavailable presence when a session ends without one).
func (r *userActor) dropResource(ctx actor.Context, res string, rs *resourceState) {
	delete(r.resources, res)
	if rs.carbons {
		r.announceCarbonPeers(ctx)
	}
	if rs.available {
		unavailable := stanza.Build("presence", rs.full.String(), "", "unavailable", "", "")
		r.broadcast(ctx, unavailable, rs.full)
		r.saveLastPresence(unavailable)
	}
}

// saveLastPresence remembers the user's last unavailable presence and when. It is written to storage when the
// actor stops, not at every logout: it is informational (probes' last-seen delay, XEP-0012), never something a
// client was promised, and an fsync per logout would sit in front of the user's next login.
func (r *userActor) saveLastPresence(raw string) {
	r.lastSeen = time.Now()
	r.lastPresence = raw
}

func (r *userActor) flushLastPresence() {
	if r.lastPresence == "" {
		return
	}
	if err := r.env.store.SetLastPresence(context.Background(), r.bare.String(), r.lastPresence, r.lastSeen); err != nil {
		r.log.Error().Err(err).Msg("storing last presence failed")
	}
	r.lastPresence = ""
}

// deliverTo sends a stanza to one session.
func deliverTo(ctx actor.Context, pid *actor.PID, raw string) {
	ctx.Send(pid, &Deliver{Stanza: raw})
}

func (r *userActor) route(ctx actor.Context, raw, name, typ string, from, to jid.JID) {
	if !r.env.cfg.Serves(to.Domain()) {
		return // no server-to-server yet: nothing leaves this server
	}
	ctx.Send(r.env.router, &Route{St: &Stanza{
		Head: stanza.Head{Name: name, Type: typ, From: from.String(), To: to.String()},
		From: from, To: to, Raw: raw,
	}})
}

func (r *userActor) bounce(ctx actor.Context, st *Stanza, e stanza.Error) {
	if st.Head.Type == "error" || st.From.IsZero() {
		return
	}
	reply := stanza.ErrorReply(st.Head, st.To.String(), e)
	r.route(ctx, reply, st.Head.Name, "error", st.To, st.From)
}

// ---- inbound stanzas (RFC 6121 §8.5) ----

func (r *userActor) inbound(ctx actor.Context, st *Stanza) {
	if !r.exists {
		// §8.5.1: no such user. IQs and messages get service-unavailable; presence is silently dropped.
		if st.Head.Name != "presence" {
			r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable))
		}
		return
	}
	if !r.hooksIn(ctx, st) {
		return // a feature (XEP-0191 blocking) handled it
	}
	if st.Head.Name == "presence" && (subscription.IsSubscriptionType(st.Head.Type) || st.Head.Type == "probe") {
		// Subscription stanzas and probes are handled for the bare JID whatever resource they name (§3, §4.3).
		if st.Head.Type == "probe" {
			r.probe(ctx, st)
		} else {
			r.subscriptionIn(ctx, st)
		}
		return
	}
	if st.To.Resource() != "" {
		r.inboundFull(ctx, st)
		return
	}
	r.inboundBare(ctx, st)
}

// inboundFull: §8.5.3.
func (r *userActor) inboundFull(ctx actor.Context, st *Stanza) {
	if rs, ok := r.resources[st.To.Resource()]; ok {
		deliverStanza(ctx, rs.pid, st)
		if st.Head.Name == "message" {
			r.delivered(ctx, st, rs)
		}
		return
	}
	switch st.Head.Name {
	case "message":
		switch st.Head.Type {
		case "", "normal", "chat":
			r.inboundBare(ctx, st) // §8.5.3.2.1: treated as if addressed to the bare JID
		case "groupchat":
			r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable))
		}
	case "iq":
		if st.Head.Type == "get" || st.Head.Type == "set" {
			r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable))
		}
	}
	// presence to an unknown resource is dropped (§8.5.3.2.3)
}

// inboundBare: §8.5.2.
func (r *userActor) inboundBare(ctx actor.Context, st *Stanza) {
	switch st.Head.Name {
	case "message":
		switch st.Head.Type {
		case "", "normal", "chat":
			targets := r.highestPriority()
			if len(targets) == 0 {
				r.storeOffline(ctx, st)
				return
			}
			for _, rs := range targets {
				deliverStanza(ctx, rs.pid, st)
			}
			r.delivered(ctx, st, targets...)
		case "headline":
			for _, rs := range r.resources {
				if rs.available && rs.priority >= 0 {
					deliverStanza(ctx, rs.pid, st)
				}
			}
		case "groupchat":
			r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable))
		}
	case "presence":
		// available/unavailable/error presence to the bare JID goes to every available resource.
		for _, rs := range r.resources {
			if rs.available {
				deliverStanza(ctx, rs.pid, st)
			}
		}
	case "iq":
		// §8.5.2.1.3 (iq to the bare JID): the server answers on the user's behalf, through the feature
		// registry (features.go); anything else is service-unavailable.
		r.accountIQ(ctx, st)
	}
}

// highestPriority: the available resources with the highest non-negative priority (§8.5.2.1.1: the server
// delivers to all of them when several share it).
func (r *userActor) highestPriority() []*resourceState {
	var out []*resourceState
	best := -1
	for _, rs := range r.resources {
		if !rs.available || rs.priority < 0 {
			continue
		}
		switch {
		case rs.priority > best:
			best = rs.priority
			out = append(out[:0], rs)
		case rs.priority == best:
			out = append(out, rs)
		}
	}
	return out
}
