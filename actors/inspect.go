package actors

import (
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/protocol/jid"
)

// The live actor tree (GET /debug/actors) is gathered by asking: every actor answers an inspect message about
// itself on its own goroutine, and a short-lived snapshot actor walks the tree, asking each parent for its
// children and then each child. Nobody reads another actor's memory. The per-actor figures that the actor does
// not keep itself (age, mailbox length, messages processed) come from a mailbox middleware with atomic counters
// that only the actor reads when it answers.
//
// Why a snapshot actor and not parents asking their children: the router and the listener have up to 10^5
// children. A parent that fans out keeps one pending future per child in its own mailbox loop and competes with
// the routing it exists for; here the router answers one message (its child list, or the one user a JID filter
// names) and the snapshot actor carries the load of the walk on its own goroutine, with a bounded window of
// outstanding questions.

// Actor kinds as they appear in the tree.
const (
	kindListener = "listener"
	kindConn     = "conn"
	kindSession  = "session"
	kindUser     = "user"
	kindRouter   = "router"
	kindCaps     = "caps"
	kindServices = "services"
	kindService  = "service"
	// The cluster actor and the stand-ins of sessions split across nodes (cluster.go, cluster_proxy.go).
	kindCluster      = "cluster"
	kindSessionProxy = "session-proxy"
	kindConnProxy    = "conn-proxy"
	// The entity actors of services (services.go) have the kinds their features name (feature.ServiceSpec);
	// the federation's and the components' kinds are in s2s.go.
)

// kindSet is a set of kinds as bits, so a question carries its filter without allocating. The entity kinds of
// services get the bits from kFirstEntity up, in registry order (registry.entityKinds).
type kindSet uint32

const (
	kListener kindSet = 1 << iota
	kConn
	kSession
	kUser
	kRouter
	kCaps
	kServices
	kService
	kS2S
	kS2SOut
	kS2SIn
	kComponents
	kComponent
	kCluster
	kSessionProxy
	kConnProxy
	kFirstEntity
	kAll           = ^kindSet(0)
	kEntities      = ^(kFirstEntity - 1)
	maxEntityKinds = 16 // 32 bits minus the fixed kinds
)

var kindBits = map[string]kindSet{
	kindListener: kListener, kindConn: kConn, kindSession: kSession, kindUser: kUser, kindRouter: kRouter, kindCaps: kCaps,
	kindServices: kServices, kindService: kService, kindS2S: kS2S, kindS2SOut: kS2SOut, kindS2SIn: kS2SIn,
	kindComponents: kComponents, kindComponent: kComponent,
	kindCluster: kCluster, kindSessionProxy: kSessionProxy, kindConnProxy: kConnProxy,
}

// kindBit is the bit of a kind: a fixed one, or a service entity kind's.
func (e *env) kindBit(kind string) kindSet {
	if b, ok := kindBits[kind]; ok {
		return b
	}
	if e.reg != nil {
		return e.reg.entityKinds[kind]
	}
	return 0
}

// kindNames are the kinds the tree may show: the fixed ones and the services' entity kinds.
func (r *registry) kindNames() []string {
	out := []string{kindListener, kindConn, kindSession, kindUser, kindRouter, kindCaps, kindServices, kindService,
		kindS2S, kindS2SOut, kindS2SIn, kindComponents, kindComponent, kindCluster, kindSessionProxy, kindConnProxy}
	for _, sv := range r.services {
		if k := sv.spec.EntityKind; k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// below is the set of kinds found under an actor of the given kind: whether asking for its children can find
// anything the filter wants.
func below(kind string) kindSet {
	switch kind {
	case kindListener:
		return kConn
	case kindRouter:
		return kUser | kSession
	case kindUser:
		return kSession
	case kindServices:
		return kService | kEntities
	case kindService:
		return kEntities
	case kindS2S:
		return kS2SOut | kS2SIn
	case kindComponents:
		return kComponent
	case kindCluster:
		return kSessionProxy | kConnProxy
	}
	return 0
}

// ParseKinds turns "conn,session" into a set; "" is every kind. Unknown names are an error (returned as the
// offending name).
func (e *env) parseKinds(s string) (kindSet, string) {
	if strings.TrimSpace(s) == "" {
		return kAll, ""
	}
	var ks kindSet
	for _, k := range strings.Split(s, ",") {
		b := e.kindBit(strings.TrimSpace(k))
		if b == 0 {
			return 0, k
		}
		ks |= b
	}
	return ks, ""
}

// inspect asks an actor to describe itself. The answer (inspectReply) goes to replyTo, or to the sender when
// replyTo is nil (a RequestFuture, as /healthz uses).
//
// It is sent without an envelope: the mailbox checks NotInfluenceReceiveTimeout on the raw message, so a page
// refreshing every second does not keep idle user actors alive (their 30 s idle timer would restart at every
// question if it arrived wrapped with a sender).
type inspect struct {
	replyTo  *actor.PID
	tag      uint64
	kinds    kindSet // which kinds the caller wants (ancestors are always described)
	jid      string  // "" or a canonical JID: matches that JID, or every full JID of that bare JID
	bare     jid.JID // jid's bare form, for the router's direct lookup
	children bool    // list the children (the caller walks them)
}

func (*inspect) NotInfluenceReceiveTimeout() {}
func (*inspect) IgnoreDeadLetterLogging()    {}

// inspectReply is the answer. info is nil when the actor does not match and has nothing below it worth walking:
// most of 10^5 conns answer a JID filter with 24 bytes. gone reports a question that reached a dead actor.
type inspectReply struct {
	tag      uint64
	info     *ActorInfo
	children []*actor.PID
	gone     bool
}

func (*inspectReply) IgnoreDeadLetterLogging() {}

// ActorInfo is one node of the live actor tree, as GET /debug/actors returns it.
type ActorInfo struct {
	ID   string `json:"id"` // protoactor PID id: the path from the root, e.g. "router/alice@localhost/phone"
	Kind string `json:"kind"`
	// JID the actor serves: bare for a user actor, full for a session; for a conn the bound full JID, or
	// the authenticated bare JID before binding.
	JID       string    `json:"jid,omitempty"`
	Started   time.Time `json:"started"`
	AgeSecs   float64   `json:"age_seconds"`
	Mailbox   int64     `json:"mailbox"`   // messages waiting (user and system), not counting the question itself
	Processed uint64    `json:"processed"` // messages handled since the actor started
	// Matched is false for an ancestor kept only because something below it matched the filter.
	Matched bool `json:"matched"`
	// ChildCount is the number of live children, whether or not they are in Children.
	ChildCount int `json:"child_count"`

	// What a conn or session serves, and the stream state (RFC 6120): only where it applies.
	Remote    string `json:"remote,omitempty"`
	Resource  string `json:"resource,omitempty"`
	State     string `json:"state,omitempty"`
	TLS       *bool  `json:"tls,omitempty"`
	Mechanism string `json:"mechanism,omitempty"` // SASL mechanism that authenticated the stream
	BoundJID  string `json:"bound_jid,omitempty"`

	Attrs    map[string]string `json:"attrs,omitempty"` // kind-specific counters
	Children []*ActorInfo      `json:"children,omitempty"`
}

// actorStats is one actor's bookkeeping for the tree and the metrics. posted and received are updated by the
// mailbox (posted from the senders' goroutines, received on the actor's), read by the actor itself when it
// answers. lastState and live are touched only on the actor's goroutine (receiver middleware).
type actorStats struct {
	kind     string
	bit      kindSet
	started  time.Time
	posted   atomic.Uint64
	received atomic.Uint64

	live      bool
	lastState connState
	// ctx is the actor's own context (set by OnInit); metrics and the answer to inspect use it from
	// MessageReceived, which the mailbox calls on the actor's goroutine right after each message.
	ctx     actor.Context
	metrics *metrics
}

func (s *actorStats) MailboxStarted()           {}
func (s *actorStats) MessagePosted(interface{}) { s.posted.Add(1) }
func (s *actorStats) MailboxEmpty()             {}

// MessageReceived runs on the actor's goroutine after the actor handled msg (a mailbox middleware, unlike a
// receiver middleware, does not wrap every message in an envelope: no allocation per message).
func (s *actorStats) MessageReceived(msg interface{}) {
	s.received.Add(1)
	if s.ctx == nil {
		return
	}
	if q, ok := msg.(*inspect); ok {
		answerInspect(s.ctx, s, q, nil)
		return
	}
	s.metrics.observe(s.ctx, s, msg)
}

// describer is implemented by every actor in the tree; both methods run on the actor's own goroutine.
type describer interface {
	// servedJID is the JID the filter compares with ("" for none).
	servedJID() string
	// describe fills the kind-specific fields.
	describe(ctx actor.Context, a *ActorInfo)
}

// withInspection makes an actor answer inspect and count its messages for the tree and the metrics. Every
// actor kind's props use it: a mailbox with the counting middleware (otherwise the default unbounded mailbox),
// which also answers inspect and keeps the per-kind metrics after each message; actors ignore inspect themselves.
// Props are built per actor (one conn, one session, one user), so each gets its own stats.
func withInspection(e *env, kind string) actor.PropsOption {
	st := &actorStats{kind: kind, bit: e.kindBit(kind), started: time.Now(), metrics: e.metrics}
	mailbox := actor.WithMailbox(actor.Unbounded(st))
	onInit := actor.WithOnInit(func(ctx actor.Context) { st.ctx = ctx })
	dispatcher := actor.WithDispatcher(e.workers) // dispatch.go: mailboxes run on kept goroutines
	return func(p *actor.Props) {
		mailbox(p)
		onInit(p)
		dispatcher(p)
	}
}

// answerInspect runs on the asked actor's goroutine.
func answerInspect(ctx actor.Context, st *actorStats, q *inspect, sender *actor.PID) {
	to := q.replyTo
	if to == nil {
		to = sender
	}
	if to == nil {
		return
	}
	reply := &inspectReply{tag: q.tag}
	d, _ := ctx.Actor().(describer)
	served := ""
	if d != nil {
		served = d.servedJID()
	}
	kinds := q.kinds
	if kinds == 0 {
		kinds = kAll
	}
	matched := kinds&st.bit != 0 && jidMatches(q.jid, served)
	walk := q.children && kinds&below(st.kind) != 0
	if !matched && !walk {
		ctx.Send(to, reply)
		return
	}
	a := &ActorInfo{
		ID: ctx.Self().Id, Kind: st.kind, JID: served, Started: st.started,
		AgeSecs:   time.Since(st.started).Round(time.Millisecond).Seconds(),
		Processed: st.received.Load(),
		Matched:   matched,
	}
	// The question itself is posted but not yet counted as received (the mailbox counts after handling).
	a.Mailbox = max(int64(st.posted.Load())-int64(a.Processed)-1, 0)
	kids := ctx.Children()
	a.ChildCount = len(kids)
	if d != nil {
		d.describe(ctx, a)
	}
	if walk {
		if r, ok := ctx.Actor().(*router); ok && q.jid != "" {
			// The router knows its users by bare JID: a JID filter walks one user, not all of them.
			if u, ok := r.users[q.bare]; ok {
				reply.children = []*actor.PID{u.pid}
			}
		} else {
			// ctx.Children() is protoactor's live internal slice: copy it before it leaves the actor.
			reply.children = slices.Clone(kids)
		}
	}
	reply.info = a
	ctx.Send(to, reply)
}

// jidMatches: an empty filter matches everything; otherwise the served JID equals the filter, or the filter is
// the bare JID of a served full JID.
func jidMatches(filter, served string) bool {
	if filter == "" {
		return true
	}
	if served == filter {
		return true
	}
	bare, _, _ := strings.Cut(served, "/")
	return bare == filter
}
