package actors

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/subscription"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// ---- outbound presence (RFC 6121 §4.2, §4.4, §4.5) ----

func (r *userActor) presenceOut(ctx actor.Context, m *presenceOut) {
	rs, ok := r.resources[m.resource]
	if !ok {
		return
	}
	initial := m.available && !rs.available
	rs.available = m.available
	rs.priority = m.priority
	if m.available {
		rs.presence = m.raw
	} else {
		rs.presence = ""
		r.saveLastPresence(m.raw)
	}
	r.toOwnResources(ctx, m.raw)
	if !initial {
		return
	}
	// §4.2.2: probe the contacts the user is subscribed to; §4.2.2 also: the other resources' presence.
	for c, it := range r.items {
		if to, _ := subscription.FromAttr(it.Subscription); to {
			r.route(ctx, stanza.Build("presence", r.bare.String(), c.String(), "probe", "", ""), "presence", "probe", r.bare, c)
		}
	}
	for _, other := range r.resources {
		if other != rs && other.available {
			deliverTo(ctx, rs.pid, xmlstream.SetHeadAttr(other.presence, "to", rs.full.String()))
		}
	}
	// §3.1.3: pending subscription requests are redelivered at each login until answered.
	for _, req := range r.pendingIn {
		deliverTo(ctx, rs.pid, xmlstream.SetHeadAttr(req, "to", r.bare.String()))
	}
	if m.priority >= 0 {
		r.deliverOffline(ctx, rs)
	}
}

// broadcast sends presence from one resource to contacts with a 'from' subscription and to all of the user's
// available resources, including the one that sent it (RFC 6121 §4.2.2, §4.4.2). Used for the presence the
// server generates (a session that ended without unavailable presence); a session broadcasts its client's own.
func (r *userActor) broadcast(ctx actor.Context, raw string, from jid.JID) {
	for _, c := range r.presenceTargets() {
		r.route(ctx, xmlstream.SetHeadAttr(raw, "to", c.String()), "presence", "", from, c)
	}
	r.toOwnResources(ctx, raw)
}

func (r *userActor) toOwnResources(ctx actor.Context, raw string) {
	for _, rs := range r.resources {
		if rs.available {
			deliverTo(ctx, rs.pid, xmlstream.SetHeadAttr(raw, "to", rs.full.String()))
		}
	}
}

// presenceTargets lists the contacts that receive the user's broadcast presence.
func (r *userActor) presenceTargets() []jid.JID {
	var out []jid.JID
	for c, it := range r.items {
		if _, fromSub := subscription.FromAttr(it.Subscription); fromSub && !r.blocked.matches(c) {
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

// route sends a stanza from this user to someone else through the router.
// ---- probes (RFC 6121 §4.3.2) ----

func (r *userActor) probe(ctx actor.Context, st *Stanza) {
	it := r.items[st.From.Bare()]
	if it == nil {
		return
	}
	if _, fromSub := subscription.FromAttr(it.Subscription); !fromSub {
		return // §4.3.2: no subscription, no presence; nothing revealed
	}
	any := false
	for _, rs := range r.resources {
		if rs.available {
			any = true
			r.route(ctx, xmlstream.SetHeadAttr(rs.presence, "to", st.From.String()), "presence", "", rs.full, st.From)
		}
	}
	if !any {
		p := stanza.Build("presence", r.bare.String(), st.From.String(), "unavailable", "", r.lastSeenDelay())
		r.route(ctx, p, "presence", "unavailable", r.bare, st.From)
	}
}

func (r *userActor) lastSeenDelay() string {
	if r.lastSeen.IsZero() {
		return ""
	}
	return stanza.Delay(r.bare.Domain(), r.lastSeen.UTC().Format("2006-01-02T15:04:05Z"), "")
}
