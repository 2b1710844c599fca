// Package xmppclient is the test-side XMPP client shared by the end-to-end
// suites under test/: a mellium.im/xmpp session wrapper (Client) that queues
// every received element as a generic XML tree (Elem) for the test to wait
// on, one hand-driven raw-socket client (Raw) for exact bytes, plus the small
// XML and transcript helpers the suites assert with. Client and Raw know
// nothing about how a server under test is started (callers pass a Target);
// fixture.go binds them to servers started by test/harness: targets, fresh
// accounts, logins and a server shared by a whole package.
package xmppclient

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
	NSClient   = "jabber:client"
	NSStream   = "http://etherx.jabber.org/streams"
	NSStreams  = "urn:ietf:params:xml:ns:xmpp-streams"
	NSStanzas  = "urn:ietf:params:xml:ns:xmpp-stanzas"
	NSTLS      = "urn:ietf:params:xml:ns:xmpp-tls"
	NSSASL     = "urn:ietf:params:xml:ns:xmpp-sasl"
	NSBind     = "urn:ietf:params:xml:ns:xmpp-bind"
	NSSession  = "urn:ietf:params:xml:ns:xmpp-session"
	NSPing     = "urn:xmpp:ping"
	NSDelay    = "urn:xmpp:delay"
	NSRoster   = "jabber:iq:roster"
	NSRegister = "jabber:iq:register"
	NSRegFeat  = "http://jabber.org/features/iq-register"
)

// Elem is a small generic XML tree: what the tests assert on, independent of
// any stanza struct of the library under test or of the server.
type Elem struct {
	Name xml.Name
	Attr []xml.Attr // namespace declarations removed
	Kids []*Elem
	Text string // character data directly inside this element
}

// ReadElem builds an Elem from r, whose first token must be a start element,
// reading through its matching end element.
func ReadElem(r xml.TokenReader) (*Elem, error) {
	tok, err := r.Token()
	if err != nil {
		return nil, err
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return nil, fmt.Errorf("ReadElem: expected start element, got %T", tok)
	}
	return ReadElemFrom(r, start)
}

// ReadElemFrom is ReadElem for a start element already read from r: it
// reads the content and the matching end element.
func ReadElemFrom(r xml.TokenReader, start xml.StartElement) (*Elem, error) {
	e := &Elem{Name: start.Name, Attr: StripNS(start.Attr)}
	var text strings.Builder
	for {
		// A TokenReader may return the last token together with io.EOF.
		tok, err := r.Token()
		switch t := tok.(type) {
		case xml.StartElement:
			k, kerr := ReadElemFrom(r, t.Copy())
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

// StripNS returns attrs without namespace declarations, which Elem does not
// keep (the names already carry their namespaces).
func StripNS(attrs []xml.Attr) []xml.Attr {
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
		if k.Name.Space == NSStanzas && k.Name.Local != "text" {
			return er.Get("type"), k.Name.Local
		}
	}
	return er.Get("type"), "(no condition)"
}

// StreamErrorCondition returns the defined condition of a <stream:error/>
// element (RFC 6120 §4.9.3).
func (e *Elem) StreamErrorCondition() string {
	for _, k := range e.Kids {
		if k.Name.Space == NSStreams && k.Name.Local != "text" {
			return k.Name.Local
		}
	}
	return ""
}

// Condition is the defined condition of a stream error, a SASL failure or a
// stanza's <error/>: the name of the first child that is not <text/>, in any
// namespace ("" if there is none).
func (e *Elem) Condition() string {
	x := e
	if e.Is(NSClient, "message") || e.Is(NSClient, "iq") || e.Is(NSClient, "presence") {
		x = e.Child(NSClient, "error")
	}
	if x == nil {
		return ""
	}
	for _, k := range x.Kids {
		if k.Name.Local != "text" {
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
	if e.Name.Space == NSStream {
		name = "stream:" + name
	}
	b.WriteString("<" + name)
	if e.Name.Space != parentNS && e.Name.Space != NSStream {
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
	if ns == NSStream {
		ns = parentNS
	}
	for _, k := range e.Kids {
		k.write(b, ns)
	}
	b.WriteString("</" + name + ">")
}

// TokensOf parses one XML fragment (a stanza written by hand in a test) into
// tokens with namespace declarations removed, so that the library's encoder
// declares namespaces itself and never emits a duplicate xmlns.
func TokensOf(raw string) ([]xml.Token, error) {
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
			t.Attr = StripNS(t.Attr)
			toks = append(toks, t.Copy())
		case xml.EndElement:
			toks = append(toks, t)
		case xml.CharData:
			toks = append(toks, t.Copy())
		}
	}
}

// SliceReader is an xml.TokenReader over a fixed token list (such as
// TokensOf returns), for APIs that take a stream of tokens.
type SliceReader struct {
	toks []xml.Token
}

// NewSliceReader returns a reader yielding toks in order, then io.EOF.
func NewSliceReader(toks []xml.Token) *SliceReader { return &SliceReader{toks: toks} }

// Token returns the next token, or io.EOF when none are left.
func (r *SliceReader) Token() (xml.Token, error) {
	if len(r.toks) == 0 {
		return nil, io.EOF
	}
	t := r.toks[0]
	r.toks = r.toks[1:]
	return t, nil
}

// Transcript records the plaintext bytes of one connection in both
// directions ("C:" client to server, "S:" server to client), keeping the last
// MaxTranscript bytes, so a failing test can show the raw XML exchanged.
type Transcript struct {
	mu   sync.Mutex
	buf  []byte
	last byte
}

// MaxTranscript bounds the bytes a Transcript keeps.
const MaxTranscript = 64 << 10

// Add records p as sent in direction dir ('C' or 'S').
func (t *Transcript) Add(dir byte, p []byte) {
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
	if len(t.buf) > MaxTranscript {
		t.buf = append([]byte("…"), t.buf[len(t.buf)-MaxTranscript:]...)
	}
}

// String returns everything recorded (up to MaxTranscript bytes).
func (t *Transcript) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// Tail returns at most n bytes from the end.
func (t *Transcript) Tail(n int) string {
	s := t.String()
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
