package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/subscription"
)

// The user actor's presence (RFC 6121 §4): what each resource broadcast, probes, and who may see it.

func (r *userActor) presenceOut(ctx actor.Context, m *presenceOut) {
	rs, ok := r.resources[m.resource]
	if !ok {
		return
	}
	initial := m.available && !rs.available
	rs.available = m.available
	rs.priority = m.priority
	if m.available {
		rs.presence = m.st
	} else {
		rs.presence = nil
		r.saveLastPresence(m.st.Raw)
	}
	r.toOwnResources(ctx, m.st)
	for _, h := range r.presenceHooks {
		h.h.PresenceChanged(rs.snapshot(), initial)
	}
	if !initial {
		return
	}
	// §4.2.2: probe the contacts the user is subscribed to; §4.2.2 also: the other resources' presence.
	for c, it := range r.items {
		if to, _ := subscription.FromAttr(it.Subscription); to {
			r.route(ctx, presence("probe", r.bare, c))
		}
	}
	for _, other := range r.resources {
		if other != rs && other.available {
			deliverTo(ctx, rs.pid, other.presence.Retarget(rs.full))
		}
	}
	// §3.1.3: pending subscription requests are redelivered at each login until answered.
	for _, req := range r.pendingIn {
		deliverTo(ctx, rs.pid, req)
	}
	if m.priority >= 0 {
		r.deliverOffline(ctx, rs)
	}
}

// broadcast sends presence from one resource to the contacts that may see it and to all of the user's
// available resources, including the one that sent it (RFC 6121 §4.2.2, §4.4.2). Used for the presence the
// server generates (a session that ended without unavailable presence); a session broadcasts its client's own.
func (r *userActor) broadcast(ctx actor.Context, st *stanza.Routed) {
	for _, c := range r.presenceTargets() {
		r.route(ctx, st.Retarget(c))
	}
	r.toOwnResources(ctx, st)
}

func (r *userActor) toOwnResources(ctx actor.Context, st *stanza.Routed) {
	for _, rs := range r.resources {
		if rs.available {
			deliverTo(ctx, rs.pid, st.Retarget(rs.full))
		}
	}
}

// maySeePresence is the one answer to "may this contact see the user's presence?": a 'from' or 'both'
// subscription (RFC 6121 §2.1.2.1, §4.2.2) that no feature's presence filter forbids (XEP-0191 §3.3).
func (r *userActor) maySeePresence(contact jid.JID) bool {
	it := r.items[contact.Bare()]
	if it == nil {
		return false
	}
	if _, from := subscription.FromAttr(it.Subscription); !from {
		return false
	}
	for _, f := range r.presenceFilters {
		if !f.h.AllowPresence(contact) {
			return false
		}
	}
	return true
}

// presenceTargets lists the contacts that receive the user's broadcast presence.
func (r *userActor) presenceTargets() []jid.JID {
	var out []jid.JID
	for c := range r.items {
		if r.maySeePresence(c) {
			out = append(out, c)
		}
	}
	return out
}

// announceTargets gives every session the current presenceTargets (an immutable slice).
func (r *userActor) announceTargets(ctx actor.Context) {
	list := r.presenceTargets()
	for _, rs := range r.resources {
		ctx.Send(rs.pid, &presenceTargets{list: list})
	}
}

// probe answers a contact's probe (RFC 6121 §4.3.2): each available resource's presence, or unavailable with
// the last-seen delay; nothing at all for a contact that may not see the user's presence (nothing revealed).
func (r *userActor) probe(ctx actor.Context, st *stanza.Routed) {
	if !r.maySeePresence(st.From) {
		return
	}
	any := false
	for _, rs := range r.resources {
		if rs.available {
			any = true
			r.route(ctx, rs.presence.Retarget(st.From))
		}
	}
	if !any {
		r.route(ctx, stanza.Generate("presence", "unavailable", r.bare, st.From, "", r.lastSeenDelay()))
	}
}

func (r *userActor) lastSeenDelay() string {
	if r.lastSeen.IsZero() {
		return ""
	}
	return stanza.Delay(r.bare.Domain(), r.lastSeen.UTC().Format("2006-01-02T15:04:05Z"), "")
}

// unavailableTo sends unavailable presence from each available resource to contact (RFC 6121 §3.2.2, §3.3.3,
// §2.5.2: a contact that may no longer see the user's presence learns that it is gone).
func (r *userActor) unavailableTo(ctx actor.Context, contact jid.JID) {
	for _, rs := range r.resources {
		if rs.available {
			r.route(ctx, presence("unavailable", rs.full, contact))
		}
	}
}

// presenceTo sends each available resource's presence to contact (RFC 6121 §3.1.5).
func (r *userActor) presenceTo(ctx actor.Context, contact jid.JID) {
	for _, rs := range r.resources {
		if rs.available {
			r.route(ctx, rs.presence.Retarget(contact))
		}
	}
}
