package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/subscription"
	"github.com/xmppd/xmppd/storage"
)

// The per-user limits (XEP-0205), applied by the user actor: roster size, pending requests, subscription spam.

// rosterFull reports (and counts) a roster at roster.max_items.
func (r *userActor) rosterFull() bool {
	if max := r.env.cfg.Roster.MaxItems; max > 0 && len(r.items) >= max {
		r.env.metrics.hit(limitRosterItems)
		return true
	}
	return false
}

// pendingInFull: a new inbound subscription request from a contact that has no subscription with the user is
// dropped once roster.max_pending_in requests wait for an answer (XEP-0205 §7); the requester sees what it sees
// of any unanswered request. Requests from contacts with a roster item are always kept.
func (r *userActor) pendingInFull(it *storage.RosterItem) bool {
	max := r.env.cfg.Roster.MaxPendingIn
	if max <= 0 || it != nil || len(r.pendingIn) < max {
		return false
	}
	r.env.metrics.hit(limitPendingIn)
	return true
}

// allowSubscriptionOut applies the per-user limits to an outbound subscription stanza: a subscribe that would
// add a roster item to a full roster is refused with <not-allowed/>, and subscribe requests to strangers (no
// subscription either way) are rate limited with <policy-violation/> (XEP-0205 §7: subscription spam). The error
// goes to the session that sent the stanza.
func (r *userActor) allowSubscriptionOut(ctx actor.Context, st *stanza.Routed, it *storage.RosterItem) bool {
	if st.Head.Type != "subscribe" {
		return true
	}
	var e stanza.Error
	switch {
	case it == nil && r.rosterFull():
		e = stanza.NewError(stanza.NotAllowed).WithText("the roster is full")
	case !r.strangerAllowed(it):
		r.env.metrics.hit(limitStrangerSubscribe)
		e = stanza.NewError(stanza.PolicyViolation).WithText("too many subscription requests; try later")
	default:
		return true
	}
	if rs, ok := r.resources[st.From.Resource()]; ok {
		deliverTo(ctx, rs.pid, st.Error(st.To.Bare().String(), e))
	}
	return false
}

func (r *userActor) strangerAllowed(it *storage.RosterItem) bool {
	cfg := &r.env.cfg.Roster
	if cfg.StrangerSubscribesPerMinute <= 0 {
		return true
	}
	if it != nil {
		if to, from := subscription.FromAttr(it.Subscription); to || from {
			return true // not a stranger
		}
	}
	now := time.Now()
	if r.strangerSubs == nil {
		b := newTokenBucket(cfg.StrangerSubscribesPerMinute/60, float64(max(cfg.StrangerSubscribeBurst, 1)), now)
		r.strangerSubs = &b
	}
	return r.strangerSubs.take(1, now)
}
