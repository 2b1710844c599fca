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
)

// XEP-0191 blocking command. The user's user actor owns the blocklist (persisted in storage.KV, one key per
// blocked JID) and applies it to inbound stanzas (§3.3: presence dropped, messages and IQ get/set bounced with
// service-unavailable, other IQs dropped) and to the presence it broadcasts. Each session holds an immutable
// snapshot of the list, pushed by the user actor whenever it changes, to answer its client's own outbound
// stanzas to a blocked JID with not-acceptable + <blocked xmlns='urn:xmpp:blocking:errors'/> (§3.3) without
// asking the user actor.

const (
	nsBlocking     = "urn:xmpp:blocking"
	nsBlockingErrs = "urn:xmpp:blocking:errors"
	blockingNS     = "urn:xmppd:blocking" // KV namespace
	// maxBlocklist bounds one user's blocklist.
	maxBlocklist = 1000
)

var featureBlocking = &feature{
	name:       "blocking",
	serverVars: []string{nsBlocking},
	iqs: []iqRoute{
		{name: xmlstream.Name{Space: nsBlocking, Local: "blocklist"}, account: blockingIQ},
		{name: xmlstream.Name{Space: nsBlocking, Local: "block"}, account: blockingIQ},
		{name: xmlstream.Name{Space: nsBlocking, Local: "unblock"}, account: blockingIQ},
	},
	rosterLoad: func(r *userActor) {
		list, err := r.env.store.ListKV(context.Background(), r.bare.String(), blockingNS)
		if err != nil {
			r.log.Error().Err(err).Msg("blocklist load failed")
		}
		set := blockSet{}
		for k := range list {
			if j, err := jid.Parse(k); err == nil {
				set[j] = struct{}{}
			}
		}
		r.blocked = set
	},
	rosterBound: func(r *userActor, ctx actor.Context, rs *resourceState) {
		if len(r.blocked) > 0 {
			ctx.Send(rs.pid, &blockSnapshot{set: r.blocked})
		}
	},
	rosterIn: func(r *userActor, ctx actor.Context, st *Stanza) bool {
		if st.From.IsZero() || !r.blocked.matches(st.From) {
			return true
		}
		switch st.Head.Name {
		case "message":
			r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable))
		case "iq":
			if st.Head.Type == "get" || st.Head.Type == "set" {
				r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable))
			}
		}
		return false // presence of every kind: silently dropped
	},
	sessionOut: func(s *session, ctx actor.Context, st *Stanza) bool {
		if st.To.IsZero() || !s.blocked.matches(st.To) {
			return true
		}
		e := stanza.NewError(stanza.NotAcceptable)
		e.Extra = "<blocked xmlns='" + nsBlockingErrs + "'/>"
		s.errorToClient(ctx, st.Head, st.To.String(), e)
		return false
	},
}

// blockSet is an immutable set of blocked JIDs once handed to a session: a change builds a new one.
type blockSet map[jid.JID]struct{}

// matches applies the JID matching of XEP-0016 §2.1 that XEP-0191 §2 refers to: an item blocks the full JID,
// bare JID, domain/resource or domain it names, and everything below it.
func (b blockSet) matches(j jid.JID) bool {
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

// blockSnapshot is the new blocklist for a session.
type blockSnapshot struct{ set blockSet }

func (m *blockSnapshot) onSession(s *session, _ actor.Context) { s.blocked = m.set }

func blockingIQ(a *accountReq) {
	r := a.r
	if !a.owner {
		a.fail(stanza.NewError(stanza.ServiceUnavailable))
		return
	}
	if a.q.Name.Local == "blocklist" {
		if !a.isGet() {
			a.fail(badRequest())
			return
		}
		if a.rs != nil {
			a.rs.blocklistWanted = true
		}
		keys := make([]string, 0, len(r.blocked))
		for j := range r.blocked {
			keys = append(keys, j.String())
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString("<blocklist xmlns='" + nsBlocking + "'>")
		for _, k := range keys {
			b.WriteString("<item jid='" + xmlAttr(k) + "'/>")
		}
		b.WriteString("</blocklist>")
		a.result(b.String())
		return
	}
	if a.isGet() {
		a.fail(badRequest())
		return
	}
	var jids []jid.JID
	for _, it := range a.q.ChildrenNamed(nsBlocking, "item") {
		j, err := jid.Parse(it.Attr("jid"))
		if err != nil {
			a.fail(stanza.NewError(stanza.JIDMalformed))
			return
		}
		jids = append(jids, j)
	}
	block := a.q.Name.Local == "block"
	if block && len(jids) == 0 {
		a.fail(badRequest()) // §3.3: a block without items
		return
	}
	if block && len(r.blocked)+len(jids) > maxBlocklist {
		a.fail(stanza.NewError(stanza.ResourceConstraintErr).WithText("the blocklist is full"))
		return
	}
	if !block && len(jids) == 0 { // §3.5: unblock all
		for j := range r.blocked {
			jids = append(jids, j)
		}
	}
	bg := context.Background()
	next := make(blockSet, len(r.blocked)+len(jids))
	for j := range r.blocked {
		next[j] = struct{}{}
	}
	for _, j := range jids {
		var err error
		if block {
			next[j] = struct{}{}
			err = r.env.store.PutKV(bg, r.bare.String(), blockingNS, j.String(), "")
		} else {
			delete(next, j)
			err = r.env.store.DeleteKV(bg, r.bare.String(), blockingNS, j.String())
		}
		if err != nil {
			r.log.Error().Err(err).Msg("storing blocklist failed")
			a.fail(stanza.NewError(stanza.InternalServerErr))
			return
		}
	}
	old := r.blocked
	r.blocked = next
	a.result("")
	// Contacts allowed to see our presence: §3.3 unavailable on block, current presence on unblock (§3.4).
	for c, it := range r.items {
		if _, fromSub := subscription.FromAttr(it.Subscription); !fromSub || next.matches(c) == old.matches(c) {
			continue
		}
		for _, rs := range r.resources {
			if !rs.available {
				continue
			}
			if block {
				r.route(a.ctx, stanza.Build("presence", rs.full.String(), c.String(), "unavailable", "", ""), "presence", "unavailable", rs.full, c)
			} else {
				r.route(a.ctx, xmlstream.SetHeadAttr(rs.presence, "to", c.String()), "presence", "", rs.full, c)
			}
		}
	}
	// Pushes to the resources that asked for the list (§3.3, §3.4, §3.5), and the new snapshot to every session.
	var items strings.Builder
	if block || len(a.q.ChildrenNamed(nsBlocking, "item")) > 0 {
		for _, j := range jids {
			items.WriteString("<item jid='" + xmlAttr(j.String()) + "'/>")
		}
	}
	r.announceTargets(a.ctx)
	for _, rs := range r.resources {
		a.ctx.Send(rs.pid, &blockSnapshot{set: next})
		if !rs.blocklistWanted {
			continue
		}
		r.pushID++
		payload := "<" + a.q.Name.Local + " xmlns='" + nsBlocking + "'>" + items.String() + "</" + a.q.Name.Local + ">"
		deliverTo(a.ctx, rs.pid, stanza.Build("iq", r.bare.String(), rs.full.String(), "set", "block"+strconv.FormatUint(r.pushID, 10), payload))
	}
}
