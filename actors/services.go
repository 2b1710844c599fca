package actors

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// The services subtree: features' services at domains of their own (feature/service.go).
//
//	services                  servicesActor: one child per enabled service domain, respawned on demand
//	└── <pubsub.localhost>    serviceActor: the feature's service part
//	    └── <key>             entityActor: one entity part (a pubsub node, a MUC room), spawned on demand
//
// The router hands everything addressed to a service domain (Route) and every part's message to a JID there
// (toUser) to the services actor, which forwards to the service actor; so a sender's stanzas reach a service
// in the order sent, on the same path as stanzas to users. What services send goes back through the router.

// serviceEntry is one enabled service (registry, immutable).
type serviceEntry struct {
	idx  int // the feature's registry index
	spec *feature.ServiceSpec
	jid  jid.JID
}

// Messages of the services subtree.
type (
	// drainServices (sent to the router, which forwards it) asks the services actor to retire every service once it (and its entities) handled what
	// had reached them; answered with servicesDrained.
	drainServices   struct{}
	servicesDrained struct{}
	// entityCall carries a message from the service part to an entity part; entityMsg the other way.
	entityCall struct{ msg any }
	entityMsg  struct{ msg any }
	// entityIdle: an entity with nothing to do asks to be stopped; received counts what the service actor sent
	// it (as userIdle does for the router: it stops only with nothing in flight).
	entityIdle struct {
		key      string
		received uint64
	}
	// outsideCall is a message of a service's outside (its Mailbox: an HTTP handler's or a relay's goroutine)
	// for the service part: msg is the featureMsg, maybe a question (surveyAsk). The services actor hands it to
	// the service's home (see serviceMailbox).
	outsideCall struct {
		sv  *serviceEntry
		msg *featureMsg
	}
	// watchPlacement (a Request from the services actor to the router, in a cluster) asks for the member list
	// now (answered with a *clusterTopology, nil before the first) and at every change.
	watchPlacement struct{}
)

// entityIdleAfter: an entity actor stops after this much quiet (unless its part says it is not idle).
const entityIdleAfter = time.Minute

// isService reports whether domain is an enabled service's.
func (e *env) isService(domain string) bool {
	if e.reg == nil || len(e.reg.serviceOf) == 0 {
		return false
	}
	_, ok := e.reg.serviceOf[domain]
	return ok
}

// routable: a stanza to domain can be routed: it stays on this server (a served domain or a service), or
// federation is on and it goes to the s2s subtree (s2s.go), which bounces what it cannot deliver.
func (e *env) routable(domain string) bool { return e.isLocal(domain) || e.s2s != nil }

// isLocal: domain is served here (accounts, a service, or an XEP-0114 component).
func (e *env) isLocal(domain string) bool {
	return e.cfg.Serves(domain) || e.isService(domain) || e.isComponent(domain)
}

// ---- services: the parent ----

// servicesActor is the parent of the service actors, keyed by domain. Supervision follows the router's: a
// service actor that panics is stopped (its entities with it) and the next stanza for its domain spawns a fresh
// one, which loads its state from storage again; nothing else is affected.
type servicesActor struct {
	env         *env
	byDomain    map[string]*actor.PID
	byID        map[string]string
	draining    bool
	drainWaiter *actor.PID
	// place is the cluster's member list as the router last told it (nil on one node, and before the first):
	// a service runs only on the node its domain is placed on (router.go, placementKey). Until the router's
	// first answer (placed) the outside's messages wait in early: placed by a list this node had not heard yet,
	// they could spawn a service here that lives on another node.
	place  *placement
	placed bool
	early  []*outsideCall
}

func newServicesProps(e *env) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &servicesActor{env: e, byDomain: map[string]*actor.PID{}, byID: map[string]string{}}
	}, actor.WithSupervisor(actor.NewOneForOneStrategy(0, 0, func(reason interface{}) actor.Directive {
		e.log.Error().Interface("panic", reason).Msg("service actor failed; stopping it")
		e.metrics.actorPanics.Inc()
		return actor.StopDirective
	})), withInspection(e, kindServices))
}

func (s *servicesActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if s.env.cfg.Cluster.Enabled {
			// Spawned where their domain is placed, on demand: not on every node (one owner of a service's
			// state in the cluster).
			ctx.Request(s.env.router, &watchPlacement{})
			return
		}
		for _, sv := range s.env.reg.services {
			s.service(ctx, sv.jid.Domain())
		}
	case *clusterTopology:
		s.topology(ctx, m)
		if !s.placed {
			s.placed = true
			for _, c := range s.early {
				s.outside(ctx, c)
			}
			s.early = nil
		}
	case *outsideCall:
		if s.env.cfg.Cluster.Enabled && !s.placed {
			s.early = append(s.early, m)
			return
		}
		s.outside(ctx, m)
	case *Route:
		if pid := s.service(ctx, m.St.To.Domain()); pid != nil {
			ctx.Send(pid, m)
		}
	case *toUser:
		if pid := s.service(ctx, m.bare.Domain()); pid != nil {
			ctx.Send(pid, &userCall{msg: m.msg})
		}
	case *actor.Terminated:
		if d, ok := s.byID[m.Who.Id]; ok {
			delete(s.byID, m.Who.Id)
			if p := s.byDomain[d]; p != nil && p.Equal(m.Who) {
				delete(s.byDomain, d)
			}
		}
		s.maybeDrained(ctx)
	case *drainServices:
		s.draining = true
		s.drainWaiter = ctx.Sender()
		for _, pid := range s.byDomain {
			ctx.Send(pid, &drain{})
		}
		s.maybeDrained(ctx)
	}
}

// service is the actor of domain, spawned if needed; nil when domain is no service's or the server is draining.
func (s *servicesActor) service(ctx actor.Context, domain string) *actor.PID {
	if pid := s.byDomain[domain]; pid != nil {
		return pid
	}
	sv := s.env.reg.serviceOf[domain]
	if sv == nil || s.draining {
		return nil
	}
	props := newServiceProps(s.env, sv)
	pid, err := ctx.SpawnNamed(props, domain)
	if err != nil {
		pid = ctx.SpawnPrefix(props, domain+"~") // the old one is still stopping
	}
	s.byDomain[domain] = pid
	s.byID[pid.Id] = domain
	return pid
}

// topology takes a new member list: a service whose domain is now placed on another node retires here, as a
// user actor whose account moved does (router.go). Drained, it handles what already reached it and its entities
// theirs, then stops; what comes from now on goes to the new home.
func (s *servicesActor) topology(ctx actor.Context, t *clusterTopology) {
	if t == nil {
		return
	}
	s.place = newPlacement(t)
	for domain, pid := range s.byDomain {
		if home := s.place.home(domain); home != "" {
			s.env.log.Info().Str("service", domain).Str("home", home).Msg("service placed on another node; retiring it here")
			ctx.Send(pid, &drain{})
			delete(s.byDomain, domain) // byID keeps it until Terminated
		}
	}
}

// outside hands a message of a service's outside to the service: here, when its domain is placed here (or on
// one node); else, when its feature declares the message's type in Wire, through the router to the home (the
// router forwards it as a part's ToUserOf or Ask of the service JID, cluster_feature.go). A message that cannot
// cross (it holds a connection, a Mailbox: this node's relay, timers and listener) is not for the home: a
// question is answered with no answer at once (a SOCKS5 connection at a node that is not the proxy's home is
// refused), a notice is dropped. Never a second service actor on a node that is not the home.
func (s *servicesActor) outside(ctx actor.Context, m *outsideCall) {
	domain := m.sv.jid.Domain()
	home := s.place.home(domain)
	if home == "" {
		if pid := s.service(ctx, domain); pid != nil {
			ctx.Send(pid, &userCall{msg: m.msg})
		} else if q, ok := m.msg.msg.(*surveyAsk); ok {
			ctx.Send(q.replyTo, &surveyAnswer{})
		}
		return
	}
	inner := m.msg.msg
	q, ask := inner.(*surveyAsk)
	if ask {
		inner = q.q
	}
	if _, _, ok := s.env.reg.list[m.sv.idx].EncodeWire(inner); ok {
		ctx.Send(s.env.router, &toUser{bare: m.sv.jid, msg: m.msg})
		return
	}
	if ask {
		s.env.log.Info().Str("service", domain).Str("home", home).Str("type", fmt.Sprintf("%T", inner)).
			Msg("service question of this node's outside refused: the service is placed on another node")
		ctx.Send(q.replyTo, &surveyAnswer{})
		return
	}
	s.env.log.Debug().Str("service", domain).Str("home", home).Str("type", fmt.Sprintf("%T", inner)).
		Msg("service notice of this node's outside dropped: the service is placed on another node")
}

func (s *servicesActor) maybeDrained(ctx actor.Context) {
	if s.draining && len(s.byDomain) == 0 && s.drainWaiter != nil {
		ctx.Send(s.drainWaiter, &servicesDrained{})
		s.drainWaiter = nil
	}
}

func (s *servicesActor) servedJID() string { return "" }

func (s *servicesActor) describe(_ actor.Context, a *ActorInfo) {
	a.Attrs = map[string]string{"services": strconv.Itoa(len(s.byDomain))}
}

// ---- one service ----

type entityEntry struct {
	pid  *actor.PID
	sent uint64
}

// serviceActor runs one feature's service part for one domain and is the parent of its entity actors (keyed
// by the part's keys). Entities are supervised with Stop: a panicking entity is gone, the part learns nothing,
// and the next message for its key spawns it again from storage.
type serviceActor struct {
	env      *env
	sv       *serviceEntry
	log      zerolog.Logger
	ctx      actor.Context
	part     any
	entities map[string]*entityEntry
	byID     map[string]string
	draining bool
	pushID   uint64
}

func newServiceProps(e *env, sv *serviceEntry) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &serviceActor{env: e, sv: sv, entities: map[string]*entityEntry{}, byID: map[string]string{}}
	}, actor.WithSupervisor(actor.NewOneForOneStrategy(0, 0, func(reason interface{}) actor.Directive {
		e.log.Error().Interface("panic", reason).Str("service", sv.jid.String()).Msg("service entity actor failed; stopping it")
		e.metrics.actorPanics.Inc()
		return actor.StopDirective
	})), withInspection(e, kindService))
}

func (a *serviceActor) Receive(ctx actor.Context) {
	a.ctx = ctx
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.log = a.env.log.With().Str("service", a.sv.jid.String()).Logger()
		if a.sv.spec.New != nil {
			a.part = a.sv.spec.New(&serviceHost{a: a})
		}
	case *actor.Stopping:
		if p, ok := a.part.(feature.ServiceStopped); ok {
			p.Stopped()
		}
	case *Route:
		a.stanza(m.St)
	case *userCall:
		if fm, ok := m.msg.(*featureMsg); ok {
			a.featureMsg(fm)
		}
	case *entityMsg:
		partHandle(a.part, m.msg)
	case *entityIdle:
		if e := a.entities[m.key]; e != nil && e.sent == m.received && ctx.Sender() != nil && e.pid.Equal(ctx.Sender()) {
			a.forget(e.pid)
			ctx.Stop(e.pid)
			a.maybeDrained(ctx)
		}
	case *actor.Terminated:
		a.forget(m.Who)
		a.maybeDrained(ctx)
	case *drain:
		// Poison is queued behind what was sent to each entity: they finish their mailboxes first.
		a.draining = true
		for _, e := range a.entities {
			ctx.Poison(e.pid)
		}
		a.maybeDrained(ctx)
	}
}

// stanza handles what is addressed to the service's domain or a JID at it.
func (a *serviceActor) stanza(st *stanza.Routed) {
	if st.Head.Name == "iq" && st.Head.Type == "get" && st.To == a.sv.jid && a.discoInfo(st) {
		return
	}
	if h, ok := a.part.(feature.ServiceStanza); ok {
		h.Stanza(st)
		return
	}
	if st.Head.Name != "presence" {
		a.bounce(st, stanza.NewError(stanza.ServiceUnavailable))
	}
}

// discoInfo answers disco#info without a node at the service JID from the spec (XEP-0030 §3.1).
func (a *serviceActor) discoInfo(st *stanza.Routed) bool {
	if !strings.Contains(st.Raw, stanza.NSDiscoInf) {
		return false
	}
	n, err := st.Node()
	if err != nil {
		return false
	}
	kids := n.Elements()
	if len(kids) != 1 || kids[0].Name != (xmlstream.Name{Space: stanza.NSDiscoInf, Local: "query"}) || kids[0].Attr("node") != "" {
		return false
	}
	b := []byte("<query xmlns='" + stanza.NSDiscoInf + "'>")
	for _, id := range a.sv.spec.Identities {
		b = append(b, id...)
	}
	for _, v := range a.sv.spec.Vars {
		b = append(b, "<feature var='"...)
		b = xmlstream.AppendEscapedAttr(b, v)
		b = append(b, "'/>"...)
	}
	if x := a.sv.spec.ExtendedInfo; x != nil {
		b = append(b, x(&a.env.cfg)...)
	}
	a.route(feature.Answered(st, string(append(b, "</query>"...))))
	return true
}

// featureMsg: a feature part's message to the service's domain JID (ToUserOf), or a question (Ask).
func (a *serviceActor) featureMsg(m *featureMsg) {
	if q, ok := m.msg.(*surveyAsk); ok {
		var ans any
		if an, ok := a.part.(feature.Answerer); ok && m.idx == a.sv.idx {
			ans = an.Answer(q.q)
		}
		a.ctx.Send(q.replyTo, &surveyAnswer{a: ans})
		return
	}
	if m.idx == a.sv.idx {
		partHandle(a.part, m.msg)
	}
}

func (a *serviceActor) route(st *stanza.Routed) {
	if st != nil && a.env.routable(st.To.Domain()) {
		a.ctx.Send(a.env.router, &Route{St: st})
	}
}

func (a *serviceActor) bounce(st *stanza.Routed, e stanza.Error) { a.route(feature.Refusal(st, e)) }

// toEntity hands msg to the entity key, spawning it if needed (while draining, it is poisoned right behind
// the message: it handles it and stops).
func (a *serviceActor) toEntity(key string, msg any) {
	e := a.entities[key]
	if e == nil {
		props := newEntityProps(a.env, a.sv, key)
		name := url.PathEscape(key)
		pid, err := a.ctx.SpawnNamed(props, name)
		if err != nil {
			pid = a.ctx.SpawnPrefix(props, name+"~")
		}
		e = &entityEntry{pid: pid}
		a.entities[key] = e
		a.byID[pid.Id] = key
	}
	e.sent++
	a.ctx.Send(e.pid, &entityCall{msg: msg})
	if a.draining {
		a.ctx.Poison(e.pid)
	}
}

func (a *serviceActor) forget(pid *actor.PID) {
	key, ok := a.byID[pid.Id]
	if !ok {
		return
	}
	delete(a.byID, pid.Id)
	if e := a.entities[key]; e != nil && e.pid.Equal(pid) {
		delete(a.entities, key)
	}
}

func (a *serviceActor) maybeDrained(ctx actor.Context) {
	if a.draining && len(a.entities) == 0 {
		ctx.Poison(ctx.Self())
	}
}

func (a *serviceActor) servedJID() string { return a.sv.jid.String() }

func (a *serviceActor) describe(_ actor.Context, i *ActorInfo) {
	i.Attrs = map[string]string{"entities": strconv.Itoa(len(a.entities)), "entity_kind": a.sv.spec.EntityKind}
}

// serviceHost is the feature.ServiceHost of the service part; its methods run on the service actor's goroutine.
type serviceHost struct{ a *serviceActor }

func (h *serviceHost) Server() feature.Server                   { return h.a.env.srv }
func (h *serviceHost) JID() jid.JID                             { return h.a.sv.jid }
func (h *serviceHost) Log() *zerolog.Logger                     { return &h.a.log }
func (h *serviceHost) Route(st *stanza.Routed)                  { h.a.route(st) }
func (h *serviceHost) Bounce(st *stanza.Routed, e stanza.Error) { h.a.bounce(st, e) }
func (h *serviceHost) ToEntity(key string, msg any)             { h.a.toEntity(key, msg) }
func (h *serviceHost) Entities() int                            { return len(h.a.entities) }
func (h *serviceHost) NextID(prefix string) string {
	h.a.pushID++
	return prefix + strconv.FormatUint(h.a.pushID, 10)
}

var _ feature.ServiceHost = (*serviceHost)(nil)

// ---- one entity ----

// entityActor runs one entity part (a pubsub node, a MUC room) under its service actor.
type entityActor struct {
	env      *env
	idle     idleWatch // entityIdleAfter without a message: ask the service to stop us
	sv       *serviceEntry
	key      string
	log      zerolog.Logger
	ctx      actor.Context
	part     any
	received uint64
	pushID   uint64
	out      routeBuf // what the part routes while handling one message, to the router in one message
}

func newEntityProps(e *env, sv *serviceEntry, key string) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &entityActor{env: e, sv: sv, key: key}
	}, withInspection(e, sv.spec.EntityKind))
}

func (a *entityActor) Receive(ctx actor.Context) {
	a.ctx = ctx
	defer a.out.flush(ctx, a.env.router) // a room's copies of a message: one message to the router
	quiet := a.idle.idle(ctx, ctx.Message())
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.log = a.env.log.With().Str("service", a.sv.jid.String()).Str("entity", a.key).Logger()
		if a.sv.spec.NewEntity != nil {
			a.part = a.sv.spec.NewEntity(&entityHost{a: a}, a.key)
		}
		a.idle.start(ctx, entityIdleAfter)
	case *actor.Stopping:
		a.idle.stop()
	case *entityCall:
		a.received++
		partHandle(a.part, m.msg)
	case idleTick:
		if !quiet {
			return
		}
		if i, ok := a.part.(feature.EntityIdle); ok && !i.Idle() {
			return
		}
		ctx.Request(ctx.Parent(), &entityIdle{key: a.key, received: a.received})
	}
}

func (a *entityActor) servedJID() string { return "" }

func (a *entityActor) describe(_ actor.Context, i *ActorInfo) {
	i.Attrs = map[string]string{"key": a.key, "service": a.sv.jid.String(), "received": strconv.FormatUint(a.received, 10)}
	if d, ok := a.part.(feature.EntityDescriber); ok {
		for k, v := range d.Describe() {
			if _, taken := i.Attrs[k]; !taken {
				i.Attrs[k] = v
			}
		}
	}
}

// entityHost is the feature.EntityHost of an entity part; its methods run on the entity actor's goroutine.
type entityHost struct{ a *entityActor }

func (h *entityHost) Server() feature.Server { return h.a.env.srv }
func (h *entityHost) Service() jid.JID       { return h.a.sv.jid }
func (h *entityHost) Key() string            { return h.a.key }
func (h *entityHost) Log() *zerolog.Logger   { return &h.a.log }
func (h *entityHost) ToService(msg any)      { h.a.ctx.Send(h.a.ctx.Parent(), &entityMsg{msg: msg}) }
func (h *entityHost) Route(st *stanza.Routed) {
	if st != nil && h.a.env.routable(st.To.Domain()) {
		h.a.out.add(st)
	}
}
func (h *entityHost) Bounce(st *stanza.Routed, e stanza.Error) { h.Route(feature.Refusal(st, e)) }
func (h *entityHost) NextID(prefix string) string {
	h.a.pushID++
	return prefix + strconv.FormatUint(h.a.pushID, 10)
}

var _ feature.EntityHost = (*entityHost)(nil)

// ---- the services' sides outside the actor tree ----

// serviceMailbox is the feature.Mailbox of one service: what its HTTP handler and relay goroutines use to reach
// the service part. It holds only immutable values (the actor system's root context is safe for concurrent
// use): a message goes to this node's services actor, which hands it to the domain's service actor (spawned
// again if it had failed), exactly like a feature part's ToUserOf of the service's domain JID. In a cluster the
// service runs on its home only, and the services actor sends there what may cross (servicesActor.outside).
type serviceMailbox struct {
	sys      *actor.ActorSystem
	services *actor.PID
	sv       *serviceEntry
}

func (m *serviceMailbox) Tell(msg any) {
	m.sys.Root.Send(m.services, &outsideCall{sv: m.sv, msg: &featureMsg{idx: m.sv.idx, msg: msg}})
}

func (m *serviceMailbox) Ask(q any, timeout time.Duration) (any, bool) {
	f := actor.NewFuture(m.sys, timeout)
	ask := &surveyAsk{q: q, replyTo: f.PID(), timeout: timeout}
	m.sys.Root.Send(m.services, &outsideCall{sv: m.sv, msg: &featureMsg{idx: m.sv.idx, msg: ask}})
	res, err := f.Result()
	if err != nil {
		return nil, false
	}
	ans, ok := res.(*surveyAnswer)
	if !ok || ans.a == nil {
		return nil, false
	}
	return ans.a, true
}

var _ feature.Mailbox = (*serviceMailbox)(nil)

// startOutside starts every service's Outside (feature/service.go) and makes the HTTP handlers of those that
// have one; it returns what stops the Outsides.
func (s *Server) startOutside() (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	for _, sv := range s.env.reg.services {
		mb := &serviceMailbox{sys: s.sys, services: s.env.services, sv: sv}
		if sv.spec.HTTP != nil && sv.spec.HTTPPath != "" {
			s.handlers = append(s.handlers, ServiceHandler{Path: sv.spec.HTTPPath, Handler: sv.spec.HTTP(s.env.srv, mb)})
		}
		if sv.spec.Outside == nil {
			continue
		}
		st, err := sv.spec.Outside(s.env.srv, mb, s.env.log.With().Str("service", sv.jid.String()).Logger())
		if err != nil {
			stop()
			return nil, fmt.Errorf("%s: %w", sv.jid, err)
		}
		if st != nil {
			stops = append(stops, st)
		}
	}
	return stop, nil
}

// ServiceHandler is one service's HTTP side (feature.ServiceSpec.HTTP) for the public HTTP listener to mount:
// mux.Handle(h.Path, h.Handler).
type ServiceHandler struct {
	Path    string
	Handler http.Handler
}

// ServiceHandlers are the enabled services' HTTP sides (XEP-0363 upload under /upload/), in registry order.
func (s *Server) ServiceHandlers() []ServiceHandler { return s.handlers }
