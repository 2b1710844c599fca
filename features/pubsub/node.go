package pubsub

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

// node is the part of one node actor: the node's state, loaded from storage on the first request (and again
// after the node was deleted: the name may have been created anew since).
type node struct {
	h    feature.EntityHost
	lim  limits
	name string

	loaded  bool
	cfg     pubsub.Config
	creator string
	created time.Time
	members map[string]storage.PubSubMember // by JID as stored (affiliations by bare JID)
	last    *storage.PubSubItem
}

func newNode(h feature.EntityHost, key string) *node {
	return &node{h: h, name: key, lim: limitsOf(h.Server().Config())}
}

func (n *node) service() string { return n.h.Service().String() }

// load reads the node; storage.ErrNotFound when it does not exist (any more).
func (n *node) load() error {
	if n.loaded {
		return nil
	}
	st := n.h.Server().Store()
	sn, err := st.PubSubNode(bg, n.service(), n.name)
	if err != nil {
		return err
	}
	rec, err := decodeRecord(sn.Config)
	if err != nil {
		n.h.Log().Warn().Err(err).Msg("pubsub: unreadable node configuration; using the default")
	}
	ms, err := st.PubSubMembers(bg, n.service(), n.name)
	if err != nil {
		return err
	}
	items, err := st.PubSubItems(bg, n.service(), n.name, 1)
	if err != nil {
		return err
	}
	n.cfg, n.creator, n.created = rec.Config, rec.Creator, sn.Created
	n.members = make(map[string]storage.PubSubMember, len(ms))
	for _, m := range ms {
		n.members[m.JID] = m
	}
	n.last = nil
	if len(items) > 0 {
		n.last = &items[0]
	}
	n.loaded = true
	return nil
}

// Handle (feature.Handler) takes the requests the service forwards.
func (n *node) Handle(msg any) {
	if f, ok := msg.(forward); ok {
		n.request(f.st)
	}
}

// req is one request being answered.
type req struct {
	n    *node
	st   *stanza.Routed
	from jid.JID
}

func (r *req) fail(e stanza.Error)   { r.n.h.Bounce(r.st, e) }
func (r *req) bad(app string)        { r.fail(pubsub.Error(stanza.BadRequest, app)) }
func (r *req) result(payload string) { r.n.h.Route(feature.Answered(r.st, payload)) }
func (r *req) forbidden()            { r.fail(stanza.NewError(stanza.Forbidden)) }
func (r *req) internal(err error, what string) {
	r.n.h.Log().Error().Err(err).Msg("pubsub: " + what)
	r.fail(stanza.NewError(stanza.InternalServerError))
}

func (n *node) request(st *stanza.Routed) {
	r := &req{n: n, st: st, from: st.From}
	if err := n.load(); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			r.fail(stanza.NewError(stanza.ItemNotFound)) // deleted meanwhile
			return
		}
		r.internal(err, "loading node "+n.name)
		return
	}
	el, _ := st.Node()
	q := el.Elements()[0] // the service checked there is exactly one
	get := st.Head.Type == "get"
	switch q.Name.Space {
	case stanza.NSDiscoInf:
		r.discoInfo(get)
		return
	case stanza.NSDiscoIt:
		r.discoItems(get)
		return
	}
	owner := q.Name.Space == pubsub.NSOwner
	act, extra := pubsub.Action(q, q.Name.Space)
	switch {
	case owner && !r.isOwner():
		r.forbidden() // §8: owner use cases need the owner affiliation
	case owner:
		r.ownerAction(act, get)
	default:
		r.userAction(act, extra, get)
	}
}

func (r *req) userAction(act, extra *xmlstream.Node, get bool) {
	switch {
	case act.Name.Local == "publish" && !get:
		r.publish(act, extra)
	case act.Name.Local == "retract" && !get:
		r.retract(act)
	case act.Name.Local == "items" && get:
		r.items(act)
	case act.Name.Local == "subscribe" && !get:
		r.subscribe(act, extra)
	case act.Name.Local == "unsubscribe" && !get:
		r.unsubscribe(act)
	case act.Name.Local == "options":
		r.options(act, get)
	case act.Name.Local == "subscriptions" && get:
		r.ownSubscriptions()
	case act.Name.Local == "affiliations" && get:
		r.ownAffiliation()
	default:
		r.fail(stanza.NewError(stanza.BadRequest))
	}
}

func (r *req) ownerAction(act *xmlstream.Node, get bool) {
	switch {
	case act.Name.Local == "configure":
		r.configure(act, get)
	case act.Name.Local == "delete" && !get:
		r.delete(act)
	case act.Name.Local == "purge" && !get:
		r.purge()
	case act.Name.Local == "subscriptions":
		r.manageSubscriptions(act, get)
	case act.Name.Local == "affiliations":
		r.manageAffiliations(act, get)
	default:
		r.fail(stanza.NewError(stanza.BadRequest))
	}
}

// ---- who may do what (§4.1, §4.5) ----

// affiliation of j: the creator is owner; otherwise what the member row of j's bare JID says.
func (n *node) affiliation(j jid.JID) string {
	if j.Bare().String() == n.creator {
		return pubsub.Owner
	}
	if m, ok := n.members[j.Bare().String()]; ok && m.Affiliation != "" {
		return m.Affiliation
	}
	return pubsub.None
}

// isOwner: the owner affiliation, or a server admin (who may manage every node of the service).
func (r *req) isOwner() bool {
	return r.n.affiliation(r.from) == pubsub.Owner || r.n.h.Server().IsAdmin(r.from)
}

// access reports whether j may subscribe and retrieve items, with the error §6.1.3 / §6.5.9 names otherwise.
func (n *node) access(j jid.JID) (bool, stanza.Error) {
	switch n.affiliation(j) {
	case pubsub.Owner, pubsub.Publisher, pubsub.Member:
		return true, stanza.Error{}
	case pubsub.Outcast:
		return false, stanza.NewError(stanza.Forbidden) // §6.1.3.8 blocked
	}
	if n.cfg.AccessModel == pubsub.AccessOpen {
		return true, stanza.Error{}
	}
	return false, pubsub.Error(stanza.NotAllowed, "closed-node") // §6.1.3.4 whitelist
}

// subscribed: j, or j's bare JID, has a subscription.
func (n *node) subscribed(j jid.JID) bool {
	for _, k := range []string{j.String(), j.Bare().String()} {
		if m, ok := n.members[k]; ok && m.Subscription == pubsub.Subscribed {
			return true
		}
	}
	return false
}

// mayPublish applies the publish model (§4.1 table 4: publishers and owners; pubsub#publish_model widens it).
func (n *node) mayPublish(j jid.JID) bool {
	switch n.affiliation(j) {
	case pubsub.Owner, pubsub.Publisher:
		return true
	case pubsub.Outcast:
		return false
	}
	switch n.cfg.PublishModel {
	case "open":
		return true
	case "subscribers":
		return n.subscribed(j)
	}
	return false
}

// ---- §5.4, §5.5 discovery of the node ----

func (r *req) discoInfo(get bool) {
	if !get {
		r.fail(stanza.NewError(stanza.BadRequest))
		return
	}
	n := r.n
	subs := 0
	for _, m := range n.members {
		if m.Subscription == pubsub.Subscribed {
			subs++
		}
	}
	meta := dataform.New("result", pubsub.NS+"#meta-data").
		Field("pubsub#type", "", "", n.cfg.Type).
		Field("pubsub#title", "", "", n.cfg.Title).
		Field("pubsub#description", "", "", n.cfg.Description).
		Field("pubsub#owner", "", "", n.owners()...).
		Field("pubsub#access_model", "", "", n.cfg.AccessModel).
		Field("pubsub#publish_model", "", "", n.cfg.PublishModel).
		Field("pubsub#creation_date", "", "", n.created.UTC().Format(time.RFC3339)).
		Field("pubsub#num_subscribers", "", "", strconv.Itoa(subs)).
		String()
	r.result("<query xmlns='" + stanza.NSDiscoInf + "' node='" + attrText(n.name) + "'>" +
		"<identity category='pubsub' type='leaf'/><feature var='" + pubsub.NS + "'/>" + meta + "</query>")
}

func (n *node) owners() []string {
	out := []string{n.creator}
	for _, k := range slices.Sorted(maps.Keys(n.members)) {
		if m := n.members[k]; m.Affiliation == pubsub.Owner && k != n.creator {
			out = append(out, k)
		}
	}
	return out
}

// discoItems lists the node's items by id (§5.5), for those who may read them.
func (r *req) discoItems(get bool) {
	if !get {
		r.fail(stanza.NewError(stanza.BadRequest))
		return
	}
	if ok, e := r.n.access(r.from); !ok {
		r.fail(e)
		return
	}
	list, err := r.n.h.Server().Store().PubSubItems(bg, r.n.service(), r.n.name, 0)
	if err != nil {
		r.internal(err, "reading "+r.n.name)
		return
	}
	b := []byte("<query xmlns='" + stanza.NSDiscoIt + "' node='" + attrText(r.n.name) + "'>")
	for _, it := range list {
		b = append(b, "<item jid='"+attrText(r.n.service())+"' name='"+attrText(it.ID)+"'/>"...)
	}
	r.result(string(append(b, "</query>"...)))
}

// ---- §7.1 publish ----

func (r *req) publish(act, opts *xmlstream.Node) {
	n := r.n
	if !n.mayPublish(r.from) {
		r.forbidden() // §7.1.3.1
		return
	}
	items := act.ChildrenNamed(pubsub.NS, "item")
	if len(items) != 1 {
		r.bad("item-required") // §7.1.3.6 (one item per request: §7.1.3.5 also allows refusing several)
		return
	}
	el := items[0].Elements()
	switch {
	case len(el) == 0:
		r.bad("payload-required") // §7.1.3.6: the nodes persist items and deliver payloads
		return
	case len(el) > 1:
		r.bad("invalid-payload") // §7.1.3.5
		return
	}
	payload := el[0].String()
	if len(payload) > n.lim.itemBytes {
		n.h.Server().LimitHit(LimitItemBytes)
		r.fail(pubsub.Error(stanza.NotAcceptable, "payload-too-big")) // §7.1.3.5
		return
	}
	if opts != nil {
		// §7.1.5: publish-options are preconditions the node must meet.
		f, ok := pubsub.SubmittedForm(opts, pubsub.NSPublishOptions)
		if opts.Name.Local != "publish-options" || !ok {
			r.bad("invalid-options")
			return
		}
		if f != nil {
			if v := n.cfg.Meets(*f, n.lim.items); v != "" {
				r.fail(pubsub.Error(stanza.Conflict, "precondition-not-met").WithText(v + " does not match the node's configuration"))
				return
			}
		}
	}
	id := items[0].Attr("id")
	if id == "" {
		id = newID() // §7.1.2: the service generates an id
	}
	it := storage.PubSubItem{ID: id, Publisher: r.from.Bare().String(), Payload: payload, Published: time.Now().UTC().Truncate(time.Microsecond)}
	// Stored before the answer: an acknowledged publication survives a crash.
	if err := n.h.Server().Store().PublishPubSubItem(bg, n.service(), n.name, it, n.cfg.EffectiveMax(n.lim.items)); err != nil {
		r.internal(err, "publishing to "+n.name)
		return
	}
	n.last = &it
	r.result("<pubsub xmlns='" + pubsub.NS + "'><publish node='" + attrText(n.name) + "'><item id='" + attrText(id) + "'/></publish></pubsub>")
	n.notify(pubsub.ItemsEvent(n.name, []pubsub.Item{itemOf(it)}, n.cfg.DeliverPayloads))
}

func itemOf(it storage.PubSubItem) pubsub.Item {
	return pubsub.Item{ID: it.ID, Publisher: it.Publisher, Payload: it.Payload}
}

// ---- §7.2 retract ----

func (r *req) retract(act *xmlstream.Node) {
	n := r.n
	if a := n.affiliation(r.from); a != pubsub.Owner && a != pubsub.Publisher && !n.h.Server().IsAdmin(r.from) {
		r.forbidden() // §7.2.3.1
		return
	}
	items := act.ChildrenNamed(pubsub.NS, "item")
	if len(items) == 0 || items[0].Attr("id") == "" {
		r.bad("item-required") // §7.2.3.3
		return
	}
	var ids []string
	for _, it := range items {
		ok, err := n.h.Server().Store().RetractPubSubItem(bg, n.service(), n.name, it.Attr("id"))
		if err != nil {
			r.internal(err, "retracting from "+n.name)
			return
		}
		if ok {
			ids = append(ids, it.Attr("id"))
		}
	}
	if len(ids) == 0 {
		r.fail(stanza.NewError(stanza.ItemNotFound)) // §7.2.3.5
		return
	}
	if n.last != nil && slices.Contains(ids, n.last.ID) {
		n.loaded = false // the newest item is gone: read the one before it
		if err := n.load(); err != nil {
			r.internal(err, "loading node "+n.name)
			return
		}
	}
	r.result("")
	// §7.2.2.1: subscribers hear of it when the node says so, or the publisher asks (notify='true').
	if n.cfg.NotifyRetract || isTrue(act.Attr("notify")) {
		n.notify(pubsub.RetractEvent(n.name, ids...))
	}
}

// ---- §6.5 items ----

func (r *req) items(act *xmlstream.Node) {
	n := r.n
	if ok, e := n.access(r.from); !ok {
		r.fail(e)
		return
	}
	store := n.h.Server().Store()
	var list []pubsub.Item
	if want := act.ChildrenNamed(pubsub.NS, "item"); len(want) > 0 {
		for _, w := range want { // §6.5.8: particular items; unknown ids are left out
			if it, err := store.PubSubItem(bg, n.service(), n.name, w.Attr("id")); err == nil {
				list = append(list, itemOf(it))
			}
		}
	} else {
		max, ok := pubsub.MaxItemsAttr(act.Attr("max_items"))
		if !ok {
			r.fail(stanza.NewError(stanza.BadRequest))
			return
		}
		got, err := store.PubSubItems(bg, n.service(), n.name, max) // §6.5.7: the newest max
		if err != nil {
			r.internal(err, "reading "+n.name)
			return
		}
		for i := len(got) - 1; i >= 0; i-- { // newest first from storage; answered in publication order
			list = append(list, itemOf(got[i]))
		}
	}
	r.result(pubsub.ItemsResult(n.name, list))
}

// ---- §6.1 subscribe, §6.2 unsubscribe, §6.3 options ----

// subscriber reads the jid attribute: it must be the requester's bare JID or one of its full JIDs (§6.1.3.1),
// unless an owner acts for someone else (ownerMay).
func (r *req) subscriber(act *xmlstream.Node, ownerMay bool) (jid.JID, bool) {
	j, err := jid.Parse(act.Attr("jid"))
	if err != nil || (j.Bare() != r.from.Bare() && !(ownerMay && r.isOwner())) {
		r.bad("invalid-jid")
		return jid.JID{}, false
	}
	return j, true
}

func (r *req) subscribe(act, extra *xmlstream.Node) {
	n := r.n
	j, ok := r.subscriber(act, false)
	if !ok {
		return
	}
	if ok, e := n.access(r.from); !ok {
		r.fail(e)
		return
	}
	m := n.members[j.String()]
	m.JID = j.String()
	opts := pubsub.DecodeSubOptions(m.Options)
	if extra != nil {
		// §6.3.7: subscribe and configure the options in one request.
		f, ok := pubsub.SubmittedForm(extra, pubsub.NSSubOptions)
		if extra.Name.Local != "options" || !ok {
			r.bad("invalid-options")
			return
		}
		if f != nil {
			if err := opts.Apply(*f); err != nil {
				r.fail(pubsub.Error(stanza.BadRequest, "invalid-options").WithText(err.Error()))
				return
			}
		}
	}
	changed := m.Subscription != pubsub.Subscribed || m.Options != opts.Encode()
	if m.Subscription != pubsub.Subscribed {
		m.Subscription, m.SubID = pubsub.Subscribed, newID()
	}
	m.Options = opts.Encode()
	if changed && !r.putMember(m) {
		return
	}
	// §6.1.6 (multiple subscriptions are not supported): subscribing again answers the subscription there is.
	r.result("<pubsub xmlns='" + pubsub.NS + "'>" + pubsub.SubscriptionXML(n.name, m.JID, m.Subscription, m.SubID) + "</pubsub>")
	if n.last != nil && n.cfg.SendLastPublished != pubsub.SendNever && opts.Deliver {
		// §6.1.7: the last published item on subscription.
		ev := pubsub.ItemsEvent(n.name, []pubsub.Item{itemOf(*n.last)}, n.cfg.DeliverPayloads)
		ev += stanza.Delay(n.service(), n.last.Published.UTC().Format("2006-01-02T15:04:05.000000Z"), "")
		n.h.Route(stanza.Generate("message", n.cfg.NotificationType, n.h.Service(), j, n.h.NextID("ps"), ev))
	}
}

// subscription returns j's subscription, answering §6.2.3.2 / §6.3.4.2 not-subscribed and §6.2.3.5
// invalid-subid itself (ok false).
func (r *req) subscription(j jid.JID, subid string) (storage.PubSubMember, bool) {
	m, ok := r.n.members[j.String()]
	if !ok || m.Subscription == "" {
		r.fail(pubsub.Error(stanza.UnexpectedRequest, "not-subscribed"))
		return m, false
	}
	if subid != "" && subid != m.SubID {
		r.fail(pubsub.Error(stanza.NotAcceptable, "invalid-subid"))
		return m, false
	}
	return m, true
}

func (r *req) unsubscribe(act *xmlstream.Node) {
	j, ok := r.subscriber(act, true)
	if !ok {
		return
	}
	m, ok := r.subscription(j, act.Attr("subid"))
	if !ok {
		return
	}
	m.Subscription, m.SubID, m.Options = "", "", ""
	if r.putMember(m) {
		r.result("")
	}
}

func (r *req) options(act *xmlstream.Node, get bool) {
	j, err := jid.Parse(act.Attr("jid"))
	if err != nil {
		r.bad("jid-required") // §6.3.4.3
		return
	}
	if j.Bare() != r.from.Bare() && !r.isOwner() {
		r.forbidden() // §6.3.4.1
		return
	}
	m, ok := r.subscription(j, act.Attr("subid"))
	if !ok {
		return
	}
	opts := pubsub.DecodeSubOptions(m.Options)
	head := "<options node='" + attrText(r.n.name) + "' jid='" + attrText(m.JID) + "'"
	if m.SubID != "" {
		head += " subid='" + attrText(m.SubID) + "'"
	}
	if get {
		r.result("<pubsub xmlns='" + pubsub.NS + "'>" + head + ">" + opts.Form() + "</options></pubsub>")
		return
	}
	f, ok := pubsub.SubmittedForm(act, pubsub.NSSubOptions)
	if !ok || f == nil {
		r.bad("invalid-options") // §6.3.5.2
		return
	}
	if err := opts.Apply(*f); err != nil {
		r.fail(pubsub.Error(stanza.BadRequest, "invalid-options").WithText(err.Error()))
		return
	}
	m.Options = opts.Encode()
	if r.putMember(m) {
		r.result("")
	}
}

// putMember stores m (a row left without affiliation and subscription is deleted) and answers errors.
func (r *req) putMember(m storage.PubSubMember) bool {
	if err := r.n.h.Server().Store().PutPubSubMember(bg, r.n.service(), r.n.name, m); err != nil {
		r.internal(err, "updating "+r.n.name)
		return false
	}
	if m.Affiliation == "" && m.Subscription == "" {
		delete(r.n.members, m.JID)
	} else {
		r.n.members[m.JID] = m
	}
	return true
}

// ---- §5.6, §5.7 for this node ----

func (r *req) ownSubscriptions() {
	var b []byte
	for _, k := range slices.Sorted(maps.Keys(r.n.members)) {
		m := r.n.members[k]
		if j, err := jid.Parse(k); err == nil && j.Bare() == r.from.Bare() && m.Subscription != "" {
			b = append(b, pubsub.SubscriptionXML(r.n.name, m.JID, m.Subscription, m.SubID)...)
		}
	}
	r.result("<pubsub xmlns='" + pubsub.NS + "'><subscriptions>" + string(b) + "</subscriptions></pubsub>")
}

func (r *req) ownAffiliation() {
	b := ""
	if a := r.n.affiliation(r.from); a != pubsub.None {
		b = "<affiliation node='" + attrText(r.n.name) + "' affiliation='" + a + "'/>"
	}
	r.result("<pubsub xmlns='" + pubsub.NS + "'><affiliations>" + b + "</affiliations></pubsub>")
}

// ---- §8.2 configure, §8.4 delete, §8.5 purge ----

func (r *req) configure(act *xmlstream.Node, get bool) {
	n := r.n
	if get {
		r.result("<pubsub xmlns='" + pubsub.NSOwner + "'><configure node='" + attrText(n.name) + "'>" +
			n.cfg.Form(pubsub.NSNodeConfig, n.lim.items, nil) + "</configure></pubsub>")
		return
	}
	f, ok := pubsub.SubmittedForm(act, pubsub.NSNodeConfig)
	if !ok {
		r.fail(stanza.NewError(stanza.BadRequest))
		return
	}
	if f == nil { // §8.2.7: a cancelled form
		r.result("")
		return
	}
	cfg := n.cfg
	if e, bad := applyConfig(n.h.Server(), &cfg, *f, n.lim.items); bad {
		r.fail(e)
		return
	}
	rec := record{Config: cfg, Creator: n.creator}
	if err := n.h.Server().Store().PutPubSubNode(bg, n.service(), storage.PubSubNode{Node: n.name, Config: rec.encode(), Created: n.created}); err != nil {
		r.internal(err, "configuring "+n.name)
		return
	}
	shrunk := cfg.EffectiveMax(n.lim.items) < n.cfg.EffectiveMax(n.lim.items)
	n.cfg = cfg
	if shrunk && n.last != nil {
		// Storage trims on publication: publishing the newest item again trims now.
		if err := n.h.Server().Store().PublishPubSubItem(bg, n.service(), n.name, *n.last, cfg.EffectiveMax(n.lim.items)); err != nil {
			r.internal(err, "trimming "+n.name)
			return
		}
	}
	// Subscribers a closed node no longer admits keep their rows; notify and items check access each time.
	r.result("")
	if cfg.NotifyConfig {
		n.notify(pubsub.NodeEvent("configuration", n.name)) // §8.2.6
	}
}

func (r *req) delete(act *xmlstream.Node) {
	n := r.n
	if err := n.h.Server().Store().DeletePubSubNode(bg, n.service(), n.name); err != nil {
		r.internal(err, "deleting "+n.name)
		return
	}
	event := pubsub.NodeEvent("delete", n.name)
	if rd := act.Child(pubsub.NSOwner, "redirect"); rd != nil && rd.Attr("uri") != "" {
		// §8.4.1: the subscribers learn where to go instead.
		event = "<event xmlns='" + pubsub.NSEvent + "'><delete node='" + attrText(n.name) + "'><redirect uri='" +
			attrText(rd.Attr("uri")) + "'/></delete></event>"
	}
	n.h.ToService(nodeGone{name: n.name}) // before the answer: the name is free once the owner hears so
	r.result("")
	if n.cfg.NotifyDelete {
		n.notify(event) // §8.4.2
	}
	n.loaded = false
}

func (r *req) purge() {
	n := r.n
	if err := n.h.Server().Store().PurgePubSubNode(bg, n.service(), n.name); err != nil {
		r.internal(err, "purging "+n.name)
		return
	}
	n.last = nil
	r.result("")
	n.notify(pubsub.NodeEvent("purge", n.name)) // §8.5.2
}

// ---- §8.8 subscriptions and §8.9 affiliations, managed by an owner ----

func (r *req) manageSubscriptions(act *xmlstream.Node, get bool) {
	n := r.n
	if get {
		var b []byte
		for _, k := range slices.Sorted(maps.Keys(n.members)) {
			if m := n.members[k]; m.Subscription != "" {
				b = append(b, pubsub.SubscriptionXML("", m.JID, m.Subscription, m.SubID)...) // §8.8.1
			}
		}
		r.result("<pubsub xmlns='" + pubsub.NSOwner + "'><subscriptions node='" + attrText(n.name) + "'>" + string(b) + "</subscriptions></pubsub>")
		return
	}
	for _, s := range act.ChildrenNamed(pubsub.NSOwner, "subscription") {
		j, err := jid.Parse(s.Attr("jid"))
		state := s.Attr("subscription")
		if err != nil || (state != pubsub.Subscribed && state != pubsub.None) {
			r.fail(stanza.NewError(stanza.BadRequest)) // §8.8.2.4
			return
		}
		m := n.members[j.String()]
		m.JID = j.String()
		if state == pubsub.None {
			m.Subscription, m.SubID, m.Options = "", "", ""
		} else if m.Subscription != pubsub.Subscribed {
			m.Subscription, m.SubID = pubsub.Subscribed, newID()
		}
		if !r.putMember(m) {
			return
		}
	}
	r.result("")
}

var affiliations = []string{pubsub.Owner, pubsub.Publisher, pubsub.Member, pubsub.Outcast, pubsub.None}

func (r *req) manageAffiliations(act *xmlstream.Node, get bool) {
	n := r.n
	if get {
		b := []byte("<affiliation jid='" + attrText(n.creator) + "' affiliation='owner'/>")
		for _, k := range slices.Sorted(maps.Keys(n.members)) {
			if m := n.members[k]; m.Affiliation != "" && k != n.creator {
				b = append(b, "<affiliation jid='"+attrText(m.JID)+"' affiliation='"+m.Affiliation+"'/>"...)
			}
		}
		r.result("<pubsub xmlns='" + pubsub.NSOwner + "'><affiliations node='" + attrText(n.name) + "'>" + string(b) + "</affiliations></pubsub>")
		return
	}
	for _, af := range act.ChildrenNamed(pubsub.NSOwner, "affiliation") {
		j, err := jid.Parse(af.Attr("jid"))
		a := af.Attr("affiliation")
		switch {
		case err != nil || !slices.Contains(affiliations, a):
			r.fail(stanza.NewError(stanza.BadRequest))
			return
		case j.Bare().String() == n.creator:
			// §8.9.2.4: the node must keep an owner; here the creator stays one.
			r.fail(stanza.NewError(stanza.NotAcceptable).WithText("the creator of a node stays its owner"))
			return
		}
		m := n.members[j.Bare().String()]
		m.JID = j.Bare().String()
		m.Affiliation = a
		if a == pubsub.None {
			m.Affiliation = ""
		}
		if !r.putMember(m) {
			return
		}
		if a == pubsub.Outcast {
			// §4.1: an outcast has no subscription, by bare or by any full JID.
			for _, k := range slices.Sorted(maps.Keys(n.members)) {
				s := n.members[k]
				if sj, err := jid.Parse(k); err == nil && sj.Bare() == j.Bare() && s.Subscription != "" {
					s.Subscription, s.SubID, s.Options = "", "", ""
					if !r.putMember(s) {
						return
					}
				}
			}
		}
	}
	r.result("")
}

// ---- notifications (§7.1.2, §12.5 message type) ----

// notify sends event (an <event/> payload) to every subscriber that may read the node and wants delivery: a
// message from the service, through the router, so each is delivered as RFC 6121 §8.5 says (a full JID to that
// resource, a bare JID to the user's resources).
func (n *node) notify(event string) {
	if !n.cfg.DeliverNotifications {
		return
	}
	var msg *stanza.Routed
	for _, k := range slices.Sorted(maps.Keys(n.members)) {
		m := n.members[k]
		if m.Subscription != pubsub.Subscribed || !pubsub.DecodeSubOptions(m.Options).Deliver {
			continue
		}
		j, err := jid.Parse(m.JID)
		if err != nil {
			continue
		}
		if ok, _ := n.access(j); !ok {
			continue
		}
		if msg == nil {
			msg = stanza.Generate("message", n.cfg.NotificationType, n.h.Service(), j, n.h.NextID("ps"), event)
			n.h.Route(msg)
			continue
		}
		n.h.Route(msg.Retarget(j))
	}
}
