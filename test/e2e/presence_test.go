package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"

	"github.com/xmppd/xmppd/test/xmppclient"
)

// subscribeBoth runs the RFC 6121 §3.1 handshake both ways between two logged-in, interested clients.
func subscribeBoth(t *testing.T, alice, bob *xmppclient.Client, A, B string) {
	t.Helper()
	alice.Send(`<presence to='` + B + `' type='subscribe'/>`)
	bob.Expect("subscribe from alice", xmppclient.IsPresence(A, "subscribe"))
	bob.Send(`<presence to='` + A + `' type='subscribed'/>`)
	expectPush(alice, B, "to")
	bob.Send(`<presence to='` + A + `' type='subscribe'/>`)
	alice.Expect("subscribe from bob", xmppclient.IsPresence(B, "subscribe"))
	alice.Send(`<presence to='` + B + `' type='subscribed'/>`)
	expectPush(alice, B, "both")
	expectPush(bob, A, "both")
}

// RFC 6121 §8.5.2.1.1: a chat message to the bare JID goes to the available resources with the highest
// non-negative priority; negative priority never receives bare-JID messages; with no such resource the message
// is stored offline and delivered at the next initial presence with non-negative priority.
func TestPriorityDelivery(t *testing.T) {
	srv := shared(t)
	a, apw := srv.user(t, "alice")
	b, bpw := srv.user(t, "bob")
	alice := mustLogin(t, srv, a, apw, loginOpts{resource: "a"})
	r5 := mustLogin(t, srv, b, bpw, loginOpts{resource: "five"})
	r10 := mustLogin(t, srv, b, bpw, loginOpts{resource: "ten"})
	rneg := mustLogin(t, srv, b, bpw, loginOpts{resource: "neg"})
	r5.Send(`<presence><priority>5</priority></presence>`)
	r10.Send(`<presence><priority>10</priority></presence>`)
	rneg.Send(`<presence><priority>-1</priority></presence>`)
	// Each resource sees the others' presence (§4.2.2); wait until r5 has seen all three, so priorities are set.
	for _, res := range []*xmppclient.Client{r5, r10, rneg} {
		r5.Expect("presence of "+res.JID.String(), xmppclient.IsPresence(res.JID.String(), ""))
	}
	B := srv.bare(b)

	alice.Send(`<message to='` + B + `' type='chat'><body>to the highest</body></message>`)
	r10.Expect("bare-JID chat at priority 10", xmppclient.IsMessageWithBody("to the highest"))
	r5.Absent("bare-JID chat at lower priority", 300*time.Millisecond, xmppclient.IsMessageWithBody("to the highest"))
	rneg.Absent("bare-JID chat at negative priority", 50*time.Millisecond, xmppclient.IsMessageWithBody("to the highest"))

	// A full-JID message reaches even the negative-priority resource (§8.5.3.1).
	alice.Send(`<message to='` + rneg.JID.String() + `' type='chat'><body>direct</body></message>`)
	rneg.Expect("full-JID chat", xmppclient.IsMessageWithBody("direct"))

	// The top resource goes unavailable: the next one in line gets bare-JID messages.
	r10.Send(`<presence type='unavailable'/>`)
	r5.Expect("ten unavailable", xmppclient.IsPresence(r10.JID.String(), "unavailable"))
	alice.Send(`<message to='` + B + `' type='chat'><body>second in line</body></message>`)
	r5.Expect("bare-JID chat after the top resource left", xmppclient.IsMessageWithBody("second in line"))

	// Only negative priority left: the message is stored offline (§8.5.2.1.1), then delivered to a resource
	// that sends initial presence with priority ≥ 0, with a delay stamp.
	r5.Send(`<presence><priority>-5</priority></presence>`)
	rneg.Expect("five at -5", func(e *xmppclient.Elem) bool {
		return xmppclient.IsPresence(r5.JID.String(), "")(e) && e.ChildText("priority") == "-5"
	})
	alice.Send(`<message to='` + B + `' type='chat'><body>kept for later</body></message>`)
	r5.Absent("chat while every resource is negative", 300*time.Millisecond, xmppclient.IsMessageWithBody("kept for later"))
	rneg.Absent("chat while every resource is negative", 50*time.Millisecond, xmppclient.IsMessageWithBody("kept for later"))
	later := mustLogin(t, srv, b, bpw, loginOpts{resource: "later"})
	later.Send(`<presence/>`)
	m := later.Expect("offline message at initial presence", xmppclient.IsMessageWithBody("kept for later"))
	if d := m.Child("urn:xmpp:delay", "delay"); d == nil || d.Get("stamp") == "" {
		t.Errorf("offline message without XEP-0203 delay: %s", m)
	}
}

// Unsubscribing and removing a roster item walk the state machine back down (RFC 6121 §3.3, §3.2, §2.5).
func TestUnsubscribeAndRosterRemove(t *testing.T) {
	srv := shared(t)
	a, apw := srv.user(t, "alice")
	b, bpw := srv.user(t, "bob")
	alice := mustLogin(t, srv, a, apw, loginOpts{resource: "a"})
	bob := mustLogin(t, srv, b, bpw, loginOpts{resource: "b"})
	fetchRoster(t, alice)
	fetchRoster(t, bob)
	alice.Send(`<presence/>`)
	bob.Send(`<presence/>`)
	A, B := srv.bare(a), srv.bare(b)
	subscribeBoth(t, alice, bob, A, B)

	// alice stops receiving bob's presence (§3.3): alice both→from, bob both→to.
	alice.Send(`<presence to='` + B + `' type='unsubscribe'/>`)
	expectPush(alice, B, "from")
	bob.Expect("unsubscribe from alice", xmppclient.IsPresence(A, "unsubscribe"))
	expectPush(bob, A, "to")
	// Bob's presence no longer reaches alice; alice's still reaches bob.
	bob.Send(`<presence><status>only bob's own</status></presence>`)
	alice.Absent("bob's presence after unsubscribe", 300*time.Millisecond, func(e *xmppclient.Elem) bool {
		return xmppclient.IsPresence(bob.JID.String(), "")(e) && e.ChildText("status") == "only bob's own"
	})
	alice.Send(`<presence><status>alice still visible</status></presence>`)
	bob.Expect("alice's presence (bob keeps 'to')", func(e *xmppclient.Elem) bool {
		return xmppclient.IsPresence(alice.JID.String(), "")(e) && e.ChildText("status") == "alice still visible"
	})

	// bob removes alice (§2.5.2): bob had 'to', so alice gets unsubscribe-equivalent and becomes none.
	e := bob.IQ(`<iq type='set'><query xmlns='jabber:iq:roster'><item jid='` + A + `' subscription='remove'/></query></iq>`)
	if e.Get("type") != "result" {
		t.Fatalf("roster remove: %s", e)
	}
	expectPush(bob, A, "remove")
	expectPush(alice, B, "none")
	if it, ok := fetchRoster(t, alice)[B]; !ok || it.Subscription != "none" {
		t.Errorf("alice's item for bob after bob removed her: %+v (present %v), want none", it, ok)
	}
	if _, ok := fetchRoster(t, bob)[A]; ok {
		t.Errorf("bob still has alice after remove")
	}
	// Removing an item that is not there is item-not-found (§2.5.3).
	e = bob.IQ(`<iq type='set'><query xmlns='jabber:iq:roster'><item jid='` + A + `' subscription='remove'/></query></iq>`)
	if _, cond := e.StanzaError(); cond != "item-not-found" {
		t.Errorf("removing a missing item: %s, want item-not-found", e)
	}
}

// Roster versioning (§2.6): an unchanged version gets an empty result; a changed one the roster.
func TestRosterVersioning(t *testing.T) {
	srv := shared(t)
	a, apw := srv.user(t, "alice")
	alice := mustLogin(t, srv, a, apw, loginOpts{})
	e := alice.IQ(`<iq type='get'><query xmlns='jabber:iq:roster' ver=''/></iq>`)
	q := e.Child(xmppclient.NSRoster, "query")
	if q == nil || !q.Has("ver") {
		t.Fatalf("versioned roster get without ver: %s", e)
	}
	ver := q.Get("ver")
	e = alice.IQ(`<iq type='get'><query xmlns='jabber:iq:roster' ver='` + ver + `'/></iq>`)
	if e.Get("type") != "result" || e.Child(xmppclient.NSRoster, "query") != nil {
		t.Fatalf("roster get with the current version: %s, want an empty result", e)
	}
	alice.IQ(`<iq type='set'><query xmlns='jabber:iq:roster'><item jid='x@` + srv.Domain + `'/></query></iq>`)
	push := alice.Expect("push with a new version", xmppclient.IsRosterPush("x@"+srv.Domain))
	nv := push.Child(xmppclient.NSRoster, "query").Get("ver")
	if nv == "" || nv == ver {
		t.Fatalf("push version %q after %q", nv, ver)
	}
	e = alice.IQ(`<iq type='get'><query xmlns='jabber:iq:roster' ver='` + ver + `'/></iq>`)
	if q := e.Child(xmppclient.NSRoster, "query"); q == nil || q.Get("ver") != nv || len(q.Children(xmppclient.NSRoster, "item")) != 1 {
		t.Fatalf("roster get with an old version: %s", e)
	}
}

// After a restart, subscriptions are still there: probes bring the contact's presence, and an offline
// contact's last unavailable presence comes with when it was (RFC 6121 §4.3.2, XEP-0203).
func TestProbesAfterRestart(t *testing.T) {
	srv := own(t, harness.Options{})
	a, apw := srv.user(t, "alice")
	b, bpw := srv.user(t, "bob")
	c, cpw := srv.user(t, "carol")
	A, B, C := srv.bare(a), srv.bare(b), srv.bare(c)
	alice := mustLogin(t, srv, a, apw, loginOpts{resource: "a"})
	bob := mustLogin(t, srv, b, bpw, loginOpts{resource: "b"})
	carol := mustLogin(t, srv, c, cpw, loginOpts{resource: "c"})
	for _, cl := range []*xmppclient.Client{alice, bob, carol} {
		fetchRoster(t, cl)
		cl.Send(`<presence/>`)
	}
	subscribeBoth(t, alice, bob, A, B)
	subscribeBoth(t, alice, carol, A, C)
	alice.Close()
	bob.Close()
	carol.Close()
	if err := srv.Shutdown(); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)

	bob = mustLogin(t, srv, b, bpw, loginOpts{resource: "b"})
	bob.Send(`<presence><status>back</status></presence>`)
	alice = mustLogin(t, srv, a, apw, loginOpts{resource: "a"})
	if it := fetchRoster(t, alice); it[B].Subscription != "both" || it[C].Subscription != "both" {
		t.Fatalf("subscriptions after restart: %+v", it)
	}
	alice.Send(`<presence/>`)
	p := alice.Expect("bob's presence by probe", xmppclient.IsPresence(bob.JID.String(), ""))
	if p.ChildText("status") != "back" {
		t.Errorf("probe answer lost the status: %s", p)
	}
	u := alice.Expect("carol's last presence by probe", xmppclient.IsPresence(C, "unavailable"))
	if d := u.Child("urn:xmpp:delay", "delay"); d == nil || d.Get("stamp") == "" {
		t.Errorf("carol's unavailable presence without last-seen delay: %s", u)
	}
	bob.Expect("alice's initial presence", xmppclient.IsPresence(alice.JID.String(), ""))
}

// RFC 6120 §10.1: stanzas a client sends reach a contact in the order sent, whether presence broadcasts or
// messages (broadcast presence takes the same path as messages).
func TestPresenceAndMessageOrder(t *testing.T) {
	srv := shared(t)
	a, apw := srv.user(t, "alice")
	b, bpw := srv.user(t, "bob")
	alice := mustLogin(t, srv, a, apw, loginOpts{resource: "a"})
	bob := mustLogin(t, srv, b, bpw, loginOpts{resource: "b"})
	fetchRoster(t, alice)
	fetchRoster(t, bob)
	alice.Send(`<presence/>`)
	bob.Send(`<presence/>`)
	A, B := srv.bare(a), srv.bare(b)
	subscribeBoth(t, alice, bob, A, B)
	const rounds = 30
	for i := 0; i < rounds; i++ {
		bob.Send(fmt.Sprintf(`<presence><status>s%d</status></presence>`, i))
		bob.Send(fmt.Sprintf(`<message to='%s' type='chat'><body>m%d</body></message>`, A, i))
	}
	want := 0 // next expected round; presence i must come before message i, message i before presence i+1
	presenceSeen := false
	for want < rounds {
		e := alice.Expect("bob's presence or message", func(e *xmppclient.Elem) bool {
			return (xmppclient.IsPresence(bob.JID.String(), "")(e) && strings.HasPrefix(e.ChildText("status"), "s")) ||
				(e.Name.Local == "message" && strings.HasPrefix(e.ChildText("body"), "m"))
		})
		switch e.Name.Local {
		case "presence":
			if got := e.ChildText("status"); got != fmt.Sprintf("s%d", want) || presenceSeen {
				t.Fatalf("presence %q out of order (expecting round %d, presence seen %v)", got, want, presenceSeen)
			}
			presenceSeen = true
		case "message":
			if got := e.ChildText("body"); got != fmt.Sprintf("m%d", want) || !presenceSeen {
				t.Fatalf("message %q out of order (expecting round %d, presence seen %v)", got, want, presenceSeen)
			}
			presenceSeen = false
			want++
		}
	}
}
