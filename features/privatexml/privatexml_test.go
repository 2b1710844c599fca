package privatexml

import (
	"testing"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/feature/featuretest"
)

const alice = "alice@example.com"

func setup(t *testing.T) (*featuretest.User, feature.Resource) {
	t.Helper()
	srv := featuretest.NewServer(t, Feature)
	srv.AddAccount(t, alice)
	u := featuretest.NewUser(srv, alice, true)
	return u, u.Online("r1", 0)
}

// own sends alice's request from r and returns the answer delivered to r.
func own(t *testing.T, u *featuretest.User, r feature.Resource, typ, query string) string {
	t.Helper()
	raw := "<iq from='alice@example.com/r1' type='" + typ + "' id='p1'>" + query + "</iq>"
	privateIQ(featuretest.AccountIQ(t, u, nil, raw, true, r))
	got := u.Delivered[r.Full]
	if len(got) != 1 {
		t.Fatalf("%d answers", len(got))
	}
	u.Delivered[r.Full] = nil
	return got[0].Raw
}

func q(inner string) string { return "<query xmlns='jabber:iq:private'>" + inner + "</query>" }

const (
	ok            = "<iq type='result' to='alice@example.com/r1' id='p1'/>"
	notAcceptable = "<iq to='alice@example.com/r1' type='error' id='p1'><error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
)

func result(payload string) string {
	return "<iq type='result' to='alice@example.com/r1' id='p1'>" + payload + "</iq>"
}

func eq(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s:\n got  %s\n want %s", what, got, want)
	}
}

func TestStoreAndRetrieve(t *testing.T) {
	u, r := setup(t)
	// §3.2: nothing stored yet: the empty element comes back.
	eq(t, "empty", own(t, u, r, "get", q("<storage xmlns='storage:bookmarks'/>")), result(q("<storage xmlns='storage:bookmarks'/>")))
	data := "<storage xmlns='storage:bookmarks'><conference jid='room@muc.example.com' name='R'/></storage>"
	eq(t, "set", own(t, u, r, "set", q(data)), ok)
	eq(t, "get", own(t, u, r, "get", q("<storage xmlns='storage:bookmarks'/>")), result(q(data)))
	// Keyed by namespace and local name: another element of the same namespace is another item.
	eq(t, "other local name", own(t, u, r, "get", q("<other xmlns='storage:bookmarks'/>")), result(q("<other xmlns='storage:bookmarks'/>")))
	eq(t, "other namespace", own(t, u, r, "get", q("<storage xmlns='storage:rosternotes'/>")), result(q("<storage xmlns='storage:rosternotes'/>")))
	// Replace.
	eq(t, "replace", own(t, u, r, "set", q("<storage xmlns='storage:bookmarks'/>")), ok)
	eq(t, "replaced", own(t, u, r, "get", q("<storage xmlns='storage:bookmarks'/>")), result(q("<storage xmlns='storage:bookmarks'/>")))
}

func TestNotOwner(t *testing.T) {
	u, _ := setup(t)
	for _, typ := range []string{"get", "set"} {
		raw := "<iq from='bob@example.com/x' to='alice@example.com' type='" + typ + "' id='p2'>" + q("<storage xmlns='storage:bookmarks'/>") + "</iq>"
		privateIQ(featuretest.AccountIQ(t, u, nil, raw, false, feature.Resource{}))
		if len(u.Routed) != 1 {
			t.Fatalf("%s: %d answers", typ, len(u.Routed))
		}
		eq(t, typ, u.Routed[0].Raw, "<iq from='alice@example.com' to='bob@example.com/x' type='error' id='p2'><error type='auth'>"+
			"<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
		u.Routed = nil
	}
}

func TestMalformed(t *testing.T) {
	u, r := setup(t)
	for _, c := range []struct{ typ, query string }{
		{"get", q("")},
		{"set", q("")},
		{"set", q("<a xmlns='x:a'/><b xmlns='x:b'/>")},
		{"get", q("<a xmlns='x:a'/><b xmlns='x:b'/>")},
		{"set", q("<a xmlns=''/>")},
		{"get", q("<a xmlns=''/>")},
		{"set", q("<a/>")}, // in jabber:iq:private itself
		{"get", q("<a/>")},
		{"set", q("<query xmlns='jabber:iq:roster'/>")}, // §3: jabber:* is reserved
		{"set", q("<x xmlns='jabber:x:data'/>")},
	} {
		eq(t, c.typ+" "+c.query, own(t, u, r, c.typ, c.query), notAcceptable)
	}
	// Reading a jabber:* element is harmless: it was never stored, the empty element comes back.
	eq(t, "get jabber:", own(t, u, r, "get", q("<x xmlns='jabber:x:data'/>")), result(q("<x xmlns='jabber:x:data'/>")))
}

// What the client stores is announced; what another feature asks to store is stored and announced with its By;
// a read is answered, "" for nothing stored; a jabber:* element is refused from a feature as from a client.
func TestEvents(t *testing.T) {
	u, r := setup(t)
	const bm = "<storage xmlns='storage:bookmarks'><conference jid='a@b'/></storage>"
	eq(t, "set", own(t, u, r, "set", q(bm)), ok)
	if len(u.Announced) != 1 || u.Announced[0] != (feature.PrivateChanged{Space: "storage:bookmarks", Local: "storage", Element: bm}) {
		t.Fatalf("announced %+v", u.Announced)
	}
	p := Feature.NewUser(u).(*part)
	u.Announced = nil
	p.Heard(feature.ReadPrivate{Space: "storage:rosternotes", Local: "storage", By: "pep"})
	p.Heard(feature.StorePrivate{Element: "<storage xmlns='storage:bookmarks'/>", By: "pep"})
	p.Heard(feature.StorePrivate{Element: "<query xmlns='jabber:iq:roster'/>", By: "pep"})
	p.Heard(feature.ReadPrivate{Space: "storage:bookmarks", Local: "storage", By: "pep"})
	want := []any{
		feature.PrivateRead{Space: "storage:rosternotes", Local: "storage", By: "pep"},
		feature.PrivateChanged{Space: "storage:bookmarks", Local: "storage", Element: "<storage xmlns='storage:bookmarks'/>", By: "pep"},
		feature.PrivateRead{Space: "storage:bookmarks", Local: "storage", Element: "<storage xmlns='storage:bookmarks'/>", By: "pep"},
	}
	if len(u.Announced) != len(want) {
		t.Fatalf("announced %+v\nwant %+v", u.Announced, want)
	}
	for i := range want {
		if u.Announced[i] != want[i] {
			t.Fatalf("event %d: %+v, want %+v", i, u.Announced[i], want[i])
		}
	}
}
