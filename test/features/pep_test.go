package features

import (
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/protocol/caps"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// XEP-0163 personal eventing, end to end with mellium.im/xmpp clients that announce XEP-0115 caps and answer the
// server's caps queries as real clients do.

const (
	nsPubSub      = "http://jabber.org/protocol/pubsub"
	nsPubSubEvent = nsPubSub + "#event"
	nsPubSubOwner = nsPubSub + "#owner"
	nsPubSubErr   = nsPubSub + "#errors"
	nsAvatarMeta  = "urn:xmpp:avatar:metadata"
	nsLegacyOMEMO = "eu.siacs.conversations.axolotl"
	nsOMEMO2      = "urn:xmpp:omemo:2"
)

// withCaps makes c announce caps with features (each also gets the base disco features), answers the server's
// caps query, and sends initial presence; it waits until the server has verified them (the query answered).
func withCaps(t *testing.T, c *xmppclient.Client, features ...string) {
	t.Helper()
	info := "<identity category='client' type='pc' name='pep-test'/>"
	all := append([]string{"http://jabber.org/protocol/caps", nsDiscoInfo}, features...)
	for _, f := range all {
		info += "<feature var='" + f + "'/>"
	}
	q, err := xmlstream.ParseNode("<query xmlns='"+nsDiscoInfo+"'>"+info+"</query>", "jabber:client")
	if err != nil {
		t.Fatal(err)
	}
	s, err := caps.String(q)
	if err != nil {
		t.Fatal(err)
	}
	ver := caps.Hash("sha-1", s)
	const node = "https://xmppd.test/pep"
	asked := make(chan struct{}, 1)
	c.SetAnswer(func(e *xmppclient.Elem) string {
		qe := e.Child(nsDiscoInfo, "query")
		if qe == nil || qe.Get("node") != node+"#"+ver {
			return ""
		}
		select {
		case asked <- struct{}{}:
		default:
		}
		return "<iq type='result' id='" + e.Get("id") + "' to='" + e.Get("from") + "'><query xmlns='" + nsDiscoInfo + "' node='" + qe.Get("node") + "'>" + info + "</query></iq>"
	})
	c.Send("<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='" + node + "' ver='" + ver + "'/></presence>")
	select {
	case <-asked:
		time.Sleep(100 * time.Millisecond) // the answer is on its way to the server
	case <-time.After(2 * time.Second):
		// A ver the cache already holds is not asked again.
	}
}

func isEvent(from, node string) func(*xmppclient.Elem) bool {
	return func(e *xmppclient.Elem) bool {
		ev := e.Child(nsPubSubEvent, "event")
		// mellium leaves out a 'from' that is the client's own bare JID (RFC 6120 §8.1.2.1: the same thing).
		if !e.Is("", "message") || ev == nil || (e.Get("from") != "" && !xmppclient.JIDMatch(e.Get("from"), from)) {
			return false
		}
		for _, k := range ev.Kids {
			if k.Get("node") == node {
				return true
			}
		}
		return false
	}
}

func publishIQ(node, id, payload, options string) string {
	s := "<iq type='set'><pubsub xmlns='" + nsPubSub + "'><publish node='" + node + "'><item"
	if id != "" {
		s += " id='" + id + "'"
	}
	s += ">" + payload + "</item></publish>"
	if options != "" {
		s += "<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" +
			nsPubSub + "#publish-options</value></field>" + options + "</x></publish-options>"
	}
	return s + "</pubsub></iq>"
}

func itemsIQ(to, node string) string {
	return "<iq type='get' to='" + to + "'><pubsub xmlns='" + nsPubSub + "'><items node='" + node + "'/></pubsub></iq>"
}

func items(e *xmppclient.Elem) []*xmppclient.Elem {
	ps := e.Child(nsPubSub, "pubsub")
	if ps == nil || ps.Child(nsPubSub, "items") == nil {
		return nil
	}
	return ps.Child(nsPubSub, "items").Children(nsPubSub, "item")
}

func wantPubSubError(t *testing.T, what string, e *xmppclient.Elem, cond, app string) {
	t.Helper()
	if e.Get("type") != "error" || errCond(e) != cond {
		t.Fatalf("%s: want %s, got %s", what, cond, e)
	}
	if app != "" && e.Child("", "error").Child(nsPubSubErr, app) == nil {
		t.Fatalf("%s: want <%s/> from %s, got %s", what, app, nsPubSubErr, e)
	}
}

func openOption() string {
	return "<field var='pubsub#access_model'><value>open</value></field>"
}

func TestPEPDiscoInfo(t *testing.T) {
	s := server(t)
	a, apw := s.user(t, "alice")
	alice := online(t, s, a, apw, "pc")
	q := mustResult(t, alice.IQ("<iq type='get' to='"+s.bare(a)+"'><query xmlns='"+nsDiscoInfo+"'/></iq>")).Child(nsDiscoInfo, "query")
	pep := false
	for _, id := range q.Children("", "identity") {
		pep = pep || (id.Get("category") == "pubsub" && id.Get("type") == "pep")
	}
	if !pep {
		t.Errorf("no pubsub/pep identity: %s", q)
	}
	for _, v := range []string{nsPubSub + "#publish", nsPubSub + "#publish-options", nsPubSub + "#auto-create", nsPubSub + "#access-open", nsPubSub + "#last-published", nsPubSub + "#filtered-notifications"} {
		if !hasFeature(q, v) {
			t.Errorf("account disco#info lacks %s", v)
		}
	}
	// The nodes are listed in disco#items once there are some.
	mustResult(t, alice.IQ(publishIQ("urn:example:n", "1", "<n xmlns='urn:example:n'/>", "")))
	its := mustResult(t, alice.IQ("<iq type='get' to='"+s.bare(a)+"'><query xmlns='"+nsDiscoItems+"'/></iq>")).Child(nsDiscoItems, "query")
	if !strings.Contains(its.String(), "urn:example:n") {
		t.Errorf("disco#items lacks the node: %s", its)
	}
}

// Notifications go to contacts (and the owner's own resources) whose caps carry node+notify, not to others.
func TestPEPNotifyByCaps(t *testing.T) {
	s := server(t)
	a, apw := s.user(t, "alice")
	b, bpw := s.user(t, "bob")
	c, cpw := s.user(t, "carol")
	A := s.bare(a)
	alice := online(t, s, a, apw, "pc")
	bob := online(t, s, b, bpw, "phone")
	subscribeBoth(t, alice, bob, A, s.bare(b))
	// bob's second client wants avatars; his first does not; carol (a stranger) wants them too.
	bob2 := mustLogin(t, s, b, bpw, loginOpts{resource: "tablet"})
	withCaps(t, bob2, nsAvatarMeta+"+notify")
	carol := mustLogin(t, s, c, cpw, loginOpts{resource: "x"})
	withCaps(t, carol, nsAvatarMeta+"+notify")
	alice2 := mustLogin(t, s, a, apw, loginOpts{resource: "own"})
	withCaps(t, alice2, nsAvatarMeta+"+notify")
	time.Sleep(300 * time.Millisecond)

	meta := "<metadata xmlns='" + nsAvatarMeta + "'><info bytes='12' id='abc' height='1' width='1' type='image/png'/></metadata>"
	res := mustResult(t, alice.IQ(publishIQ(nsAvatarMeta, "abc", meta, "")))
	if pub := res.Child(nsPubSub, "pubsub"); pub == nil || pub.Child(nsPubSub, "publish").Child(nsPubSub, "item").Get("id") != "abc" {
		t.Errorf("publish result: %s", res)
	}
	ev := bob2.Expect("bob's +notify client gets the avatar", isEvent(A, nsAvatarMeta))
	if !strings.Contains(ev.String(), "id='abc'") && !strings.Contains(ev.String(), `id="abc"`) {
		t.Errorf("event: %s", ev)
	}
	if _, err := alice2.Wait(isEvent(A, nsAvatarMeta), 5*time.Second); err != nil {
		t.Fatalf("owner: %v\n%s", err, alice2.TranscriptTail(20))
	}
	bob.Absent("a client without +notify", 500*time.Millisecond, isEvent(A, nsAvatarMeta))
	carol.Absent("a stranger (presence access)", 300*time.Millisecond, isEvent(A, nsAvatarMeta))

	// A contact who logs in later gets the last item (XEP-0163 §4.3.2).
	bob3 := mustLogin(t, s, b, bpw, loginOpts{resource: "laptop"})
	withCaps(t, bob3, nsAvatarMeta+"+notify", "urn:example:other")
	last := bob3.Expect("last item on login", isEvent(A, nsAvatarMeta))
	if last.Child("urn:xmpp:delay", "delay") == nil {
		t.Errorf("last item without delay: %s", last)
	}

	// Retraction is announced (notify_retract defaults to true).
	mustResult(t, alice.IQ("<iq type='set'><pubsub xmlns='"+nsPubSub+"'><retract node='"+nsAvatarMeta+"'><item id='abc'/></retract></pubsub></iq>"))
	r := bob2.Expect("retract notification", isEvent(A, nsAvatarMeta))
	if r.Child(nsPubSubEvent, "event").Child(nsPubSubEvent, "items").Child(nsPubSubEvent, "retract") == nil {
		t.Errorf("not a retraction: %s", r)
	}
}

// XEP-0060 §6.5.9 access models and publish-options preconditions (§7.1.5).
func TestPEPAccessAndPublishOptions(t *testing.T) {
	s := server(t)
	a, apw := s.user(t, "alice")
	b, bpw := s.user(t, "bob")
	d, dpw := s.user(t, "dave")
	A := s.bare(a)
	alice := online(t, s, a, apw, "pc")
	bob := online(t, s, b, bpw, "pc")
	subscribeBoth(t, alice, bob, A, s.bare(b))
	dave := online(t, s, d, dpw, "pc")

	mustResult(t, alice.IQ(publishIQ("urn:example:mood", "m", "<mood xmlns='urn:example:mood'>happy</mood>", "")))
	if its := items(mustResult(t, bob.IQ(itemsIQ(A, "urn:example:mood")))); len(its) != 1 {
		t.Errorf("contact reads a presence node: %d items", len(its))
	}
	wantPubSubError(t, "stranger reads a presence node", dave.IQ(itemsIQ(A, "urn:example:mood")), "not-authorized", "presence-subscription-required")
	wantPubSubError(t, "missing node", bob.IQ(itemsIQ(A, "urn:example:none")), "item-not-found", "")
	wantPubSubError(t, "a contact publishes", bob.IQ(strings.Replace(publishIQ("urn:example:mood", "", "<x xmlns='u'/>", ""), "type='set'", "type='set' to='"+A+"'", 1)), "forbidden", "")

	// publish-options: auto-create with open access, then the same options pass and different ones fail.
	mustResult(t, alice.IQ(publishIQ("urn:example:open", "1", "<o xmlns='urn:example:open'/>", openOption())))
	mustResult(t, alice.IQ(publishIQ("urn:example:open", "2", "<o xmlns='urn:example:open'/>", openOption())))
	wantPubSubError(t, "precondition", alice.IQ(publishIQ("urn:example:open", "3", "<o xmlns='urn:example:open'/>",
		"<field var='pubsub#access_model'><value>presence</value></field>")), "conflict", "precondition-not-met")
	if its := items(mustResult(t, dave.IQ(itemsIQ(A, "urn:example:open")))); len(its) != 1 || its[0].Get("id") != "2" {
		t.Errorf("stranger reads an open node (max_items 1 keeps the last): %v", its)
	}
	// max_items=max keeps every item.
	for _, id := range []string{"a", "b", "c"} {
		mustResult(t, alice.IQ(publishIQ("urn:example:many", id, "<m xmlns='urn:example:many'/>",
			"<field var='pubsub#max_items'><value>max</value></field><field var='pubsub#persist_items'><value>true</value></field>")))
	}
	if its := items(mustResult(t, alice.IQ(itemsIQ(A, "urn:example:many")))); len(its) != 3 || its[0].Get("id") != "a" {
		t.Errorf("max_items=max: %v", its)
	}
	one := "<iq type='get' to='" + A + "'><pubsub xmlns='" + nsPubSub + "'><items node='urn:example:many' max_items='1'/></pubsub></iq>"
	if its := items(mustResult(t, alice.IQ(one))); len(its) != 1 || its[0].Get("id") != "c" {
		t.Errorf("max_items='1' returns the newest: %v", its)
	}

	// whitelist: only the owner and members read.
	mustResult(t, alice.IQ(publishIQ("urn:example:private", "p", "<p xmlns='urn:example:private'/>",
		"<field var='pubsub#access_model'><value>whitelist</value></field>")))
	wantPubSubError(t, "whitelist", bob.IQ(itemsIQ(A, "urn:example:private")), "not-allowed", "closed-node")
	mustResult(t, alice.IQ("<iq type='set'><pubsub xmlns='"+nsPubSubOwner+"'><affiliations node='urn:example:private'><affiliation jid='"+s.bare(b)+"' affiliation='member'/></affiliations></pubsub></iq>"))
	if its := items(mustResult(t, bob.IQ(itemsIQ(A, "urn:example:private")))); len(its) != 1 {
		t.Errorf("member reads a whitelist node: %v", its)
	}
	// Node configuration belongs to the owner.
	wantPubSubError(t, "contact configures", bob.IQ("<iq type='get' to='"+A+"'><pubsub xmlns='"+nsPubSubOwner+"'><configure node='urn:example:private'/></pubsub></iq>"), "forbidden", "")
	cfg := mustResult(t, alice.IQ("<iq type='get'><pubsub xmlns='"+nsPubSubOwner+"'><configure node='urn:example:private'/></pubsub></iq>"))
	if !strings.Contains(cfg.String(), "whitelist") {
		t.Errorf("configure form: %s", cfg)
	}
	wantPubSubError(t, "unknown access model", alice.IQ("<iq type='set'><pubsub xmlns='"+nsPubSubOwner+"'><configure node='urn:example:private'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>"+nsPubSub+"#node_config</value></field><field var='pubsub#access_model'><value>everybody</value></field></x></configure></pubsub></iq>"), "not-acceptable", "")
	// Quotas: an item over pep.max_item_bytes.
	big := "<b xmlns='urn:example:big'>" + strings.Repeat("x", 5000) + "</b>"
	wantPubSubError(t, "item too big", alice.IQ(publishIQ("urn:example:big", "", big, "")), "not-acceptable", "payload-too-big")
}

// OMEMO (XEP-0384, both namespaces): device list and bundles published open, fetched by a stranger; a contact
// with devicelist+notify hears of a change.
func TestPEPOMEMO(t *testing.T) {
	s := server(t)
	a, apw := s.user(t, "alice")
	b, bpw := s.user(t, "bob")
	d, dpw := s.user(t, "dave")
	A := s.bare(a)
	alice := online(t, s, a, apw, "pc")
	bob := online(t, s, b, bpw, "pc")
	subscribeBoth(t, alice, bob, A, s.bare(b))
	bobC := mustLogin(t, s, b, bpw, loginOpts{resource: "conversations"})
	withCaps(t, bobC, nsLegacyOMEMO+".devicelist+notify", nsOMEMO2+":devices+notify")
	dave := online(t, s, d, dpw, "pc")

	list := "<list xmlns='" + nsLegacyOMEMO + "'><device id='1234'/></list>"
	mustResult(t, alice.IQ(publishIQ(nsLegacyOMEMO+".devicelist", "current", list, openOption())))
	bobC.Expect("legacy device list notification", isEvent(A, nsLegacyOMEMO+".devicelist"))
	bundle := "<bundle xmlns='" + nsLegacyOMEMO + "'><signedPreKeyPublic signedPreKeyId='1'>BQ==</signedPreKeyPublic><identityKey>BQ==</identityKey><prekeys><preKeyPublic preKeyId='1'>BQ==</preKeyPublic></prekeys></bundle>"
	mustResult(t, alice.IQ(publishIQ(nsLegacyOMEMO+".bundles:1234", "current", bundle, openOption())))

	devices := "<devices xmlns='" + nsOMEMO2 + "'><device id='1234'/></devices>"
	mustResult(t, alice.IQ(publishIQ(nsOMEMO2+":devices", "current", devices, openOption())))
	bobC.Expect("omemo:2 device list notification", isEvent(A, nsOMEMO2+":devices"))
	b2 := "<bundle xmlns='" + nsOMEMO2 + "'><spk id='1'>BQ==</spk><spks>BQ==</spks><ik>BQ==</ik><prekeys><pk id='1'>BQ==</pk></prekeys></bundle>"
	mustResult(t, alice.IQ(publishIQ(nsOMEMO2+":bundles", "1234", b2, openOption()+"<field var='pubsub#max_items'><value>max</value></field>")))

	// dave, not a contact, fetches everything he needs to start an encrypted session.
	for _, n := range []string{nsLegacyOMEMO + ".devicelist", nsLegacyOMEMO + ".bundles:1234", nsOMEMO2 + ":devices", nsOMEMO2 + ":bundles"} {
		its := items(mustResult(t, dave.IQ(itemsIQ(A, n))))
		if len(its) != 1 {
			t.Errorf("stranger fetches %s: %v", n, its)
		}
	}
	// A changed device list reaches the contact again.
	mustResult(t, alice.IQ(publishIQ(nsLegacyOMEMO+".devicelist", "current", "<list xmlns='"+nsLegacyOMEMO+"'><device id='1234'/><device id='5678'/></list>", openOption())))
	ev := bobC.Expect("device list change", isEvent(A, nsLegacyOMEMO+".devicelist"))
	if !strings.Contains(ev.String(), "5678") {
		t.Errorf("change: %s", ev)
	}
}

// Explicit XEP-0060 subscriptions: a stranger subscribes to an open node, gets the last item (on_sub) and later
// publications, and unsubscribes.
func TestPEPSubscribe(t *testing.T) {
	s := server(t)
	a, apw := s.user(t, "alice")
	d, dpw := s.user(t, "dave")
	A, D := s.bare(a), s.bare(d)
	alice := online(t, s, a, apw, "pc")
	dave := online(t, s, d, dpw, "pc")
	mustResult(t, alice.IQ(publishIQ("urn:example:blog", "1", "<entry xmlns='urn:example:blog'>one</entry>", openOption())))
	sub := mustResult(t, dave.IQ("<iq type='set' to='"+A+"'><pubsub xmlns='"+nsPubSub+"'><subscribe node='urn:example:blog' jid='"+D+"'/></pubsub></iq>"))
	if el := sub.Child(nsPubSub, "pubsub").Child(nsPubSub, "subscription"); el == nil || el.Get("subscription") != "subscribed" || el.Get("subid") == "" {
		t.Errorf("subscribe result: %s", sub)
	}
	dave.Expect("last item on subscription", isEvent(A, "urn:example:blog"))
	mustResult(t, alice.IQ(publishIQ("urn:example:blog", "2", "<entry xmlns='urn:example:blog'>two</entry>", "")))
	if ev := dave.Expect("publication to a subscriber", isEvent(A, "urn:example:blog")); !strings.Contains(ev.String(), "two") {
		t.Errorf("event: %s", ev)
	}
	subs := mustResult(t, alice.IQ("<iq type='get'><pubsub xmlns='"+nsPubSubOwner+"'><subscriptions node='urn:example:blog'/></pubsub></iq>"))
	if !strings.Contains(subs.String(), D) {
		t.Errorf("owner's subscription list: %s", subs)
	}
	wantPubSubError(t, "subscribe someone else", dave.IQ("<iq type='set' to='"+A+"'><pubsub xmlns='"+nsPubSub+"'><subscribe node='urn:example:blog' jid='"+A+"'/></pubsub></iq>"), "bad-request", "invalid-jid")
	mustResult(t, dave.IQ("<iq type='set' to='"+A+"'><pubsub xmlns='"+nsPubSub+"'><unsubscribe node='urn:example:blog' jid='"+D+"'/></pubsub></iq>"))
	wantPubSubError(t, "unsubscribe twice", dave.IQ("<iq type='set' to='"+A+"'><pubsub xmlns='"+nsPubSub+"'><unsubscribe node='urn:example:blog' jid='"+D+"'/></pubsub></iq>"), "unexpected-request", "not-subscribed")
	mustResult(t, alice.IQ(publishIQ("urn:example:blog", "3", "<entry xmlns='urn:example:blog'>three</entry>", "")))
	dave.Absent("no event after unsubscribing", 500*time.Millisecond, isEvent(A, "urn:example:blog"))

	// Delete: the node and its items are gone.
	mustResult(t, alice.IQ("<iq type='set'><pubsub xmlns='"+nsPubSubOwner+"'><delete node='urn:example:blog'/></pubsub></iq>"))
	wantPubSubError(t, "deleted node", dave.IQ(itemsIQ(A, "urn:example:blog")), "item-not-found", "")
}

// Nodes, items and configuration survive a restart.
func TestPEPPersistence(t *testing.T) {
	s := server(t)
	a, apw := s.user(t, "alice")
	d, dpw := s.user(t, "dave")
	A := s.bare(a)
	alice := online(t, s, a, apw, "pc")
	mustResult(t, alice.IQ(publishIQ("urn:example:keep", "k", "<k xmlns='urn:example:keep'>kept</k>", openOption())))
	alice.Close()
	s.Restart(t)
	dave := online(t, s, d, dpw, "pc")
	its := items(mustResult(t, dave.IQ(itemsIQ(A, "urn:example:keep"))))
	if len(its) != 1 || !strings.Contains(its[0].String(), "kept") {
		t.Errorf("after restart: %v", its)
	}
}
