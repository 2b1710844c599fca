package actors

import (
	"strconv"

	"github.com/asynkron/protoactor-go/actor"
)

// The server-wide XEP-0115 cache of verified client capabilities: hash+ver → features. The caps feature's
// session parts ask it (Session.CapsLookup) when a client announces a ver, and store what they verified
// (Session.CapsVerified); a ver is only ever cached verified, so one client cannot poison what others' caps
// mean. PEP (+notify) will read it. It owns the map; nothing else reads it.

// maxCapsEntries bounds the cache; beyond it new entries are not kept.
const maxCapsEntries = 10000

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
)

type capsCache struct {
	known map[string][]string
}

func newCapsProps(e *env) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &capsCache{known: map[string][]string{}} },
		withInspection(e, kindCaps))
}

func (c *capsCache) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *capsLookup:
		if _, ok := c.known[m.hash+" "+m.ver]; !ok && ctx.Sender() != nil {
			ctx.Respond(&capsUnknown{hash: m.hash, ver: m.ver, node: m.node, idx: m.idx})
		}
	case *capsVerified:
		if len(c.known) < maxCapsEntries {
			c.known[m.hash+" "+m.ver] = m.features
		}
	}
}

func (c *capsCache) servedJID() string { return "" }

func (c *capsCache) describe(_ actor.Context, a *ActorInfo) {
	a.Attrs = map[string]string{"entries": strconv.Itoa(len(c.known))}
}
