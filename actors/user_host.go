package actors

import (
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/storage"
)

// userHost is the feature.User one feature's user part sees: the user actor, and which feature it is (idx).
// Its methods run on the user actor's goroutine only (inside a hook or a handler the actor called).
type userHost struct {
	u   *userActor
	idx int
}

func (h *userHost) Server() feature.Server                   { return h.u.env.srv }
func (h *userHost) Bare() jid.JID                            { return h.u.bare }
func (h *userHost) Log() *zerolog.Logger                     { return &h.u.log }
func (h *userHost) Exists() bool                             { return h.u.exists }
func (h *userHost) MaySeePresence(c jid.JID) bool            { return h.u.maySeePresence(c) }
func (h *userHost) ContactsSeeingPresence() []jid.JID        { return h.u.presenceTargets() }
func (h *userHost) LastSeen() (time.Time, string)            { return h.u.lastSeenPresence() }
func (h *userHost) Route(st *stanza.Routed)                  { h.u.route(h.u.ctx, st) }
func (h *userHost) Bounce(st *stanza.Routed, e stanza.Error) { h.u.bounce(h.u.ctx, st, e) }
func (h *userHost) PresenceFilterChanged()                   { h.u.announceTargets(h.u.ctx) }
func (h *userHost) NextID(prefix string) string              { return h.u.nextID(prefix) }

func (h *userHost) Resources() []feature.Resource {
	out := make([]feature.Resource, 0, len(h.u.resources))
	for _, rs := range h.u.resources {
		out = append(out, rs.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Full.String() < out[j].Full.String() })
	return out
}

func (h *userHost) Roster() []storage.RosterItem {
	out := make([]storage.RosterItem, 0, len(h.u.items))
	for _, it := range h.u.items {
		c := *it
		c.Groups = append([]string(nil), it.Groups...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].JID < out[j].JID })
	return out
}

func (h *userHost) Subscription(contact jid.JID) string {
	if it := h.u.items[contact.Bare()]; it != nil {
		if it.Subscription == "" {
			return "none"
		}
		return it.Subscription
	}
	return ""
}

func (h *userHost) Deliver(r feature.Resource, st *stanza.Routed) {
	if rs := h.u.resources[r.Full.Resource()]; rs != nil {
		deliverTo(h.u.ctx, rs.pid, st)
	}
}

func (h *userHost) ToSession(r feature.Resource, msg any) {
	if rs := h.u.resources[r.Full.Resource()]; rs != nil {
		h.u.ctx.Send(rs.pid, &featureMsg{idx: h.idx, msg: msg})
	}
}

func (h *userHost) ToUserOf(bare jid.JID, msg any) {
	h.u.out.flush(h.u.ctx, h.u.env.router) // behind what was routed before it
	h.u.ctx.Send(h.u.env.router, &toUser{bare: bare.Bare(), msg: &featureMsg{idx: h.idx, msg: msg}})
}

func (h *userHost) EndSession(r feature.Resource, condition, text string) {
	if rs := h.u.resources[r.Full.Resource()]; rs != nil {
		h.u.ctx.Send(rs.pid, &sessionEnd{condition: stream.Condition(condition), text: text})
	}
}

var _ feature.User = (*userHost)(nil)

func (h *userHost) AccountRemoved() { h.u.accountGone(h.u.ctx) }

func (h *userHost) WatchCaps(hash, ver string) {
	if h.u.env.caps != nil {
		h.u.ctx.Request(h.u.env.caps, &capsWatch{hash: hash, ver: ver, idx: h.idx})
	}
}

func (h *userHost) AccountItems(requester jid.JID) string {
	var b strings.Builder
	for _, p := range h.u.itemsProviders {
		b.WriteString(p.h.AccountItems(requester))
	}
	return b.String()
}

func (h *userHost) CommitSoon() { h.u.commitSoon(h.u.ctx) }

func (h *userHost) Announce(ev any) { h.u.events = append(h.u.events, announced{idx: h.idx, ev: ev}) }
