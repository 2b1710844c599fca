package xmlstream

import (
	"encoding/xml"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestParseNode(t *testing.T) {
	tests := []struct {
		in, def, want string
	}{
		{`<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>`, "jabber:client",
			`<iq xmlns='jabber:client' type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>`},
		{" \n<a xmlns='u'>x &amp; y<![CDATA[ <z> ]]>w<b/>v</a>\n ", "",
			`<a xmlns='u'>x &amp; y &lt;z&gt; w<b/>v</a>`},
		{`<p:a xmlns:p='urn:p' xmlns='urn:d' p:x='1' y='2' xml:lang='en'><b/><p:c/></p:a>`, "jabber:client",
			`<a xmlns='urn:p' xmlns:ns0='urn:p' ns0:x='1' y='2' xml:lang='en'><b xmlns='urn:d'/><c/></a>`},
		{`<a>line1&#13;&#10;line2` + "\r\nline3\rline4</a>", "", "<a>line1&#xD;\nline2\nline3\nline4</a>"},
		{`<a b="&apos;&quot;&lt;&gt;&amp;" c='` + "x\ty\r\nz" + `' d='&#9;'/>`, "",
			`<a b='&apos;&quot;&lt;&gt;&amp;' c='x y z' d='&#x9;'/>`},
		{`<a xmlns='u'><b xmlns=''><c/></b></a>`, "",
			`<a xmlns='u'><b xmlns=''><c/></b></a>`},
	}
	for _, tc := range tests {
		n, err := ParseNode(tc.in, tc.def)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := n.String(); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func TestParseNodeErrors(t *testing.T) {
	tests := []struct{ in, cond string }{
		{"", CondNotWellFormed},
		{"   ", CondNotWellFormed},
		{"text", CondNotWellFormed},
		{"<a>", CondNotWellFormed},
		{"<a></a><b/>", CondNotWellFormed},
		{"<a/>x", CondNotWellFormed},
		{"</a>", CondNotWellFormed},
		{"<a><!-- c --></a>", CondRestrictedXML},
		{"<?xml version='1.0'?><a/>", CondRestrictedXML},
		{"<!DOCTYPE a><a/>", CondRestrictedXML},
		{"<a>&ent;</a>", CondRestrictedXML},
		{"<p:a/>", CondBadNamespacePrefix},
		{"<a b='1' b='1'/>", CondNotWellFormed},
		{"<a>\x00</a>", CondNotWellFormed},
	}
	for _, tc := range tests {
		_, err := ParseNode(tc.in, "")
		var xe *Error
		if !errors.As(err, &xe) || xe.Condition != tc.cond {
			t.Errorf("%q: got %v, want %s", tc.in, err, tc.cond)
		}
	}
}

func TestElementParseInheritsStreamNamespace(t *testing.T) {
	in := `<stream:stream xmlns='jabber:server' xmlns:stream='` + nsStreams + `' xmlns:db='jabber:server:dialback'>` +
		`<db:result to='b' from='a'><x/></db:result><message><body>hi</body></message>`
	d := NewDecoder(strings.NewReader(in), 1000)
	d.Next()
	d.Next()
	n, err := d.Element().Parse()
	if err != nil {
		t.Fatal(err)
	}
	if n.Name != (Name{"jabber:server:dialback", "result"}) || n.FirstElement().Name != (Name{"jabber:server", "x"}) {
		t.Fatalf("got %+v / %+v", n.Name, n.FirstElement().Name)
	}
	d.Next()
	n, err = d.Element().Parse()
	if err != nil {
		t.Fatal(err)
	}
	if n.Child("jabber:server", "body").TextContent() != "hi" {
		t.Fatalf("got %s", n)
	}
	// A hand-built Element inherits its own namespace.
	e := &Element{Raw: `<iq><query xmlns='q'/><x/></iq>`, Name: Name{"jabber:client", "iq"}}
	n, err = e.Parse()
	if err != nil || n.Elements()[1].Name.Space != "jabber:client" {
		t.Fatalf("%v %v", n, err)
	}
}

func TestNodeAccessors(t *testing.T) {
	n, err := ParseNode(`<iq type='result' xml:lang='en'><query xmlns='jabber:iq:roster'>a<item jid='x'/>b<item jid='y'/><other xmlns='o'/></query></iq>`, "jabber:client")
	if err != nil {
		t.Fatal(err)
	}
	if n.Attr("type") != "result" || n.Attr("lang") != "" || n.AttrNS(NSXML, "lang") != "en" || n.Attr("missing") != "" {
		t.Error("Attr")
	}
	q := n.Child("jabber:iq:roster", "query")
	if q == nil || n.Child("", "query") != q || n.Child("other", "query") != nil || n.FirstElement() != q {
		t.Fatal("Child")
	}
	items := q.ChildrenNamed("jabber:iq:roster", "item")
	if len(items) != 2 || items[1].Attr("jid") != "y" {
		t.Fatal("ChildrenNamed")
	}
	if len(q.ChildrenNamed("", "other")) != 1 || len(q.Elements()) != 3 || q.TextContent() != "ab" {
		t.Fatal("Elements/TextContent")
	}
	if (&Node{}).FirstElement() != nil || q.Child("", "") != nil {
		t.Fatal("empty")
	}

	b := NewNode("jabber:client", "message", Attr{Name{Local: "type"}, "chat"})
	b.SetAttr("to", "a@b")
	b.SetAttr("type", "normal")
	b.AddChild(NewNode("jabber:client", "body").AddText("1 < 2 & 'x'")).
		AddChild(NewNode("urn:xmpp:receipts", "request"))
	want := `<message type='normal' to='a@b'><body>1 &lt; 2 &amp; 'x'</body><request xmlns='urn:xmpp:receipts'/></message>`
	if got := string(b.AppendXML(nil, "jabber:client")); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := b.String(); !strings.HasPrefix(got, `<message xmlns='jabber:client' `) {
		t.Errorf("String() = %s", got)
	}
	stray := NewNode("u", "a", Attr{Name{Local: "xmlns"}, "v"})
	if got := stray.String(); got != `<a xmlns='u'/>` {
		t.Errorf("stray xmlns: %s", got)
	}
}

func TestEscaping(t *testing.T) {
	tests := []struct{ in, text, attr string }{
		{"plain", "plain", "plain"},
		{`a&b<c>d"e'f`, `a&amp;b&lt;c&gt;d"e'f`, `a&amp;b&lt;c&gt;d&quot;e&apos;f`},
		{"t\tn\nr\r", "t\tn\nr&#xD;", "t&#x9;n&#xA;r&#xD;"},
		{"bad\x00\x1f\xff\uFFFEok é", "bad\uFFFD\uFFFD\uFFFD\uFFFDok é", "bad\uFFFD\uFFFD\uFFFD\uFFFDok é"},
	}
	for _, tc := range tests {
		if got := string(AppendEscapedText([]byte("x"), tc.in)); got != "x"+tc.text {
			t.Errorf("text %q = %q", tc.in, got)
		}
		if got := string(AppendEscapedAttr(nil, tc.in)); got != tc.attr {
			t.Errorf("attr %q = %q", tc.in, got)
		}
	}
}

// Whatever the DOM holds, serialising and re-parsing gives the same tree.
func TestRoundTrip(t *testing.T) {
	docs := []string{
		`<message to='bob@localhost' type='chat' id='abc123'><body>hello there, how are you?</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
		`<iq type='result' id='x'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='server' type='im' name='x &amp; y'/><feature var='urn:xmpp:ping'/></query></iq>`,
		`<a xmlns:p='urn:p' p:x='1' xml:lang='fr'>t1<![CDATA[<&>]]>t2<p:b p:y='&#x10000;'><c xmlns='urn:c'>&#13;</c></p:b></a>`,
		"<a b='\t&#9;&#10;&#13;'>\r\n&#13;\n</a>",
		`<a xmlns='u'><b xmlns=''/></a>`,
	}
	for _, def := range []string{"", "jabber:client"} {
		for _, doc := range docs {
			n1, err := ParseNode(doc, def)
			if err != nil {
				t.Fatalf("%q: %v", doc, err)
			}
			out := string(n1.AppendXML(nil, def))
			n2, err := ParseNode(out, def)
			if err != nil {
				t.Fatalf("re-parse %q: %v", out, err)
			}
			if !reflect.DeepEqual(n1, n2) {
				t.Errorf("round trip of %q via %q:\n%#v\n%#v", doc, out, n1, n2)
			}
		}
	}
}

// oracle builds the tree with encoding/xml for comparison.
func oracle(t *testing.T, doc, def string) *Node {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader("<w xmlns='" + def + "'>" + doc + "</w>"))
	var stack []*Node
	var root *Node
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("encoding/xml: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &Node{Name: Name{tok.Name.Space, tok.Name.Local}}
			for _, a := range tok.Attr {
				if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
					continue
				}
				n.Attrs = append(n.Attrs, Attr{Name{a.Name.Space, a.Name.Local}, a.Value})
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) == 2 {
				root = stack[1]
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) < 2 {
				continue
			}
			p := stack[len(stack)-1]
			if k := len(p.Children); k > 0 && p.Children[k-1].Name.Local == "" {
				p.Children[k-1].Text += string(tok)
			} else {
				p.Children = append(p.Children, &Node{Text: string(tok)})
			}
		}
	}
	return root
}

func TestOracle(t *testing.T) {
	docs := []string{
		`<message to='bob@localhost' type='chat' id='abc123'><body>hello there, how are you?</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
		`<p:a xmlns:p='urn:p' xmlns='urn:d' p:x='1' y='2' xml:lang='en'><b>x&amp;y&#x263A;</b><p:c><![CDATA[raw <stuff>]]></p:c></p:a>`,
		`<a b="it's" c='say "hi"'>` + "multi\nline\ttext" + `</a>`,
		`<x xmlns='urn:x'><y xmlns='urn:y'><z/></y><z/></x>`,
	}
	for _, doc := range docs {
		want := oracle(t, doc, "jabber:client")
		got, err := ParseNode(doc, "jabber:client")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", doc, got, want)
		}
	}
}

func TestSetHeadAttr(t *testing.T) {
	tests := []struct{ raw, name, value, want string }{
		{`<message to='a' type='chat'><body/></message>`, "from", "b@c/d", `<message from='b@c/d' to='a' type='chat'><body/></message>`},
		{`<message to='a' from="x" type='chat'><body from='keep'/></message>`, "from", "b", `<message to='a' from='b' type='chat'><body from='keep'/></message>`},
		{`<message to='a'  from='x'/>`, "from", "", `<message to='a'/>`},
		{"<message\n  to='a'\n  from='x'>t</message>", "to", "", "<message\n  from='x'>t</message>"},
		{`<presence/>`, "to", "a&b'c", `<presence to='a&amp;b&apos;c'/>`},
		{`<presence/>`, "to", "", `<presence/>`},
		{`<presence><x to='y'/></presence>`, "to", "", `<presence><x to='y'/></presence>`},
		{`<p:x xmlns:p='u' p:to='1'/>`, "to", "2", `<p:x to='2' xmlns:p='u' p:to='1'/>`},
		{`not xml`, "to", "2", `not xml`},
		{`<broken to='`, "to", "2", `<broken to='`},
		{`<a/>`, "bad name", "2", `<a/>`},
		{`<a/>`, "p:x", "2", `<a/>`},
		{`<a/>`, "xmlns", "2", `<a/>`},
	}
	for _, tc := range tests {
		if got := SetHeadAttr(tc.raw, tc.name, tc.value); got != tc.want {
			t.Errorf("SetHeadAttr(%q, %q, %q) = %q, want %q", tc.raw, tc.name, tc.value, got, tc.want)
		}
	}
	// The result re-decodes with the new value.
	out := SetHeadAttr(`<message to='a'><body>x</body></message>`, "from", "<&>")
	d := NewDecoder(strings.NewReader(hdrC2S+out), 1000)
	d.Next()
	if k, err := d.Next(); k != KindElement || err != nil || d.Element().From != "<&>" {
		t.Fatalf("%v %v %+v", k, err, d.Element())
	}
}
