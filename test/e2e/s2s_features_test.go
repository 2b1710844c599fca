package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/protocol/caps"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// What works between local users works between a local and a remote one (issue 16): two xmppd, alice@a.test and
// bob@b.test contacts of each other. MAM archives of a remote chat on both sides, a remote user in a MUC room of
// the other server, PEP notifications to a remote contact chosen by its caps (+notify), presence probes.

const (
	nsDiscoInfoFed  = "http://jabber.org/protocol/disco#info"
	nsPubSubFed     = "http://jabber.org/protocol/pubsub"
	nsPubSubEvtFed  = "http://jabber.org/protocol/pubsub#event"
	nsTuneFed       = "http://jabber.org/protocol/tune"
	capsNodeFedTest = "https://xmppd.test/federation"
)

// fedContacts makes alice and bob contacts of each other (subscription both) and returns once each has the
// other's presence.
func fedContacts(t *testing.T, alice, bob *xmppclient.Client, A, B string) {
	t.Helper()
	alice.Send(`<presence to='` + B + `' type='subscribe'/>`)
	waitFor(t, bob, "subscribe from alice", xmppclient.IsPresence(A, "subscribe"))
	bob.Send(`<presence to='` + A + `' type='subscribed'/>`)
	waitFor(t, alice, "bob's presence", xmppclient.IsPresence(bob.JID.String(), ""))
	bob.Send(`<presence to='` + A + `' type='subscribe'/>`)
	waitFor(t, alice, "subscribe from bob", xmppclient.IsPresence(B, "subscribe"))
	alice.Send(`<presence to='` + B + `' type='subscribed'/>`)
	waitFor(t, bob, "alice's presence", xmppclient.IsPresence(alice.JID.String(), ""))
}

// announceCaps makes c answer caps queries for features and sends presence with the caps; it returns a channel
// that gets the 'from' of each query (the server that wants to know).
func announceCaps(t *testing.T, c *xmppclient.Client, features ...string) <-chan string {
	t.Helper()
	info := "<identity category='client' type='pc' name='fed-test'/>"
	for _, f := range append([]string{"http://jabber.org/protocol/caps", nsDiscoInfoFed}, features...) {
		info += "<feature var='" + f + "'/>"
	}
	q, err := xmlstream.ParseNode("<query xmlns='"+nsDiscoInfoFed+"'>"+info+"</query>", "jabber:client")
	if err != nil {
		t.Fatal(err)
	}
	s, err := caps.String(q)
	if err != nil {
		t.Fatal(err)
	}
	ver := caps.Hash("sha-1", s)
	asked := make(chan string, 8)
	c.SetAnswer(func(e *xmppclient.Elem) string {
		qe := e.Child(nsDiscoInfoFed, "query")
		if qe == nil || qe.Get("node") != capsNodeFedTest+"#"+ver {
			return ""
		}
		select {
		case asked <- e.Get("from"):
		default:
		}
		return "<iq type='result' id='" + e.Get("id") + "' to='" + e.Get("from") + "'><query xmlns='" + nsDiscoInfoFed +
			"' node='" + qe.Get("node") + "'>" + info + "</query></iq>"
	})
	c.Send("<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='" + capsNodeFedTest + "' ver='" + ver + "'/></presence>")
	return asked
}

func TestS2SFederatedFeatures(t *testing.T) {
	p := startFed(t, fedOptions{}, fedOptions{})
	a, apw := p.a.user(t, "alice")
	b, bpw := p.b.user(t, "bob")
	A, B := p.a.bare(a), p.b.bare(b)
	alice := xmppclient.Online(t, p.a.Server, a, apw, "home")
	bob := xmppclient.Online(t, p.b.Server, b, bpw, "work")
	fedContacts(t, alice, bob, A, B)

	t.Run("MAM", func(t *testing.T) {
		// XEP-0313: a chat across servers is in both archives, each message once, in order.
		alice.Send(`<message to='` + B + `' type='chat' id='mam1'><body>fed mam a to b</body></message>`)
		waitFor(t, bob, "alice's message", xmppclient.IsMessageWithBody("fed mam a to b"))
		bob.Send(`<message to='` + alice.JID.String() + `' type='chat' id='mam2'><body>fed mam b to a</body></message>`)
		waitFor(t, alice, "bob's message", xmppclient.IsMessageWithBody("fed mam b to a"))
		for _, side := range []struct {
			c    *xmppclient.Client
			with string
		}{{alice, B}, {bob, A}} {
			page := mustMAM(t, side.c, "fed", mamForm("with", side.with), "", "")
			if got := strings.Join(page.bodies, "|"); got != "fed mam a to b|fed mam b to a" {
				t.Errorf("%s's archive with %s: %q", side.c.JID, side.with, got)
			}
		}
	})

	t.Run("MUC", func(t *testing.T) {
		// XEP-0045: bob creates a room at conference.b.test; alice enters it from a.test; groupchat both ways.
		room := "fedroom@conference." + p.b.Domain
		selfPresence := func(nick string) func(*xmppclient.Elem) bool {
			return func(e *xmppclient.Elem) bool {
				if e.Name.Local != "presence" || e.Get("from") != room+"/"+nick || e.Get("type") != "" {
					return false
				}
				for _, s := range e.Child(nsMUC+"#user", "x").Children(nsMUC+"#user", "status") {
					if s.Get("code") == "110" {
						return true
					}
				}
				return false
			}
		}
		bob.Send("<presence to='" + room + "/bob'><x xmlns='" + nsMUC + "'/></presence>")
		waitFor(t, bob, "bob in the room", selfPresence("bob"))
		if r := bob.IQ("<iq type='set' to='" + room + "'><query xmlns='" + nsMUC + "#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>"); r.Get("type") != "result" {
			t.Fatalf("instant room: %s", r)
		}
		alice.Send("<presence to='" + room + "/alice'><x xmlns='" + nsMUC + "'/></presence>")
		waitFor(t, alice, "alice in the remote room", selfPresence("alice"))
		waitFor(t, bob, "alice's arrival", xmppclient.IsPresence(room+"/alice", ""))
		alice.Send("<message to='" + room + "' type='groupchat' id='g1'><body>hi room from a.test</body></message>")
		for _, c := range []*xmppclient.Client{bob, alice} { // the sender gets its own message back (§7.4)
			m := waitFor(t, c, "alice's groupchat", xmppclient.IsMessageWithBody("hi room from a.test"))
			if m.Get("from") != room+"/alice" || m.Get("type") != "groupchat" {
				t.Errorf("%s got %s", c.JID, m)
			}
		}
		bob.Send("<message to='" + room + "' type='groupchat' id='g2'><body>hi from the room's server</body></message>")
		waitFor(t, alice, "bob's groupchat", xmppclient.IsMessageWithBody("hi from the room's server"))
		alice.Send("<presence to='" + room + "/alice' type='unavailable'/>")
		waitFor(t, bob, "alice leaving", xmppclient.IsPresence(room+"/alice", "unavailable"))
	})

	t.Run("PEP", func(t *testing.T) {
		// XEP-0163: alice's server learns bob's caps from his presence (asking his client over s2s, XEP-0115) and
		// notifies him, across servers, of what alice publishes on a node he has +notify for; not of another node.
		asked := announceCaps(t, bob, nsTuneFed+"+notify")
		// Both servers ask (each has its own caps cache); what matters is a.test's question, over s2s.
		for fromA := false; !fromA; {
			select {
			case from := <-asked:
				t.Logf("caps query from %s", from)
				fromA = from == p.a.Domain || strings.HasSuffix(from, "@"+p.a.Domain) || strings.Contains(from, "@"+p.a.Domain+"/")
			case <-time.After(s2sWait):
				t.Fatal("a.test never asked bob's client for its caps")
			}
		}
		time.Sleep(200 * time.Millisecond) // the answer is on its way back to a.test
		isTune := func(e *xmppclient.Elem) bool {
			ev := e.Child(nsPubSubEvtFed, "event")
			return e.Name.Local == "message" && ev != nil && ev.Child(nsPubSubEvtFed, "items").Get("node") == nsTuneFed
		}
		publish := func(node, payload string) {
			t.Helper()
			r := alice.IQ("<iq type='set'><pubsub xmlns='" + nsPubSubFed + "'><publish node='" + node + "'><item>" + payload + "</item></publish></pubsub></iq>")
			if r.Get("type") != "result" {
				t.Fatalf("publish %s: %s", node, r)
			}
		}
		var ev *xmppclient.Elem
		for try := 0; try < 20 && ev == nil; try++ { // until a.test has bob's caps: each publish notifies afresh
			publish(nsTuneFed, "<tune xmlns='"+nsTuneFed+"'><title>fed tune</title></tune>")
			ev, _ = bob.Wait(isTune, 500*time.Millisecond)
		}
		if ev == nil {
			t.Fatalf("bob never got alice's tune\ntranscript:\n%s", bob.TranscriptTail(4096))
		}
		if !xmppclient.JIDMatch(ev.Get("from"), A) {
			t.Errorf("notification from %q, want %s", ev.Get("from"), A)
		}
		publish("urn:xmpp:fed:other", "<x xmlns='urn:xmpp:fed:other'/>")
		bob.Absent("a node without +notify", time.Second, func(e *xmppclient.Elem) bool {
			ev := e.Child(nsPubSubEvtFed, "event")
			return ev != nil && ev.Child(nsPubSubEvtFed, "items").Get("node") == "urn:xmpp:fed:other"
		})
	})

	t.Run("Probe", func(t *testing.T) {
		// RFC 6121 §4.3: a new resource of alice learns bob's current presence by a probe a.test sends to b.test,
		// which b.test answers for bob's available resource.
		bob.Send("<presence><show>dnd</show></presence>")
		waitFor(t, alice, "bob dnd", func(e *xmppclient.Elem) bool {
			return xmppclient.IsPresence(bob.JID.String(), "")(e) && e.ChildText("show") == "dnd"
		})
		alice2 := xmppclient.MustLoginTo(t, p.a.Server, a, apw, xmppclient.Options{Resource: "second"})
		defer alice2.Close()
		alice2.Send("<presence/>")
		e := waitFor(t, alice2, "bob's presence after the probe", xmppclient.IsPresence(bob.JID.String(), ""))
		if e.ChildText("show") != "dnd" {
			t.Errorf("probe answered with %s, want bob's current presence (dnd)", e)
		}
	})
	_ = bpw
}
