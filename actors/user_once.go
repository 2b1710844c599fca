package actors

import "github.com/asynkron/protoactor-go/actor"

// Exactly once across the cluster (ARCHITECTURE.md "The cluster"). A stanza whose sender waits for its
// confirmation gets an idempotency key where it first crosses to another node (cluster.go, stanza.Routed.Once);
// when the node it went to leaves before confirming it, it is routed again with that key, and so may reach the
// recipient's home twice. The home makes the second arrival change nothing:
//   - the user actor remembers the keys it handled recently (recentKeys) and handles a known key as done: not
//     delivered, stored or answered again, only confirmed (once what came before it is durable, since the
//     first arrival may still wait in the group commit);
//   - what outlives the actor is in storage: the offline queue holds a key at most once per owner
//     (storage.OfflineInput.Key) and the archive files a keyed message under its key as id (features/mam), so a
//     second arrival at another actor (a new home, or this one started again) stores nothing and carries the
//     same XEP-0359 stanza-id.
//
// What it cannot cover: a second arrival at an actor that has not seen the first (another node, or after this
// actor stopped or passed recentKeysMax newer keys) for a recipient online there, whose first copy went to a
// session the dead home held. That copy is delivered again, with the same stanza-id (when the archive is on),
// which is what clients deduplicate by.

// recentKeysMax bounds the keys a user actor remembers: a second arrival comes within the time the survivors take
// to drop a node (the etcd lease, 3 s; automanaged's health checks, 2 s polls) plus one forward, and only
// stanzas that crossed nodes with a confirmation carry keys, so this covers a recipient that gets 256 of those in
// that time; a busier one still relies on storage. At most 256 keys of 22 bytes per user actor, allocated only
// when the first keyed stanza comes.
const recentKeysMax = 256

// recentKeys is a bounded set of the keys handled last (the oldest forgotten first).
type recentKeys struct {
	set  map[string]struct{}
	ring []string
	next int
}

func (k *recentKeys) has(key string) bool {
	_, ok := k.set[key]
	return ok
}

func (k *recentKeys) add(key string) {
	if k.set == nil {
		k.set = make(map[string]struct{}, 16)
	}
	if len(k.ring) < recentKeysMax {
		k.ring = append(k.ring, key)
	} else {
		delete(k.set, k.ring[k.next])
		k.ring[k.next] = key
		k.next = (k.next + 1) % recentKeysMax
	}
	k.set[key] = struct{}{}
}

// handledAgain: m carries a key this actor handled already. Its sender waits for the confirmation; the first
// arrival may still be in the batch of the group commit, so the confirmation waits for it (flushOfflineBatch).
func (r *userActor) handledAgain(ctx actor.Context, m *Route) {
	r.env.metrics.clusterRouted.WithLabelValues("again").Inc()
	r.log.Debug().Str("key", m.St.Once).Str("from", m.St.From.String()).Msg("cluster: a stanza arrived again; handled already")
	if m.confirm == nil {
		return
	}
	if len(r.offlineBatch) > 0 || r.partsPending {
		r.confirmAfterFlush = append(r.confirmAfterFlush, m)
		return
	}
	m.confirmed(ctx)
}
