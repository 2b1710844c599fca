package actors

import (
	"strconv"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
)

// Messages of the router.
type (
	// Route delivers st to the user actor of st.To's bare JID (RFC 6121 §8), or to the service of st.To's
	// domain (services.go). The sender has already checked that st.To is on a served domain or a service's and
	// is not the server itself.
	Route struct {
		St *stanza.Routed
		// confirm, when set, is a session with XEP-0198 enabled that counts st as handled only once the
		// recipient has made it durable: it gets stanzaHandled{seq} (session_sm.go).
		confirm *actor.PID
		seq     uint32
		// hops counts the forwards between cluster nodes so far (cluster.go).
		hops uint8
	}
	// bindRequest asks the user's user actor for a session for full (RFC 6120 §7); answered with bindResult to
	// conn.
	bindRequest struct {
		full jid.JID
		conn *actor.PID
		addr string // the client's address (XEP-0133 user statistics)
		// inline: what a XEP-0386 Bind 2 request enables for the new session (conn_sasl2.go), nil for RFC 6120.
		inline *bind2Setup
		// placed: from a conn's stand-in at the account's home (cluster_proxy.go): bound here, never forwarded.
		placed bool
		// direct: the conn hands the new session its writer once it has written the bind result (writeDirect);
		// until then the session holds what it has for its client.
		direct bool
	}
	// userIdle: a user actor with no sessions asks to be stopped. received counts the messages it has had from
	// the router; the router stops it only if that equals what it sent, i.e. nothing is in flight to it, so no
	// stanza can be routed to a stopping actor and lost, and there are never two actors for one user.
	userIdle struct {
		bare     jid.JID
		received uint64
	}
)

// routeBatch is the Routes one actor sent the router while handling one message (routeBuf), in order: a
// fan-out (a PEP notification to 100 contacts, a room's copies) costs the router one message, not one per copy.
type routeBatch struct{ routes []*Route }

// routeBuf collects what a user or entity actor routes while it handles one message; flush hands it to the router
// (one Route alone, several in a routeBatch). The actor flushes before anything else it sends the router and at
// the end of the message, so the router sees its messages in the order they were sent.
type routeBuf struct{ routes []*Route }

func (b *routeBuf) add(st *stanza.Routed) { b.routes = append(b.routes, &Route{St: st}) }

func (b *routeBuf) flush(ctx actor.Context, router *actor.PID) {
	switch len(b.routes) {
	case 0:
		return
	case 1:
		ctx.Send(router, b.routes[0])
		b.routes[0] = nil
		b.routes = b.routes[:0]
	default:
		ctx.Send(router, &routeBatch{routes: b.routes}) // handed over: the next message starts a new slice
		b.routes = nil
	}
}

// Messages for user actors that are not stanzas (a feature's message, an account removed) go through the router,
// which counts them like stanzas (see userIdle) and hands them over wrapped in userCall.
type (
	// toUser asks the router to hand msg to the actor of bare, spawning it if needed; in a cluster, on the node
	// bare is placed on (hops as in Route).
	toUser struct {
		bare jid.JID
		msg  any
		hops uint8
	}
	// toAllUsers asks the router to hand msg to every user actor that exists, in a cluster on every member (local:
	// this node's only, for a survey from another node); a Request gets usersReached back: how many user actors
	// here, and the members it was handed on to (each tells the asker itself how many it reached).
	toAllUsers struct {
		msg   any
		local bool
	}
	usersReached struct {
		n       int
		members []string
	}
	userCall struct{ msg any }
)

// Shutdown: drainUsers asks the router to retire every user actor once it has handled everything routed to it;
// the router answers usersDrained when none is left. drain is what the router tells each user actor.
type (
	drainUsers   struct{}
	usersDrained struct{}
	drain        struct{}
)

type userEntry struct {
	pid  *actor.PID
	sent uint64
}

// router resolves bare JIDs to the user actors it spawns as its children, and forwards. It is the parent
// of every user actor, so it learns of their end through Terminated and never keeps a PID of a dead actor
// (a stale *PID keeps a dead actor's memory alive). It does no I/O: everything slow happens in the per-user actors.
type router struct {
	env   *env
	users map[jid.JID]*userEntry
	byID  map[string]jid.JID // PID id → bare JID, to handle Terminated without a scan
	// draining: the server is shutting down. User actors retire as soon as they are idle (the same in-flight
	// check as userIdle), and the router answers drainWaiter when none is left.
	draining    bool
	drainWaiter *actor.PID
	// place is the cluster's member list (cluster.go): which node each account and service domain is placed on;
	// nil on a single node.
	place *placement
	// topo is the member list place was made from; placeWatcher the services actor, told every new one
	// (watchPlacement, services.go: a service runs on its domain's home only).
	topo         *clusterTopology
	placeWatcher *actor.PID
}

func newRouterProps(e *env) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &router{env: e, users: make(map[jid.JID]*userEntry), byID: make(map[string]jid.JID)}
	}, actor.WithSupervisor(actor.NewOneForOneStrategy(0, 0, func(reason interface{}) actor.Directive {
		e.log.Error().Interface("panic", reason).Msg("user actor failed; stopping it")
		e.metrics.actorPanics.Inc()
		return actor.StopDirective
	})), withInspection(e, kindRouter))
}

func (r *router) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *Route:
		r.route(ctx, m)
	case *routeBatch:
		for _, rt := range m.routes {
			r.route(ctx, rt)
		}
	case *bindRequest:
		if home := r.place.home(m.full.Bare().String()); home != "" && !m.placed {
			ctx.Send(r.env.cluster, &forwardAttach{home: home, bind: m})
			return
		}
		u := r.user(ctx, m.full.Bare())
		u.sent++
		ctx.Forward(u.pid)
	case *resumeRequest:
		if home := r.place.home(m.bare.String()); home != "" && !m.placed {
			ctx.Send(r.env.cluster, &forwardAttach{home: home, resume: m})
			return
		}
		u := r.user(ctx, m.bare)
		u.sent++
		ctx.Send(u.pid, m)
	case *clusterTopology:
		r.topology(ctx, m)
	case *watchPlacement:
		r.placeWatcher = ctx.Sender()
		ctx.Respond(r.topo)
	case *routerCount:
		ctx.Respond(&routerCounted{users: len(r.users)})
	case *toUser:
		if home := r.place.home(placementKey(r.env, m.bare)); home != "" && m.hops < maxHops {
			// To the home's router, as a stanza is (cluster_feature.go: the feature's codec carries it).
			ctx.Send(r.env.cluster, &forwardUser{home: home, m: m})
			return
		}
		if r.env.isService(m.bare.Domain()) {
			ctx.Send(r.env.services, m) // a feature part's message (or question) to its service
			return
		}
		u := r.user(ctx, m.bare)
		u.sent++
		ctx.Send(u.pid, &userCall{msg: m.msg})
	case *toAllUsers:
		for _, u := range r.users {
			u.sent++
			ctx.Send(u.pid, &userCall{msg: m.msg})
		}
		var others []string
		if !m.local {
			if others = r.place.others(); len(others) > 0 {
				ctx.Send(r.env.cluster, &forwardSurvey{members: others, msg: m.msg})
			}
		}
		if ctx.Sender() != nil {
			ctx.Respond(&usersReached{n: len(r.users), members: others})
		}
	case *userIdle:
		if u, ok := r.users[m.bare]; ok && u.sent == m.received && ctx.Sender() != nil && u.pid.Equal(ctx.Sender()) {
			r.forget(u.pid)
			ctx.Stop(u.pid)
			r.maybeDrained(ctx)
		}
	case *actor.Terminated:
		r.forget(m.Who)
		r.maybeDrained(ctx)
	case *drainServices:
		// Through the router, so that what it forwarded to the services before reaches them first.
		ctx.Forward(r.env.services)
	case *drainUsers:
		r.draining = true
		r.drainWaiter = ctx.Sender()
		for _, u := range r.users {
			u.sent++
			ctx.Send(u.pid, &drain{})
		}
		r.maybeDrained(ctx)
	}
}

// route hands one stanza on: to a service, a component, the s2s actor or the recipient's user actor.
func (r *router) route(ctx actor.Context, m *Route) {
	r.env.metrics.routed.Inc()
	if r.place != nil && m.hops < maxHops && r.forward(ctx, m) {
		return
	}
	if r.env.isService(m.St.To.Domain()) {
		// services.go: a service's domain, or a JID at it. What a service does with a message is its own
		// (a room's broadcast lives in memory): handed over is handled.
		m.confirmed(ctx)
		ctx.Send(r.env.services, m)
		return
	}
	if r.env.components != nil && r.env.isComponent(m.St.To.Domain()) {
		ctx.Send(r.env.components, m) // component.go (XEP-0114)
		return
	}
	if r.env.s2s != nil && !r.env.cfg.Serves(m.St.To.Domain()) {
		// s2s.go: a foreign domain. Handed to the outgoing stream's queue is handled (it bounces what fails).
		m.confirmed(ctx)
		ctx.Send(r.env.s2s, m)
		return
	}
	u := r.user(ctx, m.St.To.Bare())
	u.sent++
	ctx.Send(u.pid, m)
}

// forward hands m to the cluster actor when its address is placed on another node (cluster.go): accounts by
// bare JID, services by domain. Foreign domains (s2s) and components are served by every node.
func (r *router) forward(ctx actor.Context, m *Route) bool {
	to := m.St.To
	if !r.env.cfg.Serves(to.Domain()) && !r.env.isService(to.Domain()) {
		return false
	}
	home := r.place.home(placementKey(r.env, to))
	if home == "" {
		return false
	}
	ctx.Send(r.env.cluster, &forwardRoute{home: home, r: m})
	return true
}

// placementKey is what an address is placed by: a service's domain (one node hosts the whole service, its
// directory and entities together), else the bare JID.
func placementKey(e *env, j jid.JID) string {
	if e.isService(j.Domain()) {
		return j.Domain()
	}
	return j.Bare().String()
}

// topology takes the new member list; the user actors of accounts now placed elsewhere end their sessions
// (their clients reconnect and bind at the new home) and retire once idle, while what arrives for them from now
// on goes to the new home.
func (r *router) topology(ctx actor.Context, t *clusterTopology) {
	r.place, r.topo = newPlacement(t), t
	if r.placeWatcher != nil {
		ctx.Send(r.placeWatcher, t)
	}
	for bare, u := range r.users {
		if r.place.home(bare.String()) != "" {
			u.sent++
			ctx.Send(u.pid, &userCall{msg: &movedAway{}})
		}
	}
}

// confirmed tells the sending session, if it asked, that m is handled (XEP-0198 §4 h; session_sm.go).
func (m *Route) confirmed(ctx actor.Context) {
	if m.confirm != nil {
		ctx.Send(m.confirm, &stanzaHandled{seq: m.seq})
	}
}

func (r *router) maybeDrained(ctx actor.Context) {
	if r.draining && len(r.users) == 0 && r.drainWaiter != nil {
		ctx.Send(r.drainWaiter, &usersDrained{})
		r.drainWaiter = nil
	}
}

// user returns the actor of bare, spawning it on first use.
func (r *router) user(ctx actor.Context, bare jid.JID) *userEntry {
	if u, ok := r.users[bare]; ok {
		return u
	}
	props := newUserProps(r.env, bare, r.draining)
	pid, err := ctx.SpawnNamed(props, bare.String())
	if err != nil {
		// The name is still registered by an actor that is stopping; a unique suffix avoids the clash.
		pid = ctx.SpawnPrefix(props, bare.String()+"~")
	}
	u := &userEntry{pid: pid}
	r.users[bare] = u
	r.byID[pid.Id] = bare
	return u
}

func (r *router) forget(pid *actor.PID) {
	bare, ok := r.byID[pid.Id]
	if !ok {
		return
	}
	delete(r.byID, pid.Id)
	if u := r.users[bare]; u != nil && u.pid.Equal(pid) {
		delete(r.users, bare)
	}
}

// ---- what it says of itself in /debug/actors (inspect.go) ----

func (r *router) servedJID() string { return "" }

func (r *router) describe(_ actor.Context, a *ActorInfo) {
	a.Attrs = map[string]string{"users": strconv.Itoa(len(r.users))}
}
