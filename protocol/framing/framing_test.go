package framing

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

func TestAppendStandalone(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"<message to='a@b'><body>hi</body></message>", "<message xmlns='jabber:client' to='a@b'><body>hi</body></message>"},
		{"<message xmlns='jabber:client' to='a@b'/>", "<message xmlns='jabber:client' to='a@b'/>"},
		{"<presence/>", "<presence xmlns='jabber:client'/>"},
		{"<iq a='x&apos;>' b=\"y'\">", "<iq xmlns='jabber:client' a='x&apos;>' b=\"y'\">"},
		{"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
			"<stream:features xmlns:stream='" + stream.NS + "'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"},
		{"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"},
		{"<r xmlns = 'urn:xmpp:sm:3'/>", "<r xmlns = 'urn:xmpp:sm:3'/>"},
		{"<message xmlns:foo='x' foo:a='1'/>", "<message xmlns='jabber:client' xmlns:foo='x' foo:a='1'/>"},
		{"garbage", "garbage"},
		{"<unterminated a='", "<unterminated a='"},
	} {
		if got := string(AppendStandalone(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("AppendStandalone(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTranslate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{stream.Header("sid1", "localhost", "alice@localhost"), []string{"<open xmlns='" + NS + "' from='localhost' to='alice@localhost' id='sid1' version='1.0' xml:lang='en'/>"}},
		{stream.Close, []string{Close}},
		{string(stream.AppendError(nil, stream.PolicyViolation, "too big")) + stream.Close, []string{
			"<stream:error xmlns:stream='" + stream.NS + "'><policy-violation xmlns='" + stream.NSErrors + "'/><text xmlns='" + stream.NSErrors + "' xml:lang='en'>too big</text></stream:error>",
			Close}},
		{"<stream:error><see-other-host xmlns='" + stream.NSErrors + "'>wss://other.example/xmpp-websocket</see-other-host></stream:error>" + stream.Close,
			[]string{CloseSeeOther("wss://other.example/xmpp-websocket")}},
	} {
		got, err := Translate([]byte(tc.in))
		if err != nil || strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("Translate(%q) = %q, %v\nwant %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := Translate([]byte("<stream:error>")); err == nil {
		t.Error("a cut stream end translated without error")
	}
}

func decodeOne(t testing.TB, msg string) *xmlstream.Element {
	dec := xmlstream.NewDecoder(strings.NewReader(streamPrefix+msg), 1<<16)
	for {
		k, err := dec.Next()
		if err != nil {
			return nil
		}
		if k == xmlstream.KindElement {
			return dec.Element()
		}
	}
}

func TestHeader(t *testing.T) {
	el := decodeOne(t, "<open xmlns='"+NS+"' to='localhost' version='1.0' xml:lang='de'/>")
	h, err := Header(el)
	if err != nil {
		t.Fatal(err)
	}
	if d, cond, _ := stream.CheckHeader(h, func(d string) bool { return d == "localhost" }, ""); cond != "" || d != "localhost" || h.Lang != "de" {
		t.Errorf("header %+v: %s %s", h, d, cond)
	}
	el = decodeOne(t, "<open xmlns='"+NS+"' to='localhost'/>")
	h, _ = Header(el)
	if _, cond, _ := stream.CheckHeader(h, func(string) bool { return true }, ""); cond != stream.UnsupportedVersion {
		t.Errorf("no version: %s", cond)
	}
	if _, err := Header(decodeOne(t, "<open xmlns='jabber:client' to='localhost' version='1.0'/>")); err == nil {
		t.Error("an <open/> outside the framing namespace was taken")
	}
	if !IsClose(decodeOne(t, Close)) || IsOpen(decodeOne(t, Close)) {
		t.Error("IsClose/IsOpen")
	}
}

// The open we write parses back into the same attributes.
func TestOpenRoundTrip(t *testing.T) {
	el := decodeOne(t, Open("i'd", "localhost", "a@localhost/<r>", "en"))
	h, err := Header(el)
	if err != nil || h.ID != "i'd" || h.To != "a@localhost/<r>" || h.From != "localhost" || h.Version != "1.0" {
		t.Fatalf("%+v %v", h, err)
	}
}

func FuzzAppendStandalone(f *testing.F) {
	f.Add("<message to='a'><body/></message>")
	f.Add("<stream:features/>")
	f.Add("<iq xmlns='jabber:client' a=\"'>\"/>")
	f.Fuzz(func(t *testing.T, s string) {
		el := decodeOne(t, s)
		if el == nil || strings.HasPrefix(el.Raw, "<stream:") {
			return
		}
		out := string(AppendStandalone(nil, []byte(el.Raw)))
		// Made standalone, the element parses on its own with no namespace inherited, to the same name.
		n, err := xmlstream.ParseNode(out, "")
		if err != nil {
			t.Fatalf("%q → %q: %v", el.Raw, out, err)
		}
		if n.Name != el.Name {
			t.Fatalf("%q → %q: name %v, want %v", el.Raw, out, n.Name, el.Name)
		}
	})
}

func FuzzTranslate(f *testing.F) {
	f.Add(stream.Close)
	f.Add(stream.Header("a", "b", "c"))
	f.Add(string(stream.AppendError(nil, stream.NotWellFormed, "x")) + stream.Close)
	f.Fuzz(func(t *testing.T, s string) {
		msgs, err := Translate([]byte(s))
		if err != nil {
			return
		}
		for _, m := range msgs {
			if _, err := xmlstream.ParseNode(m, ""); err != nil {
				t.Fatalf("%q → message %q does not parse: %v", s, m, err)
			}
		}
	})
}
