package actors

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

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
)

// kindSet is a set of kinds as bits, so a question carries its filter without allocating.
type kindSet uint8

const (
	kListener kindSet = 1 << iota
	kConn
	kSession
	kUser
	kRouter
	kAll = kListener | kConn | kSession | kUser | kRouter
)

var kindBits = map[string]kindSet{
	kindListener: kListener, kindConn: kConn, kindSession: kSession, kindUser: kUser, kindRouter: kRouter,
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
	}
	return 0
}

// ParseKinds turns "conn,session" into a set; "" is every kind. Unknown names are an error (returned as the
// offending name).
func parseKinds(s string) (kindSet, string) {
	if strings.TrimSpace(s) == "" {
		return kAll, ""
	}
	var ks kindSet
	for _, k := range strings.Split(s, ",") {
		b, ok := kindBits[strings.TrimSpace(k)]
		if !ok {
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
	st := &actorStats{kind: kind, bit: kindBits[kind], started: time.Now(), metrics: e.metrics}
	mailbox := actor.WithMailbox(actor.Unbounded(st))
	onInit := actor.WithOnInit(func(ctx actor.Context) { st.ctx = ctx })
	return func(p *actor.Props) {
		mailbox(p)
		onInit(p)
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
			// ctx.Children() is the live internal slice: copy it before it leaves the actor (pitfall 1).
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

// ---- what each kind says about itself ----

var connStateNames = [...]string{"header", "negotiating", "restart", "authenticated", "binding", "bound", "closed"}

func (s connState) String() string {
	if int(s) < len(connStateNames) {
		return connStateNames[s]
	}
	return "state" + strconv.Itoa(int(s))
}

func (c *conn) servedJID() string {
	if !c.full.IsZero() {
		return c.full.String()
	}
	if !c.user.IsZero() {
		return c.user.String()
	}
	return ""
}

func (c *conn) describe(_ actor.Context, a *ActorInfo) {
	if c.netConn != nil {
		a.Remote = c.netConn.RemoteAddr().String()
	}
	a.State = c.state.String()
	secure := c.secure
	a.TLS = &secure
	a.Mechanism = c.authMech
	if !c.full.IsZero() {
		a.BoundJID = c.full.String()
		a.Resource = c.full.Resource()
	}
	a.Attrs = map[string]string{"conn_id": strconv.FormatUint(c.id, 10), "direct_tls": strconv.FormatBool(c.directTLS)}
	if c.session != nil {
		a.Attrs["session"] = c.session.Id
	}
}

func (s *session) servedJID() string { return s.full.String() }

func (s *session) describe(_ actor.Context, a *ActorInfo) {
	a.Resource = s.full.Resource()
	a.BoundJID = s.full.String()
	a.State = "bound"
	a.Attrs = map[string]string{
		"available": strconv.FormatBool(s.available),
		"directed":  strconv.Itoa(len(s.directed)),
	}
	if s.conn != nil {
		a.Attrs["conn"] = s.conn.Id
	}
}

func (l *listener) servedJID() string { return "" }

func (l *listener) describe(_ actor.Context, a *ActorInfo) {
	a.Attrs = map[string]string{"connections": strconv.Itoa(l.conns), "shutdown": strconv.FormatBool(l.shutdown)}
	for i, s := range l.sockets {
		key := "listen"
		if l.directTLS[i] {
			key = "listen_direct_tls"
		}
		a.Attrs[key] = s.Addr().String()
	}
}

func (r *router) servedJID() string { return "" }

func (r *router) describe(_ actor.Context, a *ActorInfo) {
	a.Attrs = map[string]string{"users": strconv.Itoa(len(r.users))}
}

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

// ---- the snapshot walk ----

// Snapshot is the answer of GET /debug/actors.
type Snapshot struct {
	Taken     time.Time `json:"taken"`
	ElapsedMS float64   `json:"elapsed_ms"`
	Filter    struct {
		Kind  string `json:"kind,omitempty"`
		JID   string `json:"jid,omitempty"`
		Limit int    `json:"limit"`
	} `json:"filter"`
	Nodes int `json:"nodes"` // nodes in Root, the root excluded
	// Truncated: the limit was reached; the walk stopped there.
	Truncated bool `json:"truncated"`
	// Unanswered counts actors that did not answer before the deadline (busy or stuck).
	Unanswered int            `json:"unanswered,omitempty"`
	Counts     map[string]int `json:"counts"` // nodes in the tree by kind
	// Live is how many actors of each kind exist, from the metrics (independent of filter and limit).
	Live map[string]int64 `json:"live"`
	Root *ActorInfo       `json:"root"`
}

// snapshotRequest configures one walk.
type snapshotRequest struct {
	kinds    kindSet
	kindText string
	jid      string
	bare     jid.JID
	limit    int
	timeout  time.Duration
	tops     []*actor.PID // where the walk starts (the root-level actors)
	out      chan *Snapshot
}

// snapWindow bounds the questions in flight, so memory stays bounded whatever the tree's size.
const snapWindow = 256

type snapNode struct {
	info    *ActorInfo
	parent  *snapNode
	kids    []*snapNode
	kept    bool
	pending int // children asked or queued, not yet answered
}

type snapAsk struct {
	pid    *actor.PID
	parent *snapNode
}

type snapDeadline struct{}

// snapshotter is the short-lived actor of one GET /debug/actors.
type snapshotter struct {
	req         snapshotRequest
	start       time.Time
	root        *snapNode
	stack       []snapAsk // depth first: a user's sessions are asked right after the user, so few nodes wait
	outstanding map[uint64]snapAsk
	nextTag     uint64
	kept        int
	truncated   bool
	done        bool
	cancel      scheduler.CancelFunc
}

func newSnapshotProps(req snapshotRequest) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &snapshotter{req: req}
	})
}

func (s *snapshotter) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.start = time.Now()
		s.root = &snapNode{info: &ActorInfo{ID: "", Kind: "system", Started: s.start, Matched: false}, kept: true}
		s.outstanding = make(map[uint64]snapAsk, snapWindow)
		for i := len(s.req.tops) - 1; i >= 0; i-- {
			s.stack = append(s.stack, snapAsk{pid: s.req.tops[i], parent: s.root})
			s.root.pending++
		}
		s.cancel = scheduler.NewTimerScheduler(ctx).SendOnce(s.req.timeout, ctx.Self(), &snapDeadline{})
		s.pump(ctx)
	case *inspectReply:
		s.onReply(ctx, m)
	case *snapDeadline:
		s.finish(ctx)
	case *actor.Stopping:
		if s.cancel != nil {
			s.cancel()
		}
	}
}

func (s *snapshotter) pump(ctx actor.Context) {
	for !s.done && len(s.outstanding) < snapWindow && len(s.stack) > 0 {
		a := s.stack[len(s.stack)-1]
		s.stack = s.stack[:len(s.stack)-1]
		s.nextTag++
		s.outstanding[s.nextTag] = a
		ctx.Send(a.pid, &inspect{replyTo: ctx.Self(), tag: s.nextTag, kinds: s.req.kinds, jid: s.req.jid, bare: s.req.bare, children: true})
	}
	if !s.done && len(s.outstanding) == 0 && len(s.stack) == 0 {
		s.finish(ctx)
	}
}

func (s *snapshotter) onReply(ctx actor.Context, m *inspectReply) {
	a, ok := s.outstanding[m.tag]
	if !ok || s.done {
		return // late, or already finished
	}
	delete(s.outstanding, m.tag)
	parent := a.parent
	parent.pending--
	if !m.gone && m.info != nil {
		n := &snapNode{info: m.info, parent: parent}
		parent.kids = append(parent.kids, n)
		if m.info.Matched {
			s.keep(n)
		}
		// Children are pushed in reverse so that they are asked in their parent's order.
		for i := len(m.children) - 1; i >= 0 && !s.truncated; i-- {
			s.stack = append(s.stack, snapAsk{pid: m.children[i], parent: n})
			n.pending++
		}
		s.prune(n)
	} else {
		s.prune(parent)
	}
	if s.truncated {
		s.finish(ctx)
		return
	}
	s.pump(ctx)
}

// keep marks n and its ancestors as part of the answer, unless that would exceed the limit.
func (s *snapshotter) keep(n *snapNode) {
	add := 0
	for p := n; p != nil && !p.kept; p = p.parent {
		add++
	}
	if s.kept+add > s.req.limit {
		s.truncated = true
		n.info.Matched = false // not kept; pruned below
		return
	}
	for p := n; p != nil && !p.kept; p = p.parent {
		p.kept = true
	}
	s.kept += add
}

// prune drops finished subtrees that nothing matched, so a filter over 10^5 actors holds only what it keeps.
func (s *snapshotter) prune(n *snapNode) {
	for n != nil && !n.kept && n.pending == 0 && n.parent != nil {
		p := n.parent
		if i := slices.Index(p.kids, n); i >= 0 {
			p.kids = slices.Delete(p.kids, i, i+1)
		}
		n = p
	}
}

func (s *snapshotter) finish(ctx actor.Context) {
	if s.done {
		return
	}
	s.done = true
	snap := &Snapshot{
		Taken: s.start, Truncated: s.truncated, Unanswered: len(s.outstanding),
		Counts: map[string]int{},
	}
	if !s.truncated {
		// The walk stopped at the deadline: the queued questions were never asked either.
		snap.Unanswered += len(s.stack)
	}
	snap.Filter.Kind, snap.Filter.JID, snap.Filter.Limit = s.req.kindText, s.req.jid, s.req.limit
	snap.Root = build(s.root, snap.Counts)
	snap.Root.ChildCount = len(snap.Root.Children)
	for _, c := range snap.Counts {
		snap.Nodes += c
	}
	snap.Counts["system"] = 0
	delete(snap.Counts, "system")
	snap.ElapsedMS = float64(time.Since(s.start).Microseconds()) / 1000
	s.req.out <- snap // buffered (1): the handler may have gone, the actor never blocks
	ctx.Stop(ctx.Self())
}

// build turns the kept nodes into the answer's tree, children ordered by id (numerically where the ids are
// numbers, so c2s/9 comes before c2s/10).
func build(n *snapNode, counts map[string]int) *ActorInfo {
	a := n.info
	if n.parent != nil {
		counts[a.Kind]++
	}
	a.Children = nil
	for _, k := range n.kids {
		if k.kept {
			a.Children = append(a.Children, build(k, counts))
		}
	}
	slices.SortFunc(a.Children, func(x, y *ActorInfo) int { return compareIDs(x.ID, y.ID) })
	return a
}

func compareIDs(x, y string) int {
	xp, xl := splitLast(x)
	yp, yl := splitLast(y)
	if c := strings.Compare(xp, yp); c != 0 {
		return c
	}
	xn, xerr := strconv.ParseUint(xl, 10, 64)
	yn, yerr := strconv.ParseUint(yl, 10, 64)
	if xerr == nil && yerr == nil {
		return cmp.Compare(xn, yn)
	}
	return strings.Compare(xl, yl)
}

func splitLast(id string) (prefix, last string) {
	i := strings.LastIndexByte(id, '/')
	return id[:i+1], id[i+1:]
}

// answerDeadInspect turns a question that reached a dead actor into a "gone" answer, so a walk racing with
// disconnections does not wait for its deadline. Subscribed to the actor system's event stream at start.
func answerDeadInspect(sys *actor.ActorSystem) {
	sys.EventStream.Subscribe(func(evt interface{}) {
		dl, ok := evt.(*actor.DeadLetterEvent)
		if !ok {
			return
		}
		if q, ok := dl.Message.(*inspect); ok && q.replyTo != nil {
			sys.Root.Send(q.replyTo, &inspectReply{tag: q.tag, gone: true})
		}
	})
}
