package stream

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

func served(d string) bool { return d == "example.com" || d == "xmpp.test" }

// decodeHeader returns the header the stream decoder reads from raw, as the server's reader hands it over.
func decodeHeader(t testing.TB, raw string) *xmlstream.Header {
	t.Helper()
	d := xmlstream.NewDecoder(strings.NewReader(raw), 1<<16)
	k, err := d.Next()
	if err != nil || k != xmlstream.KindStreamStart {
		t.Fatalf("decoding %q: %v %v", raw, k, err)
	}
	return d.Header()
}

const (
	xmlnsOK = ` xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'`
	// hdr is a valid initial header up to the attributes the cases add.
	hdr = `<stream:stream` + xmlnsOK

	txtStreamNS   = "the stream namespace must be http://etherx.jabber.org/streams"
	txtRoot       = "the root element must be <stream>"
	txtPrefix     = "the stream namespace prefix must be 'stream'"
	txtContentNS  = "the content namespace must be jabber:client"
	txtVersion    = "xmppd speaks XMPP 1.0"
	txtToRequired = "the 'to' attribute is required"
	txtNotServed  = "this server does not serve that domain"
	txtChanged    = "the domain changed at the stream restart"
)

func TestCheckHeader(t *testing.T) {
	tests := []struct {
		name    string
		raw     string // decoded with xmlstream
		restart string
		domain  string
		cond    Condition
		text    string
	}{
		{"ok", hdr + ` to='example.com' version='1.0'>`, "", "example.com", "", ""},
		{"ok other domain", hdr + ` to='xmpp.test' version='1.0'>`, "", "xmpp.test", "", ""},
		{"ok with from id lang", `<?xml version='1.0'?>` + hdr + ` from='juliet@example.com' to='example.com' version='1.0' xml:lang='en' id='x'>`, "", "example.com", "", ""},
		{"ok namespaces declared first", `<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client' version='1.0' to='example.com'>`, "", "example.com", "", ""},
		{"ok 'to' canonicalised", hdr + ` to='EXAMPLE.com.' version='1.0'>`, "", "example.com", "", ""},
		{"ok 'to' fullwidth", hdr + ` to='ｅxample.com' version='1.0'>`, "", "example.com", "", ""},
		{"ok version 1.1", hdr + ` to='example.com' version='1.1'>`, "", "example.com", "", ""},
		{"ok version 1.x", hdr + ` to='example.com' version='1.'>`, "", "example.com", "", ""},
		{"ok restart same domain", hdr + ` to='example.com' version='1.0'>`, "example.com", "example.com", "", ""},
		{"ok restart canonical", hdr + ` to='Example.COM' version='1.0'>`, "example.com", "example.com", "", ""},
		{"ok self-closed header", hdr + ` to='example.com' version='1.0'/>`, "", "example.com", "", ""},

		// RFC 6120 §4.8.1: the stream namespace.
		{"wrong stream namespace", `<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' to='example.com' version='1.0'>`,
			"", "", InvalidNamespace, txtStreamNS},
		{"stream element in the content namespace", `<stream xmlns='jabber:client' to='example.com' version='1.0'>`,
			"", "", InvalidNamespace, txtStreamNS},
		{"stream element without namespace", `<stream to='example.com' version='1.0'>`, "", "", InvalidNamespace, txtStreamNS},
		{"stream namespace with trailing slash", `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams/' to='example.com' version='1.0'>`,
			"", "", InvalidNamespace, txtStreamNS},
		// §4.8.1: the root's local name.
		{"wrong root name", `<stream:strem` + xmlnsOK + ` to='example.com' version='1.0'>`, "", "", InvalidNamespace, txtRoot},
		{"root name case", `<stream:Stream` + xmlnsOK + ` to='example.com' version='1.0'>`, "", "", InvalidNamespace, txtRoot},
		// §4.8.5, §4.9.3.2: the prefix.
		{"other prefix", `<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`,
			"", "", BadNamespacePrefix, txtPrefix},
		{"stream namespace as default", `<stream xmlns='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`,
			"", "", BadNamespacePrefix, txtPrefix},
		// §4.8.2: the content namespace.
		{"server content namespace", `<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`,
			"", "", InvalidNamespace, txtContentNS},
		{"no content namespace", `<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`,
			"", "", InvalidNamespace, txtContentNS},
		{"empty content namespace", `<stream:stream xmlns='' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`,
			"", "", InvalidNamespace, txtContentNS},
		// §4.7.5, §4.9.3.25: the version.
		{"no version", hdr + ` to='example.com'>`, "", "", UnsupportedVersion, txtVersion},
		{"empty version", hdr + ` to='example.com' version=''>`, "", "", UnsupportedVersion, txtVersion},
		{"version without minor", hdr + ` to='example.com' version='1'>`, "", "", UnsupportedVersion, txtVersion},
		{"version 0.9", hdr + ` to='example.com' version='0.9'>`, "", "", UnsupportedVersion, txtVersion},
		{"version 2.0", hdr + ` to='example.com' version='2.0'>`, "", "", UnsupportedVersion, txtVersion},
		{"version 01.0", hdr + ` to='example.com' version='01.0'>`, "", "", UnsupportedVersion, txtVersion},
		{"version with space", hdr + ` to='example.com' version=' 1.0'>`, "", "", UnsupportedVersion, txtVersion},
		// §4.7.2, §4.9.3.6: 'to'.
		{"no to", hdr + ` version='1.0'>`, "", "", HostUnknown, txtToRequired},
		{"empty to", hdr + ` to='' version='1.0'>`, "", "", HostUnknown, txtToRequired},
		{"no to at restart", hdr + ` version='1.0'>`, "example.com", "", HostUnknown, txtToRequired},
		{"unserved domain", hdr + ` to='other.org' version='1.0'>`, "", "", HostUnknown, txtNotServed},
		{"subdomain", hdr + ` to='conference.example.com' version='1.0'>`, "", "", HostUnknown, txtNotServed},
		{"to with localpart", hdr + ` to='juliet@example.com' version='1.0'>`, "", "", HostUnknown, txtNotServed},
		{"to with resourcepart", hdr + ` to='example.com/balcony' version='1.0'>`, "", "", HostUnknown, txtNotServed},
		{"to not a JID", hdr + ` to='@example.com' version='1.0'>`, "", "", HostUnknown, txtNotServed},
		{"to with space", hdr + ` to='example .com' version='1.0'>`, "", "", HostUnknown, txtNotServed},
		{"to unserved at restart", hdr + ` to='other.org' version='1.0'>`, "example.com", "", HostUnknown, txtNotServed},
		// RFC 6120 §6.4.6: the restarted stream is for the same domain.
		{"domain changed at restart", hdr + ` to='xmpp.test' version='1.0'>`, "example.com", "", HostUnknown, txtChanged},

		// Order: the first failing check wins.
		{"stream namespace before version", `<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' to='other.org'>`,
			"", "", InvalidNamespace, txtStreamNS},
		{"root before prefix", `<s:strem xmlns='jabber:server' xmlns:s='http://etherx.jabber.org/streams'>`,
			"", "", InvalidNamespace, txtRoot},
		{"prefix before content namespace", `<s:stream xmlns='jabber:server' xmlns:s='http://etherx.jabber.org/streams'>`,
			"", "", BadNamespacePrefix, txtPrefix},
		{"content namespace before version", `<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' version='2.0'>`,
			"", "", InvalidNamespace, txtContentNS},
		{"version before to", hdr + ` version='2.0'>`, "", "", UnsupportedVersion, txtVersion},
		{"version before unserved", hdr + ` to='other.org'>`, "", "", UnsupportedVersion, txtVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := decodeHeader(t, tc.raw)
			domain, cond, text := CheckHeader(h, served, tc.restart)
			if domain != tc.domain || cond != tc.cond || text != tc.text {
				t.Errorf("CheckHeader(%+v, restart %q)\n = %q, %q, %q\nwant %q, %q, %q",
					*h, tc.restart, domain, cond, text, tc.domain, tc.cond, tc.text)
			}
		})
	}
}

// Cases the decoder cannot produce, and the nil arguments.
func TestCheckHeaderValues(t *testing.T) {
	good := xmlstream.Header{StreamNS: NS, Local: "stream", Prefix: "stream", DefaultNS: NSClient, Version: "1.0", To: "example.com"}
	with := func(f func(h *xmlstream.Header)) *xmlstream.Header { h := good; f(&h); return &h }
	tests := []struct {
		name   string
		h      *xmlstream.Header
		served func(string) bool
		domain string
		cond   Condition
		text   string
	}{
		{"ok", &good, served, "example.com", "", ""},
		{"nil header", nil, served, "", InvalidNamespace, txtStreamNS},
		{"nil served", &good, nil, "", HostUnknown, txtNotServed},
		{"serves nothing", &good, func(string) bool { return false }, "", HostUnknown, txtNotServed},
		{"served sees the canonical domain", with(func(h *xmlstream.Header) { h.To = "ExAmple.Com" }),
			func(d string) bool { return d == "example.com" }, "example.com", "", ""},
		{"empty local name", with(func(h *xmlstream.Header) { h.Local = "" }), served, "", InvalidNamespace, txtRoot},
		{"empty prefix", with(func(h *xmlstream.Header) { h.Prefix = "" }), served, "", BadNamespacePrefix, txtPrefix},
		{"to too long", with(func(h *xmlstream.Header) { h.To = strings.Repeat("a", 1100) + ".com" }),
			func(string) bool { return true }, "", HostUnknown, txtNotServed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			domain, cond, text := CheckHeader(tc.h, tc.served, "")
			if domain != tc.domain || cond != tc.cond || text != tc.text {
				t.Errorf("= %q, %q, %q; want %q, %q, %q", domain, cond, text, tc.domain, tc.cond, tc.text)
			}
		})
	}
}

func TestResponseTo(t *testing.T) {
	tests := []struct{ from, want string }{
		{"", ""},
		{"juliet@example.com", "juliet@example.com"},
		{"juliet@example.com/balcony", "juliet@example.com/balcony"},
		{"example.com", "example.com"},
		{"Juliet@Example.COM/Res", "juliet@example.com/Res"},
		{"@example.com", ""},
		{"juliet@", ""},
		{"a b@example.com", ""},
	}
	for _, tc := range tests {
		if got := ResponseTo(&xmlstream.Header{From: tc.from}); got != tc.want {
			t.Errorf("ResponseTo(from %q) = %q, want %q", tc.from, got, tc.want)
		}
	}
	if got := ResponseTo(nil); got != "" {
		t.Errorf("ResponseTo(nil) = %q", got)
	}
	// From a decoded header: the attribute is unescaped before it is parsed.
	if got := ResponseTo(decodeHeader(t, hdr+` from='romeo&#x40;example.com' to='example.com' version='1.0'>`)); got != "romeo@example.com" {
		t.Errorf("decoded: %q", got)
	}
}

// connStreamHeader is actors/conn.go's streamHeader as it was when this package took it over: Header must give
// the same bytes for the ids that conn generates (unpadded base64url, which needs no escaping).
func connStreamHeader(streamID, domain, to string) string {
	b := make([]byte, 0, 256)
	b = append(b, "<?xml version='1.0'?><stream:stream xmlns='"+NSClient+"' xmlns:stream='"+NS+"' id='"...)
	b = append(b, streamID...)
	b = append(b, "' from='"...)
	b = xmlstream.AppendEscapedAttr(b, domain)
	b = append(b, '\'')
	if to != "" {
		b = append(b, " to='"...)
		b = xmlstream.AppendEscapedAttr(b, to)
		b = append(b, '\'')
	}
	b = append(b, " version='1.0' xml:lang='en'>"...)
	return string(b)
}

func TestHeader(t *testing.T) {
	const decl = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
	tests := []struct {
		id, from, to string
		want         string
	}{
		{"AbC-_12345678901234567", "example.com", "juliet@example.com/balcony",
			decl + " id='AbC-_12345678901234567' from='example.com' to='juliet@example.com/balcony' version='1.0' xml:lang='en'>"},
		{"x", "example.com", "", decl + " id='x' from='example.com' version='1.0' xml:lang='en'>"},
		{"refused", "", "", decl + " id='refused' from='' version='1.0' xml:lang='en'>"},
		// Every value is escaped.
		{"a'b", `d<&>"'`, "t\t\n\r", decl + ` id='a&apos;b' from='d&lt;&amp;&gt;&quot;&apos;' to='t&#x9;&#xA;&#xD;' version='1.0' xml:lang='en'>`},
		{"\x00", "\xff", "é", decl + " id='\uFFFD' from='\uFFFD' to='é' version='1.0' xml:lang='en'>"},
	}
	for _, tc := range tests {
		if got := Header(tc.id, tc.from, tc.to); got != tc.want {
			t.Errorf("Header(%q, %q, %q)\n got %s\nwant %s", tc.id, tc.from, tc.to, got, tc.want)
		}
		if got := string(AppendHeader([]byte("x"), tc.id, tc.from, tc.to)); got != "x"+tc.want {
			t.Errorf("AppendHeader onto a prefix: %s", got)
		}
	}
	for _, tc := range []struct{ id, domain, to string }{
		{"AAAAAAAAAAAAAAAA", "example.com", ""},
		{"Zm9vYmFyYmF6cXV4", "example.com", "juliet@example.com/balcony"},
		{"-_-_-_-_-_-_-_-_", "xmpp.test", "a'b@xmpp.test/<r>"},
	} {
		if got, want := Header(tc.id, tc.domain, tc.to), connStreamHeader(tc.id, tc.domain, tc.to); got != want {
			t.Errorf("Header(%q, %q, %q) differs from conn.streamHeader:\n got %s\nwant %s", tc.id, tc.domain, tc.to, got, want)
		}
	}
}

// What a peer's decoder reads from our header.
func TestHeaderDecodes(t *testing.T) {
	raw := Header("s1", "example.com", "juliet@example.com/balcony")
	h := decodeHeader(t, raw)
	want := xmlstream.Header{To: "juliet@example.com/balcony", From: "example.com", ID: "s1", Version: "1.0", Lang: "en",
		DefaultNS: NSClient, StreamNS: NS, Local: "stream", Prefix: "stream"}
	if *h != want {
		t.Fatalf("decoded %+v\nwant    %+v", *h, want)
	}
	// A header we write passes our own checks when its 'to' is a domain we serve.
	if d, cond, text := CheckHeader(decodeHeader(t, Header("s2", "juliet@example.com", "example.com")), served, ""); d != "example.com" || cond != "" {
		t.Fatalf("our header refused: %q %q %q", d, cond, text)
	}
}

func TestFeatures(t *testing.T) {
	tests := []struct {
		children []string
		want     string
	}{
		{nil, "<stream:features></stream:features>"},
		{[]string{""}, "<stream:features></stream:features>"},
		{[]string{"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"},
			"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"},
		{[]string{"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>",
			"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>", "",
			"<register xmlns='http://jabber.org/features/iq-register'/>"},
			"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>" +
				"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>" +
				"<register xmlns='http://jabber.org/features/iq-register'/></stream:features>"},
	}
	for _, tc := range tests {
		got := Features(tc.children...)
		if got != tc.want {
			t.Errorf("Features(%q)\n got %s\nwant %s", tc.children, got, tc.want)
		}
		// Inside our header, it is one element in the stream namespace.
		d := xmlstream.NewDecoder(strings.NewReader(Header("i", "example.com", "")+got), 1<<16)
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
		if k, err := d.Next(); err != nil || k != xmlstream.KindElement || d.Element().Name != (xmlstream.Name{Space: NS, Local: "features"}) {
			t.Fatalf("%s: %v %v", got, k, err)
		}
	}
}
