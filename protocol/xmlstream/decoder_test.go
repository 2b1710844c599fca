package xmlstream

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unsafe"
)

const (
	nsStreams = "http://etherx.jabber.org/streams"
	hdrC2S    = `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0' xml:lang='en'>`
)

// trace runs a decoder to the end and renders what it saw, one token per
// line, so whole runs compare as strings. Runs of whitespace tokens are
// coalesced: how many there are depends on read sizes by design.
func trace(r io.Reader, max int) string {
	d := NewDecoder(r, max)
	var sb strings.Builder
	lastWS := false
	for i := 0; i < 10000; i++ {
		k, err := d.Next()
		if err != nil {
			var xe *Error
			if errors.As(err, &xe) {
				fmt.Fprintf(&sb, "error %s\n", xe.Condition)
			} else {
				fmt.Fprintf(&sb, "%v\n", err)
			}
			return sb.String()
		}
		if k == KindWhitespace {
			if !lastWS {
				sb.WriteString("ws\n")
			}
			lastWS = true
			continue
		}
		lastWS = false
		switch k {
		case KindStreamStart:
			h := d.Header()
			fmt.Fprintf(&sb, "start {%s}%s def=%s to=%s from=%s id=%s v=%s lang=%s\n",
				h.StreamNS, h.Local, h.DefaultNS, h.To, h.From, h.ID, h.Version, h.Lang)
		case KindStreamEnd:
			sb.WriteString("end\n")
		case KindElement:
			e := d.Element()
			fmt.Fprintf(&sb, "elem {%s}%s to=%s from=%s type=%s id=%s lang=%s raw=%s\n",
				e.Name.Space, e.Name.Local, e.To, e.From, e.Type, e.ID, e.Lang, e.Raw)
		}
	}
	return sb.String() + "too many tokens\n"
}

// oneByteReader returns one byte per Read (iotest.OneByteReader, but it also
// works on strings).
func oneByte(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) }

func TestDecodeValid(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"chat", hdrC2S + `<message to='bob@localhost' type='chat' id='abc123'><body>hello</body><active xmlns='http://jabber.org/protocol/chatstates'/></message></stream:stream>`,
			"start {" + nsStreams + "}stream def=jabber:client to=localhost from= id= v=1.0 lang=en\n" +
				"elem {jabber:client}message to=bob@localhost from= type=chat id=abc123 lang= raw=<message to='bob@localhost' type='chat' id='abc123'><body>hello</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>\n" +
				"end\nEOF\n"},
		{"xml declaration and whitespace",
			"<?xml version='1.0' encoding='UTF-8'?>\n" + hdrC2S + "\n\t <presence/> \r\n</stream:stream>  ",
			"start {" + nsStreams + "}stream def=jabber:client to=localhost from= id= v=1.0 lang=en\nws\n" +
				"elem {jabber:client}presence to= from= type= id= lang= raw=<presence/>\nws\nend\nws\nEOF\n"},
		{"double-quoted declaration", `<?xml version="1.0" encoding="utf-8" standalone="yes" ?><s:stream xmlns:s='` + nsStreams + `' xmlns="jabber:server" from="a.example" id="x&amp;y"></s:stream>`,
			"start {" + nsStreams + "}stream def=jabber:server to= from=a.example id=x&y v= lang=\nend\nEOF\n"},
		{"own namespace", hdrC2S + `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG0wcg==</auth>`,
			"start {" + nsStreams + "}stream def=jabber:client to=localhost from= id= v=1.0 lang=en\n" +
				"elem {urn:ietf:params:xml:ns:xmpp-sasl}auth to= from= type= id= lang= raw=<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG0wcg==</auth>\nEOF\n"},
		{"escaped head attributes", hdrC2S + `<message to="a&amp;b@x" from='&#x61;@b' xml:lang='de' type='c&#10;d'><body>&lt;&gt;&amp;&apos;&quot;&#233;</body></message>`,
			"start {" + nsStreams + "}stream def=jabber:client to=localhost from= id= v=1.0 lang=en\n" +
				"elem {jabber:client}message to=a&b@x from=a@b type=c\nd id= lang=de raw=<message to=\"a&amp;b@x\" from='&#x61;@b' xml:lang='de' type='c&#10;d'><body>&lt;&gt;&amp;&apos;&quot;&#233;</body></message>\nEOF\n"},
		{"prefix from header is added to raw", `<stream:stream xmlns='jabber:server' xmlns:stream='` + nsStreams + `' xmlns:db='jabber:server:dialback'><db:result to='b' from='a'>key</db:result><stream:error><x xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`,
			"start {" + nsStreams + "}stream def=jabber:server to= from= id= v= lang=\n" +
				"elem {jabber:server:dialback}result to=b from=a type= id= lang= raw=<db:result xmlns:db='jabber:server:dialback' to='b' from='a'>key</db:result>\n" +
				"elem {" + nsStreams + "}error to= from= type= id= lang= raw=<stream:error xmlns:stream='" + nsStreams + "'><x xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>\nEOF\n"},
		{"header prefix used only inside", `<stream:stream xmlns='jabber:server' xmlns:stream='` + nsStreams + `' xmlns:db='jabber:server:dialback' xmlns:x='urn:x'><message db:a='1'><x:y/></message><message><db:x xmlns:db='urn:own'/></message>`,
			"start {" + nsStreams + "}stream def=jabber:server to= from= id= v= lang=\n" +
				"elem {jabber:server}message to= from= type= id= lang= raw=<message xmlns:db='jabber:server:dialback' xmlns:x='urn:x' db:a='1'><x:y/></message>\n" +
				"elem {jabber:server}message to= from= type= id= lang= raw=<message><db:x xmlns:db='urn:own'/></message>\nEOF\n"},
		{"own prefix", hdrC2S + `<p:x xmlns:p='urn:p' p:a='1' a='2'><p:y/></p:x>`,
			"start {" + nsStreams + "}stream def=jabber:client to=localhost from= id= v=1.0 lang=en\n" +
				"elem {urn:p}x to= from= type= id= lang= raw=<p:x xmlns:p='urn:p' p:a='1' a='2'><p:y/></p:x>\nEOF\n"},
		{"cdata and gt in attribute", hdrC2S + `<message id='a>b'><body><![CDATA[<not> & ]markup]] ]]></body></message>`,
			"start {" + nsStreams + "}stream def=jabber:client to=localhost from= id= v=1.0 lang=en\n" +
				"elem {jabber:client}message to= from= type= id=a>b lang= raw=<message id='a>b'><body><![CDATA[<not> & ]markup]] ]]></body></message>\nEOF\n"},
		{"restart", hdrC2S + `<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>` + hdrC2S + `<iq type='set' id='b'/>`,
			"start {" + nsStreams + "}stream def=jabber:client to=localhost from= id= v=1.0 lang=en\n" +
				"elem {urn:ietf:params:xml:ns:xmpp-sasl}success to= from= type= id= lang= raw=<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>\n" +
				"start {" + nsStreams + "}stream def=jabber:client to=localhost from= id= v=1.0 lang=en\n" +
				"elem {jabber:client}iq to= from= type=set id=b lang= raw=<iq type='set' id='b'/>\nEOF\n"},
		{"restart with declaration and other prefix", hdrC2S + "\n<?xml version='1.0'?>\n<x:stream xmlns:x='" + nsStreams + "' xmlns='jabber:client' to='b'><iq/></x:stream>",
			"start {" + nsStreams + "}stream def=jabber:client to=localhost from= id= v=1.0 lang=en\nws\n" +
				"start {" + nsStreams + "}stream def=jabber:client to=b from= id= v= lang=\n" +
				"elem {jabber:client}iq to= from= type= id= lang= raw=<iq/>\nend\nEOF\n"},
		{"stream-named element in another namespace is not a restart", hdrC2S + `<stream xmlns='urn:x'>a</stream>`,
			"start {" + nsStreams + "}stream def=jabber:client to=localhost from= id= v=1.0 lang=en\n" +
				"elem {urn:x}stream to= from= type= id= lang= raw=<stream xmlns='urn:x'>a</stream>\nEOF\n"},
		{"self-closing header", `<stream:stream xmlns:stream='` + nsStreams + `'/>`,
			"start {" + nsStreams + "}stream def= to= from= id= v= lang=\nend\nEOF\n"},
		{"unicode", hdrC2S + "<message><body>héllo 𝄞 \u00a0 ok</body><élément xmlns='urn:é'/></message>",
			"start {" + nsStreams + "}stream def=jabber:client to=localhost from= id= v=1.0 lang=en\n" +
				"elem {jabber:client}message to= from= type= id= lang= raw=<message><body>héllo 𝄞 \u00a0 ok</body><élément xmlns='urn:é'/></message>\nEOF\n"},
		{"empty default namespace", hdrC2S + `<x xmlns=''/>`,
			"start {" + nsStreams + "}stream def=jabber:client to=localhost from= id= v=1.0 lang=en\n" +
				"elem {}x to= from= type= id= lang= raw=<x xmlns=''/>\nEOF\n"},
		{"truncated element", hdrC2S + `<message><body>hel`,
			"start {" + nsStreams + "}stream def=jabber:client to=localhost from= id= v=1.0 lang=en\nEOF\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := trace(strings.NewReader(tc.in), 4096); got != tc.want {
				t.Errorf("whole input:\n got: %s\nwant: %s", got, tc.want)
			}
			if got := trace(oneByte(tc.in), 4096); got != tc.want {
				t.Errorf("byte by byte:\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string // after a valid header unless noHeader
		cond string
		raw  bool // in is the whole input
	}{
		{"text at stream level", "hello", CondNotWellFormed, false},
		{"entity at stream level", "&#32;", CondNotWellFormed, false},
		{"cdata at stream level", "<![CDATA[ ]]>", CondNotWellFormed, false},
		{"mismatched tags", "<a><b></a></b>", CondNotWellFormed, false},
		{"mismatched stream end", "</stream:streams>", CondNotWellFormed, false},
		{"stream end with other prefix", "</s:stream>", CondNotWellFormed, false},
		{"unquoted attribute", "<a b=c/>", CondNotWellFormed, false},
		{"attribute without value", "<a b/>", CondNotWellFormed, false},
		{"no space between attributes", "<a b='1'c='2'/>", CondNotWellFormed, false},
		{"lt in attribute", "<a b='<'/>", CondNotWellFormed, false},
		{"duplicate attribute", "<a b='1' b='2'/>", CondNotWellFormed, false},
		{"duplicate expanded attribute", "<a xmlns:p='u' xmlns:q='u' p:b='1' q:b='2'/>", CondNotWellFormed, false},
		{"duplicate xmlns", "<a xmlns='u' xmlns='u'/>", CondNotWellFormed, false},
		{"many duplicate attributes", "<a" + manyAttrs(20) + " a7='x'/>", CondNotWellFormed, false},
		{"invalid utf-8", "<a>\xff</a>", CondNotWellFormed, false},
		{"invalid utf-8 in attribute", "<a b='\xc3\x28'/>", CondNotWellFormed, false},
		{"surrogate", "<a>\xed\xa0\x80</a>", CondNotWellFormed, false},
		{"control char", "<a>\x01</a>", CondNotWellFormed, false},
		{"nul in attribute", "<a b='\x00'/>", CondNotWellFormed, false},
		{"U+FFFE", "<a>\uFFFE</a>", CondNotWellFormed, false},
		{"bad char ref", "<a>&#0;</a>", CondNotWellFormed, false},
		{"bad char ref fffe", "<a>&#xFFFE;</a>", CondNotWellFormed, false},
		{"huge char ref", "<a>&#99999999999999999999;</a>", CondNotWellFormed, false},
		{"malformed ref", "<a>& b</a>", CondNotWellFormed, false},
		{"unterminated ref", "<a>&amp</a>", CondNotWellFormed, false},
		{"cdata end in text", "<a>]]></a>", CondNotWellFormed, false},
		{"bad name", "<1a/>", CondNotWellFormed, false},
		{"two colons", "<a:b:c xmlns:a='u'/>", CondNotWellFormed, false},
		{"empty local", "<a: xmlns:a='u'/>", CondNotWellFormed, false},
		{"end tag junk", "<a></a x>", CondNotWellFormed, false},
		{"slash without gt", "<a/ >", CondNotWellFormed, false},
		{"prefix bound to empty", "<a xmlns:p=''/>", CondNotWellFormed, false},
		{"xmlns prefix declared", "<a xmlns:xmlns='u'/>", CondNotWellFormed, false},
		{"xml prefix rebound", "<a xmlns:xml='u'/>", CondNotWellFormed, false},
		{"comment", "<!-- hi -->", CondRestrictedXML, false},
		{"comment inside", "<a><!-- hi --></a>", CondRestrictedXML, false},
		{"pi inside", "<a><?foo bar?></a>", CondRestrictedXML, false},
		{"pi at stream level", "<?foo bar?>", CondRestrictedXML, false},
		{"xml-like pi", "<?xml-stylesheet href='x'?>", CondRestrictedXML, false},
		{"declaration not followed by header", "<?xml version='1.0'?><message/>", CondRestrictedXML, false},
		{"doctype", "<!DOCTYPE foo>", CondRestrictedXML, false},
		{"entity decl inside", "<a><!ENTITY x 'y'></a>", CondRestrictedXML, false},
		{"undefined entity", "<a>&nbsp;</a>", CondRestrictedXML, false},
		{"undefined entity in attribute", "<a b='&foo;'/>", CondRestrictedXML, false},
		{"undeclared prefix", "<p:a/>", CondBadNamespacePrefix, false},
		{"undeclared attribute prefix", "<a p:b='1'/>", CondBadNamespacePrefix, false},
		{"undeclared nested prefix", "<a><p:b/></a>", CondBadNamespacePrefix, false},
		{"prefix out of scope", "<a><b xmlns:p='u'/><p:c/></a>", CondBadNamespacePrefix, false},
		{"element too large", "<a>" + strings.Repeat("x", 300) + "</a>", CondPolicyViolation, false},
		{"whitespace run too large", strings.Repeat(" \n", 200), CondPolicyViolation, false},
		{"content after stream end", "</stream:stream><a/>", CondNotWellFormed, false},
		{"duplicate declaration", "<?xml version='1.0'?><?xml version='1.0'?>", CondNotWellFormed, false},

		// Whole inputs.
		{"text before header", "hi" + hdrC2S, CondNotWellFormed, true},
		{"end tag before header", "</stream:stream>", CondNotWellFormed, true},
		{"comment before header", "<!-- x -->" + hdrC2S, CondRestrictedXML, true},
		{"doctype before header", "<!DOCTYPE stream>" + hdrC2S, CondRestrictedXML, true},
		{"pi before header", "<?foo?>" + hdrC2S, CondRestrictedXML, true},
		{"encoding", "<?xml version='1.0' encoding='ISO-8859-1'?>" + hdrC2S, CondUnsupportedEncoding, true},
		{"declaration without version", "<?xml encoding='UTF-8'?>" + hdrC2S, CondNotWellFormed, true},
		{"declaration bad version", "<?xml version='2.0'?>" + hdrC2S, CondNotWellFormed, true},
		{"declaration junk", "<?xml version='1.0' foo='bar'?>" + hdrC2S, CondNotWellFormed, true},
		{"header undeclared prefix", "<stream:stream xmlns='jabber:client'>", CondBadNamespacePrefix, true},
		{"header duplicate attribute", "<stream:stream xmlns:stream='" + nsStreams + "' to='a' to='b'>", CondNotWellFormed, true},
		{"header too large", "<stream:stream xmlns:stream='" + nsStreams + "' to='" + strings.Repeat("a", 300) + "'>", CondPolicyViolation, true},
		{"header malformed", "<stream:stream to=a>", CondNotWellFormed, true},
		{"restart without own declaration", hdrC2S + "<stream:stream xmlns='jabber:client'>", CondBadNamespacePrefix, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if !tc.raw {
				in = hdrC2S + in
			}
			for _, mode := range []string{"whole", "bytes"} {
				r := io.Reader(strings.NewReader(in))
				if mode == "bytes" {
					r = oneByte(in)
				}
				got := trace(r, 256)
				if !strings.HasSuffix(got, "error "+tc.cond+"\n") {
					t.Errorf("%s: want %s, got:\n%s", mode, tc.cond, got)
				}
			}
		})
	}
}

func manyAttrs(n int) string {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, " a%d='x'", i)
	}
	return sb.String()
}

func TestErrorIsSticky(t *testing.T) {
	d := NewDecoder(strings.NewReader(hdrC2S+"<a><!-- --></a><b/>"), 1000)
	if k, err := d.Next(); k != KindStreamStart || err != nil {
		t.Fatalf("header: %v %v", k, err)
	}
	_, err1 := d.Next()
	_, err2 := d.Next()
	var xe *Error
	if !errors.As(err1, &xe) || xe.Condition != CondRestrictedXML || err2 != err1 {
		t.Fatalf("got %v then %v", err1, err2)
	}
	if !strings.Contains(err1.Error(), "restricted-xml") {
		t.Errorf("Error() = %q", err1.Error())
	}
}

// Element strings must not point into the decoder's buffer (it is reused)
// and head attributes must be substrings of Raw (no extra allocation).
func TestElementStringsOwnership(t *testing.T) {
	d := NewDecoder(strings.NewReader(hdrC2S+`<message to='bob@localhost' from='a@b/c' type='chat' id='abc123' xml:lang='en'><body>x</body></message><presence/>`), 1000)
	d.Next()
	if k, err := d.Next(); k != KindElement || err != nil {
		t.Fatal(k, err)
	}
	e := d.Element()
	if k, err := d.Next(); k != KindElement || err != nil {
		t.Fatal(k, err)
	}
	if e == d.Element() {
		t.Fatal("Element reused")
	}
	within := func(sub string) bool {
		base := uintptr(unsafe.Pointer(unsafe.StringData(e.Raw)))
		p := uintptr(unsafe.Pointer(unsafe.StringData(sub)))
		return p >= base && p+uintptr(len(sub)) <= base+uintptr(len(e.Raw))
	}
	for _, s := range []string{e.To, e.From, e.Type, e.ID, e.Lang, e.Name.Local} {
		if !within(s) {
			t.Errorf("%q is not a substring of Raw", s)
		}
	}
	bufBase := uintptr(unsafe.Pointer(unsafe.SliceData(d.buf)))
	rawP := uintptr(unsafe.Pointer(unsafe.StringData(e.Raw)))
	if rawP >= bufBase && rawP < bufBase+uintptr(cap(d.buf)) {
		t.Error("Raw points into the decoder buffer")
	}
	if e.Raw != `<message to='bob@localhost' from='a@b/c' type='chat' id='abc123' xml:lang='en'><body>x</body></message>` {
		t.Errorf("Raw = %q", e.Raw)
	}
}

// endless is a reader that never ends: prefix, then fill forever.
type endless struct {
	prefix []byte
	fill   byte
	read   int
}

func (r *endless) Read(p []byte) (int, error) {
	n := copy(p, r.prefix)
	r.prefix = r.prefix[n:]
	for i := n; i < len(p); i++ {
		p[i] = r.fill
	}
	r.read += len(p)
	return len(p), nil
}

func TestMemoryBound(t *testing.T) {
	const limit = 64 << 10
	cases := []struct {
		name   string
		prefix string
		fill   byte
	}{
		{"huge element", hdrC2S + "<message><body>", 'x'},
		{"huge attribute", hdrC2S + "<message to='", 'x'},
		{"huge cdata", hdrC2S + "<message><![CDATA[", 'x'},
		{"huge header", "<stream:stream to='", 'a'},
		{"huge declaration", "<?xml version='1.0' ", ' '},
		{"endless whitespace", hdrC2S, ' '},
		{"deep nesting", hdrC2S, '<'},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &endless{prefix: []byte(tc.prefix), fill: tc.fill}
			if tc.name == "deep nesting" {
				r.prefix = []byte(tc.prefix + strings.Repeat("<a>", 100<<20/3))
			}
			d := NewDecoder(r, limit)
			var err error
			for i := 0; i < 1<<20 && err == nil; i++ {
				_, err = d.Next()
			}
			var xe *Error
			if !errors.As(err, &xe) || xe.Condition != CondPolicyViolation {
				t.Fatalf("got %v", err)
			}
			if r.read > limit+len(tc.prefix)+2*readChunk {
				t.Errorf("read %d bytes for a limit of %d", r.read, limit)
			}
			if cap(d.buf) > limit+readChunk {
				t.Errorf("buffer grew to %d", cap(d.buf))
			}
		})
	}
}

func TestResetDiscardsPipelinedBytes(t *testing.T) {
	// A peer pipelines a stanza right after <proceed/>'s request; RFC 6120
	// §5.4.3.3 says those bytes must not survive the TLS handshake.
	in := hdrC2S + `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message to='evil'/>`
	d := NewDecoder(strings.NewReader(in), 1000)
	d.Next()
	if k, _ := d.Next(); k != KindElement || d.Element().Name.Local != "starttls" {
		t.Fatal("no starttls")
	}
	if d.Buffered() == 0 {
		t.Fatal("expected pipelined bytes to be buffered")
	}
	d.Reset(strings.NewReader(hdrC2S + `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`))
	if d.Buffered() != 0 {
		t.Fatalf("Buffered after Reset = %d", d.Buffered())
	}
	if k, err := d.Next(); k != KindStreamStart || err != nil {
		t.Fatalf("after reset: %v %v", k, err)
	}
	if k, _ := d.Next(); k != KindElement || d.Element().Name.Local != "auth" {
		t.Fatalf("got %v %+v", k, d.Element())
	}
	// After Reset the first tag is a header again, whatever its name (the
	// caller checks Header().Local and StreamNS).
	d.Reset(strings.NewReader(`<message/>`))
	if k, err := d.Next(); k != KindStreamStart || err != nil || d.Header().Local != "message" {
		t.Fatalf("after second reset: %v %v", k, err)
	}
}

func TestSetLimit(t *testing.T) {
	big := "<message><body>" + strings.Repeat("y", 2000) + "</body></message>"
	d := NewDecoder(strings.NewReader(hdrC2S+big+big), 1000)
	d.Next()
	d.SetLimit(4000)
	if k, err := d.Next(); k != KindElement || err != nil {
		t.Fatalf("raised limit: %v %v", k, err)
	}
	d.SetLimit(1000)
	_, err := d.Next()
	var xe *Error
	if !errors.As(err, &xe) || xe.Condition != CondPolicyViolation {
		t.Fatalf("lowered limit: %v", err)
	}
}

func TestElementExactlyAtLimit(t *testing.T) {
	el := "<a>" + strings.Repeat("z", 193) + "</a>" // 200 bytes; the header is shorter
	for _, lim := range []int{200, 199} {
		for _, r := range []io.Reader{strings.NewReader(hdrC2S + el), oneByte(hdrC2S + el)} {
			got := trace(r, lim)
			ok := strings.Contains(got, "elem ")
			if ok != (lim == 200) || !ok && !strings.HasSuffix(got, "error policy-violation\n") {
				t.Errorf("limit %d: %s", lim, got)
			}
		}
	}
}

// flakyReader fails once with a timeout-like error midway.
type flakyReader struct {
	r      io.Reader
	n      int
	failed bool
}

var errTimeout = errors.New("i/o timeout")

func (f *flakyReader) Read(p []byte) (int, error) {
	if !f.failed && f.n >= 150 {
		f.failed = true
		return 0, errTimeout
	}
	n, err := f.r.Read(p[:min(len(p), 7)])
	f.n += n
	return n, err
}

func TestReaderErrorIsResumable(t *testing.T) {
	in := hdrC2S + `<message to='bob@localhost' type='chat' id='abc123'><body>hello there</body></message></stream:stream>`
	d := NewDecoder(&flakyReader{r: strings.NewReader(in)}, 1000)
	var kinds []Kind
	sawTimeout := false
	for {
		k, err := d.Next()
		if err == errTimeout {
			sawTimeout = true
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, k)
	}
	if !sawTimeout || fmt.Sprint(kinds) != "[StreamStart Element StreamEnd]" {
		t.Fatalf("timeout=%v kinds=%v", sawTimeout, kinds)
	}
}

func TestDataWithError(t *testing.T) {
	// A reader may return data and io.EOF together; the data must count.
	d := NewDecoder(iotest.DataErrReader(strings.NewReader(hdrC2S+"<presence/>")), 1000)
	d.Next()
	if k, err := d.Next(); k != KindElement || err != nil {
		t.Fatal(k, err)
	}
	if _, err := d.Next(); err != io.EOF {
		t.Fatal(err)
	}
}

// Every input of the tables gives the same verdicts whatever the read sizes.
func TestChunkingIndependence(t *testing.T) {
	inputs := []string{
		hdrC2S + `<message to='a'><body>x &amp; y</body></message>  <iq type='get'><query xmlns='q'/></iq></stream:stream>`,
		hdrC2S + `<a><b><![CDATA[ ]] ]> ]]]></b></a><c xmlns:p='u' p:x='1'/>` + hdrC2S + `<x/>`,
		hdrC2S + `<a>` + strings.Repeat("é", 200) + `</a>`,
		hdrC2S + `<a b='1'><!-- x` + strings.Repeat("y", 500),
		hdrC2S + `<a b='1' b='2'` + strings.Repeat("y", 500),
		hdrC2S + `<a><b>` + strings.Repeat("<c/>", 200) + `</b></a>`,
	}
	for i, in := range inputs {
		want := trace(strings.NewReader(in), 300)
		for _, chunk := range []int{1, 2, 3, 5, 64} {
			got := trace(&chunkReader{s: in, n: chunk}, 300)
			if got != want {
				t.Errorf("input %d chunk %d:\n got %s\nwant %s", i, chunk, got, want)
			}
		}
	}
}

type chunkReader struct {
	s string
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.s)
	c.s = c.s[n:]
	return n, nil
}

func TestHeaderPrefix(t *testing.T) {
	for _, tc := range []struct{ in, prefix, local string }{
		{"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'>", "stream", "stream"},
		{"<foobar:stream xmlns:foobar='http://etherx.jabber.org/streams' xmlns='jabber:client'>", "foobar", "stream"},
		{"<stream xmlns='http://etherx.jabber.org/streams'>", "", "stream"},
	} {
		d := NewDecoder(strings.NewReader(tc.in), 4096)
		k, err := d.Next()
		if err != nil || k != KindStreamStart {
			t.Fatalf("%s: %v %v", tc.in, k, err)
		}
		if h := d.Header(); h.Prefix != tc.prefix || h.Local != tc.local {
			t.Errorf("%s: prefix %q local %q, want %q %q", tc.in, h.Prefix, h.Local, tc.prefix, tc.local)
		}
	}
}

// TestRelease: a quiet connection drops its buffer, however large an earlier element grew it, and decoding goes
// on unchanged; with bytes of an unfinished token buffered nothing is dropped.
func TestRelease(t *testing.T) {
	big := "<message><body>" + strings.Repeat("x", 64<<10) + "</body></message>"
	pr, pw := io.Pipe()
	d := NewDecoder(pr, 128<<10)
	go func() {
		for _, s := range []string{hdrC2S, big, "<presence/>", "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/>", "</iq>"} {
			_, _ = pw.Write([]byte(s))
		}
		_ = pw.Close()
	}()
	want := []Kind{KindStreamStart, KindElement, KindElement, KindElement}
	for i, k := range want {
		got, err := d.Next()
		if err != nil || got != k {
			t.Fatalf("token %d: %v %v, want %v", i, got, err, k)
		}
		if i == 1 {
			if len(d.Element().Raw) != len(big) {
				t.Fatalf("big element: %d bytes", len(d.Element().Raw))
			}
			if cap(d.buf) < 64<<10 {
				t.Fatalf("buffer did not grow: %d", cap(d.buf))
			}
		}
		if i == 3 && d.Element().ID != "1" {
			t.Fatalf("iq split over two writes: %+v", d.Element())
		}
		if d.Buffered() == 0 {
			if !d.Release() || d.buf != nil || d.Element() != nil {
				t.Fatalf("token %d: Release kept the buffer (cap %d)", i, cap(d.buf))
			}
		}
	}
	if _, err := d.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	if cap(d.buf) > 2*initialBuf {
		t.Fatalf("after Release the buffer regrew to %d bytes for small elements", cap(d.buf))
	}

	d2 := NewDecoder(strings.NewReader(hdrC2S+"<presence"), 1024)
	if k, err := d2.Next(); err != nil || k != KindStreamStart {
		t.Fatalf("header: %v %v", k, err)
	}
	if _, err := d2.Next(); err != io.EOF {
		t.Fatalf("unfinished element: %v", err)
	}
	if d2.Release() {
		t.Fatal("Release dropped the bytes of an unfinished element")
	}
}

// TestReleaseLetsGoOfTheBuffer: after Release nothing in the decoder still points into the grown buffer (the
// validator kept the lexer's input and the namespace bindings' bytes of the last element, which kept 128 KiB per
// quiet connection alive after a 64 KiB stanza), so the collector frees it.
func TestReleaseLetsGoOfTheBuffer(t *testing.T) {
	big := "<message xmlns:x='urn:example:x'><x:y xmlns='urn:example:d'/><body>" + strings.Repeat("x", 64<<10) +
		"</body></message>"
	d := NewDecoder(strings.NewReader(hdrC2S+big), 128<<10)
	for i, k := range []Kind{KindStreamStart, KindElement} {
		if got, err := d.Next(); err != nil || got != k {
			t.Fatalf("token %d: %v %v, want %v", i, got, err, k)
		}
	}
	if cap(d.buf) < 64<<10 {
		t.Fatalf("buffer did not grow: %d", cap(d.buf))
	}
	freed := make(chan struct{})
	runtime.AddCleanup(&d.buf[:1][0], func(c chan struct{}) { close(c) }, freed)
	if !d.Release() {
		t.Fatal("Release refused with nothing buffered")
	}
	for i := 0; ; i++ {
		runtime.GC()
		select {
		case <-freed:
			runtime.KeepAlive(d)
			return
		case <-time.After(50 * time.Millisecond):
		}
		if i == 40 {
			t.Fatal("the released buffer is still reachable from the decoder")
		}
	}
}
