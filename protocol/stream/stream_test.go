package stream

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

func TestConditionValues(t *testing.T) {
	// RFC 6120 §4.9.3, in the order of its subsections.
	want := []struct {
		c    Condition
		name string
	}{
		{BadFormat, "bad-format"},
		{BadNamespacePrefix, "bad-namespace-prefix"},
		{Conflict, "conflict"},
		{ConnectionTimeout, "connection-timeout"},
		{HostGone, "host-gone"},
		{HostUnknown, "host-unknown"},
		{ImproperAddressing, "improper-addressing"},
		{InternalServerError, "internal-server-error"},
		{InvalidFrom, "invalid-from"},
		{InvalidNamespace, "invalid-namespace"},
		{InvalidXML, "invalid-xml"},
		{NotAuthorized, "not-authorized"},
		{NotWellFormed, "not-well-formed"},
		{PolicyViolation, "policy-violation"},
		{RemoteConnectionFailed, "remote-connection-failed"},
		{Reset, "reset"},
		{ResourceConstraint, "resource-constraint"},
		{RestrictedXML, "restricted-xml"},
		{SeeOtherHost, "see-other-host"},
		{SystemShutdown, "system-shutdown"},
		{UndefinedCondition, "undefined-condition"},
		{UnsupportedEncoding, "unsupported-encoding"},
		{UnsupportedFeature, "unsupported-feature"},
		{UnsupportedStanzaType, "unsupported-stanza-type"},
		{UnsupportedVersion, "unsupported-version"},
	}
	if len(want) != 25 {
		t.Fatalf("RFC 6120 §4.9.3 defines 25 conditions, table has %d", len(want))
	}
	for _, w := range want {
		if string(w.c) != w.name {
			t.Errorf("%q, want %q", w.c, w.name)
		}
		if !w.c.Defined() {
			t.Errorf("%q not Defined", w.c)
		}
	}
	for _, c := range []Condition{"", "bad-request", "item-not-found", "Conflict", "conflict ", "host"} {
		if c.Defined() {
			t.Errorf("%q Defined", c)
		}
	}
}

// The decoder's conditions are stream conditions: a caller may convert them.
func TestDecoderConditionsDefined(t *testing.T) {
	for _, c := range []string{xmlstream.CondNotWellFormed, xmlstream.CondRestrictedXML, xmlstream.CondPolicyViolation,
		xmlstream.CondBadNamespacePrefix, xmlstream.CondUnsupportedEncoding} {
		if !Condition(c).Defined() {
			t.Errorf("xmlstream condition %q not Defined", c)
		}
	}
}

func TestAppendError(t *testing.T) {
	const e = "<stream:error><"
	tests := []struct {
		c    Condition
		text string
		want string
	}{
		{PolicyViolation, "", e + "policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"},
		{ConnectionTimeout, "", e + "connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"},
		{HostUnknown, "this server does not serve that domain",
			e + "host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" +
				"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>this server does not serve that domain</text>" +
				"</stream:error>"},
		// Text is character data: & < > and \r escaped, quotes, tabs and newlines kept.
		{InvalidNamespace, "a<b>&c\"d'e\tf\ng\rh",
			e + "invalid-namespace xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" +
				"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>a&lt;b&gt;&amp;c\"d'e\tf\ng&#xD;h</text>" +
				"</stream:error>"},
		// Characters XML does not allow become U+FFFD.
		{UndefinedCondition, "x\x00y\xffz",
			e + "undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" +
				"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>x\uFFFDy\uFFFDz</text>" +
				"</stream:error>"},
		{SystemShutdown, "pas de problème",
			e + "system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" +
				"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>pas de problème</text>" +
				"</stream:error>"},
	}
	for _, tc := range tests {
		if got := string(AppendError(nil, tc.c, tc.text)); got != tc.want {
			t.Errorf("AppendError(%q, %q)\n got %s\nwant %s", tc.c, tc.text, got, tc.want)
		}
		// Appends: what b holds is kept.
		if got := string(AppendError([]byte("<x/>"), tc.c, tc.text)); got != "<x/>"+tc.want {
			t.Errorf("AppendError onto a prefix: %s", got)
		}
		checkErrorParses(t, tc.c, tc.text)
	}
}

// checkErrorParses decodes AppendError's output inside a stream with our header and checks what a peer reads.
func checkErrorParses(t *testing.T, c Condition, text string) {
	t.Helper()
	in := Header("id", "example.com", "") + string(AppendError(nil, c, text)) + Close
	d := xmlstream.NewDecoder(strings.NewReader(in), 1<<16)
	if k, err := d.Next(); err != nil || k != xmlstream.KindStreamStart {
		t.Fatalf("header: %v %v", k, err)
	}
	k, err := d.Next()
	if err != nil || k != xmlstream.KindElement {
		t.Fatalf("error element of %q %q: %v %v", c, text, k, err)
	}
	el := d.Element()
	if el.Name != (xmlstream.Name{Space: NS, Local: "error"}) {
		t.Fatalf("name %+v", el.Name)
	}
	n, err := el.Parse()
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if n.Child(NSErrors, string(c)) == nil {
		t.Fatalf("no <%s/> in %s", c, el.Raw)
	}
	tn := n.Child(NSErrors, "text")
	if (tn != nil) != (text != "") {
		t.Fatalf("<text/> present %v for text %q", tn != nil, text)
	}
	if tn != nil && validChars(text) && tn.TextContent() != text {
		t.Fatalf("text %q read back as %q", text, tn.TextContent())
	}
	if k, err := d.Next(); err != nil || k != xmlstream.KindStreamEnd {
		t.Fatalf("end: %v %v", k, err)
	}
}

// validChars reports whether s is valid UTF-8 made of XML Chars only (XML 1.0 §2.2), i.e. survives escaping
// unchanged.
func validChars(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !(r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD ||
			r >= 0x10000 && r <= 0x10FFFF) {
			return false
		}
	}
	return true
}
