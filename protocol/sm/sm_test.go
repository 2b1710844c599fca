package sm

import (
	"testing"

	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

func node(t testing.TB, s string) *xmlstream.Node {
	t.Helper()
	n, err := xmlstream.ParseNode(s, stanza.NSClient)
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return n
}

func TestParseEnable(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Enable
		bad  bool
	}{
		{in: "<enable xmlns='urn:xmpp:sm:3'/>"},
		{in: "<enable xmlns='urn:xmpp:sm:3' resume='true'/>", want: Enable{Resume: true}},
		{in: "<enable xmlns='urn:xmpp:sm:3' resume='1' max='600'/>", want: Enable{Resume: true, Max: 600}},
		{in: "<enable xmlns='urn:xmpp:sm:3' resume='false'/>"},
		{in: "<enable xmlns='urn:xmpp:sm:3' resume='yes'/>", bad: true},
		{in: "<enable xmlns='urn:xmpp:sm:3' max='-1'/>", bad: true},
		{in: "<enable xmlns='urn:xmpp:sm:2'/>", bad: true},
	} {
		got, err := ParseEnable(node(t, c.in))
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("%s: %+v, %v", c.in, got, err)
		}
	}
}

func TestParseResumeAndAck(t *testing.T) {
	r, err := ParseResume(node(t, "<resume xmlns='urn:xmpp:sm:3' previd='some-id' h='4294967295'/>"))
	if err != nil || r != (Resume{PrevID: "some-id", H: 4294967295}) {
		t.Fatalf("resume: %+v %v", r, err)
	}
	for _, bad := range []string{
		"<resume xmlns='urn:xmpp:sm:3' h='1'/>",
		"<resume xmlns='urn:xmpp:sm:3' previd='x'/>",
		"<resume xmlns='urn:xmpp:sm:3' previd='x' h='4294967296'/>",
		"<resume xmlns='urn:xmpp:sm:3' previd='x' h='-1'/>",
	} {
		if _, err := ParseResume(node(t, bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if h, err := ParseAck(node(t, "<a xmlns='urn:xmpp:sm:3' h='7'/>")); err != nil || h != 7 {
		t.Fatalf("a: %d %v", h, err)
	}
	if _, err := ParseAck(node(t, "<a xmlns='urn:xmpp:sm:3'/>")); err == nil {
		t.Fatal("<a/> without h accepted")
	}
	if !IsRequest(node(t, Request)) || IsRequest(node(t, "<r xmlns='urn:xmpp:sm:2'/>")) {
		t.Fatal("IsRequest")
	}
}

// The counters wrap at 2^32 (§4): an acknowledgement across the wrap confirms what it should, and one beyond what
// was sent is refused however the numbers wrap.
func TestNewlyWraps(t *testing.T) {
	for _, c := range []struct {
		acked, h, sent, n uint32
		ok                bool
	}{
		{0, 0, 0, 0, true},
		{0, 3, 5, 3, true},
		{3, 5, 5, 2, true},
		{0, 6, 5, 6, false},
		{4294967290, 4294967295, 2, 5, true}, // sent wrapped past 2^32-1 to 2
		{4294967290, 1, 2, 7, true},          // so did h
		{4294967290, 3, 2, 9, false},         // one more than sent
		{5, 4, 10, 4294967295, false},        // h going backwards is "too high" modulo 2^32
	} {
		n, ok := Newly(c.acked, c.h, c.sent)
		if ok != c.ok || (ok && n != c.n) {
			t.Errorf("Newly(%d, %d, %d) = %d, %v; want %d, %v", c.acked, c.h, c.sent, n, ok, c.n, c.ok)
		}
	}
}

func TestEncoders(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Enabled("", false, 300), "<enabled xmlns='urn:xmpp:sm:3'/>"},
		{Enabled("a'b", true, 300), "<enabled xmlns='urn:xmpp:sm:3' id='a&apos;b' resume='true' max='300'/>"},
		{Resumed("id", 4294967295), "<resumed xmlns='urn:xmpp:sm:3' previd='id' h='4294967295'/>"},
		{Failed(stanza.ItemNotFound, 3, true), "<failed xmlns='urn:xmpp:sm:3' h='3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"},
		{Failed(stanza.UnexpectedRequest, 0, false), "<failed xmlns='urn:xmpp:sm:3'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"},
		{Ack(0), "<a xmlns='urn:xmpp:sm:3' h='0'/>"},
		{TooHigh(9, 5), "<handled-count-too-high xmlns='urn:xmpp:sm:3' h='9' send-count='5'/>"},
	} {
		if c.got != c.want {
			t.Errorf("got  %s\nwant %s", c.got, c.want)
		}
		node(t, c.got) // well-formed
	}
}

// FuzzParse: no input panics a parser, and what parses encodes back to something that parses the same.
func FuzzParse(f *testing.F) {
	f.Add("<enable xmlns='urn:xmpp:sm:3' resume='true' max='60'/>")
	f.Add("<resume xmlns='urn:xmpp:sm:3' previd='x' h='12'/>")
	f.Add("<a xmlns='urn:xmpp:sm:3' h='4294967295'/>")
	f.Add("<r xmlns='urn:xmpp:sm:3'/>")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := xmlstream.ParseNode(s, stanza.NSClient)
		if err != nil {
			return
		}
		if h, err := ParseAck(n); err == nil {
			if back, err := ParseAck(node(t, Ack(h))); err != nil || back != h {
				t.Fatalf("ack %d round trip: %d %v", h, back, err)
			}
		}
		if r, err := ParseResume(n); err == nil {
			back, err := xmlstream.ParseNode(Resumed(r.PrevID, r.H), "")
			if err != nil || back.Attr("previd") != r.PrevID {
				t.Fatalf("resumed for %+v: %v", r, err)
			}
		}
		if e, err := ParseEnable(n); err == nil {
			if _, err := xmlstream.ParseNode(Enabled("id", e.Resume, e.Max), ""); err != nil {
				t.Fatalf("enabled for %+v: %v", e, err)
			}
		}
		_ = IsRequest(n)
	})
}
