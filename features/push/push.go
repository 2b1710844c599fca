// Package push is XEP-0357 push notifications, in the user actor: a client enables a push service (its app
// server's JID and node) on its account; when a message arrives and no session of the account can show it — every
// session hibernating (XEP-0198, the phone app suspended), or none at all — the user part publishes a notification
// to every enabled service, from the account's bare JID, on the normal routing path. An error answer disables
// that service (§5 "Publish Errors"), and so does the service's own affiliation change (§8).
//
// The registrations are the account's own data, in the KV namespace "urn:xmpp:push:0" (key: JID + " " + node,
// value: the publish-options form), read when the user actor first needs them.
package push

import (
	"context"
	"strings"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/push"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// KVNamespace is where registrations are stored.
const KVNamespace = push.NS

// Feature is XEP-0357.
var Feature = &feature.Feature{
	Name:        "push",
	AccountVars: []string{push.NS},
	IQs: []feature.IQRoute{
		{Name: xmlstream.Name{Space: push.NS, Local: "enable"}, Account: enable},
		{Name: xmlstream.Name{Space: push.NS, Local: "disable"}, Account: disable},
	},
	Limits:  []string{LimitRegistrations},
	NewUser: func(u feature.User) any { return &part{u: u, waiting: map[string]push.Registration{}} },
}

// LimitRegistrations is push.max_registrations in xmppd_limit_hits_total.
const LimitRegistrations = "push_max_registrations"

// maxWaiting bounds the unanswered notifications remembered (an app server that never answers must not grow the
// map): beyond it they are forgotten, and their errors disable nothing.
const maxWaiting = 64

// part is one account's push services.
type part struct {
	u      feature.User
	regs   []push.Registration // nil until loaded
	loaded bool
	// waiting: notifications published and not answered yet, by IQ id.
	waiting map[string]push.Registration
	// count is the messages pushed since a session of the account last bound (the summary's message-count).
	count int
}

func key(j jid.JID, node string) string { return j.String() + " " + node }

func (p *part) load() {
	if p.loaded {
		return
	}
	kv, err := p.u.Server().Store().ListKV(context.Background(), p.u.Bare().String(), KVNamespace)
	if err != nil {
		p.u.Log().Error().Err(err).Msg("reading push registrations failed")
		return // try again next time
	}
	p.loaded = true
	for k, opts := range kv {
		j, node, _ := strings.Cut(k, " ")
		pj, err := jid.Parse(j)
		if err != nil {
			continue
		}
		p.regs = append(p.regs, push.Registration{JID: pj, Node: node, Options: opts})
	}
}

// reachable: notifications to j can be routed: a served domain or a service's, or any domain when the server
// federates ([s2s] listen set: what cannot be delivered comes back as an error, which disables the registration, §5).
func reachable(srv feature.Server, j jid.JID) bool {
	if srv.Config().Serves(j.Domain()) || srv.Config().Federates() {
		return true
	}
	for _, s := range srv.Services() {
		if s.JID.Domain() == j.Domain() {
			return true
		}
	}
	return false
}

// owned is the part for an IQ set by the account's owner; nil (answered with an error) otherwise: push
// services are the owner's own business, and enable/disable are sets.
func owned(a *feature.AccountIQ) *part {
	p, ok := a.Part.(*part)
	switch {
	case !a.Owner || !ok:
		a.Fail(stanza.NewError(stanza.Forbidden))
	case a.IsGet():
		a.Fail(stanza.NewError(stanza.BadRequest))
	default:
		return p
	}
	return nil
}

// enable: §4. Only the account's owner may; the same JID and node again replaces the options.
func enable(a *feature.AccountIQ) {
	p := owned(a)
	if p == nil {
		return
	}
	r, err := push.ParseEnable(a.Payload)
	if err != nil {
		a.Fail(stanza.NewError(stanza.BadRequest).WithText("enable needs a jid, and only a publish-options form"))
		return
	}
	if !reachable(a.User.Server(), r.JID) {
		a.Fail(stanza.NewError(stanza.RemoteServerNotFound).WithText("federation is off ([s2s] listen)"))
		return
	}
	p.load()
	if !p.loaded {
		a.Fail(stanza.NewError(stanza.InternalServerError))
		return
	}
	i := p.find(r.JID, r.Node)
	if i < 0 && len(p.regs) >= a.User.Server().Config().Push.MaxRegistrations {
		a.User.Server().LimitHit(LimitRegistrations)
		a.Fail(stanza.NewError(stanza.ResourceConstraint).WithText("too many push services enabled; disable one first"))
		return
	}
	if err := a.User.Server().Store().PutKV(context.Background(), a.User.Bare().String(), KVNamespace, key(r.JID, r.Node), r.Options); err != nil {
		a.User.Log().Error().Err(err).Msg("storing a push registration failed")
		a.Fail(stanza.NewError(stanza.InternalServerError))
		return
	}
	if i >= 0 {
		p.regs[i] = r
	} else {
		p.regs = append(p.regs, r)
	}
	a.User.Log().Info().Str("service", r.JID.String()).Msg("push notifications enabled")
	a.Result("")
}

// disable: §6. Without a node, every node of that JID.
func disable(a *feature.AccountIQ) {
	p := owned(a)
	if p == nil {
		return
	}
	j, node, err := push.ParseDisable(a.Payload)
	if err != nil {
		a.Fail(stanza.NewError(stanza.BadRequest).WithText("disable needs a jid"))
		return
	}
	p.load()
	if !p.loaded {
		a.Fail(stanza.NewError(stanza.InternalServerError))
		return
	}
	if err := p.remove(j, node, node == ""); err != nil {
		a.Fail(stanza.NewError(stanza.InternalServerError))
		return
	}
	a.Result("")
}

func (p *part) find(j jid.JID, node string) int {
	for i, r := range p.regs {
		if r.JID == j && r.Node == node {
			return i
		}
	}
	return -1
}

// remove deletes the registrations of j with node (every node if all).
func (p *part) remove(j jid.JID, node string, all bool) error {
	kept := p.regs[:0]
	var err error
	for _, r := range p.regs {
		if r.JID != j || (!all && r.Node != node) {
			kept = append(kept, r)
			continue
		}
		if e := p.u.Server().Store().DeleteKV(context.Background(), p.u.Bare().String(), KVNamespace, key(r.JID, r.Node)); e != nil {
			p.u.Log().Error().Err(e).Msg("removing a push registration failed")
			kept, err = append(kept, r), e
			continue
		}
		p.u.Log().Info().Str("service", r.JID.String()).Msg("push notifications disabled")
	}
	clear(p.regs[len(kept):])
	p.regs = kept
	return err
}

// Delivered (feature.Delivered): a message was handed to sessions (to) or stored offline (to empty). Push when no
// session that got it has a connection.
func (p *part) Delivered(st *stanza.Routed, to []feature.Resource) {
	for _, r := range to {
		if !r.Hibernating {
			return // a connected session shows it
		}
	}
	p.notify(st)
}

// Hibernated (feature.Hibernated): the client vanished with messages it had not acknowledged; it may never have
// shown them.
func (p *part) Hibernated(_ feature.Resource, unacked []*stanza.Routed) {
	for i := len(unacked) - 1; i >= 0; i-- {
		if p.worthPushing(unacked[i]) {
			p.notify(unacked[i])
			return
		}
	}
}

// Bound (feature.Bound): a client is back; the count starts again.
func (p *part) Bound(feature.Resource) { p.count = 0 }

// worthPushing: st is a message a person would want to be woken for (or any message but an error when
// push.important_only is off).
func (p *part) worthPushing(st *stanza.Routed) bool {
	if st.Head.Name != "message" || st.Head.Type == "error" {
		return false
	}
	if !p.u.Server().Config().Push.ImportantOnly {
		return true
	}
	if st.Head.Type == "groupchat" {
		return false // no group chat service yet, so nothing to tell mentions from the rest
	}
	n, err := st.Node()
	if err != nil {
		return false
	}
	for _, c := range n.Elements() {
		switch {
		case c.Name.Local == "body" && c.Name.Space == stanza.NSClient && c.TextContent() != "",
			c.Name.Local == "encrypted", // OMEMO (eu.siacs.conversations.axolotl, urn:xmpp:omemo:2), OpenPGP (XEP-0373)
			c.Name.Local == "propose" && c.Name.Space == "urn:xmpp:jingle-message:0": // a call (XEP-0353)
			return true
		}
	}
	return false
}

func (p *part) notify(st *stanza.Routed) {
	if !p.worthPushing(st) {
		return
	}
	p.load()
	if len(p.regs) == 0 {
		return
	}
	p.count++
	cfg := &p.u.Server().Config().Push
	s := push.Summary{MessageCount: p.count}
	if cfg.IncludeSender {
		s.LastSender = st.From.String()
	}
	if cfg.IncludeBody {
		if n, err := st.Node(); err == nil {
			if b := n.Child(stanza.NSClient, "body"); b != nil {
				s.LastBody = b.TextContent()
			}
		}
	}
	if len(p.waiting)+len(p.regs) > maxWaiting {
		clear(p.waiting)
	}
	for _, r := range p.regs {
		id := p.u.NextID("push")
		p.waiting[id] = r
		p.u.Route(stanza.Generate("iq", "set", p.u.Bare(), r.JID, id, push.Publish(r, s)))
	}
	p.u.Log().Debug().Int("services", len(p.regs)).Msg("push notification published")
}

// Inbound (feature.UserInbound) takes the app servers' answers to our publishes, and their affiliation changes.
func (p *part) Inbound(st *stanza.Routed) bool {
	switch {
	case st.Head.Name == "iq" && (st.Head.Type == "result" || st.Head.Type == "error"):
		r, ok := p.waiting[st.Head.ID]
		if !ok || st.From != r.JID || st.To.Resource() != "" {
			return true
		}
		delete(p.waiting, st.Head.ID)
		if st.Head.Type == "error" {
			// §5 Publish Errors: the server SHOULD consider the JID and node disabled.
			p.u.Log().Info().Str("service", r.JID.String()).Msg("the push service refused a notification; disabling it")
			_ = p.remove(r.JID, r.Node, false)
		}
		return false
	case st.Head.Name == "message" && st.To.Resource() == "":
		p.load()
		if !p.registered(st.From) {
			return true
		}
		n, err := st.Node()
		if err != nil {
			return true
		}
		for _, c := range n.Elements() {
			if node, ok := push.RemoteDisable(c); ok {
				_ = p.remove(st.From, node, false) // §8: the service removed our affiliation
				return false
			}
		}
	}
	return true
}

func (p *part) registered(j jid.JID) bool {
	for _, r := range p.regs {
		if r.JID == j {
			return true
		}
	}
	return false
}
