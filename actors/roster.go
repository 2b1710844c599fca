package actors

import (
	"context"
	"errors"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/subscription"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// Messages a session sends to its user's roster actor (its parent).
type (
	// presenceOut is broadcast presence from one resource (RFC 6121 §4.2, §4.4, §4.5): Raw is stamped with the
	// full JID and has no 'to'. The session has already sent it to the contacts (see presenceTargets); the
	// roster actor records it and sends it to the user's own resources.
	presenceOut struct {
		resource  string
		raw       string
		available bool
		priority  int
	}
	// presenceTargets is the roster actor's list of contacts that receive the user's broadcast presence
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

// resourceState is what the roster actor knows of one of its user's sessions.
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

// rosterActor is the actor of one user (bare JID), spawned by the router. It owns the user's roster items and
// subscription states, the pending inbound subscription requests, the user's sessions (its children) with their
// presence and priority, and the delivery decisions of RFC 6121 §8 including offline storage. It is the only
// writer of that user's roster, pending requests and offline queue in storage.
type rosterActor struct {
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

func newRosterProps(e *env, bare jid.JID, draining bool) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &rosterActor{env: e, bare: bare, draining: draining}
	}, actor.WithSupervisor(actor.NewOneForOneStrategy(0, 0, func(reason interface{}) actor.Directive {
		e.log.Error().Interface("panic", reason).Str("jid", bare.String()).Msg("session actor failed; stopping it")
		e.metrics.actorPanics.Inc()
		return actor.StopDirective
	})), withInspection(e, kindRoster))
}

func (r *rosterActor) Receive(ctx actor.Context) {
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
		m.msg.onRoster(r, ctx)
	case rosterMsg:
		m.onRoster(r, ctx) // a feature's own message (features.go)
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

func (r *rosterActor) load() {
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

func (r *rosterActor) bind(ctx actor.Context, m *bindRequest) {
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

func (r *rosterActor) sessionGone(ctx actor.Context, who *actor.PID) {
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
func (r *rosterActor) dropResource(ctx actor.Context, res string, rs *resourceState) {
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
func (r *rosterActor) saveLastPresence(raw string) {
	r.lastSeen = time.Now()
	r.lastPresence = raw
}

func (r *rosterActor) flushLastPresence() {
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

// ---- outbound presence (RFC 6121 §4.2, §4.4, §4.5) ----

func (r *rosterActor) presenceOut(ctx actor.Context, m *presenceOut) {
	rs, ok := r.resources[m.resource]
	if !ok {
		return
	}
	initial := m.available && !rs.available
	rs.available = m.available
	rs.priority = m.priority
	if m.available {
		rs.presence = m.raw
	} else {
		rs.presence = ""
		r.saveLastPresence(m.raw)
	}
	r.toOwnResources(ctx, m.raw)
	if !initial {
		return
	}
	// §4.2.2: probe the contacts the user is subscribed to; §4.2.2 also: the other resources' presence.
	for c, it := range r.items {
		if to, _ := subscription.FromAttr(it.Subscription); to {
			r.route(ctx, stanza.Build("presence", r.bare.String(), c.String(), "probe", "", ""), "presence", "probe", r.bare, c)
		}
	}
	for _, other := range r.resources {
		if other != rs && other.available {
			deliverTo(ctx, rs.pid, xmlstream.SetHeadAttr(other.presence, "to", rs.full.String()))
		}
	}
	// §3.1.3: pending subscription requests are redelivered at each login until answered.
	for _, req := range r.pendingIn {
		deliverTo(ctx, rs.pid, xmlstream.SetHeadAttr(req, "to", r.bare.String()))
	}
	if m.priority >= 0 {
		r.deliverOffline(ctx, rs)
	}
}

// broadcast sends presence from one resource to contacts with a 'from' subscription and to all of the user's
// available resources, including the one that sent it (RFC 6121 §4.2.2, §4.4.2). Used for the presence the
// server generates (a session that ended without unavailable presence); a session broadcasts its client's own.
func (r *rosterActor) broadcast(ctx actor.Context, raw string, from jid.JID) {
	for _, c := range r.presenceTargets() {
		r.route(ctx, xmlstream.SetHeadAttr(raw, "to", c.String()), "presence", "", from, c)
	}
	r.toOwnResources(ctx, raw)
}

func (r *rosterActor) toOwnResources(ctx actor.Context, raw string) {
	for _, rs := range r.resources {
		if rs.available {
			deliverTo(ctx, rs.pid, xmlstream.SetHeadAttr(raw, "to", rs.full.String()))
		}
	}
}

// presenceTargets lists the contacts that receive the user's broadcast presence.
func (r *rosterActor) presenceTargets() []jid.JID {
	var out []jid.JID
	for c, it := range r.items {
		if _, fromSub := subscription.FromAttr(it.Subscription); fromSub && !r.blocked.matches(c) {
			out = append(out, c)
		}
	}
	return out
}

// announceTargets gives every session the current presenceTargets (an immutable slice).
func (r *rosterActor) announceTargets(ctx actor.Context) {
	list := r.presenceTargets()
	for _, rs := range r.resources {
		ctx.Send(rs.pid, &presenceTargets{list: list})
	}
}

// route sends a stanza from this user to someone else through the router.
func (r *rosterActor) route(ctx actor.Context, raw, name, typ string, from, to jid.JID) {
	if !r.env.cfg.Serves(to.Domain()) {
		return // no server-to-server yet: nothing leaves this server
	}
	ctx.Send(r.env.router, &Route{St: &Stanza{
		Head: stanza.Head{Name: name, Type: typ, From: from.String(), To: to.String()},
		From: from, To: to, Raw: raw,
	}})
}

// ---- offline messages (XEP-0160, RFC 6121 §8.5.2.1.1) ----

func (r *rosterActor) storeOffline(ctx actor.Context, st *Stanza) {
	stamp := time.Now().UTC()
	raw := xmlstream.SetHeadAttr(st.Raw, "to", st.To.String())
	_, err := r.env.store.PushOffline(context.Background(), r.bare.String(), raw, stamp, r.env.cfg.Offline.MaxMessages)
	switch {
	case err == nil:
		r.env.metrics.offlineStored.Inc()
	case errors.Is(err, storage.ErrLimit):
		r.env.metrics.hit(limitOfflineQueue)
		r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable).WithText("the recipient's offline storage is full"))
	default:
		r.log.Error().Err(err).Msg("storing offline message failed")
		r.bounce(ctx, st, stanza.NewError(stanza.InternalServerErr))
	}
}

func (r *rosterActor) deliverOffline(ctx actor.Context, rs *resourceState) {
	bg := context.Background()
	msgs, err := r.env.store.OfflineMessages(bg, r.bare.String())
	if err != nil {
		r.log.Error().Err(err).Msg("reading offline messages failed")
		return
	}
	if len(msgs) == 0 {
		return
	}
	// Paged by bytes (undelivered.go, offlinePage): a long backlog must not overflow the client's write queue
	// and make a reading client look like a slow consumer.
	msgs, more := r.offlinePage(msgs)
	for _, m := range msgs {
		delay := stanza.Delay(r.bare.Domain(), m.Stamp.UTC().Format("2006-01-02T15:04:05.000Z"), "Offline Storage")
		deliverTo(ctx, rs.pid, stanza.InsertChild(xmlstream.SetHeadAttr(m.Stanza, "to", rs.full.String()), "message", delay))
	}
	if err := r.env.store.DeleteOffline(bg, r.bare.String(), msgs[len(msgs)-1].ID); err != nil {
		r.log.Error().Err(err).Msg("deleting delivered offline messages failed")
	} else {
		r.env.metrics.offlineDelivered.Add(float64(len(msgs)))
	}
	r.log.Debug().Int("count", len(msgs)).Str("resource", rs.full.Resource()).Msg("offline messages delivered")
	if more {
		ctx.Send(rs.pid, &offlineMore{})
	}
}

// bounce returns an error to the sender of st, unless st is itself an error (RFC 6120 §8.3.1).
func (r *rosterActor) bounce(ctx actor.Context, st *Stanza, e stanza.Error) {
	if st.Head.Type == "error" || st.From.IsZero() {
		return
	}
	reply := stanza.ErrorReply(st.Head, st.To.String(), e)
	r.route(ctx, reply, st.Head.Name, "error", st.To, st.From)
}

// ---- inbound stanzas (RFC 6121 §8.5) ----

func (r *rosterActor) inbound(ctx actor.Context, st *Stanza) {
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
func (r *rosterActor) inboundFull(ctx actor.Context, st *Stanza) {
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
func (r *rosterActor) inboundBare(ctx actor.Context, st *Stanza) {
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
func (r *rosterActor) highestPriority() []*resourceState {
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

// ---- probes (RFC 6121 §4.3.2) ----

func (r *rosterActor) probe(ctx actor.Context, st *Stanza) {
	it := r.items[st.From.Bare()]
	if it == nil {
		return
	}
	if _, fromSub := subscription.FromAttr(it.Subscription); !fromSub {
		return // §4.3.2: no subscription, no presence; nothing revealed
	}
	any := false
	for _, rs := range r.resources {
		if rs.available {
			any = true
			r.route(ctx, xmlstream.SetHeadAttr(rs.presence, "to", st.From.String()), "presence", "", rs.full, st.From)
		}
	}
	if !any {
		p := stanza.Build("presence", r.bare.String(), st.From.String(), "unavailable", "", r.lastSeenDelay())
		r.route(ctx, p, "presence", "unavailable", r.bare, st.From)
	}
}

func (r *rosterActor) lastSeenDelay() string {
	if r.lastSeen.IsZero() {
		return ""
	}
	return stanza.Delay(r.bare.Domain(), r.lastSeen.UTC().Format("2006-01-02T15:04:05Z"), "")
}

// ---- subscriptions (RFC 6121 §3, Appendix A) ----

func stateOf(it *storage.RosterItem, pendingIn bool) subscription.State {
	s := subscription.State{PendingIn: pendingIn}
	if it != nil {
		s.To, s.From = subscription.FromAttr(it.Subscription)
		s.PendingOut = it.Ask
		s.PreApproved = it.PreApproved
	}
	return s
}

// subscriptionOut: the user sends subscribe/subscribed/unsubscribe/unsubscribed to contact (§3.1.2, §3.1.5,
// §3.2.2, §3.3.2).
func (r *rosterActor) subscriptionOut(ctx actor.Context, st *Stanza) {
	contact := st.To.Bare()
	it := r.items[contact]
	_, pending := r.pendingIn[contact]
	if !r.allowSubscriptionOut(ctx, st, it) { // limits.go
		return
	}
	res := subscription.Outbound(stateOf(it, pending), st.Head.Type)
	r.applyState(ctx, contact, it, res, st.Head.Type == "subscribe")
	if res.Route {
		// §3.1.2: the server stamps the bare JID of the user on outbound subscription stanzas.
		raw := xmlstream.SetHeadAttr(xmlstream.SetHeadAttr(st.Raw, "from", r.bare.String()), "to", contact.String())
		r.route(ctx, raw, "presence", st.Head.Type, r.bare, contact)
	}
	if res.SendPresence {
		for _, rs := range r.resources {
			if rs.available {
				r.route(ctx, xmlstream.SetHeadAttr(rs.presence, "to", contact.String()), "presence", "", rs.full, contact)
			}
		}
	}
	if res.SendUnavailable {
		for _, rs := range r.resources {
			if rs.available {
				r.route(ctx, stanza.Build("presence", rs.full.String(), contact.String(), "unavailable", "", ""), "presence", "unavailable", rs.full, contact)
			}
		}
	}
}

// subscriptionIn: a contact's subscription stanza to this user (§3.1.3, §3.1.6, §3.2.3, §3.3.3).
func (r *rosterActor) subscriptionIn(ctx actor.Context, st *Stanza) {
	contact := st.From.Bare()
	it := r.items[contact]
	_, pending := r.pendingIn[contact]
	if st.Head.Type == "subscribe" && !pending && r.pendingInFull(it) { // limits.go
		return
	}
	res := subscription.Inbound(stateOf(it, pending), st.Head.Type)
	if st.Head.Type == "subscribe" && res.State.PendingIn && !pending {
		raw := xmlstream.SetHeadAttr(xmlstream.SetHeadAttr(st.Raw, "from", contact.String()), "to", r.bare.String())
		r.pendingIn[contact] = raw
		if err := r.env.store.PutKV(context.Background(), r.bare.String(), pendingInNS, contact.String(), raw); err != nil {
			r.log.Error().Err(err).Msg("storing subscription request failed")
		}
	}
	r.applyState(ctx, contact, it, res, false)
	if res.AutoReply != "" {
		r.route(ctx, stanza.Build("presence", r.bare.String(), contact.String(), res.AutoReply, "", ""), "presence", res.AutoReply, r.bare, contact)
		if res.AutoReply == "subscribed" {
			// The contact is now (or still) allowed to see us: give it our current presence (§3.1.5).
			for _, rs := range r.resources {
				if rs.available {
					r.route(ctx, xmlstream.SetHeadAttr(rs.presence, "to", contact.String()), "presence", "", rs.full, contact)
				}
			}
		}
	}
	if res.Route {
		raw := xmlstream.SetHeadAttr(xmlstream.SetHeadAttr(st.Raw, "from", contact.String()), "to", r.bare.String())
		for _, rs := range r.resources {
			if rs.available {
				deliverTo(ctx, rs.pid, raw)
			}
		}
	}
}

// applyState stores the new state of contact and pushes the item when it changed. create says whether an
// outbound subscribe may add the contact to the roster when absent (§3.1.2).
func (r *rosterActor) applyState(ctx actor.Context, contact jid.JID, it *storage.RosterItem, res subscription.Result, create bool) {
	bg := context.Background()
	if !res.State.PendingIn {
		if _, ok := r.pendingIn[contact]; ok {
			delete(r.pendingIn, contact)
			if err := r.env.store.DeleteKV(bg, r.bare.String(), pendingInNS, contact.String()); err != nil {
				r.log.Error().Err(err).Msg("deleting subscription request failed")
			}
		}
	}
	if !res.Changed {
		return
	}
	if it == nil {
		s := res.State
		if !create && !s.To && !s.From && !s.PendingOut && !s.PreApproved {
			return // a pending request alone does not create a roster item
		}
		it = &storage.RosterItem{JID: contact.String()}
		r.items[contact] = it
	}
	it.Subscription = res.State.Subscription()
	it.Ask = res.State.PendingOut
	it.PreApproved = res.State.PreApproved
	r.saveItem(ctx, contact, it)
}

func (r *rosterActor) saveItem(ctx actor.Context, contact jid.JID, it *storage.RosterItem) {
	ver, err := r.env.store.PutRosterItem(context.Background(), r.bare.String(), *it)
	if err != nil {
		r.log.Error().Err(err).Str("contact", contact.String()).Msg("storing roster item failed")
		return
	}
	r.version = ver
	r.push(ctx, encodeItem(it, false))
	r.announceTargets(ctx)
}

// push sends a roster push to every interested resource (RFC 6121 §2.1.6).
func (r *rosterActor) push(ctx actor.Context, item string) {
	ver := strconv.FormatInt(r.version, 10)
	for _, rs := range r.resources {
		if !rs.interested {
			continue
		}
		r.pushID++
		q := "<query xmlns='" + stanza.NSRoster + "'>"
		if rs.versioning {
			q = "<query xmlns='" + stanza.NSRoster + "' ver='" + ver + "'>"
		}
		iq := stanza.Build("iq", r.bare.String(), rs.full.String(), "set", "push"+strconv.FormatUint(r.pushID, 10), q+item+"</query>")
		deliverTo(ctx, rs.pid, iq)
	}
}

func encodeItem(it *storage.RosterItem, remove bool) string {
	b := make([]byte, 0, 128)
	b = append(b, "<item jid='"...)
	b = xmlstream.AppendEscapedAttr(b, it.JID)
	b = append(b, '\'')
	if it.Name != "" {
		b = append(b, " name='"...)
		b = xmlstream.AppendEscapedAttr(b, it.Name)
		b = append(b, '\'')
	}
	sub := it.Subscription
	if remove {
		sub = "remove"
	} else if sub == "" {
		sub = "none"
	}
	b = append(b, " subscription='"...)
	b = append(b, sub...)
	b = append(b, '\'')
	if it.Ask && !remove {
		b = append(b, " ask='subscribe'"...)
	}
	if it.PreApproved && !remove {
		b = append(b, " approved='true'"...)
	}
	if len(it.Groups) == 0 || remove {
		return string(append(b, "/>"...))
	}
	b = append(b, '>')
	for _, g := range it.Groups {
		b = append(b, "<group>"...)
		b = xmlstream.AppendEscapedText(b, g)
		b = append(b, "</group>"...)
	}
	return string(append(b, "</item>"...))
}

// ---- roster get/set (RFC 6121 §2) ----

// maxRosterText bounds item names and group names (RFC 6121 §2.3.3 lets the server refuse over-long ones with
// not-acceptable).
const maxRosterText = 1023

func (r *rosterActor) rosterIQ(ctx actor.Context, m *rosterIQ) {
	rs, ok := r.resources[m.resource]
	if !ok {
		return
	}
	reply := func(s string) { deliverTo(ctx, rs.pid, s) }
	errReply := func(e stanza.Error) { reply(stanza.ErrorReply(m.st.Head, "", e)) }
	switch m.st.Head.Type {
	case "get":
		rs.interested = true
		ver := strconv.FormatInt(r.version, 10)
		// §2.6: a client that sends 'ver' (even empty) uses versioning; when its version is current it gets an
		// empty result and later changes come as pushes. Otherwise the full roster (§2.6.3 allows that).
		rs.versioning = hasAttr(m.query, "ver")
		if rs.versioning && m.query.Attr("ver") == ver {
			reply(stanza.IQResult(m.st.Head, "", ""))
			return
		}
		keys := make([]jid.JID, 0, len(r.items))
		for k := range r.items {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		var b strings.Builder
		b.WriteString("<query xmlns='" + stanza.NSRoster + "'")
		if rs.versioning {
			b.WriteString(" ver='" + ver + "'")
		}
		b.WriteString(">")
		for _, k := range keys {
			b.WriteString(encodeItem(r.items[k], false))
		}
		b.WriteString("</query>")
		reply(stanza.IQResult(m.st.Head, "", b.String()))
	case "set":
		items := m.query.ChildrenNamed(stanza.NSRoster, "item")
		if len(items) != 1 || len(m.query.Elements()) != 1 {
			errReply(stanza.NewError(stanza.BadRequest).WithText("a roster set carries exactly one item"))
			return
		}
		x := items[0]
		contact, err := jid.Parse(x.Attr("jid"))
		if err != nil {
			errReply(stanza.NewError(stanza.JIDMalformed))
			return
		}
		contact = contact.Bare()
		if x.Attr("subscription") == "remove" {
			if !r.rosterRemove(ctx, contact) {
				errReply(stanza.NewError(stanza.ItemNotFound)) // §2.5.3
				return
			}
			reply(stanza.IQResult(m.st.Head, "", ""))
			return
		}
		name := x.Attr("name")
		if len(name) > maxRosterText {
			errReply(stanza.NewError(stanza.NotAcceptable).WithText("name too long"))
			return
		}
		var groups []string
		seen := map[string]bool{}
		for _, g := range x.ChildrenNamed(stanza.NSRoster, "group") {
			gn := g.TextContent()
			if gn == "" || len(gn) > maxRosterText {
				errReply(stanza.NewError(stanza.NotAcceptable).WithText("empty or over-long group name"))
				return
			}
			if seen[gn] {
				errReply(stanza.NewError(stanza.BadRequest).WithText("duplicate group"))
				return
			}
			seen[gn] = true
			groups = append(groups, gn)
		}
		it := r.items[contact]
		if it == nil && r.rosterFull() { // limits.go
			errReply(stanza.NewError(stanza.NotAllowed).WithText("the roster is full"))
			return
		}
		if it == nil {
			it = &storage.RosterItem{JID: contact.String(), Subscription: "none"}
			r.items[contact] = it
		}
		// §2.1.2.5: 'subscription' and 'ask' from the client are ignored (only the server sets them).
		it.Name = name
		it.Groups = groups
		r.saveItem(ctx, contact, it)
		reply(stanza.IQResult(m.st.Head, "", ""))
	default:
		// result/error to the roster namespace: nothing to answer
	}
}

func hasAttr(n *xmlstream.Node, local string) bool {
	for _, a := range n.Attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return true
		}
	}
	return false
}

// rosterRemove: §2.5.2: remove the item and cancel subscriptions both ways. It reports false when there was no
// such item.
func (r *rosterActor) rosterRemove(ctx actor.Context, contact jid.JID) bool {
	it := r.items[contact]
	_, pending := r.pendingIn[contact]
	if it == nil {
		return false
	}
	s := stateOf(it, pending)
	if s.To || s.PendingOut {
		r.route(ctx, stanza.Build("presence", r.bare.String(), contact.String(), "unsubscribe", "", ""), "presence", "unsubscribe", r.bare, contact)
	}
	if s.From || s.PendingIn {
		r.route(ctx, stanza.Build("presence", r.bare.String(), contact.String(), "unsubscribed", "", ""), "presence", "unsubscribed", r.bare, contact)
	}
	if s.From {
		for _, rs := range r.resources {
			if rs.available {
				r.route(ctx, stanza.Build("presence", rs.full.String(), contact.String(), "unavailable", "", ""), "presence", "unavailable", rs.full, contact)
			}
		}
	}
	bg := context.Background()
	if pending {
		delete(r.pendingIn, contact)
		if err := r.env.store.DeleteKV(bg, r.bare.String(), pendingInNS, contact.String()); err != nil {
			r.log.Error().Err(err).Msg("deleting subscription request failed")
		}
	}
	delete(r.items, contact)
	ver, err := r.env.store.DeleteRosterItem(bg, r.bare.String(), contact.String())
	if err != nil {
		r.log.Error().Err(err).Msg("deleting roster item failed")
		return true
	}
	r.version = ver
	r.push(ctx, encodeItem(it, true))
	r.announceTargets(ctx)
	return true
}
