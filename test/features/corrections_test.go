package features

import (
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// End-to-end tests of the RFC 6121 / XEP corrections: each asserts the exact stanza or error condition the
// specification asks for, and its negative twin. Helpers are in corrections_helpers_test.go.

// ---- 1. RFC 6121 §2.6.3: every roster push carries the new version ----

func TestCorrectionRosterVersionOnEveryPush(t *testing.T) {
	s := corrShared(t)
	a, apw := s.account(t, "alice")
	A := s.bare(a)
	one := s.connected(t, a, apw, "one")
	two := s.connected(t, a, apw, "two")
	never := s.connected(t, a, apw, "never")
	contact := "t@" + s.Domain

	// Both interested resources fetch the roster without 'ver' (RFC 6121 §2.1.3).
	for _, c := range []*xmppclient.Client{one, two} {
		r := corrIQResult(t, "roster get", c.IQ("<iq type='get' id='"+corrID("rg")+"'><query xmlns='jabber:iq:roster'/></iq>"))
		if q := r.Child(xmppclient.NSRoster, "query"); q == nil || len(q.Kids) != 0 {
			t.Fatalf("%s: fresh roster: %s", c.JID, r)
		}
	}
	push := func(c *xmppclient.Client, what, name string) string {
		t.Helper()
		p := c.Expect(what, xmppclient.IsRosterPush(contact))
		q := p.Child(xmppclient.NSRoster, "query")
		if !q.Has("ver") || q.Get("ver") == "" {
			t.Errorf("%s: %s without a non-empty ver (RFC 6121 §2.6.3: the server MUST include the new version): %s", c.JID, what, p)
		}
		if f := p.Get("from"); f != "" && f != A {
			t.Errorf("%s: %s from %q (RFC 6121 §2.1.6: none or the account's bare JID): %s", c.JID, what, f, p)
		}
		items := q.Children(xmppclient.NSRoster, "item")
		if len(items) != 1 || items[0].Get("name") != name || items[0].Get("subscription") != "none" {
			t.Errorf("%s: %s: want one item %s name=%q subscription=none: %s", c.JID, what, contact, name, p)
		}
		return q.Get("ver")
	}

	corrIQResult(t, "first roster set", one.IQ("<iq type='set' id='"+corrID("rs")+"'><query xmlns='jabber:iq:roster'><item jid='"+contact+"'/></query></iq>"))
	v1 := push(one, "first push", "")
	if v := push(two, "first push", ""); v != v1 {
		t.Errorf("the two resources got different versions for the same push: %q and %q", v1, v)
	}
	corrIQResult(t, "second roster set", one.IQ("<iq type='set' id='"+corrID("rs")+"'><query xmlns='jabber:iq:roster'><item jid='"+contact+"' name='T'/></query></iq>"))
	v2 := push(one, "second push", "T")
	if v := push(two, "second push", "T"); v != v2 {
		t.Errorf("the two resources got different versions for the same push: %q and %q", v2, v)
	}
	if v1 == v2 {
		t.Errorf("two successive pushes carry the same version %q", v1)
	}

	// §2.6.3: a get with the current version is answered with an empty result (no <query/>).
	r := corrIQResult(t, "roster get with the current ver", one.IQ("<iq type='get' id='"+corrID("rg")+"'><query xmlns='jabber:iq:roster' ver='"+v2+"'/></iq>"))
	if len(r.Kids) != 0 {
		t.Errorf("roster get with the current ver %q: want an empty IQ result, got %s", v2, r)
	}
	// With the previous version: the whole roster with the current version, or an empty result followed by the
	// push that brings the client up to date (§2.6.3 allows both).
	r = corrIQResult(t, "roster get with a stale ver", two.IQ("<iq type='get' id='"+corrID("rg")+"'><query xmlns='jabber:iq:roster' ver='"+v1+"'/></iq>"))
	if q := r.Child(xmppclient.NSRoster, "query"); q != nil {
		if q.Get("ver") != v2 || q.Child(xmppclient.NSRoster, "item").Get("name") != "T" {
			t.Errorf("roster get with stale ver %q: want the roster at ver %q, got %s", v1, v2, r)
		}
	} else if v := push(two, "interim push after a stale ver", "T"); v != v2 {
		t.Errorf("interim push carries ver %q, want %q", v, v2)
	}

	// Negative twin: a resource that never fetched the roster gets no push (RFC 6121 §2.1.6: pushes go to
	// interested resources).
	corrSync(t, never, s.Domain)
	never.Absent("roster push to a resource that never requested the roster", 300*time.Millisecond, corrIsRosterPush)
}

// ---- 2. RFC 6121 §8.5.3.2.1: a message to a full JID with no matching resource ----

// corrBobHome logs in alice (resource "pc") and bob (resource "home"), both available.
func corrBobHome(t *testing.T, s *corrServer) (alice, bob *xmppclient.Client, B string) {
	t.Helper()
	a, apw := s.account(t, "alice")
	b, bpw := s.account(t, "bob")
	alice = s.online(t, a, apw, "pc")
	bob = s.online(t, b, bpw, "home")
	return alice, bob, s.bare(b)
}

func TestCorrectionNormalMessageToMissingResourceBounces(t *testing.T) {
	s := corrShared(t)
	alice, bob, B := corrBobHome(t, s)
	missing := B + "/not-online"
	for _, c := range []struct{ id, typeAttr string }{{"n1", " type='normal'"}, {"n2", ""}} {
		alice.Send("<message to='" + missing + "'" + c.typeAttr + " id='" + c.id + "'><body>x</body></message>")
		e := alice.Expect("bounce of "+c.id, corrIsMessageError(c.id))
		corrStanzaError(t, "message"+c.typeAttr+" to a missing resource", "message", "service-unavailable", e)
		if typ, _ := e.StanzaError(); typ != "cancel" {
			t.Errorf("%s: error type %q, want cancel (RFC 6120 §8.3.3.19): %s", c.id, typ, e)
		}
		if e.Get("from") != missing {
			t.Errorf("%s: the error comes from %q, want the address the message was sent to, %s (RFC 6120 §8.3.1)", c.id, e.Get("from"), missing)
		}
	}
	// Nothing reached bob's one resource: wait, then a round trip to bob's server flushes anything in flight.
	time.Sleep(time.Second)
	corrSync(t, bob, s.Domain)
	bob.Absent("normal message to another resource", 0, xmppclient.IsMessageWithBody("x"))
}

func TestCorrectionHeadlineToMissingResourceDropped(t *testing.T) {
	s := corrShared(t)
	alice, bob, B := corrBobHome(t, s)
	alice.Send("<message to='" + B + "/not-online' type='headline' id='h1'><body>x</body></message>")
	time.Sleep(time.Second)
	corrSync(t, bob, s.Domain)
	bob.Absent("headline to another resource", 0, xmppclient.IsMessageWithBody("x"))
	corrSync(t, alice, s.Domain)
	alice.Absent("error for a headline (RFC 6121 §8.5.3.2.1: silently ignored)", 0, corrIsAnyMessageError)
}

// Negative twin of the two above: a chat message is handled as if addressed to the bare JID.
func TestCorrectionChatToMissingResourceDelivered(t *testing.T) {
	s := corrShared(t)
	alice, bob, B := corrBobHome(t, s)
	alice.Send("<message to='" + B + "/not-online' type='chat' id='c1'><body>x</body></message>")
	m := bob.Expect("chat to another resource, delivered by the bare-JID rules", xmppclient.IsMessageWithBody("x"))
	if m.Get("type") != "chat" || m.Get("from") != alice.JID.String() || m.Get("id") != "c1" {
		t.Errorf("delivered chat: want type chat, id c1, from %s: %s", alice.JID, m)
	}
	corrSync(t, alice, s.Domain)
	alice.Absent("error for a delivered chat", 0, corrIsAnyMessageError)
}

// With bob offline entirely, a chat to one of his full JIDs goes to offline storage and comes with an XEP-0203
// delay at his next login; a headline to a full JID is not stored (§8.5.3.2.1: silently ignored).
func TestCorrectionChatToOfflineFullJIDStored(t *testing.T) {
	s := corrShared(t)
	a, apw := s.account(t, "alice")
	b, bpw := s.account(t, "bob")
	B := s.bare(b)
	alice := s.online(t, a, apw, "pc")
	alice.Send("<message to='" + B + "/x' type='chat' id='o1'><body>stored</body></message>")
	alice.Send("<message to='" + B + "/x' type='headline' id='o2'><body>not stored</body></message>")
	// A request answered in bob's account after the messages were routed there: both have been handled by the
	// time its answer arrives (whatever it is).
	alice.IQ("<iq type='get' to='" + B + "' id='" + corrID("vc") + "'><vCard xmlns='" + corrNSVCard + "'/></iq>")
	corrSync(t, alice, s.Domain)
	alice.Absent("error for a chat to an offline user", 0, corrIsAnyMessageError)

	bob := s.online(t, b, bpw, "home")
	m := bob.Expect("offline chat", xmppclient.IsMessageWithBody("stored"))
	if m.Get("type") != "chat" || m.Get("from") != alice.JID.String() {
		t.Errorf("offline message: want type chat from %s: %s", alice.JID, m)
	}
	d := m.Child(xmppclient.NSDelay, "delay")
	if d == nil || !corrNear(d.Get("stamp"), 5*time.Minute) {
		t.Errorf("offline message without an XEP-0203 <delay xmlns='%s' stamp=…/> of about now: %s", xmppclient.NSDelay, m)
	}
	corrSync(t, bob, s.Domain)
	bob.Absent("headline kept offline", 300*time.Millisecond, xmppclient.IsMessageWithBody("not stored"))
}

// ---- 3. RFC 6121 §3.3.3: unsubscribing brings unavailable presence from each available resource ----

func TestCorrectionUnsubscribeSendsUnavailableFromEachResource(t *testing.T) {
	s := corrShared(t)
	a, apw := s.account(t, "alice")
	c, cpw := s.account(t, "carol")
	A, C := s.bare(a), s.bare(c)
	alice := s.online(t, a, apw, "pc")
	carol1 := s.online(t, c, cpw, "one")
	carol2 := s.online(t, c, cpw, "two")
	carol3 := s.connected(t, c, cpw, "silent") // connected, never available
	// Mutual subscription by the real exchange (RFC 6121 §3.1); alice then has the presence of both available
	// resources of carol.
	alice.Send("<presence to='" + C + "' type='subscribe'/>")
	carol1.Expect("subscription request", xmppclient.IsPresence(A, "subscribe"))
	carol1.Send("<presence to='" + A + "' type='subscribed'/>")
	for _, r := range []*xmppclient.Client{carol1, carol2} {
		alice.Expect("available presence of "+r.JID.String(), xmppclient.IsPresence(r.JID.String(), ""))
	}
	carol1.Send("<presence to='" + A + "' type='subscribe'/>")
	alice.Expect("subscription request", xmppclient.IsPresence(C, "subscribe"))
	alice.Send("<presence to='" + C + "' type='subscribed'/>")
	carol1.Expect("alice's presence", xmppclient.IsPresence(A, ""))

	alice.Send("<presence to='" + C + "' type='unsubscribe'/>")
	for _, r := range []*xmppclient.Client{carol1, carol2} {
		// The predicate is exact: <presence type='unavailable' from='carol@localhost/<resource>'/>.
		alice.Expect("unavailable from "+r.JID.String(), xmppclient.IsPresence(r.JID.String(), "unavailable"))
	}
	// carol's account gets the unsubscribe, stamped with alice's bare JID (§3.3.2).
	u := carol1.Expect("unsubscribe", xmppclient.IsPresence(A, "unsubscribe"))
	if u.Get("from") != A {
		t.Errorf("unsubscribe delivered from %q, want the bare JID %s: %s", u.Get("from"), A, u)
	}
	// Negative twins: no unavailable from a resource that was never available, and no more presence from carol.
	corrSync(t, alice, s.Domain)
	alice.Absent("unavailable from a resource that was never available", 300*time.Millisecond, xmppclient.IsPresence(carol3.JID.String(), "unavailable"))
	carol1.Send("<presence><status>after unsubscribe</status></presence>")
	// carol is still subscribed to alice: alice's presence still reaches carol.
	alice.Send("<presence><status>still shared</status></presence>")
	carol1.Expect("alice's presence (carol's subscription stands)", func(e *xmppclient.Elem) bool {
		return xmppclient.IsPresence(A, "")(e) && e.ChildText("status") == "still shared"
	})
	alice.Absent("carol's presence after unsubscribing", 500*time.Millisecond, func(e *xmppclient.Elem) bool {
		return xmppclient.IsPresence(C, "")(e) && e.ChildText("status") == "after unsubscribe"
	})
}

// ---- 4. XEP-0030 §8: disco#items does not reveal accounts ----

func TestCorrectionDiscoItemsRevealNoAccount(t *testing.T) {
	s := corrShared(t)
	u, upw := s.account(t, "asker")
	x, xpw := s.account(t, "stranger")
	nobody := s.bare(s.unusedLocal(t, "nobody"))
	X := s.bare(x)
	asker := s.online(t, u, upw, "pc")
	s.online(t, x, xpw, "pc") // the stranger is online: its resources are what must not show

	corrDiscoItemsEmpty(t, "disco#items to an address without an account",
		asker.IQ("<iq type='get' to='"+nobody+"' id='d1'><query xmlns='"+corrNSDiscoItems+"'/></iq>"))
	corrDiscoItemsEmpty(t, "disco#items node='x' to an address without an account",
		asker.IQ("<iq type='get' to='"+nobody+"' id='d2'><query xmlns='"+corrNSDiscoItems+"' node='x'/></iq>"))
	corrDiscoItemsEmpty(t, "disco#items to an account that shares no presence",
		asker.IQ("<iq type='get' to='"+X+"' id='d3'><query xmlns='"+corrNSDiscoItems+"'/></iq>"))
	corrDiscoItemsEmpty(t, "disco#items node='x' to an account that shares no presence",
		asker.IQ("<iq type='get' to='"+X+"' id='d4'><query xmlns='"+corrNSDiscoItems+"' node='x'/></iq>"))

	// Negative twin: disco#info to the stranger keeps its answer.
	e := asker.IQ("<iq type='get' to='" + X + "' id='d5'><query xmlns='" + corrNSDiscoInfo + "'/></iq>")
	corrStanzaError(t, "disco#info to an account that shares no presence", "iq", "service-unavailable", e)
}

func TestCorrectionServerDiscoInfoCapsAndCSI(t *testing.T) {
	s := corrShared(t)
	u, upw := s.account(t, "disco")
	c := s.connected(t, u, upw, "pc")
	r := corrIQResult(t, "server disco#info", c.IQ("<iq type='get' to='"+s.Domain+"' id='"+corrID("di")+"'><query xmlns='"+corrNSDiscoInfo+"'/></iq>"))
	q := r.Child(corrNSDiscoInfo, "query")
	vars := map[string]bool{}
	for _, f := range q.Children(corrNSDiscoInfo, "feature") {
		vars[f.Get("var")] = true
	}
	for _, v := range []string{"http://jabber.org/protocol/caps", "urn:xmpp:csi:0"} {
		if !vars[v] {
			t.Errorf("server disco#info lacks <feature var='%s'/>: %s", v, r)
		}
	}
	if !vars[corrNSDiscoInfo] {
		t.Errorf("server disco#info lacks its own namespace: %s", r)
	}
}

// ---- 5. XEP-0054 §3.3: no vCard and no account look the same ----

func TestCorrectionVCardMissingLooksLikeNoAccount(t *testing.T) {
	s := corrShared(t) // [vcard] access = "contacts"
	o, opw := s.account(t, "owner")
	c, cpw := s.account(t, "contact")
	x, xpw := s.account(t, "stranger")
	O, C := s.bare(o), s.bare(c)
	nobody := s.bare(s.unusedLocal(t, "nobody"))
	owner := s.online(t, o, opw, "pc")
	contact := s.online(t, c, cpw, "pc")
	stranger := s.online(t, x, xpw, "pc")
	subscribeBoth(t, owner, contact, O, C)

	get := func(from *xmppclient.Client, to string) *xmppclient.Elem {
		return from.IQ("<iq type='get' to='" + to + "' id='" + corrID("vc") + "'><vCard xmlns='" + corrNSVCard + "'/></iq>")
	}
	for name, r := range map[string]*xmppclient.Client{"contact": contact, "stranger": stranger} {
		noCard, noAccount := get(r, O), get(r, nobody)
		for what, e := range map[string]*xmppclient.Elem{"account without a vCard": noCard, "no account": noAccount} {
			if e.Get("type") != "error" {
				t.Errorf("%s asks for the vCard of an %s: want an error, got %s", name, what, e)
			}
		}
		t1, c1 := noCard.StanzaError()
		t2, c2 := noAccount.StanzaError()
		if c1 != c2 || t1 != t2 {
			t.Errorf("%s: an account without a vCard answers %s/%s, a missing account %s/%s: they must be the same\n%s\n%s", name, t1, c1, t2, c2, noCard, noAccount)
		}
		if c1 != "item-not-found" && c1 != "service-unavailable" {
			t.Errorf("%s: condition %q, want item-not-found or service-unavailable (XEP-0054 §3.3): %s", name, c1, noCard)
		}
	}
	// Negative twin: once the vCard exists, the contact reads it.
	corrIQResult(t, "vCard set", owner.IQ("<iq type='set' id='"+corrID("vs")+"'><vCard xmlns='"+corrNSVCard+"'><FN>Owner O</FN></vCard></iq>"))
	v := corrIQResult(t, "contact reads the vCard", get(contact, O)).Child(corrNSVCard, "vCard")
	if v.ChildText("FN") != "Owner O" {
		t.Errorf("contact reads %s", v)
	}
}

// ---- 6. XEP-0133 service administration through XEP-0050 ----

const corrAdminLocal = "admin"

// corrAdminServer starts a server of the test's own with admins = ["admin@localhost"] and logs the admin in
// (available, resource "console").
func corrAdminServer(t *testing.T) (*corrServer, *xmppclient.Client) {
	t.Helper()
	s := corrOwnServer(t, harness.Options{}, corrAdminLocal+"@localhost")
	pw := xmppclient.NewPassword()
	s.AddUser(t, corrAdminLocal, pw)
	return s, s.online(t, corrAdminLocal, pw, "console")
}

func corrAdminNode(cmd string) string { return corrNSAdmin + "#" + cmd }

func TestCorrectionAdminCommandDiscovery(t *testing.T) {
	s, admin := corrAdminServer(t)
	u, upw := s.account(t, "user")
	user := s.online(t, u, upw, "pc")
	adminJID := s.bare(corrAdminLocal)

	want := []string{"get-online-users-num", "get-registered-users-num", "disable-user", "reenable-user",
		"end-user-session", "set-motd", "announce"}
	for _, to := range []string{adminJID, s.Domain} {
		nodes := corrCommandNodes(t, admin, to)
		if len(nodes) == 0 {
			t.Errorf("admin: no commands listed at %s", to)
		}
		have := map[string]bool{}
		for _, n := range nodes {
			have[n] = true
			if !strings.HasPrefix(n, corrNSAdmin+"#") {
				t.Errorf("admin: listed node %q at %s is not an XEP-0133 command", n, to)
			}
		}
		for _, c := range want {
			if !have[corrAdminNode(c)] {
				t.Errorf("admin: %s not listed at %s (listed: %v)", corrAdminNode(c), to, nodes)
			}
		}
	}
	// Negative twin: a non-admin gets an empty list, at its own account, at the domain and at the admin's.
	for _, to := range []string{s.bare(u), s.Domain, adminJID} {
		corrDiscoItemsEmpty(t, "non-admin's disco#items node=commands at "+to,
			user.IQ("<iq type='get' to='"+to+"' id='"+corrID("cmds")+"'><query xmlns='"+corrNSDiscoItems+"' node='"+corrNSCommands+"'/></iq>"))
	}
	// ... and may not execute one.
	e := corrCommandIQ(t, user, s.Domain, corrAdminNode("get-online-users-num"), "", "execute", "")
	corrStanzaError(t, "non-admin executes get-online-users-num", "iq", "forbidden", e)
}

func TestCorrectionAdminCommandCounts(t *testing.T) {
	s, admin := corrAdminServer(t)
	u1, pw1 := s.account(t, "one")
	s.account(t, "two")
	s.online(t, u1, pw1, "pc")

	online := corrIntField(t, corrRunQuery(t, admin, s.Domain, corrAdminNode("get-online-users-num")), "onlineusersnum")
	if online < 1 {
		t.Errorf("onlineusersnum = %d while the admin is online", online)
	}
	// admin, one, two: the server's only accounts.
	reg := corrIntField(t, corrRunQuery(t, admin, s.Domain, corrAdminNode("get-registered-users-num")), "registeredusersnum")
	if reg != 3 {
		t.Errorf("registeredusersnum = %d, want 3 (admin and two test accounts)", reg)
	}
	// Negative twin: one more account changes the count by exactly one.
	s.account(t, "three")
	reg2 := corrIntField(t, corrRunQuery(t, admin, s.Domain, corrAdminNode("get-registered-users-num")), "registeredusersnum")
	if reg2 != reg+1 {
		t.Errorf("registeredusersnum after one more account = %d, want %d", reg2, reg+1)
	}
}

func TestCorrectionAdminDisableAndReenableUser(t *testing.T) {
	s, admin := corrAdminServer(t)
	v, vpw := s.account(t, "victim")
	b, bpw := s.account(t, "bystander")
	V := s.bare(v)
	victim := s.online(t, v, vpw, "pc")
	bystander := s.online(t, b, bpw, "pc")

	// A non-admin may not disable anyone, and nothing happens.
	e := corrCommandIQ(t, bystander, s.Domain, corrAdminNode("disable-user"), "", "execute", "")
	corrStanzaError(t, "non-admin executes disable-user", "iq", "forbidden", e)
	corrSync(t, victim, s.Domain)

	corrRunForm(t, admin, s.Domain, corrAdminNode("disable-user"), corrField{"accountjids", []string{V}})
	how := corrWaitEnded(t, victim, "disable-user")
	t.Logf("the disabled account's session ended with %s", how)

	// RFC 6120 §6.5.1: the right password of a disabled account gets <account-disabled/>.
	f := s.saslPlain(t, v, vpw)
	switch {
	case !f.Is(xmppclient.NSSASL, "failure"):
		t.Errorf("SASL for a disabled account: want <failure/>, got %s", f)
	case f.Condition() == "account-disabled":
	case f.Condition() == "not-authorized":
		t.Logf("SASL for a disabled account fails with <not-authorized/>; RFC 6120 §6.5.1 prefers <account-disabled/>: %s", f)
	default:
		t.Errorf("SASL for a disabled account: condition %q, want account-disabled (or not-authorized): %s", f.Condition(), f)
	}
	if _, err := s.login(t, v, vpw, "again"); err == nil {
		t.Errorf("a disabled account logs in with SCRAM")
	}
	// Negative twin: other accounts are not affected.
	corrSync(t, bystander, s.Domain)
	if f := s.saslPlain(t, b, bpw); !f.Is(xmppclient.NSSASL, "success") {
		t.Errorf("another account after disable-user: %s", f)
	}

	corrRunForm(t, admin, s.Domain, corrAdminNode("reenable-user"), corrField{"accountjids", []string{V}})
	if f := s.saslPlain(t, v, vpw); !f.Is(xmppclient.NSSASL, "success") {
		t.Errorf("SASL after reenable-user: %s", f)
	}
	back := s.online(t, v, vpw, "back")
	corrSync(t, back, s.Domain)
}

func TestCorrectionAdminEndUserSession(t *testing.T) {
	s, admin := corrAdminServer(t)
	v, vpw := s.account(t, "victim")
	b, bpw := s.account(t, "bystander")
	V := s.bare(v)
	one := s.online(t, v, vpw, "one")
	two := s.online(t, v, vpw, "two")
	bystander := s.online(t, b, bpw, "pc")

	corrRunForm(t, admin, s.Domain, corrAdminNode("end-user-session"), corrField{"accountjids", []string{V}})
	for _, c := range []*xmppclient.Client{one, two} {
		how := corrWaitEnded(t, c, "end-user-session")
		t.Logf("%s ended with %s", c.JID, how)
	}
	// Negative twins: the account is not disabled (it logs in again) and other sessions go on.
	again := s.online(t, v, vpw, "again")
	corrSync(t, again, s.Domain)
	corrSync(t, bystander, s.Domain)
}

func TestCorrectionAdminSetMOTD(t *testing.T) {
	s, admin := corrAdminServer(t)
	e, epw := s.account(t, "early")
	l, lpw := s.account(t, "late")
	const motd = "Welcome to the corrections server"
	fromServer := func(m *xmppclient.Elem) bool {
		return m.Is(xmppclient.NSClient, "message") && m.Get("from") == s.Domain
	}

	// Negative twin: before a motd is set, a login gets no message from the server.
	early := s.online(t, e, epw, "pc")
	corrSync(t, early, s.Domain)
	early.Absent("message from the server without a motd", 500*time.Millisecond, fromServer)

	corrRunForm(t, admin, s.Domain, corrAdminNode("set-motd"), corrField{"motd", []string{motd}})
	late := s.online(t, l, lpw, "pc")
	m := late.Expect("the motd", fromServer)
	if m.ChildText("body") != motd {
		t.Errorf("motd message: want from %s with body %q, got %s", s.Domain, motd, m)
	}
}

func TestCorrectionAdminAnnounce(t *testing.T) {
	s, admin := corrAdminServer(t)
	u1, pw1 := s.account(t, "one")
	u2, pw2 := s.account(t, "two")
	l, lpw := s.account(t, "late")
	one := s.online(t, u1, pw1, "pc")
	two := s.online(t, u2, pw2, "pc")
	const text = "Maintenance at noon"

	corrRunForm(t, admin, s.Domain, corrAdminNode("announce"), corrField{"announcement", []string{text}})
	for _, c := range []*xmppclient.Client{one, two} {
		m := c.Expect("the announcement", xmppclient.IsMessageWithBody(text))
		if m.Get("from") != s.Domain || m.Get("type") != "headline" {
			t.Errorf("%s: announcement: want <message type='headline' from='%s'>: %s", c.JID, s.Domain, m)
		}
	}
	// Negative twin: announcements go to online users only; a later login gets none.
	late := s.online(t, l, lpw, "pc")
	corrSync(t, late, s.Domain)
	late.Absent("announcement made before the login", 500*time.Millisecond, xmppclient.IsMessageWithBody(text))
}

// ---- 7. XEP-0077 registration errors ----

// corrRegister sends an XEP-0077 §3.1 registration on a fresh TLS stream and returns the answer.
func corrRegister(t *testing.T, s *corrServer, user, password string) *xmppclient.Elem {
	t.Helper()
	r, f := s.raw(t)
	if f.Child(xmppclient.NSRegFeat, "register") == nil {
		t.Fatalf("registration allowed but not advertised: %s", f)
	}
	id := corrID("reg")
	r.Write("<iq type='set' id='" + id + "'><query xmlns='jabber:iq:register'><username>" + user + "</username><password>" + password + "</password></query></iq>")
	e := r.ExpectIQ(id)
	r.Close()
	return e
}

func TestCorrectionRegistrationShortPassword(t *testing.T) {
	s := corrOwnServer(t, harness.Options{RegistrationAllow: true})
	user := s.unusedLocal(t, "short")
	const short, enough = "short77", "enough88" // 7 and 8 characters; registration.min_password_length = 8

	e := corrRegister(t, s, user, short)
	corrStanzaError(t, "registration with a 7-character password", "iq", "not-acceptable", e)
	if txt := corrErrorText(e); !strings.Contains(txt, "8") {
		t.Errorf("the refusal's <text/> %q does not mention the minimum length 8: %s", txt, e)
	}
	if f := s.saslPlain(t, user, short); !f.Is(xmppclient.NSSASL, "failure") {
		t.Errorf("a refused registration created the account: %s", f)
	}
	// Negative twin: 8 characters are enough.
	corrIQResult(t, "registration with an 8-character password", corrRegister(t, s, user, enough))
	if f := s.saslPlain(t, user, enough); !f.Is(xmppclient.NSSASL, "success") {
		t.Errorf("login after registering: %s", f)
	}
}

func TestCorrectionRegistrationReservedUsername(t *testing.T) {
	s := corrOwnServer(t, harness.Options{RegistrationAllow: true})
	pw := xmppclient.NewPassword()
	for _, name := range []string{"admin", "postmaster"} { // config.toml registration.reserved_usernames
		e := corrRegister(t, s, name, pw)
		corrStanzaError(t, "registration of the reserved username "+name, "iq", "not-acceptable", e)
		if strings.TrimSpace(corrErrorText(e)) == "" {
			t.Errorf("refusal of %s without a <text/>: %s", name, e)
		}
		if f := s.saslPlain(t, name, pw); !f.Is(xmppclient.NSSASL, "failure") {
			t.Errorf("a refused registration created %s: %s", name, f)
		}
	}
	// Negative twin: the same password with a name that is not reserved registers.
	free := s.unusedLocal(t, "free")
	corrIQResult(t, "registration of a free username", corrRegister(t, s, free, pw))
}
