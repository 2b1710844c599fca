package actors

import (
	"slices"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"
)

// The server-wide XEP-0115 cache of verified client capabilities: hash+ver → features. The caps feature's
// session parts ask it (Session.CapsLookup) when a client announces a ver, and store what they verified
// (Session.CapsVerified); a ver is only ever cached verified, so one client cannot poison what others' caps
// mean. PEP (+notify) reads it through User.WatchCaps (capsWatch): a user actor that asks about a ver nobody has
// verified yet waits for it, because a contact's presence (and so its ver) reaches the user actor before the
// contact's own session has verified it. It owns the maps; nothing else reads them.

// maxCapsEntries bounds the cache; beyond it new entries are not kept. maxCapsWaiters bounds the user actors
// waiting for vers not verified yet (a ver nobody ever verifies would otherwise hold its waiters forever): beyond
// it the oldest ver's waiters are forgotten.
const (
	maxCapsEntries = 10000
	maxCapsWaiters = 10000
)

type (
	// capsLookup asks about hash+ver for the feature part idx of the asking session; answered with capsUnknown
	// only when the cache does not know them.
	capsLookup struct {
		hash, ver, node string
		idx             int
	}
	capsUnknown struct {
		hash, ver, node string
		idx             int
	}
	capsVerified struct {
		hash, ver string
		features  []string
	}
	// capsWatch: the user part idx of the sender wants the features of hash+ver (User.WatchCaps), answered with
	// capsKnown now or once they are verified.
	capsWatch struct {
		hash, ver string
		idx       int
	}
	capsKnown struct {
		hash, ver string
		features  []string
		idx       int
	}
)

type capsWaiter struct {
	pid *actor.PID
	idx int
}

type capsCache struct {
	known   map[string][]string
	waiting map[string][]capsWaiter
	order   []string // keys of waiting, oldest first
	nwait   int
}

func newCapsProps(e *env) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &capsCache{known: map[string][]string{}, waiting: map[string][]capsWaiter{}}
	}, withInspection(e, kindCaps))
}

func (c *capsCache) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *capsLookup:
		if _, ok := c.known[m.hash+" "+m.ver]; !ok && ctx.Sender() != nil {
			ctx.Respond(&capsUnknown{hash: m.hash, ver: m.ver, node: m.node, idx: m.idx})
		}
	case *capsVerified:
		key := m.hash + " " + m.ver
		if len(c.known) < maxCapsEntries {
			c.known[key] = m.features
		}
		for _, w := range c.waiting[key] {
			ctx.Send(w.pid, &capsKnown{hash: m.hash, ver: m.ver, features: m.features, idx: w.idx})
		}
		if ws, ok := c.waiting[key]; ok {
			c.nwait -= len(ws)
			delete(c.waiting, key)
		}
	case *capsWatch:
		key := m.hash + " " + m.ver
		if f, ok := c.known[key]; ok {
			ctx.Respond(&capsKnown{hash: m.hash, ver: m.ver, features: f, idx: m.idx})
			return
		}
		if ctx.Sender() == nil {
			return
		}
		if _, ok := c.waiting[key]; !ok {
			if len(c.order) >= 2*maxCapsWaiters { // keys verified since: drop them from the order
				c.order = slices.DeleteFunc(c.order, func(k string) bool { _, ok := c.waiting[k]; return !ok })
			}
			c.order = append(c.order, key)
		}
		c.waiting[key] = append(c.waiting[key], capsWaiter{pid: ctx.Sender(), idx: m.idx})
		c.nwait++
		for c.nwait > maxCapsWaiters && len(c.order) > 0 {
			old := c.order[0]
			c.order = c.order[1:]
			c.nwait -= len(c.waiting[old])
			delete(c.waiting, old)
		}
	}
}

func (c *capsCache) servedJID() string { return "" }

func (c *capsCache) describe(_ actor.Context, a *ActorInfo) {
	a.Attrs = map[string]string{"entries": strconv.Itoa(len(c.known)), "waiters": strconv.Itoa(c.nwait)}
}
