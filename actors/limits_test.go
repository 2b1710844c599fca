package actors

import (
	"strings"
	"testing"
	"time"
)

func TestTokenBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newTokenBucket(10, 5, now)
	for i := 0; i < 5; i++ {
		if !b.take(1, now) {
			t.Fatalf("take %d of the burst failed", i)
		}
	}
	if b.take(1, now) {
		t.Fatal("took beyond the burst")
	}
	if !b.take(1, now.Add(100*time.Millisecond)) {
		t.Fatal("no refill after 100ms at 10/s")
	}
	if d := b.debit(20, now.Add(100*time.Millisecond)); d != 2*time.Second {
		t.Fatalf("debit 20 at 10/s from 0: wait %v, want 2s", d)
	}
	if b.full(now.Add(2 * time.Second)) {
		t.Fatal("full too early")
	}
	if !b.full(now.Add(3 * time.Second)) {
		t.Fatal("not full after refilling")
	}
}

func TestParseUndelivered(t *testing.T) {
	b := "<message from='a@x/r' to='b@x/r' id='1' type='chat'><body>one</body></message>" +
		"<presence from='a@x/r' to='b@x/r'/>" +
		"<iq type='result' id='q' to='b@x/r'/>" +
		"<message xmlns:foo='urn:foo' to='b@x' id='2'><foo:x/><body>two &amp; more</body></message>"
	got := parseUndelivered(b)
	if len(got) != 2 {
		t.Fatalf("got %d messages, want 2", len(got))
	}
	if got[0].Head.ID != "1" || got[0].To.String() != "b@x/r" || got[0].Head.Type != "chat" || got[0].From.String() != "a@x/r" {
		t.Errorf("first: %+v", got[0].Head)
	}
	if got[1].Head.ID != "2" || got[1].To.String() != "b@x" || !strings.Contains(got[1].Raw, "two &amp; more") {
		t.Errorf("second: %+v %q", got[1].Head, got[1].Raw)
	}
	if parseUndelivered("<presence/>") != nil {
		t.Error("no message, yet something came back")
	}
}
