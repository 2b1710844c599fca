package lastactivity

import (
	"testing"
	"time"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/protocol/jid"
)

const alice = "alice@example.com"

func eq(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s:\n got  %s\n want %s", what, got, want)
	}
}

func TestServerUptime(t *testing.T) {
	srv := featuretest.NewServer(t, Feature)
	srv.StartedAt = time.Now().Add(-90*time.Second - 500*time.Millisecond)
	s := featuretest.NewSession(srv, alice+"/r1")
	serverIQ(featuretest.IQ(t, s, nil, "<iq from='alice@example.com/r1' to='example.com' type='get' id='l1'><query xmlns='jabber:iq:last'/></iq>"))
	serverIQ(featuretest.IQ(t, s, nil, "<iq from='alice@example.com/r1' to='example.com' type='set' id='l2'><query xmlns='jabber:iq:last'/></iq>"))
	if len(s.Client) != 2 {
		t.Fatalf("%d answers", len(s.Client))
	}
	eq(t, "uptime", s.Client[0].Raw, "<iq type='result' from='example.com' to='alice@example.com/r1' id='l1'><query xmlns='jabber:iq:last' seconds='90'/></iq>")
	eq(t, "set", s.Client[1].Raw, "<iq from='example.com' to='alice@example.com/r1' type='error' id='l2'><error type='modify'>"+
		"<bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
}

func setup(t *testing.T) *featuretest.User {
	t.Helper()
	srv := featuretest.NewServer(t, Feature)
	srv.AddAccount(t, alice)
	u := featuretest.NewUser(srv, alice, true)
	u.Subs[featuretest.MustJID("bob@example.com")] = "from"
	u.Subs[featuretest.MustJID("carol@example.com")] = "to"
	return u
}

// ask is a request of from to alice's account; the answer routed back.
func ask(t *testing.T, u *featuretest.User, from, typ string) string {
	t.Helper()
	raw := "<iq from='" + from + "' to='alice@example.com' type='" + typ + "' id='q1'><query xmlns='jabber:iq:last'/></iq>"
	accountIQ(featuretest.AccountIQ(t, u, nil, raw, false, feature.Resource{}))
	if len(u.Routed) != 1 {
		t.Fatalf("%d answers", len(u.Routed))
	}
	got := u.Routed[0].Raw
	u.Routed = nil
	return got
}

func errorTo(to, typ, cond string) string {
	return "<iq from='alice@example.com' to='" + to + "' type='error' id='q1'><error type='" + typ + "'><" + cond +
		" xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
}

func TestAccount(t *testing.T) {
	u := setup(t)
	bob := "bob@example.com/x"
	eq(t, "never seen", ask(t, u, bob, "get"), errorTo(bob, "cancel", "item-not-found"))

	u.Seen = time.Now().Add(-42*time.Second - 300*time.Millisecond)
	u.SeenPres = "<presence from='alice@example.com/r1' type='unavailable'><status>gone &amp; back</status></presence>"
	eq(t, "offline", ask(t, u, bob, "get"),
		"<iq type='result' from='alice@example.com' to='bob@example.com/x' id='q1'><query xmlns='jabber:iq:last' seconds='42'>gone &amp; back</query></iq>")

	u.SeenPres = "<presence from='alice@example.com/r1' type='unavailable'/>"
	eq(t, "offline without status", ask(t, u, bob, "get"),
		"<iq type='result' from='alice@example.com' to='bob@example.com/x' id='q1'><query xmlns='jabber:iq:last' seconds='42'/></iq>")
	u.SeenPres = "not xml <"
	eq(t, "unparsable presence", ask(t, u, bob, "get"),
		"<iq type='result' from='alice@example.com' to='bob@example.com/x' id='q1'><query xmlns='jabber:iq:last' seconds='42'/></iq>")

	// A bound but unavailable resource does not count as online.
	u.Res = append(u.Res, feature.Resource{Full: featuretest.MustJID(alice + "/hidden")})
	eq(t, "unavailable resource", ask(t, u, bob, "get"),
		"<iq type='result' from='alice@example.com' to='bob@example.com/x' id='q1'><query xmlns='jabber:iq:last' seconds='42'/></iq>")
	u.Online("r1", 0)
	eq(t, "online", ask(t, u, bob, "get"),
		"<iq type='result' from='alice@example.com' to='bob@example.com/x' id='q1'><query xmlns='jabber:iq:last' seconds='0'/></iq>")
}

func TestAccountAccess(t *testing.T) {
	u := setup(t)
	u.Seen = time.Now()
	// §4, §8: only those allowed to see the user's presence: not 'to'-only contacts nor strangers.
	for _, from := range []string{"carol@example.com/x", "eve@example.com/x"} {
		eq(t, from, ask(t, u, from, "get"), errorTo(from, "auth", "forbidden"))
	}
	// Nor a contact the presence filter (XEP-0191 blocking) forbids.
	u.Filter = func(c jid.JID) bool { return c.Bare() != featuretest.MustJID("bob@example.com") }
	eq(t, "filtered", ask(t, u, "bob@example.com/x", "get"), errorTo("bob@example.com/x", "auth", "forbidden"))
	// The type is checked first.
	eq(t, "set", ask(t, u, "eve@example.com/x", "set"), errorTo("eve@example.com/x", "modify", "bad-request"))
	// The user's own resources may ask, with or without 'to' (online: seconds 0, whatever the clock does).
	r := u.Online("r1", 0)
	eq(t, "own resource", ask(t, u, alice+"/r2", "get"),
		"<iq type='result' from='alice@example.com' to='alice@example.com/r2' id='q1'><query xmlns='jabber:iq:last' seconds='0'/></iq>")
	accountIQ(featuretest.AccountIQ(t, u, nil, "<iq from='alice@example.com/r1' type='get' id='q2'><query xmlns='jabber:iq:last'/></iq>", true, r))
	eq(t, "owner", u.Delivered[r.Full][0].Raw, "<iq type='result' to='alice@example.com/r1' id='q2'><query xmlns='jabber:iq:last' seconds='0'/></iq>")
}
