package stanza

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

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

// qname is the root's qualified name of raw, an element that starts with '<'.
func qname(raw string) string {
	end := strings.IndexAny(raw[1:], " \t\r\n/>")
	if end < 0 {
		return raw[1:]
	}
	return raw[1 : 1+end]
}

// FuzzInsertChild gives InsertChild arbitrary elements (it looks into raw for the root's end) and an XEP-0203
// delay with an arbitrary reason as the child. It must not panic; for raw that is one well-formed element, the
// result is that element with the same name, attributes and children, plus the delay as last child.
func FuzzInsertChild(f *testing.F) {
	for _, s := range []string{
		"<message to='b@example.com'><body>hi</body></message>",
		"<presence from='a@example.com/r'/>",
		"<message a='/>'><body>&lt;/x&gt; /></body><![CDATA[</y>]]></message>",
		"<c:message xmlns:c='jabber:client'><c:body>x</c:body></c:message >",
		"<message><!-- </z> --><x/></message>",
		"<message>",
	} {
		f.Add(s, "Offline Storage")
	}
	f.Add("<iq type='get' id='1'/>", "x</delay><y/>")
	f.Fuzz(func(t *testing.T, raw, reason string) {
		child := Delay("example.com", "2002-09-10T23:08:25Z", reason)
		if len(raw) < 2 || raw[0] != '<' || raw[len(raw)-1] != '>' {
			InsertChild(raw, "message", child) // must not panic
			return
		}
		name := qname(raw)
		out := InsertChild(raw, name, child)
		orig, err := xmlstream.ParseNode(raw, NSClient)
		if err != nil {
			return
		}
		n, err := xmlstream.ParseNode(out, NSClient)
		if err != nil {
			t.Fatalf("InsertChild(%q, %q) = %q: %v", raw, name, out, err)
		}
		if n.Name != orig.Name || len(n.Attrs) != len(orig.Attrs) {
			t.Fatalf("root changed: %+v → %+v", orig, n)
		}
		for i := range n.Attrs {
			if n.Attrs[i] != orig.Attrs[i] {
				t.Fatalf("attribute %d changed: %+v → %+v", i, orig.Attrs[i], n.Attrs[i])
			}
		}
		oe, ne := orig.Elements(), n.Elements()
		if len(ne) != len(oe)+1 {
			t.Fatalf("%d children, then %d: %q", len(oe), len(ne), out)
		}
		for i := range oe {
			if ne[i].String() != oe[i].String() {
				t.Fatalf("child %d changed: %s → %s", i, oe[i], ne[i])
			}
		}
		d := ne[len(ne)-1]
		if d.Name != (xmlstream.Name{Space: NSDelay, Local: "delay"}) || d.Attr("from") != "example.com" {
			t.Fatalf("last child %s", d)
		}
		if validChars(reason) && d.TextContent() != reason {
			t.Fatalf("reason %q read back as %q", reason, d.TextContent())
		}
		if n.TextContent() != orig.TextContent() { // the root's own character data
			t.Fatalf("text content %q, then %q", orig.TextContent(), n.TextContent())
		}
	})
}

// FuzzEncoders gives the stanza encoders arbitrary attribute values and texts. Whatever they are, the output is
// one well-formed element whose attributes and texts read back as given (when made of XML Chars).
func FuzzEncoders(f *testing.F) {
	f.Add("juliet@example.com/balcony", "example.com", "chat", "q1", "invalid resourcepart")
	f.Add(`a'b"c`, "<d>", "&", "\t\r\n", "x]]></text></error>")
	f.Add("\x00", "\xff\xfe", "", "\uFFFE", "\r\n&#xD;")
	f.Add("", "", "", "", "")
	f.Fuzz(func(t *testing.T, from, to, typ, id, text string) {
		check := func(what, s string, attrs map[string]string) *xmlstream.Node {
			t.Helper()
			n, err := xmlstream.ParseNode(s, NSClient)
			if err != nil {
				t.Fatalf("%s %q: %v", what, s, err)
			}
			for k, v := range attrs {
				if validChars(v) && n.Attr(k) != v {
					t.Fatalf("%s: %s=%q read back as %q in %s", what, k, v, n.Attr(k), s)
				}
			}
			return n
		}
		delay := Delay(from, id, text)
		d := check("Delay", delay, map[string]string{"from": from, "stamp": id})
		if validChars(text) && d.TextContent() != text {
			t.Fatalf("Delay reason %q read back as %q", text, d.TextContent())
		}
		m := check("Build", Build("message", from, to, typ, id, delay),
			map[string]string{"from": from, "to": to, "type": typ, "id": id})
		if len(m.Elements()) != 1 {
			t.Fatalf("Build payload: %s", m)
		}
		e := Error{Type: Cancel, Condition: BadRequest, Text: text, By: typ, Extra: "<x xmlns='urn:t'/>"}
		r := check("ErrorReply", ErrorReply(Head{Name: "iq", ID: id, From: from, To: "ignored"}, to, e),
			map[string]string{"from": to, "to": from, "id": id, "type": "error"})
		el := r.Child(NSClient, "error")
		if el == nil || el.Attr("type") != Cancel || validChars(typ) && el.Attr("by") != typ {
			t.Fatalf("ErrorReply error: %s", r)
		}
		if el.Child(NSStanzas, "bad-request") == nil || el.Child("urn:t", "x") == nil {
			t.Fatalf("ErrorReply condition: %s", r)
		}
		tn := el.Child(NSStanzas, "text")
		if (tn != nil) != (text != "") || tn != nil && validChars(text) && tn.TextContent() != text {
			t.Fatalf("ErrorReply text %q: %s", text, r)
		}
		check("IQResult", IQResult(Head{ID: id, From: from}, to, ""),
			map[string]string{"from": to, "to": from, "id": id, "type": "result"})
		check("IQResult payload", IQResult(Head{ID: id, From: from}, to, delay), map[string]string{"id": id})
	})
}
