// Package blocklist is XEP-0191 blocking command.
//
// The user part owns the blocklist (persisted in the KV namespace "urn:xmppd:blocking", one key per blocked JID)
// and applies it to what reaches the user (§3.3: presence dropped, messages and IQ get/set bounced with
// service-unavailable, other IQs dropped) and, as the host's presence filter, to the presence the user
// broadcasts. Each session part holds an immutable snapshot of the list, sent by the user part when the session
// is bound and after every change, so that it can answer its client's own outbound stanzas to a blocked JID with
// not-acceptable + <blocked xmlns='urn:xmpp:blocking:errors'/> (§3.3) without asking the user actor.
package blocklist

import (
	"context"
	"sort"
	"strings"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/subscription"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

const (
	// NS is the XEP-0191 namespace.
	NS = "urn:xmpp:blocking"
	// NSErrors qualifies the <blocked/> application error condition (§3.3).
	NSErrors = "urn:xmpp:blocking:errors"
	// KVNamespace is where the blocklist is stored: one key per blocked JID, empty values.
	KVNamespace = "urn:xmppd:blocking"
	// MaxItems bounds one user's blocklist.
	MaxItems = 1000
)

// Feature is XEP-0191.
var Feature = &feature.Feature{
	Name:       "blocking",
	ServerVars: []string{NS},
	IQs: []feature.IQRoute{
		{Name: xmlstream.Name{Space: NS, Local: "blocklist"}, Account: blockingIQ},
		{Name: xmlstream.Name{Space: NS, Local: "block"}, Account: blockingIQ},
		{Name: xmlstream.Name{Space: NS, Local: "unblock"}, Account: blockingIQ},
	},
	NewSession: func(s feature.Session) any { return &sessionPart{s: s} },
	NewUser:    newUserPart,
}

// set is a set of blocked JIDs. Once handed to a session part it is never modified: a change builds a new one.
type set map[jid.JID]struct{}

// matches applies the JID matching of XEP-0016 §2.1 that XEP-0191 §2 refers to: an item blocks the full JID,
// bare JID, domain/resource or domain it names, and everything below it.
func (b set) matches(j jid.JID) bool {
	if len(b) == 0 {
		return false
	}
	if _, ok := b[j]; ok {
		return true
	}
	if _, ok := b[j.Bare()]; ok {
		return true
	}
	if j.Resource() != "" {
		if d, err := jid.New("", j.Domain(), j.Resource()); err == nil {
			if _, ok := b[d]; ok {
				return true
			}
		}
	}
	if d, err := jid.New("", j.Domain(), ""); err == nil {
		if _, ok := b[d]; ok {
			return true
		}
	}
	return false
}

// snapshot is the current blocklist for a session part (the user part never modifies s after sending it).
type snapshot struct{ s set }

// ---- session part ----

type sessionPart struct {
	s       feature.Session
	blocked set
}

func (p *sessionPart) Handle(msg any) {
	if m, ok := msg.(snapshot); ok {
		p.blocked = m.s
	}
}

// Outbound refuses the client's stanzas to a blocked JID (§3.3): the server must not route them, and says why.
func (p *sessionPart) Outbound(st *stanza.Routed) bool {
	if st.To.IsZero() || !p.blocked.matches(st.To) {
		return true
	}
	e := stanza.NewError(stanza.NotAcceptable)
	e.Extra = "<blocked xmlns='" + NSErrors + "'/>"
	p.s.Error(st, st.To.String(), e)
	return false
}

// ---- user part ----

type userPart struct {
	u       feature.User
	blocked set
	// wanted are the sessions (by full JID) that asked for the blocklist: §3.3-§3.5 pushes go to them only.
	wanted map[jid.JID]bool
}

func newUserPart(u feature.User) any {
	p := &userPart{u: u, blocked: set{}, wanted: map[jid.JID]bool{}}
	list, err := u.Server().Store().ListKV(context.Background(), u.Bare().String(), KVNamespace)
	if err != nil {
		u.Log().Error().Err(err).Msg("blocklist load failed")
	}
	for k := range list {
		if j, err := jid.Parse(k); err == nil {
			p.blocked[j] = struct{}{}
		}
	}
	return p
}

// Inbound applies §3.3 to stanzas from a blocked JID.
func (p *userPart) Inbound(st *stanza.Routed) bool {
	if st.From.IsZero() || !p.blocked.matches(st.From) {
		return true
	}
	switch st.Head.Name {
	case "message":
		p.u.Bounce(st, stanza.NewError(stanza.ServiceUnavailable))
	case "iq":
		if st.Head.Type == "get" || st.Head.Type == "set" {
			p.u.Bounce(st, stanza.NewError(stanza.ServiceUnavailable))
		}
	}
	return false // presence of every kind, IQ results and errors: silently dropped
}

// AllowPresence: a blocked contact does not get the user's presence (§3.3).
func (p *userPart) AllowPresence(contact jid.JID) bool { return !p.blocked.matches(contact) }

func (p *userPart) Bound(r feature.Resource) {
	if len(p.blocked) > 0 {
		p.u.ToSession(r, snapshot{s: p.blocked})
	}
}

func (p *userPart) Dropped(r feature.Resource) { delete(p.wanted, r.Full) }

func blockingIQ(a *feature.AccountIQ) {
	p, _ := a.Part.(*userPart)
	if !a.Owner || p == nil {
		// Only the user manages the user's blocklist; to others the namespace is not served.
		a.Fail(stanza.NewError(stanza.ServiceUnavailable))
		return
	}
	if a.Payload.Name.Local == "blocklist" {
		if !a.IsGet() {
			a.Fail(stanza.NewError(stanza.BadRequest))
			return
		}
		p.wanted[a.Resource.Full] = true // §3.2: asking for the list subscribes to its pushes
		a.Result(p.list())
		return
	}
	if a.IsGet() {
		a.Fail(stanza.NewError(stanza.BadRequest))
		return
	}
	p.change(a)
}

// list is the <blocklist/> payload, sorted for stable answers.
func (p *userPart) list() string {
	keys := make([]string, 0, len(p.blocked))
	for j := range p.blocked {
		keys = append(keys, j.String())
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("<blocklist xmlns='" + NS + "'>")
	for _, k := range keys {
		b.WriteString("<item jid='" + string(xmlstream.AppendEscapedAttr(nil, k)) + "'/>")
	}
	b.WriteString("</blocklist>")
	return b.String()
}

// change answers <block/> and <unblock/> (§3.3, §3.4, §3.5).
func (p *userPart) change(a *feature.AccountIQ) {
	u := p.u
	block := a.Payload.Name.Local == "block"
	items := a.Payload.ChildrenNamed(NS, "item")
	var jids []jid.JID
	for _, it := range items {
		j, err := jid.Parse(it.Attr("jid"))
		if err != nil {
			a.Fail(stanza.NewError(stanza.JIDMalformed))
			return
		}
		jids = append(jids, j)
	}
	if block && len(jids) == 0 {
		a.Fail(stanza.NewError(stanza.BadRequest)) // §3.3: a block without items
		return
	}
	if !block && len(jids) == 0 { // §3.5: unblock everything
		for j := range p.blocked {
			jids = append(jids, j)
		}
	}
	next := make(set, len(p.blocked)+len(jids))
	for j := range p.blocked {
		next[j] = struct{}{}
	}
	for _, j := range jids {
		if block {
			next[j] = struct{}{}
		} else {
			delete(next, j)
		}
	}
	// Counted on the resulting set: blocking again what is already blocked does not need room.
	if len(next) > MaxItems {
		a.Fail(stanza.NewError(stanza.ResourceConstraint).WithText("the blocklist is full"))
		return
	}
	bg := context.Background()
	store, owner := u.Server().Store(), u.Bare().String()
	for _, j := range jids {
		var err error
		if block {
			err = store.PutKV(bg, owner, KVNamespace, j.String(), "")
		} else {
			err = store.DeleteKV(bg, owner, KVNamespace, j.String())
		}
		if err != nil {
			u.Log().Error().Err(err).Msg("storing blocklist failed")
			a.Fail(stanza.NewError(stanza.InternalServerError))
			return
		}
	}
	old := p.blocked
	p.blocked = next
	a.Result("")

	// Contacts that may see our presence by subscription and whose blocked state changed: unavailable presence
	// from each available resource on block (§3.3), the current presence on unblock (§3.4).
	resources := u.Resources()
	for _, it := range u.Roster() {
		c, err := jid.Parse(it.JID)
		if err != nil {
			continue
		}
		if _, from := subscription.FromAttr(u.Subscription(c)); !from || next.matches(c) == old.matches(c) {
			continue
		}
		for _, r := range resources {
			if !r.Available {
				continue
			}
			if block {
				u.Route(stanza.Generate("presence", "unavailable", r.Full, c, "", ""))
			} else if r.Presence != nil {
				u.Route(r.Presence.Retarget(c))
			}
		}
	}
	u.PresenceFilterChanged()

	// The new snapshot to every session; pushes to those that asked for the list (§3.3, §3.4, §3.5). An
	// "unblock all" is pushed as it was asked: an empty <unblock/>.
	var pushed strings.Builder
	if block || len(items) > 0 {
		for _, j := range jids {
			pushed.WriteString("<item jid='" + string(xmlstream.AppendEscapedAttr(nil, j.String())) + "'/>")
		}
	}
	name := a.Payload.Name.Local
	payload := "<" + name + " xmlns='" + NS + "'>" + pushed.String() + "</" + name + ">"
	for _, r := range resources {
		u.ToSession(r, snapshot{s: next})
		if p.wanted[r.Full] {
			u.Deliver(r, stanza.Generate("iq", "set", u.Bare(), r.Full, u.NextID("block"), payload))
		}
	}
}
