package e2e

import (
	"context"
	"sort"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"

	"github.com/xmppd/xmppd/test/xmppclient"
)

// fetchRoster returns the roster as the library parses it, keyed by bare JID.
func fetchRoster(t *testing.T, c *xmppclient.Client) map[string]roster.Item {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), xmppclient.WaitTimeout)
	defer cancel()
	it := roster.Fetch(ctx, c.S)
	defer it.Close()
	out := map[string]roster.Item{}
	for it.Next() {
		item := it.Item()
		out[item.JID.String()] = item
	}
	if err := it.Err(); err != nil {
		t.Fatalf("%s: roster fetch: %v", c.JID, err)
	}
	return out
}

// expectPush waits for a roster push about contact with the given
// subscription state and returns the pushed item.
func expectPush(c *xmppclient.Client, contact, sub string) *xmppclient.Elem {
	c.T().Helper()
	e := c.Expect("roster push "+contact+" subscription="+sub, func(e *xmppclient.Elem) bool {
		return xmppclient.IsRosterPush(contact)(e) && e.Child(xmppclient.NSRoster, "query").Child(xmppclient.NSRoster, "item").Get("subscription") == sub
	})
	// RFC 6121 §2.1.6: a push comes from the user's bare JID or has no
	// 'from' (mellium blanks a from equal to our bare JID).
	if f := e.Get("from"); f != "" && f != c.JID.Bare().String() {
		c.T().Errorf("roster push from %q: only the server may push (RFC 6121 §2.1.6)", f)
	}
	return e.Child(xmppclient.NSRoster, "query").Child(xmppclient.NSRoster, "item")
}

func TestRosterSetFetchAndPush(t *testing.T) {
	srv := shared(t)
	a, apw := srv.user(t, "alice")
	b, _ := srv.user(t, "bob")
	alice := mustLogin(t, srv, a, apw, loginOpts{resource: "one"})
	alice2 := mustLogin(t, srv, a, apw, loginOpts{resource: "two"})
	// Roster pushes go to interested resources: those that requested the
	// roster (RFC 6121 §2.1.6). Make both interested.
	fetchRoster(t, alice)
	fetchRoster(t, alice2)

	ctx, cancel := context.WithTimeout(context.Background(), xmppclient.WaitTimeout)
	defer cancel()
	bobJID := jid.MustParse(srv.bare(b))
	if err := roster.Set(ctx, alice.S, roster.Item{JID: bobJID, Name: "Bob Ö", Group: []string{"friends", "work"}}); err != nil {
		t.Fatalf("roster set: %v", err)
	}
	for _, c := range []*xmppclient.Client{alice, alice2} {
		item := expectPush(c, srv.bare(b), "none")
		if item.Get("name") != "Bob Ö" {
			t.Errorf("%s: pushed name %q", c.JID, item.Get("name"))
		}
		var groups []string
		for _, g := range item.Children(xmppclient.NSRoster, "group") {
			groups = append(groups, g.Text)
		}
		sort.Strings(groups)
		if strings.Join(groups, ",") != "friends,work" {
			t.Errorf("%s: pushed groups %v", c.JID, groups)
		}
	}
	items := fetchRoster(t, alice)
	it, ok := items[srv.bare(b)]
	if !ok {
		t.Fatalf("roster lacks %s: %v", srv.bare(b), items)
	}
	sort.Strings(it.Group)
	if it.Name != "Bob Ö" || strings.Join(it.Group, ",") != "friends,work" || it.Subscription != "none" {
		t.Errorf("fetched item %+v", it)
	}

	// Update: new name, one group.
	if err := roster.Set(ctx, alice.S, roster.Item{JID: bobJID, Name: "Robert", Group: []string{"work"}}); err != nil {
		t.Fatalf("roster update: %v", err)
	}
	expectPush(alice2, srv.bare(b), "none")
	if it := fetchRoster(t, alice2)[srv.bare(b)]; it.Name != "Robert" || len(it.Group) != 1 || it.Group[0] != "work" {
		t.Errorf("after update: %+v", it)
	}

	// Remove (RFC 6121 §2.5): push with subscription='remove', gone from the
	// roster.
	if err := roster.Delete(ctx, alice.S, bobJID); err != nil {
		t.Fatalf("roster remove: %v", err)
	}
	expectPush(alice2, srv.bare(b), "remove")
	if _, ok := fetchRoster(t, alice)[srv.bare(b)]; ok {
		t.Errorf("item still present after remove")
	}

	// Errors (RFC 6121 §2.3.3): two items in one set is bad-request; an
	// item for the user's own bare JID or with subscription other than
	// 'remove' is refused or ignored.
	e := alice.IQ(`<iq type='set'><query xmlns='jabber:iq:roster'><item jid='x1@` + srv.Domain + `'/><item jid='x2@` + srv.Domain + `'/></query></iq>`)
	if _, cond := e.StanzaError(); cond != "bad-request" {
		t.Errorf("two items in a roster set: %s, want bad-request", e)
	}
}

// The whole subscription handshake between two online users ends in 'both'
// on both sides, each sees the other's presence, and logging out sends
// unavailable presence (RFC 6121 §3 and §4).
func TestSubscriptionHandshakeAndPresence(t *testing.T) {
	srv := shared(t)
	a, apw := srv.user(t, "alice")
	b, bpw := srv.user(t, "bob")
	alice := mustLogin(t, srv, a, apw, loginOpts{resource: "a1"})
	bob := mustLogin(t, srv, b, bpw, loginOpts{resource: "b1"})
	fetchRoster(t, alice)
	fetchRoster(t, bob)
	alice.Send(`<presence><status>alice here</status></presence>`)
	bob.Send(`<presence><show>away</show><status>bob here</status></presence>`)
	A, B := srv.bare(a), srv.bare(b)

	// alice → bob: subscribe (§3.1.1/§3.1.2)
	alice.Send(`<presence to='` + B + `' type='subscribe'/>`)
	it := expectPush(alice, B, "none")
	if it.Get("ask") != "subscribe" {
		t.Errorf("alice's push after subscribe lacks ask='subscribe': %s", it)
	}
	req := bob.Expect("subscribe from alice", xmppclient.IsPresence(A, "subscribe"))
	if req.Get("from") != A {
		t.Errorf("subscription request from %q, want alice's bare JID (RFC 6121 §3.1.2)", req.Get("from"))
	}
	// bob approves (§3.1.5)
	bob.Send(`<presence to='` + A + `' type='subscribed'/>`)
	expectPush(bob, A, "from")
	alice.Expect("subscribed from bob", xmppclient.IsPresence(B, "subscribed"))
	expectPush(alice, B, "to")
	// §3.1.5: bob's server sends alice bob's current presence.
	p := alice.Expect("bob's presence after approval", xmppclient.IsPresence(bob.JID.String(), ""))
	if p.ChildText("status") != "bob here" || p.ChildText("show") != "away" {
		t.Errorf("bob's presence content not relayed: %s", p)
	}

	// bob → alice: subscribe, alice approves: both.
	bob.Send(`<presence to='` + A + `' type='subscribe'/>`)
	alice.Expect("subscribe from bob", xmppclient.IsPresence(B, "subscribe"))
	alice.Send(`<presence to='` + B + `' type='subscribed'/>`)
	expectPush(alice, B, "both")
	expectPush(bob, A, "both")
	bob.Expect("subscribed from alice", xmppclient.IsPresence(A, "subscribed"))
	bob.Expect("alice's presence after approval", xmppclient.IsPresence(alice.JID.String(), ""))

	for _, c := range []struct {
		cl      *xmppclient.Client
		contact string
	}{{alice, B}, {bob, A}} {
		item, ok := fetchRoster(t, c.cl)[c.contact]
		if !ok || item.Subscription != "both" {
			t.Errorf("%s's roster item for %s: %+v, want subscription both", c.cl.JID, c.contact, item)
		}
	}

	// A presence update reaches the contact.
	alice.Send(`<presence><show>dnd</show></presence>`)
	bob.Expect("alice's presence update", func(e *xmppclient.Elem) bool {
		return xmppclient.IsPresence(alice.JID.String(), "")(e) && e.ChildText("show") == "dnd"
	})

	// A second resource of bob logging in gets alice's presence by probe
	// (RFC 6121 §4.3) and alice sees the new resource.
	bob2 := mustLogin(t, srv, b, bpw, loginOpts{resource: "b2"})
	bob2.Send(`<presence/>`)
	bob2.Expect("alice's presence answered to the probe", xmppclient.IsPresence(alice.JID.String(), ""))
	alice.Expect("bob's second resource", xmppclient.IsPresence(bob2.JID.String(), ""))

	// Logging out (</stream:stream>) sends unavailable presence (§4.5.2).
	alice.Close()
	bob.Expect("alice unavailable on logout", xmppclient.IsPresence(alice.JID.String(), "unavailable"))
	bob2.Expect("alice unavailable on logout (second resource)", xmppclient.IsPresence(alice.JID.String(), "unavailable"))

	// A dropped connection (no </stream:stream>) does too (§4.6): the
	// user's other resource hears of it like a contact would (§4.5.2).
	bob.Expect("bob's second resource, seen by the first", xmppclient.IsPresence(bob2.JID.String(), ""))
	bob2.Raw().Close()
	bob.Expect("b2 unavailable after its socket dropped", xmppclient.IsPresence(bob2.JID.String(), "unavailable"))
}

// Subscription requests to an offline user are stored and delivered when
// the contact comes online (RFC 6121 §3.1.3).
func TestSubscriptionRequestWhileOffline(t *testing.T) {
	srv := shared(t)
	a, apw := srv.user(t, "alice")
	b, bpw := srv.user(t, "bob")
	alice := mustLogin(t, srv, a, apw, loginOpts{})
	fetchRoster(t, alice) // an interested resource gets roster pushes
	alice.Send(`<presence/>`)
	alice.Send(`<presence to='` + srv.bare(b) + `' type='subscribe'/>`)
	expectPush(alice, srv.bare(b), "none")
	bob := mustLogin(t, srv, b, bpw, loginOpts{})
	bob.Send(`<presence/>`)
	bob.Expect("stored subscribe from alice", xmppclient.IsPresence(srv.bare(a), "subscribe"))
	bob.Send(`<presence to='` + srv.bare(a) + `' type='subscribed'/>`)
	alice.Expect("subscribed", xmppclient.IsPresence(srv.bare(b), "subscribed"))
	if it := fetchRoster(t, alice)[srv.bare(b)]; it.Subscription != "to" {
		t.Errorf("alice's item %+v, want subscription to", it)
	}
}
