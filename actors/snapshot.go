package actors

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"github.com/xmppd/xmppd/protocol/jid"
)

// The snapshot walk behind GET /debug/actors: a short-lived actor asks the root actors, then each parent for
// its child list, then each child (see inspect.go for the question every actor answers).

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
