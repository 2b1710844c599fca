package adhoc

import (
	"reflect"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// wireSamples is one value of each wire type, with fields set, as the nodes send them.
var wireSamples = []any{
	populationQuery{Domain: "example.com"},
	userState{Bare: "alice@example.com", Online: true, Active: true},
	announceQuery{Payload: "<subject>Maintenance</subject><body>Back &amp; soon</body>"},
	announced{Reached: true},
	motdUpdate{Domain: "example.com", ID: "2026-12-07T23:00:00Z", Body: "Hello\nall"},
	motdUpdate{Domain: "example.com"}, // deleted
	motdDelivered{Delivered: true},
	rosterQuery{},
	rosterAnswer{Items: []storage.RosterItem{{JID: "bob@example.com", Name: "Bob", Groups: []string{"Friends", "<Work>"}, Subscription: "both"},
		{JID: "carol@example.net", Ask: true, PendingIn: true, PendingInStanza: "<presence type='subscribe'/>"}}},
	statsQuery{},
	statsAnswer{RosterSize: 2, Resources: []string{"phone", "desk"}, Addresses: []string{"192.0.2.1", "2001:db8::1"}},
	lastLoginQuery{},
	lastLoginAnswer{At: time.Date(2026, 12, 7, 23, 1, 2, 345678900, time.UTC)},
	lastLoginAnswer{}, // never logged in
	endSessions{Resource: "phone", Condition: kickCondition, Text: kickText},
	sessionsEnded{N: 2},
	accountDeleted{},
}

// Every message type the feature's parts exchange crosses nodes as itself.
func TestWireRoundTrip(t *testing.T) {
	covered := map[string]bool{}
	for _, m := range wireSamples {
		name, data, ok := Feature.EncodeWire(m)
		if !ok {
			t.Fatalf("%T may not cross", m)
		}
		covered[name] = true
		got, err := Feature.DecodeWire(name, data)
		if err != nil {
			t.Fatalf("%T %s: %v", m, data, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: sent %#v, got %#v", name, m, got)
		}
	}
	for _, w := range Feature.Wire {
		if !covered[w.Name] {
			t.Errorf("wire type %q has no sample", w.Name)
		}
	}
	if err := Feature.CheckWire(); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := Feature.EncodeWire(struct{ X int }{1}); ok {
		t.Error("a type the feature does not declare crossed")
	}
}

// What a node cannot take is refused, not half-decoded.
func TestWireMalformed(t *testing.T) {
	for _, c := range []struct{ name, data, why string }{
		{"roster", `{"Items":[{"JID":"bob@example.com","Subscription":"both"}`, "truncated"},
		{"roster", `{"Items":[{"JID":"","Subscription":"both"}]}`, "no JID"},
		{"roster", `{"Items":[{"JID":"bob@example.com","Subscription":"half"}]}`, "no such subscription"},
		{"roster", `{"Items":"bob"}`, "wrong type"},
		{"population?", `{}`, "no domain"},
		{"population?", `null`, "not an object"},
		{"population?", `["example.com"]`, "an array"},
		{"population", `{"Bare":"","Online":true}`, "no account"},
		{"announce?", `{"Domain":"example.com"}`, "no payload"},
		{"motd?", `{"Domain":"example.com","Body":"x"}`, "a body without an id"},
		{"stats", `{"RosterSize":-1}`, "negative"},
		{"ended", `{"N":"2"}`, "a string for a number"},
		{"end", `{"Resource":"phone"}`, "no condition"},
		{"lastlogin", `{"At":"yesterday"}`, "not a time"},
		{"deleted", `{} {}`, "trailing data"},
		{"deleted", ``, "empty"},
		{"no-such-type", `{}`, "unknown name"},
	} {
		if m, err := Feature.DecodeWire(c.name, []byte(c.data)); err == nil {
			t.Errorf("%s %s (%s): decoded %#v", c.name, c.data, c.why, m)
		}
	}
	// A field a newer node adds is ignored (rolling restarts mix versions).
	m, err := Feature.DecodeWire("population?", []byte(`{"Domain":"example.com","Since":"2026"}`))
	if err != nil || m != (populationQuery{Domain: "example.com"}) {
		t.Errorf("an unknown field: %#v, %v", m, err)
	}
}

// FuzzWireDecode: no input panics a decoder, and what one accepts crosses again unchanged.
func FuzzWireDecode(f *testing.F) {
	for _, m := range wireSamples {
		name, data, _ := Feature.EncodeWire(m)
		f.Add(name, data)
	}
	f.Add("roster", []byte(`{"Items":[{"JID":"x","Groups":null}]}`))
	f.Add("population?", []byte(`{"Domain":"\u0000"}`))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		m, err := Feature.DecodeWire(name, data)
		if err != nil {
			return
		}
		again, b, ok := Feature.EncodeWire(m)
		if !ok {
			t.Fatalf("decoded %#v, which does not encode", m)
		}
		m2, err := Feature.DecodeWire(again, b)
		if err != nil || !reflect.DeepEqual(m, m2) || again != name {
			t.Fatalf("%s %q → %#v → %s %s → %#v, %v", name, data, m, again, b, m2, err)
		}
	})
}
