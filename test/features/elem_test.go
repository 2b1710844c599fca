package features

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Namespaces used in assertions.
const (
	nsClient   = "jabber:client"
	nsStream   = "http://etherx.jabber.org/streams"
	nsStreams  = "urn:ietf:params:xml:ns:xmpp-streams"
	nsStanzas  = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsTLS      = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL     = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind     = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession  = "urn:ietf:params:xml:ns:xmpp-session"
	nsPing     = "urn:xmpp:ping"
	nsDelay    = "urn:xmpp:delay"
	nsRoster   = "jabber:iq:roster"
	nsRegister = "jabber:iq:register"
	nsRegFeat  = "http://jabber.org/features/iq-register"
)

// Elem is a small generic XML tree: what the tests assert on, independent of
// any stanza struct of the library under test or of the server.
type Elem struct {
	Name xml.Name
	Attr []xml.Attr // namespace declarations removed
	Kids []*Elem
	Text string // character data directly inside this element
}

// readElem builds an Elem from r, whose first token must be a start element,
// reading through its matching end element.
func readElem(r xml.TokenReader) (*Elem, error) {
	tok, err := r.Token()
	if err != nil {
		return nil, err
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return nil, fmt.Errorf("readElem: expected start element, got %T", tok)
	}
	return readElemFrom(r, start)
}

func readElemFrom(r xml.TokenReader, start xml.StartElement) (*Elem, error) {
	e := &Elem{Name: start.Name, Attr: stripNS(start.Attr)}
	var text strings.Builder
	for {
		// A TokenReader may return the last token together with io.EOF.
		tok, err := r.Token()
		switch t := tok.(type) {
		case xml.StartElement:
			k, kerr := readElemFrom(r, t.Copy())
			e.Kids = append(e.Kids, k)
			if kerr != nil {
				return e, kerr
			}
		case xml.EndElement:
			e.Text = text.String()
			return e, nil
		case xml.CharData:
			text.Write(t)
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return e, err
		}
	}
}

func stripNS(attrs []xml.Attr) []xml.Attr {
	var out []xml.Attr
	for _, a := range attrs {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		out = append(out, a)
	}
	return out
}

// Get returns the value of the unqualified attribute local ("" if absent).
func (e *Elem) Get(local string) string {
	if e == nil {
		return ""
	}
	for _, a := range e.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// Has reports whether the unqualified attribute is present.
func (e *Elem) Has(local string) bool {
	if e == nil {
		return false
	}
	for _, a := range e.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return true
		}
	}
	return false
}

// Child returns the first child with the given namespace and local name;
// space "" matches any namespace.
func (e *Elem) Child(space, local string) *Elem {
	if e == nil {
		return nil
	}
	for _, k := range e.Kids {
		if k.Name.Local == local && (space == "" || k.Name.Space == space) {
			return k
		}
	}
	return nil
}

// Children returns all children with the given name (space "" = any).
func (e *Elem) Children(space, local string) []*Elem {
	if e == nil {
		return nil
	}
	var out []*Elem
	for _, k := range e.Kids {
		if k.Name.Local == local && (space == "" || k.Name.Space == space) {
			out = append(out, k)
		}
	}
	return out
}

// ChildText returns the text of the first child named local in the element's
// own namespace (or any namespace if that finds nothing).
func (e *Elem) ChildText(local string) string {
	if e == nil {
		return ""
	}
	if k := e.Child(e.Name.Space, local); k != nil {
		return k.Text
	}
	if k := e.Child("", local); k != nil {
		return k.Text
	}
	return ""
}

// Is reports whether e is named local in namespace space ("" = any).
func (e *Elem) Is(space, local string) bool {
	return e != nil && e.Name.Local == local && (space == "" || e.Name.Space == space)
}

// StanzaError returns the type and defined condition of a stanza's <error/>
// child (RFC 6120 §8.3), or "", "" if there is none.
func (e *Elem) StanzaError() (typ, cond string) {
	er := e.Child("", "error")
	if er == nil {
		return "", ""
	}
	for _, k := range er.Kids {
		if k.Name.Space == nsStanzas && k.Name.Local != "text" {
			return er.Get("type"), k.Name.Local
		}
	}
	return er.Get("type"), "(no condition)"
}

// StreamErrorCondition returns the defined condition of a <stream:error/>
// element (RFC 6120 §4.9.3).
func (e *Elem) StreamErrorCondition() string {
	for _, k := range e.Kids {
		if k.Name.Space == nsStreams && k.Name.Local != "text" {
			return k.Name.Local
		}
	}
	return ""
}

// String serialises the tree (namespaces declared where they change), for
// failure messages.
func (e *Elem) String() string {
	if e == nil {
		return "<nil>"
	}
	var b bytes.Buffer
	e.write(&b, "")
	return b.String()
}

func (e *Elem) write(b *bytes.Buffer, parentNS string) {
	name := e.Name.Local
	if e.Name.Space == nsStream {
		name = "stream:" + name
	}
	b.WriteString("<" + name)
	if e.Name.Space != parentNS && e.Name.Space != nsStream {
		fmt.Fprintf(b, " xmlns='%s'", e.Name.Space)
	}
	for _, a := range e.Attr {
		n := a.Name.Local
		switch a.Name.Space {
		case "":
		case "http://www.w3.org/XML/1998/namespace", "xml":
			n = "xml:" + n
		default:
			n = a.Name.Space + ":" + n
		}
		b.WriteString(" " + n + "='")
		xml.EscapeText(b, []byte(a.Value))
		b.WriteString("'")
	}
	if len(e.Kids) == 0 && e.Text == "" {
		b.WriteString("/>")
		return
	}
	b.WriteString(">")
	xml.EscapeText(b, []byte(e.Text))
	ns := e.Name.Space
	if ns == nsStream {
		ns = parentNS
	}
	for _, k := range e.Kids {
		k.write(b, ns)
	}
	b.WriteString("</" + name + ">")
}

// tokensOf parses one XML fragment (a stanza written by hand in a test) into
// tokens with namespace declarations removed, so that the library's encoder
// declares namespaces itself and never emits a duplicate xmlns.
func tokensOf(raw string) ([]xml.Token, error) {
	d := xml.NewDecoder(strings.NewReader(raw))
	var toks []xml.Token
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return toks, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			t.Attr = stripNS(t.Attr)
			toks = append(toks, t.Copy())
		case xml.EndElement:
			toks = append(toks, t)
		case xml.CharData:
			toks = append(toks, t.Copy())
		}
	}
}

type sliceReader struct {
	toks []xml.Token
}

func (r *sliceReader) Token() (xml.Token, error) {
	if len(r.toks) == 0 {
		return nil, io.EOF
	}
	t := r.toks[0]
	r.toks = r.toks[1:]
	return t, nil
}

// transcript records the plaintext bytes of one connection in both
// directions ("C:" client to server, "S:" server to client), keeping the last
// maxTranscript bytes, so a failing test can show the raw XML exchanged.
type transcript struct {
	mu   sync.Mutex
	buf  []byte
	last byte
}

const maxTranscript = 64 << 10

func (t *transcript) add(dir byte, p []byte) {
	if len(p) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if dir != t.last {
		if len(t.buf) > 0 {
			t.buf = append(t.buf, '\n')
		}
		t.buf = append(t.buf, dir, ':', ' ')
		t.last = dir
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > maxTranscript {
		t.buf = append([]byte("…"), t.buf[len(t.buf)-maxTranscript:]...)
	}
}

func (t *transcript) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// tail returns at most n bytes from the end.
func (t *transcript) tail(n int) string {
	s := t.String()
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
