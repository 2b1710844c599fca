package xmlstream

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

const fuzzLimit = 2048

// FuzzDecoder feeds arbitrary bytes after a valid stream header. It checks
// that the decoder never panics, keeps its buffer within the bound, gives
// the same verdicts however reads are split, and that every element it
// returns re-parses and survives SetHeadAttr.
func FuzzDecoder(f *testing.F) {
	for _, s := range chatStanzas {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		"<a><b/></a> \n<c xmlns='u'>t&amp;<![CDATA[x]]></c></stream:stream>",
		"<db:result to='a' from='b'>k</db:result><stream:features/>",
		"<p:a xmlns:p='u' p:b='1' xml:lang='en'><p:c/></p:a>",
		"<?xml version='1.0'?>" + hdrC2S + "<iq/>",
		"<a><!-- x --></a>",
		"<a b='1' b='2'/>",
		"<a>\xff</a>",
	} {
		f.Add([]byte(s))
	}
	hdr := `<stream:stream xmlns='jabber:client' xmlns:stream='` + nsStreams + `' xmlns:db='jabber:server:dialback' to='x'>`
	f.Fuzz(func(t *testing.T, data []byte) {
		in := hdr + string(data)
		d := NewDecoder(strings.NewReader(in), fuzzLimit)
		var elems []*Element
		var hdrs []*Header // stream header in effect for each element
		var sb strings.Builder
		for i := 0; ; i++ {
			k, err := d.Next()
			if cap(d.buf) > fuzzLimit+readChunk {
				t.Fatalf("buffer %d beyond bound", cap(d.buf))
			}
			if err != nil {
				var xe *Error
				if err != io.EOF && !errors.As(err, &xe) {
					t.Fatalf("unexpected error type %T %v", err, err)
				}
				sb.WriteString(err.Error())
				break
			}
			if k == KindElement {
				elems = append(elems, d.Element())
				hdrs = append(hdrs, d.Header())
			}
			if i > len(in)+2 {
				t.Fatal("more tokens than bytes")
			}
		}
		// Same verdict byte by byte (whitespace tokens coalesced).
		if len(in) < 4096 {
			if a, b := trace(strings.NewReader(in), fuzzLimit), trace(oneByte(in), fuzzLimit); a != b {
				t.Fatalf("chunking changed the result:\nwhole %s\nbytes %s", a, b)
			}
		}
		for i, e := range elems {
			n, err := e.Parse()
			if err != nil {
				t.Fatalf("Parse(%q): %v", e.Raw, err)
			}
			if n.Name != e.Name {
				t.Fatalf("Parse name %+v, element name %+v", n.Name, e.Name)
			}
			// Serialised with the stream namespace as parent, the tree is a
			// valid stanza too.
			if _, err := ParseNode(string(n.AppendXML(nil, "jabber:client")), "jabber:client"); err != nil {
				t.Fatalf("AppendXML of %q does not parse: %v", e.Raw, err)
			}
			out := SetHeadAttr(e.Raw, "from", "a@b/c'<")
			h := hdrs[i]
			if h.StreamNS == NSXML {
				continue
			}
			// Re-decode in the same context: Raw is self-contained except
			// for the inherited default namespace.
			h2 := "<" + h.Local + " xmlns='" + string(AppendEscapedAttr(nil, h.DefaultNS)) + "'>"
			if h.StreamNS != h.DefaultNS {
				h2 = "<s:" + h.Local + " xmlns:s='" + string(AppendEscapedAttr(nil, h.StreamNS)) +
					"' xmlns='" + string(AppendEscapedAttr(nil, h.DefaultNS)) + "'>"
			}
			d2 := NewDecoder(strings.NewReader(h2+out), fuzzLimit+64)
			if k, err := d2.Next(); k != KindStreamStart || err != nil {
				t.Fatal(k, err)
			}
			if k, err := d2.Next(); k != KindElement || err != nil {
				t.Fatalf("SetHeadAttr output %q does not decode: %v %v", out, k, err)
			}
			if got := d2.Element(); got.From != "a@b/c'<" || got.Name != e.Name || got.To != e.To || got.ID != e.ID {
				t.Fatalf("SetHeadAttr output %q decodes to %+v", out, got)
			}
			if rm := SetHeadAttr(e.Raw, "from", ""); strings.Count(rm, "from=") > strings.Count(e.Raw, "from=") {
				t.Fatalf("remove added from: %q", rm)
			}
		}
	})
}

// FuzzParseNode checks that ParseNode never panics and that whatever it
// accepts round-trips through AppendXML unchanged.
func FuzzParseNode(f *testing.F) {
	for _, s := range chatStanzas {
		f.Add(s)
	}
	for _, s := range []string{
		`<a xmlns:p='urn:p' p:x='1' xml:lang='fr'>t1<![CDATA[<&>]]>t2<p:b p:y='&#x10000;'><c xmlns='urn:c'>&#13;</c></p:b></a>`,
		"<a b='\t&#9;&#10;&#13;'>\r\n&#13;\n</a>",
		`<a xmlns='u'><b xmlns=''/></a>`,
		"<a><!-- no --></a>",
		"<p:a/>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n1, err := ParseNode(s, "jabber:client")
		if err != nil {
			var xe *Error
			if !errors.As(err, &xe) {
				t.Fatalf("error type %T", err)
			}
			return
		}
		for _, parent := range []string{"", "jabber:client"} {
			out := string(n1.AppendXML(nil, parent))
			n2, err := ParseNode(out, parent)
			if err != nil {
				t.Fatalf("re-parse of %q (from %q): %v", out, s, err)
			}
			if !reflect.DeepEqual(n1, n2) {
				t.Fatalf("round trip of %q via %q changed the tree", s, out)
			}
		}
	})
}
