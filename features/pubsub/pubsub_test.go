package pubsub

import (
	"fmt"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/protocol/pubsub"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

const (
	svcJID = "pubsub.localhost"
	alice  = "alice@localhost/a"
	bob    = "bob@localhost/b"
	carol  = "carol@localhost/c"
	ns     = pubsub.NS
	nsO    = pubsub.NSOwner
)

type fixture struct {
	t   *testing.T
	srv *featuretest.Server
	svc *featuretest.Service
	n   int
}

func setup(t *testing.T) *fixture {
	srv := featuretest.NewServer(t, Feature)
	return &fixture{t: t, srv: srv, svc: featuretest.NewService(t, srv, Feature.Service)}
}

// iq sends an IQ from from to the service and returns its answer; everything else routed meanwhile
// (notifications) is in rest.
func (f *fixture) iq(from, typ, payload string) (answer *stanza.Routed, rest []*stanza.Routed) {
	f.t.Helper()
	f.n++
	id := fmt.Sprintf("q%d", f.n)
	f.svc.Send(featuretest.Stanza(f.t, "<iq xmlns='jabber:client' from='"+from+"' to='"+svcJID+"' type='"+typ+"' id='"+id+"'>"+payload+"</iq>"))
	for _, st := range f.svc.Take() {
		if st.Head.Name == "iq" && st.Head.ID == id {
			if answer != nil {
				f.t.Fatalf("two answers to %s", payload)
			}
			if st.Head.From != svcJID || st.Head.To != from {
				f.t.Errorf("answer from %q to %q, want from the service to %s", st.Head.From, st.Head.To, from)
			}
			answer = st
			continue
		}
		rest = append(rest, st)
	}
	if answer == nil {
		f.t.Fatalf("no answer to %s", payload)
	}
	return answer, rest
}

// ok sends and fails unless the answer is a result; it returns the result's payload element (nil if empty) and
// the rest.
func (f *fixture) ok(from, typ, payload string) (*xmlstream.Node, []*stanza.Routed) {
	f.t.Helper()
	a, rest := f.iq(from, typ, payload)
	if a.Head.Type != "result" {
		f.t.Fatalf("%s: %s", payload, a.Raw)
	}
	kids := featuretest.Node(f.t, a).Elements()
	if len(kids) == 0 {
		return nil, rest
	}
	return kids[0], rest
}

// refused sends and checks the error condition (and the #errors app condition when app is not "").
func (f *fixture) refused(from, typ, payload string, cond stanza.Condition, app string) {
	f.t.Helper()
	a, _ := f.iq(from, typ, payload)
	if c := featuretest.ErrorCondition(f.t, a); c != string(cond) {
		f.t.Errorf("%s: condition %q, want %s (%s)", payload, c, cond, a.Raw)
		return
	}
	if app != "" && !strings.Contains(a.Raw, "<"+app+" xmlns='"+pubsub.NSErrors+"'") && !strings.Contains(a.Raw, "feature='"+app+"'") {
		f.t.Errorf("%s: no %s in %s", payload, app, a.Raw)
	}
}

func ps(inner string) string    { return "<pubsub xmlns='" + ns + "'>" + inner + "</pubsub>" }
func owner(inner string) string { return "<pubsub xmlns='" + nsO + "'>" + inner + "</pubsub>" }
func entry(id, text string) string {
	return "<item id='" + id + "'><entry xmlns='urn:test'>" + text + "</entry></item>"
}
func publish(node, items string) string {
	return ps("<publish node='" + node + "'>" + items + "</publish>")
}

func nodeConfig(fields ...string) string {
	b := "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + pubsub.NSNodeConfig + "</value></field>"
	for i := 0; i+1 < len(fields); i += 2 {
		b += "<field var='" + fields[i] + "'><value>" + fields[i+1] + "</value></field>"
	}
	return b + "</x>"
}

func subOptions(deliver string) string {
	return "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + pubsub.NSSubOptions +
		"</value></field><field var='pubsub#deliver'><value>" + deliver + "</value></field></x>"
}

// to lists the 'to' of the messages in rest.
func to(rest []*stanza.Routed) []string {
	var out []string
	for _, st := range rest {
		if st.Head.Name == "message" {
			out = append(out, st.Head.To)
		}
	}
	return out
}

func TestCreateConfigureDiscover(t *testing.T) {
	f := setup(t)
	f.ok(alice, "set", ps("<create node='news'/>"))
	f.refused(bob, "set", ps("<create node='news'/>"), stanza.Conflict, "")

	// Instant node (§8.1.2): the service names it.
	res, _ := f.ok(bob, "set", ps("<create/>"))
	inst := res.Child(ns, "create").Attr("node")
	if inst == "" {
		t.Fatalf("instant node answer %s", res.String())
	}

	items, _ := f.ok(carol, "get", "<query xmlns='"+stanza.NSDiscoIt+"'/>")
	if got := items.String(); !strings.Contains(got, "node='news'") || !strings.Contains(got, "node='"+inst+"'") || !strings.Contains(got, "jid='"+svcJID+"'") {
		t.Errorf("disco#items %s", got)
	}

	// §8.2: the owner reads and changes the configuration; nobody else may.
	cfg, _ := f.ok(alice, "get", owner("<configure node='news'/>"))
	if !strings.Contains(cfg.String(), "pubsub#access_model") || strings.Contains(cfg.String(), "<value>presence</value>") {
		t.Errorf("configuration form %s (presence access must not be offered)", cfg.String())
	}
	f.refused(bob, "get", owner("<configure node='news'/>"), stanza.Forbidden, "")
	f.ok(alice, "set", owner("<configure node='news'>"+nodeConfig("pubsub#title", "Daily news", "pubsub#max_items", "3")+"</configure>"))
	f.refused(alice, "set", owner("<configure node='news'>"+nodeConfig("pubsub#access_model", "presence")+"</configure>"), stanza.NotAcceptable, "")
	f.refused(alice, "set", owner("<configure node='news'>"+nodeConfig("pubsub#access_model", "roster")+"</configure>"), stanza.NotAcceptable, "")
	f.refused(alice, "set", owner("<configure node='news'>"+nodeConfig("pubsub#max_items", "5000")+"</configure>"), stanza.NotAcceptable, "")
	if f.srv.LimitHits[LimitItems] != 1 {
		t.Errorf("limit hits %v", f.srv.LimitHits)
	}

	// §5.4: the node's identity and meta-data.
	info, _ := f.ok(carol, "get", "<query xmlns='"+stanza.NSDiscoInf+"' node='news'/>")
	for _, want := range []string{"category='pubsub' type='leaf'", pubsub.NS + "#meta-data", "<value>Daily news</value>", "<value>alice@localhost</value>"} {
		if !strings.Contains(info.String(), want) {
			t.Errorf("node disco#info lacks %s: %s", want, info.String())
		}
	}
	f.refused(carol, "get", "<query xmlns='"+stanza.NSDiscoInf+"' node='nothing'/>", stanza.ItemNotFound, "")

	// §8.3 default configuration; §6.4 default subscription options.
	def, _ := f.ok(carol, "get", owner("<default/>"))
	if !strings.Contains(def.String(), pubsub.NSNodeConfig) {
		t.Errorf("default %s", def.String())
	}
	dso, _ := f.ok(carol, "get", ps("<default/>"))
	if !strings.Contains(dso.String(), "pubsub#deliver") {
		t.Errorf("default subscription options %s", dso.String())
	}

	// Collections are not implemented (§9).
	f.refused(alice, "set", ps("<create node='c'/><configure>"+nodeConfig("pubsub#node_type", "collection")+"</configure>"), stanza.FeatureNotImplemented, "collections")
	// Create and configure in one (§8.1.3).
	f.ok(alice, "set", ps("<create node='closed'/><configure>"+nodeConfig("pubsub#access_model", "whitelist")+"</configure>"))
	cfg, _ = f.ok(alice, "get", owner("<configure node='closed'/>"))
	if !strings.Contains(cfg.String(), "<value>whitelist</value></field>") {
		t.Errorf("create-and-configure did not apply: %s", cfg.String())
	}
}

func TestCreatePolicyAndLimits(t *testing.T) {
	f := setup(t)
	f.refused("eve@elsewhere.example/x", "set", ps("<create node='x'/>"), stanza.Forbidden, "")
	f.srv.Cfg.PubSub.Create = "admins"
	f.svc.Restart()
	f.refused(alice, "set", ps("<create node='x'/>"), stanza.Forbidden, "")
	f.srv.Admins[featuretest.MustJID("alice@localhost")] = true
	f.ok(alice, "set", ps("<create node='x'/>"))
	f.srv.Cfg.PubSub.MaxNodes = 1
	f.svc.Restart()
	f.refused(alice, "set", ps("<create node='y'/>"), stanza.PolicyViolation, "")
	if f.srv.LimitHits[LimitNodes] != 1 {
		t.Errorf("limit hits %v", f.srv.LimitHits)
	}
	f.refused(alice, "set", ps("<publish node='y'>"+entry("1", "x")+"</publish>"), stanza.ItemNotFound, "") // no auto-create
	f.refused(alice, "get", ps("<items/>"), stanza.BadRequest, "nodeid-required")
	f.refused(alice, "get", "<query xmlns='urn:nothing'/>", stanza.ServiceUnavailable, "")
}

func TestPublishSubscribeNotify(t *testing.T) {
	f := setup(t)
	f.ok(alice, "set", ps("<create node='n'/>"))

	// §6.1.3.1: the subscribed JID must be the requester's.
	f.refused(bob, "set", ps("<subscribe node='n' jid='carol@localhost'/>"), stanza.BadRequest, "invalid-jid")
	sub, _ := f.ok(bob, "set", ps("<subscribe node='n' jid='bob@localhost'/>"))
	s := sub.Child(ns, "subscription")
	if s == nil || s.Attr("subscription") != "subscribed" || s.Attr("subid") == "" || s.Attr("jid") != "bob@localhost" {
		t.Fatalf("subscription %s", sub.String())
	}
	f.ok(carol, "set", ps("<subscribe node='n' jid='"+carol+"'/>")) // a full JID

	// Only publishers publish (publish_model publishers).
	f.refused(bob, "set", publish("n", entry("1", "x")), stanza.Forbidden, "")
	res, rest := f.ok(alice, "set", publish("n", entry("first", "hello")))
	if it := res.Child(ns, "publish").Child(ns, "item"); it == nil || it.Attr("id") != "first" {
		t.Errorf("publish result %s", res.String())
	}
	if got := to(rest); len(got) != 2 || got[0] != "bob@localhost" || got[1] != carol {
		t.Fatalf("notified %v", got)
	}
	ev := rest[0].Raw
	if !strings.Contains(ev, "<event xmlns='"+pubsub.NSEvent+"'><items node='n'><item id='first' publisher='alice@localhost'><entry xmlns='urn:test'>hello</entry>") ||
		rest[0].Head.From != svcJID {
		t.Errorf("notification %s", ev)
	}

	// §6.3: options; deliver=false stops notifications to carol.
	opt, _ := f.ok(carol, "get", ps("<options node='n' jid='"+carol+"'/>"))
	if !strings.Contains(opt.String(), "pubsub#deliver") {
		t.Errorf("options %s", opt.String())
	}
	f.refused(bob, "get", ps("<options node='n' jid='"+carol+"'/>"), stanza.Forbidden, "")
	f.refused(alice, "get", ps("<options node='n' jid='alice@localhost'/>"), stanza.UnexpectedRequest, "not-subscribed")
	f.ok(carol, "set", ps("<options node='n' jid='"+carol+"'>"+subOptions("0")+"</options>"))
	bad := strings.Replace(subOptions("1"), "pubsub#deliver", "pubsub#digest", 1)
	f.refused(carol, "set", ps("<options node='n' jid='"+carol+"'>"+bad+"</options>"), stanza.BadRequest, "invalid-options")

	_, rest = f.ok(alice, "set", publish("n", entry("second", "again")))
	if got := to(rest); len(got) != 1 || got[0] != "bob@localhost" {
		t.Errorf("after deliver=0 notified %v", got)
	}

	// §7.2 retract with notification (notify_retract is on by default).
	_, rest = f.ok(alice, "set", ps("<retract node='n'><item id='first'/></retract>"))
	if len(rest) != 1 || !strings.Contains(rest[0].Raw, "<retract id='first'/>") {
		t.Errorf("retract notification %v", rest)
	}
	f.refused(alice, "set", ps("<retract node='n'><item id='first'/></retract>"), stanza.ItemNotFound, "")
	f.refused(bob, "set", ps("<retract node='n'><item id='second'/></retract>"), stanza.Forbidden, "")

	// §6.2 unsubscribe.
	f.refused(bob, "set", ps("<unsubscribe node='n' jid='bob@localhost' subid='wrong'/>"), stanza.NotAcceptable, "invalid-subid")
	f.ok(bob, "set", ps("<unsubscribe node='n' jid='bob@localhost'/>"))
	f.refused(bob, "set", ps("<unsubscribe node='n' jid='bob@localhost'/>"), stanza.UnexpectedRequest, "not-subscribed")
	_, rest = f.ok(alice, "set", publish("n", entry("third", "x")))
	if got := to(rest); len(got) != 0 {
		t.Errorf("after unsubscribing notified %v", got)
	}

	// Limits and preconditions (§7.1.3.5, §7.1.5).
	f.srv.Cfg.PubSub.MaxItemBytes = 40
	f.svc.Restart()
	f.refused(alice, "set", publish("n", entry("big", strings.Repeat("x", 50))), stanza.NotAcceptable, "payload-too-big")
	if f.srv.LimitHits[LimitItemBytes] != 1 {
		t.Errorf("limit hits %v", f.srv.LimitHits)
	}
	po := "<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" +
		pubsub.NSPublishOptions + "</value></field><field var='pubsub#access_model'><value>whitelist</value></field></x></publish-options>"
	f.refused(alice, "set", ps("<publish node='n'>"+entry("p", "x")+"</publish>"+po), stanza.Conflict, "precondition-not-met")
	f.refused(alice, "set", publish("n", "<item id='e'/>"), stanza.BadRequest, "payload-required")
}

func TestItemsLastItemAndPublishModel(t *testing.T) {
	f := setup(t)
	f.ok(alice, "set", ps("<create node='n'/>"))
	for i := 1; i <= 4; i++ {
		f.ok(alice, "set", publish("n", entry(fmt.Sprint(i), fmt.Sprint("v", i))))
	}
	res, _ := f.ok(bob, "get", ps("<items node='n' max_items='2'/>"))
	if got := res.String(); !strings.Contains(got, "<item id='3'>") || !strings.Contains(got, "<item id='4'>") || strings.Contains(got, "id='2'") ||
		strings.Index(got, "id='3'") > strings.Index(got, "id='4'") {
		t.Errorf("max_items=2: %s", got)
	}
	res, _ = f.ok(bob, "get", ps("<items node='n'><item id='1'/><item id='nope'/></items>"))
	if got := res.String(); !strings.Contains(got, "<item id='1'>") || strings.Contains(got, "id='4'") {
		t.Errorf("by id: %s", got)
	}
	f.refused(bob, "get", ps("<items node='n' max_items='zero'/>"), stanza.BadRequest, "")

	// §6.1.7: the newest item on subscription (send_last_published_item on_sub by default).
	_, rest := f.ok(bob, "set", ps("<subscribe node='n' jid='"+bob+"'/>"))
	if len(rest) != 1 || rest[0].Head.To != bob || !strings.Contains(rest[0].Raw, "<item id='4'") || !strings.Contains(rest[0].Raw, "urn:xmpp:delay") {
		t.Errorf("last item on subscribe: %v", rest)
	}

	// publish_model subscribers, then open.
	f.ok(alice, "set", owner("<configure node='n'>"+nodeConfig("pubsub#publish_model", "subscribers")+"</configure>"))
	f.ok(bob, "set", publish("n", entry("b", "by a subscriber")))
	f.refused(carol, "set", publish("n", entry("c", "x")), stanza.Forbidden, "")
	f.ok(alice, "set", owner("<configure node='n'>"+nodeConfig("pubsub#publish_model", "open")+"</configure>"))
	f.ok(carol, "set", publish("n", entry("c", "by anyone")))
}

func TestAffiliationsAndWhitelist(t *testing.T) {
	f := setup(t)
	f.ok(alice, "set", ps("<create node='w'/><configure>"+nodeConfig("pubsub#access_model", "whitelist")+"</configure>"))
	f.ok(alice, "set", publish("w", entry("1", "secret")))
	f.refused(bob, "get", ps("<items node='w'/>"), stanza.NotAllowed, "closed-node")
	f.refused(bob, "set", ps("<subscribe node='w' jid='bob@localhost'/>"), stanza.NotAllowed, "closed-node")

	// §8.9 the owner manages affiliations.
	f.refused(bob, "set", owner("<affiliations node='w'><affiliation jid='bob@localhost' affiliation='member'/></affiliations>"), stanza.Forbidden, "")
	f.ok(alice, "set", owner("<affiliations node='w'><affiliation jid='bob@localhost' affiliation='member'/>"+
		"<affiliation jid='carol@localhost' affiliation='publisher'/></affiliations>"))
	f.refused(alice, "set", owner("<affiliations node='w'><affiliation jid='alice@localhost' affiliation='none'/></affiliations>"), stanza.NotAcceptable, "")
	f.refused(alice, "set", owner("<affiliations node='w'><affiliation jid='bob@localhost' affiliation='king'/></affiliations>"), stanza.BadRequest, "")
	list, _ := f.ok(alice, "get", owner("<affiliations node='w'/>"))
	for _, want := range []string{"jid='alice@localhost' affiliation='owner'", "jid='bob@localhost' affiliation='member'", "jid='carol@localhost' affiliation='publisher'"} {
		if !strings.Contains(list.String(), want) {
			t.Errorf("affiliations lack %s: %s", want, list.String())
		}
	}
	f.ok(bob, "get", ps("<items node='w'/>"))
	f.ok(bob, "set", ps("<subscribe node='w' jid='bob@localhost'/>"))
	_, rest := f.ok(carol, "set", publish("w", entry("2", "by a publisher")))
	if got := to(rest); len(got) != 1 || got[0] != "bob@localhost" {
		t.Errorf("notified %v", got)
	}

	// §5.6 / §5.7 over the whole service, and for one node.
	subs, _ := f.ok(bob, "get", ps("<subscriptions/>"))
	if !strings.Contains(subs.String(), "node='w' jid='bob@localhost' subscription='subscribed'") {
		t.Errorf("bob's subscriptions %s", subs.String())
	}
	affs, _ := f.ok(carol, "get", ps("<affiliations/>"))
	if !strings.Contains(affs.String(), "node='w' affiliation='publisher'") {
		t.Errorf("carol's affiliations %s", affs.String())
	}
	affs, _ = f.ok(alice, "get", ps("<affiliations node='w'/>"))
	if !strings.Contains(affs.String(), "affiliation='owner'") {
		t.Errorf("alice's affiliation %s", affs.String())
	}

	// Outcast: the subscription goes, and every request is forbidden (§4.1).
	f.ok(alice, "set", owner("<affiliations node='w'><affiliation jid='bob@localhost' affiliation='outcast'/></affiliations>"))
	f.refused(bob, "get", ps("<items node='w'/>"), stanza.Forbidden, "")
	f.refused(bob, "set", ps("<subscribe node='w' jid='bob@localhost'/>"), stanza.Forbidden, "")
	_, rest = f.ok(alice, "set", publish("w", entry("3", "x")))
	if got := to(rest); len(got) != 0 {
		t.Errorf("an outcast was notified: %v", got)
	}

	// §8.8 the owner manages subscriptions.
	f.ok(alice, "set", owner("<subscriptions node='w'><subscription jid='carol@localhost' subscription='subscribed'/></subscriptions>"))
	sl, _ := f.ok(alice, "get", owner("<subscriptions node='w'/>"))
	if !strings.Contains(sl.String(), "jid='carol@localhost' subscription='subscribed'") || strings.Contains(sl.String(), "bob@") {
		t.Errorf("subscriptions %s", sl.String())
	}
}

func TestDeletePurgeAndPersistence(t *testing.T) {
	f := setup(t)
	f.ok(alice, "set", ps("<create node='d'/>"))
	f.ok(bob, "set", ps("<subscribe node='d' jid='bob@localhost'/>"))
	f.ok(alice, "set", publish("d", entry("1", "kept")))
	f.ok(alice, "set", owner("<affiliations node='d'><affiliation jid='carol@localhost' affiliation='publisher'/></affiliations>"))

	// Everything acknowledged is in storage: a new service and new node actors see it.
	f.svc.Restart()
	f.svc.Hibernate()
	res, _ := f.ok(carol, "get", ps("<items node='d'/>"))
	if !strings.Contains(res.String(), "kept") {
		t.Errorf("after restart: %s", res.String())
	}
	_, rest := f.ok(carol, "set", publish("d", entry("2", "x")))
	if got := to(rest); len(got) != 1 || got[0] != "bob@localhost" {
		t.Errorf("after restart notified %v", got)
	}
	spawned := f.svc.Spawned

	// §8.5 purge.
	_, rest = f.ok(alice, "set", owner("<purge node='d'/>"))
	if len(rest) != 1 || !strings.Contains(rest[0].Raw, "<purge node='d'/>") {
		t.Errorf("purge notification %v", rest)
	}
	res, _ = f.ok(carol, "get", ps("<items node='d'/>"))
	if strings.Contains(res.String(), "<item ") {
		t.Errorf("after purge: %s", res.String())
	}

	// §8.4 delete: subscribers are told (with the redirect), the node is gone, the name is free again.
	f.refused(carol, "set", owner("<delete node='d'/>"), stanza.Forbidden, "")
	_, rest = f.ok(alice, "set", owner("<delete node='d'><redirect uri='xmpp:pubsub.localhost?;node=e'/></delete>"))
	if len(rest) != 1 || rest[0].Head.To != "bob@localhost" || !strings.Contains(rest[0].Raw, "<delete node='d'><redirect uri='xmpp:pubsub.localhost?;node=e'/></delete>") {
		t.Errorf("delete notification %v", rest)
	}
	f.refused(carol, "get", ps("<items node='d'/>"), stanza.ItemNotFound, "")
	f.ok(carol, "set", ps("<create node='d'/>"))
	res, _ = f.ok(carol, "get", ps("<items node='d'/>"))
	if strings.Contains(res.String(), "<item ") {
		t.Errorf("a node created again has old items: %s", res.String())
	}
	aff, _ := f.ok(carol, "get", owner("<affiliations node='d'/>"))
	if !strings.Contains(aff.String(), "jid='carol@localhost' affiliation='owner'") || strings.Contains(aff.String(), "alice") {
		t.Errorf("the new node's affiliations %s", aff.String())
	}
	if f.svc.Spawned != spawned {
		t.Errorf("the node actor was respawned (%d → %d): it should reload by itself", spawned, f.svc.Spawned)
	}
	f.svc.Restart()
	items, _ := f.ok(bob, "get", "<query xmlns='"+stanza.NSDiscoIt+"'/>")
	if strings.Count(items.String(), "<item ") != 1 {
		t.Errorf("disco#items after restart %s", items.String())
	}
}

func TestMessagesAndJIDs(t *testing.T) {
	f := setup(t)
	f.svc.Send(featuretest.Stanza(t, "<message xmlns='jabber:client' from='"+alice+"' to='"+svcJID+"' id='m1'><body>hi</body></message>"))
	got := f.svc.Take()
	if len(got) != 1 || featuretest.ErrorCondition(t, got[0]) != string(stanza.ServiceUnavailable) {
		t.Errorf("message to the service: %v", got)
	}
	f.svc.Send(featuretest.Stanza(t, "<iq xmlns='jabber:client' from='"+alice+"' to='node@"+svcJID+"' type='get' id='j1'>"+ps("<items node='x'/>")+"</iq>"))
	got = f.svc.Take()
	if len(got) != 1 || featuretest.ErrorCondition(t, got[0]) != string(stanza.ServiceUnavailable) {
		t.Errorf("iq to a JID at the service: %v", got)
	}
	f.svc.Send(featuretest.Stanza(t, "<iq xmlns='jabber:client' from='"+alice+"' to='"+svcJID+"' type='result' id='r1'/>"))
	if got := f.svc.Take(); len(got) != 0 {
		t.Errorf("a result was answered: %v", got)
	}
}
