package stanza

import (
	"testing"
	"time"

	"github.com/xmppd/xmppd/protocol/jid"
)

// UniqueID: 22 characters of the sortable alphabet, never the same twice, and a later id sorts after an earlier
// one (the time comes first).
func TestUniqueID(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id := UniqueID()
		if len(id) != 22 {
			t.Fatalf("%q: %d characters, want 22", id, len(id))
		}
		if seen[id] {
			t.Fatalf("%q handed out twice", id)
		}
		seen[id] = true
	}
	a := UniqueID()
	time.Sleep(2 * time.Millisecond)
	if b := UniqueID(); b <= a {
		t.Fatalf("a later id %q does not sort after %q", b, a)
	}
}

// The idempotency key travels only where it is given: WithOnce keeps everything else; copies for other
// recipients or senders and errors do not carry it.
func TestWithOnce(t *testing.T) {
	from, to := jid.MustParse("romeo@example.net/orchard"), jid.MustParse("juliet@example.com")
	st := New(Head{Name: "message", Type: "chat", ID: "m1", From: from.String(), To: to.String()}, from, to,
		"<message from='romeo@example.net/orchard' to='juliet@example.com' type='chat' id='m1'><body>hi</body></message>")
	st.Accepted = time.Unix(1, 0)
	k := st.WithOnce("key1")
	if k.Once != "key1" || k.Head != st.Head || k.From != st.From || k.To != st.To || k.Raw != st.Raw || !k.Accepted.Equal(st.Accepted) || st.Once != "" {
		t.Fatalf("WithOnce: %+v from %+v", k, st)
	}
	if n, err := k.Node(); err != nil || n.Child(NSClient, "body") == nil {
		t.Fatalf("the keyed copy does not parse: %v", err)
	}
	for name, c := range map[string]*Routed{"Retarget": k.Retarget(jid.MustParse("nurse@example.com")), "Restamp": k.Restamp(to),
		"Bounce": k.Bounce(NewError(ServiceUnavailable))} {
		if c.Once != "" {
			t.Errorf("%s carries the key", name)
		}
	}
}

// What a confirmed stanza's first forward between cluster nodes pays for its idempotency key.
func BenchmarkUniqueID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = UniqueID()
	}
}
