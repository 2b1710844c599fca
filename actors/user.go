package actors

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/subscription"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// Messages a session sends to its user actor (its parent).
type (
	// presenceOut is broadcast presence from one resource (RFC 6121 §4.2, §4.4, §4.5): st is stamped with the
	// full JID and has no 'to'. The session has already sent it to the contacts (see presenceTargets); the
	// user actor records it and sends it to the user's own resources.
	presenceOut struct {
		resource  string
		st        *stanza.Routed
		available bool
		priority  int
	}
	// presenceTargets is the user actor's list of contacts that receive the user's broadcast presence
	// (maySeePresence), pushed to every session whenever it may have changed. The session broadcasts through
	// the router itself, on the same path as its messages, so a presence and a message the client sends in
	// that order reach a contact in that order (RFC 6120 §10.1).
	presenceTargets struct{ list []jid.JID }
	// rosterIQ is a roster get/set from the user's own session (RFC 6121 §2).
	rosterIQ struct {
		resource string
		st       *stanza.Routed
		query    *xmlstream.Node
	}
	// subscriptionOut is a subscription stanza the user sends (RFC 6121 §3, outbound processing).
	subscriptionOut struct{ st *stanza.Routed }
	// sessionEnd tells a session to end its stream (a resource conflict, account deleted).
	sessionEnd struct {
		condition stream.Condition
		text      string
	}
	// accountRemoved tells a user actor that its account is gone: it cancels subscriptions and ends every
	// session (XEP-0077 §3.2, XEP-0133 delete-user).
	accountRemoved struct{}
)

// pendingInNS is the KV namespace of inbound subscription requests not yet answered. They are kept apart from
// the roster because a request from a stranger must not add an item to the user's roster (RFC 6121 §3.1.3).
const pendingInNS = "urn:xmppd:pending-in"

// idleAfter: a user actor without sessions stops after this much quiet; the next stanza spawns it again.
const idleAfter = 30 * time.Second

// resourceState is what the user actor knows of one of its user's sessions.
type resourceState struct {
	pid       *actor.PID
	full      jid.JID
	addr      string
	available bool
	priority  int
	presence  *stanza.Routed // last broadcast presence, stamped with the full JID, no 'to'; nil when unavailable
	// interested: the session requested the roster and gets roster pushes (RFC 6121 §2.1.6).
	interested bool
	// smID is the session's XEP-0198 resumption id ("" when it cannot be resumed).
	smID string
	// hibernating: the session has no connection and waits for a resumption (XEP-0198).
	hibernating bool
}

// snapshot is the resource as features see it.
func (rs *resourceState) snapshot() feature.Resource {
	return feature.Resource{Full: rs.full, Available: rs.available, Priority: rs.priority, Presence: rs.presence, Addr: rs.addr,
		Hibernating: rs.hibernating}
}

// userActor is the actor of one user (bare JID), spawned by the router. It owns the user's roster items and
// subscription states, the pending inbound subscription requests, the user's sessions (its children) with their
// presence and priority, the delivery decisions of RFC 6121 §8 including offline storage, and the user parts of
// the features (one slot per enabled feature, by registry index). It is the only writer of that user's roster,
// pending requests and offline queue in storage.
type userActor struct {
	idle   idleWatch // idleAfter without a message (and no session): ask the router to stop us
	env    *env
	bare   jid.JID
	log    zerolog.Logger
	ctx    actor.Context // the context of the message being handled: the host's methods run only inside Receive
	exists bool
	// items is the roster; version its RFC 6121 §2.6 version.
	items     map[jid.JID]*storage.RosterItem
	version   int64
	pendingIn map[jid.JID]*stanza.Routed // contact → its subscribe stanza
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

	parts           []any // feature parts by registry index (nil: none, or no account)
	inboundHooks    []hooked[feature.UserInbound]
	acceptHooks     []hooked[feature.Accepting]
	deliveredHooks  []hooked[feature.Delivered]
	boundHooks      []hooked[feature.Bound]
	bind2Bound      []hooked[feature.Bind2Bound]
	archiveHolders  []hooked[feature.ArchiveHolder]
	droppedHooks    []hooked[feature.Dropped]
	hibernatedHooks []hooked[feature.Hibernated]
	presenceHooks   []hooked[feature.PresenceChanged]
	presenceFilters []hooked[feature.PresenceFilter]
	itemsProviders  []hooked[feature.ItemsProvider]
	listeners       []hooked[feature.Listener]
	committers      []hooked[feature.Committer]
	// confirmAfterCommit: messages whose senders wait for them to be durable (XEP-0198 h) and that a part (the
	// archive) commits at the next group-commit point.
	confirmAfterCommit []*Route
	// recent: the idempotency keys of the stanzas handled last (user_once.go); confirmAfterFlush: stanzas that
	// arrived again, confirmed once the pending offline batch and the parts' batch are committed.
	recent            recentKeys
	confirmAfterFlush []*Route
	// events are what parts announced (User.Announce) during the message being handled, heard after it.
	events  []announced
	scratch []feature.Resource // the Delivered hooks' argument, reused
	// offlineBatch: messages for the offline queue waiting for the group commit (user_offline.go).
	offlineBatch []offlinePending
	// redelivering: the stanzas being handled came back undelivered (undelivered.go): accepted before.
	redelivering bool
	// partsPending: a feature part batches writes to commit at the next group-commit point (User.CommitSoon).
	partsPending bool
	// out: what this message routes, handed to the router in one message (routeBuf) before anything else the
	// actor sends the router, and at the end of the message.
	out routeBuf
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
	r.ctx = ctx
	defer r.out.flush(ctx, r.env.router)
	msg := ctx.Message()
	quiet := r.idle.idle(ctx, msg)
	if (len(r.offlineBatch) > 0 || r.partsPending) && !joinsBatch(msg) {
		r.flushOfflineBatch(ctx) // user_offline.go: nothing overtakes the commit of what came before
	}
	switch m := msg.(type) {
	case *actor.Started:
		r.load()
		r.idle.start(ctx, idleAfter)
	case *Route:
		r.received++
		if m.St.Once != "" {
			if r.recent.has(m.St.Once) {
				r.handledAgain(ctx, m) // user_once.go
				break
			}
			r.recent.add(m.St.Once)
		}
		batched := len(r.offlineBatch)
		r.inbound(ctx, m.St)
		if m.confirm != nil {
			switch {
			case len(r.offlineBatch) > batched:
				// Stored offline: handled once the group commit is durable (user_offline.go).
				r.offlineBatch[len(r.offlineBatch)-1].confirm = m
			case r.partsPending:
				// Archived (XEP-0313) in the parts' batch: handled once that is committed.
				r.confirmAfterCommit = append(r.confirmAfterCommit, m)
			default:
				m.confirmed(ctx) // delivered to a session, bounced or refused: handled now
			}
		}
	case *bindRequest:
		r.received++
		r.bind(ctx, m)
	case *resumeRequest:
		r.received++
		r.resume(ctx, m) // session_sm.go
	case *smEnabled:
		if rs, ok := r.resources[m.resource]; ok && rs.pid.Equal(ctx.Sender()) {
			rs.smID = m.id
		}
	case *smConnection:
		if rs, ok := r.resources[m.resource]; ok && rs.pid.Equal(ctx.Sender()) {
			rs.hibernating = !m.connected
			if rs.hibernating {
				for _, h := range r.hibernatedHooks {
					h.h.Hibernated(rs.snapshot(), m.unacked)
				}
			}
		}
	case *presenceOut:
		r.presenceOut(ctx, m)
	case *rosterIQ:
		r.rosterIQ(ctx, m)
	case *subscriptionOut:
		r.subscriptionOut(ctx, m.st)
	case *ownIQ:
		r.ownIQ(ctx, m)
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
		r.call(ctx, m.msg)
	case *featureMsg:
		r.featureMsg(ctx, m)
	case *capsKnown:
		partHandle(r.part(m.idx), feature.CapsKnown{Hash: m.hash, Ver: m.ver, Features: m.features})
	case *actor.Terminated:
		r.sessionGone(ctx, m.Who)
	case idleTick:
		// Not while a session (child) is still finishing: what it hands back must find us (undelivered.go).
		if quiet && len(r.resources) == 0 && len(ctx.Children()) == 0 {
			r.out.flush(ctx, r.env.router)
			ctx.Request(r.env.router, &userIdle{bare: r.bare, received: r.received})
		}
	case *drain:
		r.received++
		r.draining = true
		for _, rs := range r.resources {
			ctx.Send(rs.pid, &smShutdown{}) // a hibernating session has no conn to be closed with the server
		}
	case *flushOffline:
		r.flushOfflineBatch(ctx)
	case *actor.Stopping:
		r.idle.stop()
		r.flushOfflineBatch(ctx)
		r.flushLastPresence()
		return
	}
	r.tellEvents()
	if r.draining && len(r.resources) == 0 && len(ctx.Children()) == 0 {
		r.out.flush(ctx, r.env.router)
		ctx.Request(r.env.router, &userIdle{bare: r.bare, received: r.received})
	}
}

// call handles what came through the router for this user other than stanzas.
func (r *userActor) call(ctx actor.Context, msg any) {
	switch m := msg.(type) {
	case *featureMsg:
		r.featureMsg(ctx, m)
	case *accountRemoved:
		r.accountGone(ctx)
	case *movedAway:
		// The cluster placed this account on another node (cluster.go): the sessions end, the clients bind anew
		// there, and this actor retires when idle (what is in flight to it is still handled here).
		r.draining = true
		for _, rs := range r.resources {
			ctx.Send(rs.pid, &sessionEnd{condition: stream.SystemShutdown, text: "the account moved to another node of the cluster"})
		}
	}
}

// movedAway: the router's member list now places this account on another node.
type movedAway struct{}

// featureMsg hands a feature's message to its user part; a survey question is answered even without one, so
// that the collector can count.
func (r *userActor) featureMsg(ctx actor.Context, m *featureMsg) {
	var part any
	if m.idx < len(r.parts) {
		part = r.parts[m.idx]
	}
	if q, ok := m.msg.(*surveyAsk); ok {
		var a any
		if an, ok := part.(feature.Answerer); ok {
			a = an.Answer(q.q)
		}
		ctx.Send(q.replyTo, &surveyAnswer{a: a})
		return
	}
	partHandle(part, m.msg)
}

func (r *userActor) load() {
	r.log = withField(r.env.log, "jid", r.bare.String())
	r.items = make(map[jid.JID]*storage.RosterItem)
	r.pendingIn = make(map[jid.JID]*stanza.Routed)
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
		j, err := jid.Parse(k)
		if err != nil {
			continue
		}
		if st, err := stanza.Parse(v); err == nil {
			r.pendingIn[j] = st
		}
	}
	if _, at, err := r.env.store.LastPresence(bg, r.bare.String()); err == nil {
		r.lastSeen = at
	}
	r.startParts()
}

// startParts gives every feature that has one its user part, for an existing account.
func (r *userActor) startParts() {
	list := r.env.reg.list
	r.parts = make([]any, len(list))
	for i, f := range list {
		if f.NewUser != nil {
			r.parts[i] = f.NewUser(&userHost{u: r, idx: i})
		}
	}
	r.inboundHooks = collect[feature.UserInbound](r.parts)
	r.acceptHooks = collect[feature.Accepting](r.parts)
	r.deliveredHooks = collect[feature.Delivered](r.parts)
	r.boundHooks = collect[feature.Bound](r.parts)
	r.bind2Bound = collect[feature.Bind2Bound](r.parts)
	r.archiveHolders = collect[feature.ArchiveHolder](r.parts)
	r.droppedHooks = collect[feature.Dropped](r.parts)
	r.hibernatedHooks = collect[feature.Hibernated](r.parts)
	r.presenceHooks = collect[feature.PresenceChanged](r.parts)
	r.presenceFilters = collect[feature.PresenceFilter](r.parts)
	r.itemsProviders = collect[feature.ItemsProvider](r.parts)
	r.listeners = collect[feature.Listener](r.parts)
	r.committers = collect[feature.Committer](r.parts)
}

// announced is one event of User.Announce and the feature that announced it.
type announced struct {
	idx int
	ev  any
}

// maxEventRounds bounds a chain of events answering events: converters answer each other's requests once (By),
// so a real chain is two or three long; a longer one is a feature bug that must not spin the actor.
const maxEventRounds = 16

// tellEvents lets the listeners hear what was announced, including what they announce while hearing.
func (r *userActor) tellEvents() {
	for round := 0; len(r.events) > 0; round++ {
		if round == maxEventRounds {
			r.log.Error().Int("dropped", len(r.events)).Msg("features keep announcing events to each other; dropping the rest")
			r.events = r.events[:0]
			return
		}
		batch := r.events
		r.events = nil
		for _, e := range batch {
			for _, l := range r.listeners {
				if l.idx != e.idx {
					l.h.Heard(e.ev)
				}
			}
		}
	}
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
		ctx.Send(old.pid, &sessionEnd{condition: stream.Conflict, text: "replaced by a new connection"})
		r.dropResource(ctx, res, old)
	} else if max := r.env.cfg.C2S.MaxSessionsPerUser; max > 0 && len(r.resources) >= max {
		r.env.metrics.hit(limitSessions)
		e := stanza.NewError(stanza.ResourceConstraint).WithText("too many sessions")
		reply(&bindResult{err: &e})
		return
	}
	props := newSessionProps(r.env, m.full, m.conn, m.addr, m.inline, m.direct)
	name := url.PathEscape(res)
	pid, err := ctx.SpawnNamed(props, name)
	if err != nil {
		pid = ctx.SpawnPrefix(props, name+"~")
	}
	rs := &resourceState{pid: pid, full: m.full, addr: m.addr}
	r.resources[res] = rs
	ctx.Send(pid, &presenceTargets{list: r.presenceTargets()}) // before any stanza of its client
	for _, h := range r.boundHooks {
		h.h.Bound(rs.snapshot())
	}
	var bound string
	if m.inline != nil { // XEP-0386 §2.2, in its order: the offline messages are cleared, then what the user's
		// parts add to <bound/> (the archive's metadata), as of this bind
		r.clearArchivedOffline()
		for _, h := range r.bind2Bound {
			bound += h.h.Bind2Bound()
		}
	}
	reply(&bindResult{full: m.full, session: pid, bound: bound})
}

func (r *userActor) sessionGone(ctx actor.Context, who *actor.PID) {
	for res, rs := range r.resources {
		if rs.pid.Equal(who) {
			r.dropResource(ctx, res, rs)
			break
		}
	}
}

// dropResource forgets a session and, if it was available, tells everyone who saw it (RFC 6121 §4.5.2: the
// server generates unavailable presence when a session ends without one).
func (r *userActor) dropResource(ctx actor.Context, res string, rs *resourceState) {
	delete(r.resources, res)
	for _, h := range r.droppedHooks {
		h.h.Dropped(rs.snapshot())
	}
	if rs.available {
		unavailable := stanza.Generate("presence", "unavailable", rs.full, jid.JID{}, "", "")
		r.broadcast(ctx, unavailable)
		r.saveLastPresence(unavailable.Raw)
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
func deliverTo(ctx actor.Context, pid *actor.PID, st *stanza.Routed) {
	ctx.Send(pid, &Deliver{St: st})
}

// route sends a stanza from this user to someone else through the router.
func (r *userActor) route(ctx actor.Context, st *stanza.Routed) {
	if !r.env.routable(st.To.Domain()) {
		return // no server-to-server yet: nothing leaves this server
	}
	r.out.add(st) // routeBuf: to the router with the rest of this message's
}

// bounce returns an error to the sender of st, unless st is itself an error (RFC 6120 §8.3.1).
func (r *userActor) bounce(ctx actor.Context, st *stanza.Routed, e stanza.Error) {
	if st.Head.Type == "error" || st.From.IsZero() {
		return
	}
	r.route(ctx, st.Bounce(e))
}

// presence builds a presence of the given type from → to.
func presence(typ string, from, to jid.JID) *stanza.Routed {
	return stanza.Generate("presence", typ, from, to, "", "")
}

// ---- IQs to the account (RFC 6121 §8.5.2.1.3), through the registry ----

// accountIQ answers an IQ get/set from someone else to the user's bare JID.
func (r *userActor) accountIQ(ctx actor.Context, st *stanza.Routed) {
	if st.Head.Type != "get" && st.Head.Type != "set" {
		return
	}
	n, err := st.Node()
	if err != nil {
		return
	}
	kids := n.Elements()
	if len(kids) != 1 {
		r.bounce(ctx, st, stanza.NewError(stanza.BadRequest))
		return
	}
	q := kids[0]
	if q.Name.Space == stanza.NSRoster {
		// RFC 6121 §2.1.5 / §2.3.3: only the user may read or change the user's roster.
		r.bounce(ctx, st, stanza.NewError(stanza.Forbidden))
		return
	}
	e, ok := r.env.reg.iqs[q.Name]
	if !ok || e.route.Account == nil || (!r.exists && !e.route.Anyone) {
		r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable))
		return
	}
	e.route.Account(&feature.AccountIQ{User: &userHost{u: r, idx: e.idx}, Part: r.part(e.idx), St: st, Payload: q, ExplicitTo: true})
}

// ownIQ answers an IQ from one of the user's own sessions to the user's account.
func (r *userActor) ownIQ(ctx actor.Context, m *ownIQ) {
	rs := r.resources[m.resource]
	if rs == nil {
		return
	}
	route := r.env.reg.iqs[m.q.Name].route
	route.Account(&feature.AccountIQ{User: &userHost{u: r, idx: m.idx}, Part: r.part(m.idx), St: m.st, Payload: m.q,
		Owner: true, Resource: rs.snapshot(), ExplicitTo: m.explicitTo})
}

func (r *userActor) part(idx int) any {
	if idx < len(r.parts) {
		return r.parts[idx]
	}
	return nil
}

// ---- inbound stanzas (RFC 6121 §8.5) ----

func (r *userActor) inbound(ctx actor.Context, st *stanza.Routed) {
	if !r.exists {
		// §8.5.1: no such user. IQs and messages get service-unavailable (IQ routes that answer for anyone
		// aside); presence is silently dropped.
		switch {
		case st.Head.Name == "presence":
		case st.Head.Name == "iq" && st.To.Resource() == "" && (st.Head.Type == "get" || st.Head.Type == "set"):
			r.accountIQ(ctx, st)
		default:
			r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable))
		}
		return
	}
	for _, h := range r.inboundHooks {
		if !h.h.Inbound(st) {
			return // a feature (XEP-0191 blocking) handled it
		}
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

// inboundFull: §8.5.3, a stanza to a full JID.
func (r *userActor) inboundFull(ctx actor.Context, st *stanza.Routed) {
	if rs, ok := r.resources[st.To.Resource()]; ok {
		if st.Head.Name == "message" {
			st = r.accept(st)
		}
		deliverTo(ctx, rs.pid, st)
		if st.Head.Name == "message" {
			r.delivered(st, rs)
		}
		return
	}
	// §8.5.3.2: no resource matches.
	switch st.Head.Name {
	case "message":
		switch st.Head.Type {
		case "chat":
			// §8.5.3.2.1: a chat message is treated as if it were addressed to the bare JID.
			r.inboundBare(ctx, st)
		case "", "normal":
			// §8.5.3.2.1: for normal messages the server MUST either silently ignore the message or return
			// an error; like its peers, xmppd returns service-unavailable.
			r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable))
		case "groupchat":
			// §8.5.3.2.1: an error, service-unavailable.
			r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable))
		}
		// headline: silently ignored; error: ignored (§8.5.3.2.1)
	case "iq":
		// §8.5.3.2.2: service-unavailable for get/set.
		if st.Head.Type == "get" || st.Head.Type == "set" {
			r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable))
		}
	}
	// presence to an unknown resource is dropped (§8.5.3.2.3)
}

// inboundBare: §8.5.2, a stanza to the bare JID.
func (r *userActor) inboundBare(ctx actor.Context, st *stanza.Routed) {
	switch st.Head.Name {
	case "message":
		switch st.Head.Type {
		case "", "normal", "chat":
			st = r.accept(st)
			targets := r.highestPriority()
			if len(targets) == 0 {
				r.storeOffline(ctx, st)
				return
			}
			for _, rs := range targets {
				deliverTo(ctx, rs.pid, st)
			}
			r.delivered(st, targets...)
		case "headline":
			for _, rs := range r.resources {
				if rs.available && rs.priority >= 0 {
					deliverTo(ctx, rs.pid, st)
				}
			}
		case "groupchat":
			r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable))
		}
	case "presence":
		// available/unavailable/error presence to the bare JID goes to every available resource.
		for _, rs := range r.resources {
			if rs.available {
				deliverTo(ctx, rs.pid, st)
			}
		}
	case "iq":
		// §8.5.2.1.3: the server answers on the user's behalf, through the registry; anything else is
		// service-unavailable.
		r.accountIQ(ctx, st)
	}
}

// accept runs the Accepting hooks for a message about to be delivered (to a session or the offline queue) and
// returns what to deliver.
func (r *userActor) accept(st *stanza.Routed) *stanza.Routed {
	for _, h := range r.acceptHooks {
		st = h.h.Accepting(st, r.redelivering)
	}
	return st
}

// delivered runs the Delivered hooks for a message just handed to the sessions in to (none: stored offline).
func (r *userActor) delivered(st *stanza.Routed, to ...*resourceState) {
	if len(r.deliveredHooks) == 0 {
		return
	}
	// One scratch slice per user actor: this runs for every message delivered, and hooks may not keep `to`.
	r.scratch = r.scratch[:0]
	for _, rs := range to {
		r.scratch = append(r.scratch, rs.snapshot())
	}
	for _, h := range r.deliveredHooks {
		h.h.Delivered(st, r.scratch)
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

// nextID is a fresh id for a stanza the user actor pushes (roster pushes, features' pushes).
func (r *userActor) nextID(prefix string) string {
	r.pushID++
	return prefix + strconv.FormatUint(r.pushID, 10)
}

// accountGone: account removal (XEP-0077 §3.2): cancel subscriptions with every contact (RFC 6121 §3.2,
// §3.3: unsubscribe and unsubscribed), then end every session.
func (r *userActor) accountGone(ctx actor.Context) {
	for c, it := range r.items {
		s := stateOf(it, false)
		if s.To || s.PendingOut {
			r.route(ctx, presence("unsubscribe", r.bare, c))
		}
		if s.From {
			r.route(ctx, presence("unsubscribed", r.bare, c))
		}
	}
	for c := range r.pendingIn {
		r.route(ctx, presence("unsubscribed", r.bare, c))
	}
	r.exists = false
	clear(r.items)
	clear(r.pendingIn)
	for _, rs := range r.resources {
		ctx.Send(rs.pid, &sessionEnd{condition: stream.NotAuthorized, text: "the account was removed"})
	}
}

// lastSeenPresence is when the last resource went offline and its unavailable presence (XEP-0012), from
// memory while not yet flushed to storage.
func (r *userActor) lastSeenPresence() (time.Time, string) {
	if r.lastSeen.IsZero() {
		return r.lastSeen, ""
	}
	last := r.lastPresence
	if last == "" {
		last, _, _ = r.env.store.LastPresence(context.Background(), r.bare.String())
	}
	return r.lastSeen, last
}

// ---- what it says of itself in /debug/actors (inspect.go) ----

func (r *userActor) servedJID() string { return r.bare.String() }

func (r *userActor) describe(_ actor.Context, a *ActorInfo) {
	a.Attrs = map[string]string{
		"exists":     strconv.FormatBool(r.exists),
		"items":      strconv.Itoa(len(r.items)),
		"resources":  strconv.Itoa(len(r.resources)),
		"pending_in": strconv.Itoa(len(r.pendingIn)),
		"received":   strconv.FormatUint(r.received, 10),
	}
	if !r.lastSeen.IsZero() {
		a.Attrs["last_seen"] = r.lastSeen.UTC().Format(time.RFC3339)
	}
}
