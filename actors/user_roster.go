package actors

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/subscription"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// The user actor's roster (RFC 6121 §2) and presence subscriptions (RFC 6121 §3, Appendix A).

func stateOf(it *storage.RosterItem, pendingIn bool) subscription.State {
	s := subscription.State{PendingIn: pendingIn}
	if it != nil {
		s.To, s.From = subscription.FromAttr(it.Subscription)
		s.PendingOut = it.Ask
		s.PreApproved = it.PreApproved
	}
	return s
}

// subscriptionOut: the user sends subscribe/subscribed/unsubscribe/unsubscribed to contact (§3.1.2, §3.1.5,
// §3.2.2, §3.3.2).
func (r *userActor) subscriptionOut(ctx actor.Context, st *stanza.Routed) {
	contact := st.To.Bare()
	it := r.items[contact]
	_, pending := r.pendingIn[contact]
	if !r.allowSubscriptionOut(ctx, st, it) { // limits.go
		return
	}
	res := subscription.Outbound(stateOf(it, pending), st.Head.Type)
	r.applyState(ctx, contact, it, res, st.Head.Type == "subscribe")
	if res.Route {
		// §3.1.2: the server stamps the bare JID of the user on outbound subscription stanzas.
		r.route(ctx, st.Restamp(r.bare).Retarget(contact))
	}
	if res.SendPresence {
		r.presenceTo(ctx, contact)
	}
	if res.SendUnavailable {
		r.unavailableTo(ctx, contact)
	}
}

// subscriptionIn: a contact's subscription stanza to this user (§3.1.3, §3.1.6, §3.2.3, §3.3.3).
func (r *userActor) subscriptionIn(ctx actor.Context, st *stanza.Routed) {
	contact := st.From.Bare()
	it := r.items[contact]
	_, pending := r.pendingIn[contact]
	if st.Head.Type == "subscribe" && !pending && r.pendingInFull(it) { // limits.go
		return
	}
	before := stateOf(it, pending)
	res := subscription.Inbound(before, st.Head.Type)
	// Subscription stanzas travel with bare JIDs both ways (§3.1.3).
	in := st.Restamp(contact).Retarget(r.bare)
	if st.Head.Type == "subscribe" && res.State.PendingIn && !pending {
		r.pendingIn[contact] = in
		if err := r.env.store.PutKV(context.Background(), r.bare.String(), pendingInNS, contact.String(), in.Raw); err != nil {
			r.log.Error().Err(err).Msg("storing subscription request failed")
		}
	}
	r.applyState(ctx, contact, it, res, false)
	if st.Head.Type == "unsubscribe" && before.From && !res.State.From {
		// §3.3.3: the contact no longer receives the user's presence: it learns, from each of the user's
		// available resources, that they are unavailable (else it would keep showing them online).
		r.unavailableTo(ctx, contact)
	}
	if res.AutoReply != "" {
		r.route(ctx, presence(res.AutoReply, r.bare, contact))
		if res.AutoReply == "subscribed" {
			// The contact is now (or still) allowed to see us: give it our current presence (§3.1.5).
			r.presenceTo(ctx, contact)
		}
	}
	if res.Route {
		for _, rs := range r.resources {
			if rs.available {
				deliverTo(ctx, rs.pid, in)
			}
		}
	}
}

// applyState stores the new state of contact and pushes the item when it changed. create says whether an
// outbound subscribe may add the contact to the roster when absent (§3.1.2).
func (r *userActor) applyState(ctx actor.Context, contact jid.JID, it *storage.RosterItem, res subscription.Result, create bool) {
	bg := context.Background()
	if !res.State.PendingIn {
		if _, ok := r.pendingIn[contact]; ok {
			delete(r.pendingIn, contact)
			if err := r.env.store.DeleteKV(bg, r.bare.String(), pendingInNS, contact.String()); err != nil {
				r.log.Error().Err(err).Msg("deleting subscription request failed")
			}
		}
	}
	if !res.Changed {
		return
	}
	if it == nil {
		s := res.State
		if !create && !s.To && !s.From && !s.PendingOut && !s.PreApproved {
			return // a pending request alone does not create a roster item
		}
		it = &storage.RosterItem{JID: contact.String()}
		r.items[contact] = it
	}
	it.Subscription = res.State.Subscription()
	it.Ask = res.State.PendingOut
	it.PreApproved = res.State.PreApproved
	r.saveItem(ctx, contact, it)
}

func (r *userActor) saveItem(ctx actor.Context, contact jid.JID, it *storage.RosterItem) {
	ver, err := r.env.store.PutRosterItem(context.Background(), r.bare.String(), *it)
	if err != nil {
		r.log.Error().Err(err).Str("contact", contact.String()).Msg("storing roster item failed")
		return
	}
	r.version = ver
	r.push(ctx, encodeItem(it, false))
	r.announceTargets(ctx)
}

// push sends a roster push to every interested resource (RFC 6121 §2.1.6). The server supports versioning,
// so every push carries the new version, to every interested resource, whether or not its last roster get
// used 'ver' (§2.6.3: "the server MUST include the new version").
func (r *userActor) push(ctx actor.Context, item string) {
	q := "<query xmlns='" + stanza.NSRoster + "' ver='" + strconv.FormatInt(r.version, 10) + "'>" + item + "</query>"
	for _, rs := range r.resources {
		if rs.interested {
			deliverTo(ctx, rs.pid, stanza.Generate("iq", "set", r.bare, rs.full, r.nextID("push"), q))
		}
	}
}

func encodeItem(it *storage.RosterItem, remove bool) string {
	b := make([]byte, 0, 128)
	b = append(b, "<item jid='"...)
	b = xmlstream.AppendEscapedAttr(b, it.JID)
	b = append(b, '\'')
	if it.Name != "" {
		b = append(b, " name='"...)
		b = xmlstream.AppendEscapedAttr(b, it.Name)
		b = append(b, '\'')
	}
	sub := it.Subscription
	if remove {
		sub = "remove"
	} else if sub == "" {
		sub = "none"
	}
	b = append(b, " subscription='"...)
	b = append(b, sub...)
	b = append(b, '\'')
	if it.Ask && !remove {
		b = append(b, " ask='subscribe'"...)
	}
	if it.PreApproved && !remove {
		b = append(b, " approved='true'"...)
	}
	if len(it.Groups) == 0 || remove {
		return string(append(b, "/>"...))
	}
	b = append(b, '>')
	for _, g := range it.Groups {
		b = append(b, "<group>"...)
		b = xmlstream.AppendEscapedText(b, g)
		b = append(b, "</group>"...)
	}
	return string(append(b, "</item>"...))
}

// ---- roster get/set (RFC 6121 §2) ----

// maxRosterText bounds item names and group names (RFC 6121 §2.3.3 lets the server refuse over-long ones with
// not-acceptable).
const maxRosterText = 1023

func (r *userActor) rosterIQ(ctx actor.Context, m *rosterIQ) {
	rs, ok := r.resources[m.resource]
	if !ok {
		return
	}
	result := func(payload string) { deliverTo(ctx, rs.pid, m.st.Result("", payload)) }
	errReply := func(e stanza.Error) { deliverTo(ctx, rs.pid, m.st.Error("", e)) }
	switch m.st.Head.Type {
	case "get":
		rs.interested = true
		ver := strconv.FormatInt(r.version, 10)
		// §2.6: a client that sends 'ver' (even empty) uses versioning; when its version is current it gets an
		// empty result and later changes come as pushes. Otherwise the full roster (§2.6.3 allows that).
		versioning := hasAttr(m.query, "ver")
		if versioning && m.query.Attr("ver") == ver {
			result("")
			return
		}
		keys := make([]jid.JID, 0, len(r.items))
		for k := range r.items {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		var b strings.Builder
		b.WriteString("<query xmlns='" + stanza.NSRoster + "'")
		if versioning {
			b.WriteString(" ver='" + ver + "'")
		}
		b.WriteString(">")
		for _, k := range keys {
			b.WriteString(encodeItem(r.items[k], false))
		}
		b.WriteString("</query>")
		result(b.String())
	case "set":
		items := m.query.ChildrenNamed(stanza.NSRoster, "item")
		if len(items) != 1 || len(m.query.Elements()) != 1 {
			errReply(stanza.NewError(stanza.BadRequest).WithText("a roster set carries exactly one item"))
			return
		}
		x := items[0]
		contact, err := jid.Parse(x.Attr("jid"))
		if err != nil {
			errReply(stanza.NewError(stanza.JIDMalformed))
			return
		}
		contact = contact.Bare()
		if x.Attr("subscription") == "remove" {
			if !r.rosterRemove(ctx, contact) {
				errReply(stanza.NewError(stanza.ItemNotFound)) // §2.5.3
				return
			}
			result("")
			return
		}
		name := x.Attr("name")
		if len(name) > maxRosterText {
			errReply(stanza.NewError(stanza.NotAcceptable).WithText("name too long"))
			return
		}
		var groups []string
		seen := map[string]bool{}
		for _, g := range x.ChildrenNamed(stanza.NSRoster, "group") {
			gn := g.TextContent()
			if gn == "" || len(gn) > maxRosterText {
				errReply(stanza.NewError(stanza.NotAcceptable).WithText("empty or over-long group name"))
				return
			}
			if seen[gn] {
				errReply(stanza.NewError(stanza.BadRequest).WithText("duplicate group"))
				return
			}
			seen[gn] = true
			groups = append(groups, gn)
		}
		it := r.items[contact]
		if it == nil && r.rosterFull() { // limits.go
			errReply(stanza.NewError(stanza.NotAllowed).WithText("the roster is full"))
			return
		}
		if it == nil {
			it = &storage.RosterItem{JID: contact.String(), Subscription: "none"}
			r.items[contact] = it
		}
		// §2.1.2.5: 'subscription' and 'ask' from the client are ignored (only the server sets them).
		it.Name = name
		it.Groups = groups
		r.saveItem(ctx, contact, it)
		result("")
	default:
		// result/error to the roster namespace: nothing to answer
	}
}

func hasAttr(n *xmlstream.Node, local string) bool {
	for _, a := range n.Attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return true
		}
	}
	return false
}

// rosterRemove: §2.5.2: remove the item and cancel subscriptions both ways. It reports false when there was no
// such item.
func (r *userActor) rosterRemove(ctx actor.Context, contact jid.JID) bool {
	it := r.items[contact]
	_, pending := r.pendingIn[contact]
	if it == nil {
		return false
	}
	s := stateOf(it, pending)
	if s.To || s.PendingOut {
		r.route(ctx, presence("unsubscribe", r.bare, contact))
	}
	if s.From || s.PendingIn {
		r.route(ctx, presence("unsubscribed", r.bare, contact))
	}
	if s.From {
		r.unavailableTo(ctx, contact)
	}
	bg := context.Background()
	if pending {
		delete(r.pendingIn, contact)
		if err := r.env.store.DeleteKV(bg, r.bare.String(), pendingInNS, contact.String()); err != nil {
			r.log.Error().Err(err).Msg("deleting subscription request failed")
		}
	}
	delete(r.items, contact)
	ver, err := r.env.store.DeleteRosterItem(bg, r.bare.String(), contact.String())
	if err != nil {
		r.log.Error().Err(err).Msg("deleting roster item failed")
		return true
	}
	r.version = ver
	r.push(ctx, encodeItem(it, true))
	r.announceTargets(ctx)
	return true
}
