package pep

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/dataform"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/pubsub"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// req is one pubsub IQ being answered.
type req struct {
	a     *feature.AccountIQ
	p     *part
	from  jid.JID // the requester
	owner bool
}

func newReq(a *feature.AccountIQ) *req {
	p, _ := a.Part.(*part)
	return &req{a: a, p: p, from: a.St.From, owner: a.Owner || a.St.From.Bare() == a.User.Bare()}
}

func (r *req) fail(e stanza.Error) { r.a.Fail(e) }
func (r *req) bad(app string)      { r.fail(pubsub.Error(stanza.BadRequest, app)) }
func (r *req) internal(err error, what string) {
	r.p.u.Log().Error().Err(err).Msg("pep: " + what)
	r.fail(stanza.NewError(stanza.InternalServerError))
}

// action is the pubsub element's one action child (§7–§8), with a second child some actions take.
var action = pubsub.Action

// userIQ answers the http://jabber.org/protocol/pubsub namespace.
func userIQ(a *feature.AccountIQ) {
	r := newReq(a)
	act, extra := action(a.Payload, pubsub.NS)
	if r.p == nil || act == nil {
		r.fail(stanza.NewError(stanza.BadRequest))
		return
	}
	if err := r.p.loadNodes(); err != nil {
		r.internal(err, "loading nodes")
		return
	}
	set := !a.IsGet()
	switch {
	case act.Name.Local == "publish" && set:
		r.publish(act, extra)
	case act.Name.Local == "retract" && set:
		r.retract(act)
	case act.Name.Local == "items" && !set:
		r.items(act)
	case act.Name.Local == "subscribe" && set:
		r.subscribe(act)
	case act.Name.Local == "unsubscribe" && set:
		r.unsubscribe(act)
	case act.Name.Local == "subscriptions" && !set:
		r.subscriptions(act)
	case act.Name.Local == "affiliations" && !set:
		r.affiliations(act)
	case act.Name.Local == "create" && set:
		r.create(act, extra)
	case act.Name.Local == "options" || act.Name.Local == "default":
		r.fail(pubsub.Unsupported("subscription-options"))
	default:
		r.fail(stanza.NewError(stanza.BadRequest))
	}
}

// ownerIQ answers the #owner namespace: only the account may (§8: forbidden otherwise).
func ownerIQ(a *feature.AccountIQ) {
	r := newReq(a)
	act, _ := action(a.Payload, pubsub.NSOwner)
	if r.p == nil || act == nil {
		r.fail(stanza.NewError(stanza.BadRequest))
		return
	}
	if !r.owner {
		r.fail(stanza.NewError(stanza.Forbidden))
		return
	}
	if err := r.p.loadNodes(); err != nil {
		r.internal(err, "loading nodes")
		return
	}
	set := !a.IsGet()
	switch {
	case act.Name.Local == "configure":
		r.configure(act, set)
	case act.Name.Local == "default" && !set:
		a.Result("<pubsub xmlns='" + pubsub.NSOwner + "'><default>" +
			pubsub.DefaultPEP().Form(pubsub.NSNodeConfig, r.p.lim.items, r.groups()) + "</default></pubsub>")
	case act.Name.Local == "delete" && set:
		r.delete(act)
	case act.Name.Local == "purge" && set:
		r.purge(act)
	case act.Name.Local == "subscriptions":
		r.manageSubscriptions(act, set)
	case act.Name.Local == "affiliations":
		r.manageAffiliations(act, set)
	default:
		r.fail(stanza.NewError(stanza.BadRequest))
	}
}

// node returns the node the action names, loaded; it has answered with the error when it returns nil.
func (r *req) node(act *xmlstream.Node) *node {
	name := act.Attr("node")
	if name == "" {
		r.bad("nodeid-required")
		return nil
	}
	n := r.p.nodes[name]
	if n == nil {
		r.fail(stanza.NewError(stanza.ItemNotFound))
		return nil
	}
	if err := r.p.details(n); err != nil {
		r.internal(err, "loading node "+name)
		return nil
	}
	return n
}

func (r *req) groups() []string {
	seen := map[string]bool{}
	var out []string
	for _, it := range r.p.u.Roster() {
		for _, g := range it.Groups {
			if !seen[g] {
				seen[g] = true
				out = append(out, g)
			}
		}
	}
	return out
}

// newNode creates a node with cfg (quota checked); nil when it answered with an error.
func (r *req) newNode(name string, cfg pubsub.Config) *node {
	n, err := r.p.createNode(name, cfg)
	switch {
	case errors.Is(err, errTooManyNodes):
		r.fail(stanza.NewError(stanza.PolicyViolation).WithText(err.Error()))
	case err != nil:
		r.internal(err, "creating node "+name)
	}
	return n
}

// configForm reads the node_config (or publish-options) form inside el, nil if none.
var configForm = pubsub.SubmittedForm

// ---- §7.1 publish ----

func (r *req) publish(act, opts *xmlstream.Node) {
	if !r.owner {
		r.fail(stanza.NewError(stanza.Forbidden)) // XEP-0163 §3: only the account publishes to its PEP nodes
		return
	}
	name := act.Attr("node")
	if name == "" {
		r.bad("nodeid-required")
		return
	}
	items := act.ChildrenNamed(pubsub.NS, "item")
	if len(items) != 1 {
		r.bad("item-required") // §7.1.3.6: one item per publish; none is item-required
		return
	}
	el := items[0].Elements()
	switch {
	case len(el) == 0:
		r.bad("payload-required") // §7.1.3.6: PEP nodes persist items and deliver payloads
		return
	case len(el) > 1:
		r.bad("invalid-payload") // §7.1.3.5: exactly one payload element
		return
	}
	payload := el[0].String()
	if len(payload) > r.p.lim.itemBytes {
		r.p.u.Server().LimitHit(LimitItemBytes)
		r.fail(pubsub.Error(stanza.NotAcceptable, "payload-too-big"))
		return
	}
	var po *dataform.Form
	if opts != nil {
		if opts.Name.Local != "publish-options" {
			r.fail(stanza.NewError(stanza.BadRequest))
			return
		}
		f, ok := configForm(opts, pubsub.NSPublishOptions)
		if !ok {
			r.bad("invalid-options")
			return
		}
		po = f
	}
	n := r.p.nodes[name]
	if n == nil {
		// §7.1.4 auto-create, with the publish-options as its configuration (§7.1.5).
		cfg := pubsub.DefaultPEP()
		if po != nil {
			if err := cfg.Apply(*po, r.p.lim.items); err != nil {
				r.fail(pubsub.Error(stanza.Conflict, "precondition-not-met").WithText(err.Error()))
				return
			}
		}
		if n = r.newNode(name, cfg); n == nil {
			return
		}
	} else {
		if err := r.p.details(n); err != nil {
			r.internal(err, "loading node "+name)
			return
		}
		if po != nil {
			if f := n.cfg.Meets(*po, r.p.lim.items); f != "" {
				r.fail(pubsub.Error(stanza.Conflict, "precondition-not-met").WithText(f + " does not match the node's configuration"))
				return
			}
		}
	}
	id := items[0].Attr("id")
	if id == "" {
		id = newID()
	}
	it := storage.PubSubItem{ID: id, Publisher: r.from.Bare().String(), Payload: payload, Published: time.Now().UTC().Truncate(time.Microsecond)}
	if err := r.p.put(n, it); err != nil {
		r.internal(err, "publishing to "+name)
		return
	}
	r.a.Result("<pubsub xmlns='" + pubsub.NS + "'><publish node='" + attrText(name) + "'><item id='" + attrText(id) + "'/></publish></pubsub>")
	r.p.notify(n, pubsub.ItemsEvent(name, []pubsub.Item{itemOf(it)}, n.cfg.DeliverPayloads))
	r.p.clientChanged(n)
}

// ---- §7.2 retract ----

func (r *req) retract(act *xmlstream.Node) {
	if !r.owner {
		r.fail(stanza.NewError(stanza.Forbidden))
		return
	}
	n := r.node(act)
	if n == nil {
		return
	}
	items := act.ChildrenNamed(pubsub.NS, "item")
	if len(items) == 0 || items[0].Attr("id") == "" {
		r.bad("item-required")
		return
	}
	ids := make([]string, 0, len(items))
	for _, it := range items {
		ids = append(ids, it.Attr("id"))
	}
	gone, err := r.p.remove(n, ids)
	if err != nil {
		r.internal(err, "retracting from "+n.name)
		return
	}
	if len(gone) == 0 {
		r.fail(stanza.NewError(stanza.ItemNotFound))
		return
	}
	r.a.Result("")
	if notify := act.Attr("notify"); n.cfg.NotifyRetract || notify == "true" || notify == "1" {
		r.p.notify(n, pubsub.RetractEvent(n.name, gone...))
	}
	r.p.clientChanged(n)
}

// ---- §6.5 items ----

func (r *req) items(act *xmlstream.Node) {
	n := r.node(act)
	if n == nil {
		return
	}
	if ok, e := r.p.access(n, r.from, nil); !ok {
		r.fail(e)
		return
	}
	st := r.p.u.Server().Store()
	var list []storage.PubSubItem
	if want := act.ChildrenNamed(pubsub.NS, "item"); len(want) > 0 {
		for _, w := range want { // §6.5.8: particular items; unknown ids are left out
			it, err := st.PubSubItem(bg, r.p.service(), n.name, w.Attr("id"))
			if err == nil {
				list = append(list, it)
			}
		}
	} else {
		max := 0
		if m := act.Attr("max_items"); m != "" {
			v, err := strconv.Atoi(m)
			if err != nil || v < 1 {
				r.fail(stanza.NewError(stanza.BadRequest))
				return
			}
			max = v
		}
		var err error
		if list, err = st.PubSubItems(bg, r.p.service(), n.name, max); err != nil {
			r.internal(err, "reading "+n.name)
			return
		}
		// Newest first from storage; the answer lists them in publication order.
		for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
			list[i], list[j] = list[j], list[i]
		}
	}
	b := []byte("<pubsub xmlns='" + pubsub.NS + "'><items node='" + attrText(n.name) + "'>")
	for _, it := range list {
		b = pubsub.AppendItem(b, itemOf(it), true, false)
	}
	r.a.Result(string(append(b, "</items></pubsub>"...)))
}

// ---- §6.1 subscribe, §6.2 unsubscribe ----

func (r *req) subscribe(act *xmlstream.Node) {
	j, err := jid.Parse(act.Attr("jid"))
	if err != nil || j.Bare() != r.from.Bare() {
		r.bad("invalid-jid") // §6.1.3.1
		return
	}
	n := r.node(act)
	if n == nil {
		return
	}
	if ok, e := r.p.access(n, r.from, nil); !ok {
		r.fail(e)
		return
	}
	m := n.members[j.String()]
	m.JID = j.String()
	if m.Subscription != pubsub.Subscribed {
		m.Subscription, m.SubID = pubsub.Subscribed, newID()
		if !r.putMember(n, m) {
			return
		}
	}
	r.a.Result("<pubsub xmlns='" + pubsub.NS + "'>" + subscriptionXML(n.name, m) + "</pubsub>")
	if n.last != nil && n.cfg.SendLastPublished != pubsub.SendNever {
		r.p.sendLast(n, j) // §6.1.7
	}
}

// subscriptionXML is one <subscription/>; node "" leaves the attribute out.
func subscriptionXML(node string, m storage.PubSubMember) string {
	return pubsub.SubscriptionXML(node, m.JID, m.Subscription, m.SubID)
}

func (r *req) unsubscribe(act *xmlstream.Node) {
	j, err := jid.Parse(act.Attr("jid"))
	if err != nil || (j.Bare() != r.from.Bare() && !r.owner) {
		r.bad("invalid-jid") // §6.2.3.3
		return
	}
	n := r.node(act)
	if n == nil {
		return
	}
	m, ok := n.members[j.String()]
	if !ok || m.Subscription == "" {
		r.fail(pubsub.Error(stanza.UnexpectedRequest, "not-subscribed")) // §6.2.3.2
		return
	}
	if sub := act.Attr("subid"); sub != "" && sub != m.SubID {
		r.fail(pubsub.Error(stanza.NotAcceptable, "invalid-subid"))
		return
	}
	m.Subscription, m.SubID = "", ""
	if !r.putMember(n, m) {
		return
	}
	r.a.Result("")
}

// putMember stores m (deleting a row left without affiliation and subscription) and answers errors.
func (r *req) putMember(n *node, m storage.PubSubMember) bool {
	if err := r.p.u.Server().Store().PutPubSubMember(bg, r.p.service(), n.name, m); err != nil {
		r.internal(err, "updating "+n.name)
		return false
	}
	if m.Affiliation == "" && m.Subscription == "" {
		delete(n.members, m.JID)
	} else {
		n.members[m.JID] = m
	}
	return true
}

// ---- §5.6 subscriptions, §5.7 affiliations: the requester's own ----

func (r *req) eachNode(only string, f func(n *node)) bool {
	for _, name := range slices.Sorted(maps.Keys(r.p.nodes)) {
		if only != "" && name != only {
			continue
		}
		n := r.p.nodes[name]
		if err := r.p.details(n); err != nil {
			r.internal(err, "loading node "+name)
			return false
		}
		f(n)
	}
	return true
}

func (r *req) subscriptions(act *xmlstream.Node) {
	var b []byte
	ok := r.eachNode(act.Attr("node"), func(n *node) {
		for _, m := range n.members {
			if m.Subscription != "" {
				if j, err := jid.Parse(m.JID); err == nil && j.Bare() == r.from.Bare() {
					b = append(b, subscriptionXML(n.name, m)...)
				}
			}
		}
	})
	if ok {
		r.a.Result("<pubsub xmlns='" + pubsub.NS + "'><subscriptions>" + string(b) + "</subscriptions></pubsub>")
	}
}

func (r *req) affiliations(act *xmlstream.Node) {
	var b []byte
	ok := r.eachNode(act.Attr("node"), func(n *node) {
		if a := r.p.affiliation(n, r.from); a != pubsub.None {
			b = append(b, "<affiliation node='"+attrText(n.name)+"' affiliation='"+a+"'/>"...)
		}
	})
	if ok {
		r.a.Result("<pubsub xmlns='" + pubsub.NS + "'><affiliations>" + string(b) + "</affiliations></pubsub>")
	}
}

// ---- §8.1 create ----

func (r *req) create(act, configure *xmlstream.Node) {
	if !r.owner {
		r.fail(stanza.NewError(stanza.Forbidden))
		return
	}
	name := act.Attr("node")
	if name == "" {
		r.fail(pubsub.Error(stanza.NotAcceptable, "nodeid-required")) // §8.1.2: PEP has no instant nodes
		return
	}
	if r.p.nodes[name] != nil {
		r.fail(stanza.NewError(stanza.Conflict))
		return
	}
	cfg := pubsub.DefaultPEP()
	if configure != nil {
		f, ok := configForm(configure, pubsub.NSNodeConfig)
		if !ok {
			r.fail(stanza.NewError(stanza.BadRequest))
			return
		}
		if f != nil {
			if err := cfg.Apply(*f, r.p.lim.items); err != nil {
				r.fail(stanza.NewError(stanza.NotAcceptable).WithText(err.Error()))
				return
			}
		}
	}
	if r.newNode(name, cfg) != nil {
		r.a.Result("")
	}
}

// ---- §8.2 configure, §8.4 delete, §8.5 purge ----

func (r *req) configure(act *xmlstream.Node, set bool) {
	n := r.node(act)
	if n == nil {
		return
	}
	if !set {
		r.a.Result("<pubsub xmlns='" + pubsub.NSOwner + "'><configure node='" + attrText(n.name) + "'>" +
			n.cfg.Form(pubsub.NSNodeConfig, r.p.lim.items, r.groups()) + "</configure></pubsub>")
		return
	}
	f, ok := configForm(act, pubsub.NSNodeConfig)
	if !ok {
		r.fail(stanza.NewError(stanza.BadRequest))
		return
	}
	if f == nil { // a cancelled form (§8.2.7)
		r.a.Result("")
		return
	}
	cfg := n.cfg
	if err := cfg.Apply(*f, r.p.lim.items); err != nil {
		r.fail(stanza.NewError(stanza.NotAcceptable).WithText(err.Error())) // §8.2.5.3
		return
	}
	if err := r.p.u.Server().Store().PutPubSubNode(bg, r.p.service(), storage.PubSubNode{Node: n.name, Config: cfg.Encode(), Created: n.created}); err != nil {
		r.internal(err, "configuring "+n.name)
		return
	}
	shrunk := cfg.EffectiveMax(r.p.lim.items) < n.cfg.EffectiveMax(r.p.lim.items)
	n.cfg = cfg
	if shrunk && n.last != nil {
		// Storage trims on the next publish; re-publishing the newest item trims now.
		if err := r.p.u.Server().Store().PublishPubSubItem(bg, r.p.service(), n.name, *n.last, cfg.EffectiveMax(r.p.lim.items)); err != nil {
			r.internal(err, "trimming "+n.name)
			return
		}
	}
	r.a.Result("")
	if cfg.NotifyConfig {
		r.p.notify(n, pubsub.NodeEvent("configuration", n.name))
	}
}

func (r *req) delete(act *xmlstream.Node) {
	n := r.node(act)
	if n == nil {
		return
	}
	if err := r.p.u.Server().Store().DeletePubSubNode(bg, r.p.service(), n.name); err != nil {
		r.internal(err, "deleting "+n.name)
		return
	}
	r.a.Result("")
	if n.cfg.NotifyDelete {
		r.p.notify(n, pubsub.NodeEvent("delete", n.name))
	}
	delete(r.p.nodes, n.name)
	r.p.clientChanged(n)
}

func (r *req) purge(act *xmlstream.Node) {
	n := r.node(act)
	if n == nil {
		return
	}
	if err := r.p.u.Server().Store().PurgePubSubNode(bg, r.p.service(), n.name); err != nil {
		r.internal(err, "purging "+n.name)
		return
	}
	n.last = nil
	r.a.Result("")
	r.p.notify(n, pubsub.NodeEvent("purge", n.name))
	r.p.clientChanged(n)
}

// ---- §8.8 subscriptions and §8.9 affiliations, managed by the owner ----

func (r *req) manageSubscriptions(act *xmlstream.Node, set bool) {
	n := r.node(act)
	if n == nil {
		return
	}
	if !set {
		var b []byte
		for _, jidStr := range slices.Sorted(maps.Keys(n.members)) {
			if m := n.members[jidStr]; m.Subscription != "" {
				b = append(b, subscriptionXML("", m)...) // §8.8.1: the node is named once, on <subscriptions/>
			}
		}
		r.a.Result("<pubsub xmlns='" + pubsub.NSOwner + "'><subscriptions node='" + attrText(n.name) + "'>" + string(b) + "</subscriptions></pubsub>")
		return
	}
	for _, s := range act.ChildrenNamed(pubsub.NSOwner, "subscription") {
		j, err := jid.Parse(s.Attr("jid"))
		state := s.Attr("subscription")
		if err != nil || (state != pubsub.Subscribed && state != pubsub.None) {
			r.fail(stanza.NewError(stanza.BadRequest))
			return
		}
		m := n.members[j.String()]
		m.JID = j.String()
		if state == pubsub.None {
			m.Subscription, m.SubID = "", ""
		} else if m.Subscription != pubsub.Subscribed {
			m.Subscription, m.SubID = pubsub.Subscribed, newID()
		}
		if !r.putMember(n, m) {
			return
		}
	}
	r.a.Result("")
}

func (r *req) manageAffiliations(act *xmlstream.Node, set bool) {
	n := r.node(act)
	if n == nil {
		return
	}
	if !set {
		b := []byte("<affiliation jid='" + attrText(r.p.service()) + "' affiliation='owner'/>")
		for _, jidStr := range slices.Sorted(maps.Keys(n.members)) {
			if m := n.members[jidStr]; m.Affiliation != "" {
				b = append(b, "<affiliation jid='"+attrText(m.JID)+"' affiliation='"+m.Affiliation+"'/>"...)
			}
		}
		r.a.Result("<pubsub xmlns='" + pubsub.NSOwner + "'><affiliations node='" + attrText(n.name) + "'>" + string(b) + "</affiliations></pubsub>")
		return
	}
	for _, af := range act.ChildrenNamed(pubsub.NSOwner, "affiliation") {
		j, err := jid.Parse(af.Attr("jid"))
		a := af.Attr("affiliation")
		switch {
		case err != nil:
			r.fail(stanza.NewError(stanza.BadRequest))
			return
		case j.Bare() == r.p.u.Bare():
			r.fail(stanza.NewError(stanza.NotAcceptable).WithText("the account owns its PEP nodes")) // §8.9.2.4
			return
		case a != pubsub.Member && a != pubsub.Publisher && a != pubsub.Outcast && a != pubsub.None:
			r.fail(stanza.NewError(stanza.BadRequest))
			return
		}
		m := n.members[j.Bare().String()]
		m.JID = j.Bare().String()
		m.Affiliation = a
		if a == pubsub.None {
			m.Affiliation = ""
		}
		if a == pubsub.Outcast {
			m.Subscription, m.SubID = "", "" // §4.1: an outcast may not subscribe
		}
		if !r.putMember(n, m) {
			return
		}
	}
	r.a.Result("")
}

func attrText(s string) string { return string(xmlstream.AppendEscapedAttr(nil, s)) }
