// Package xmlstream reads XMPP streams (RFC 6120 §4) as restricted XML
// (RFC 6120 §11): a stream header, then complete top-level elements, each
// handed out as its own bytes plus a few head attributes, so that routing a
// stanza costs two allocations and no tree. Payloads are parsed into a small
// DOM (Node) only by whoever needs to look inside.
//
// The decoder is a hand-written byte scanner. Memory per connection is
// bounded by the element size limit whatever the peer sends, and every
// verdict depends only on the bytes received, not on how reads split them.
package xmlstream

import (
	"errors"
	"io"
	"strings"
)

// Name is an expanded XML name.
type Name struct{ Space, Local string }

// Attr is an attribute with its value unescaped.
type Attr struct {
	Name  Name
	Value string
}

// Header is a parsed stream open tag (RFC 6120 §4.7).
type Header struct {
	To, From, ID, Version, Lang string
	// DefaultNS is the value of xmlns= on the stream element (the content
	// namespace, e.g. "jabber:client"), "" if absent.
	DefaultNS string
	// StreamNS is the namespace the stream element's own name resolved to.
	// RFC 6120 §4.8.1 requires http://etherx.jabber.org/streams; the decoder
	// does not judge, the caller does.
	StreamNS string
	Local    string // local name of the stream element ("stream")
	// Prefix is the stream element's prefix ("stream"; "" when the stream namespace is the default one).
	Prefix string
}

// Element is one complete top-level element (a stanza, a nonza), exactly as
// received. It is immutable once returned.
type Element struct {
	// Raw is the element's bytes and is self-contained: if the element used
	// prefixes declared only on the stream header, Raw carries those
	// declarations on its root. A default namespace inherited from the stream
	// is not added: Raw then has no xmlns and belongs to Name.Space.
	Raw string
	// Name is the resolved name of the root.
	Name Name
	// Head attributes of the root, unescaped. Lang is the root's own
	// xml:lang; the caller falls back to Header.Lang (RFC 6120 §4.7.4).
	To, From, Type, ID, Lang string

	parentNS  string // default namespace in scope outside the element
	parentSet bool
}

// Kind is the kind of token Next returned.
type Kind uint8

const (
	KindStreamStart Kind = iota + 1 // Header() holds the stream header
	KindStreamEnd                   // </stream:stream>
	KindElement                     // Element() holds the element
	KindWhitespace                  // whitespace between elements (keepalive, RFC 6120 §4.6.1)
)

func (k Kind) String() string {
	switch k {
	case KindStreamStart:
		return "StreamStart"
	case KindStreamEnd:
		return "StreamEnd"
	case KindElement:
		return "Element"
	case KindWhitespace:
		return "Whitespace"
	}
	return "Kind(?)"
}

const (
	// readChunk is the minimum free space offered to each Read, and initialBuf the first buffer: small, because
	// an idle connection keeps its buffer while its reader waits (1 KiB holds typical chat stanzas; a larger
	// element grows the buffer up to the limit).
	readChunk  = 1024
	initialBuf = 1024
)

type dstate uint8

const (
	stBeforeHeader dstate = iota
	stInStream
	stEnded
)

// Decoder reads one XMPP stream. It is not safe for concurrent use; the
// connection's reader goroutine owns it.
type Decoder struct {
	rd    io.Reader
	rdErr error // error the reader returned together with data
	buf   []byte
	r, w  int // unconsumed bytes are buf[r:w]
	max   int

	state      dstate
	declSeen   bool // an XML declaration was read; the next tag must be a stream header
	pendingEnd bool // the stream header was self-closing
	wsRun      int  // length of the current run of stream-level whitespace
	err        *Error

	fr     framer
	v      validator
	hdr    *Header
	qname  string // the stream element's name as written ("stream:stream")
	elem   *Element
	hdrDef string // hdr.DefaultNS, kept for elements
}

// NewDecoder returns a decoder reading from r that rejects any element (and
// any stream header tag or run of whitespace) longer than maxElement bytes.
func NewDecoder(r io.Reader, maxElement int) *Decoder {
	d := &Decoder{}
	d.SetLimit(maxElement)
	d.Reset(r)
	return d
}

// SetLimit changes the per-element byte limit; it applies from the next
// token on. The buffer grows lazily, so raising the limit after
// authentication costs nothing until a large element arrives.
func (d *Decoder) SetLimit(maxElement int) {
	if maxElement < 64 {
		maxElement = 64
	}
	d.max = maxElement
}

// Reset discards all buffered bytes and state and makes d read a new stream
// from r. After STARTTLS this is what drops any bytes the peer pipelined
// before the TLS handshake (RFC 6120 §5.4.3.3).
func (d *Decoder) Reset(r io.Reader) {
	d.rd, d.rdErr = r, nil
	d.r, d.w = 0, 0
	d.state = stBeforeHeader
	d.declSeen, d.pendingEnd = false, false
	d.wsRun = 0
	d.err = nil
	d.fr = framer{}
	d.hdr, d.elem, d.qname, d.hdrDef = nil, nil, "", ""
	d.v.hdr, d.v.hdrBytes = nil, nil
}

// Release drops the read buffer (and the last element) when no unconsumed byte is in it, so that a connection
// that has gone quiet holds no buffer while it waits; the next read allocates a small one again (initialBuf),
// whatever size an earlier large element had grown it to. It reports whether the buffer was dropped. Element is
// not valid after Release.
func (d *Decoder) Release() bool {
	if d.r != d.w || d.fr.active {
		return false
	}
	d.buf, d.r, d.w = nil, 0, 0
	d.elem = nil
	// The validator's state of the last element points into the buffer (the lexer's input, the namespace
	// bindings' bytes, the root's decoded namespace): any one of them would keep the whole buffer alive after
	// the decoder let go of it. They are rebuilt by the next element. The header's bindings are strings.
	d.v.lx.b = nil
	clear(d.v.ns[:cap(d.v.ns)])
	d.v.ns = d.v.ns[:0]
	d.v.root.spaceBytes = nil
	return true
}

// Buffered returns the number of bytes read from the reader but not consumed.
func (d *Decoder) Buffered() int { return d.w - d.r }

// Header returns the stream header; valid after KindStreamStart.
func (d *Decoder) Header() *Header { return d.hdr }

// Element returns the element; valid after KindElement. Each element is a
// new value owned by the caller.
func (d *Decoder) Element() *Element { return d.elem }

func (d *Decoder) fail(e *Error) (Kind, error) {
	d.err = e
	return 0, e
}

// fill reads more bytes, making room first. Unconsumed bytes are always part
// of the token being scanned and shorter than the limit, so the buffer never
// needs more than max+readChunk bytes.
func (d *Decoder) fill() error {
	if d.rdErr != nil {
		err := d.rdErr
		d.rdErr = nil
		return err
	}
	if d.r == d.w {
		d.r, d.w = 0, 0
	}
	if len(d.buf)-d.w < readChunk {
		if d.r > 0 {
			d.w = copy(d.buf, d.buf[d.r:d.w])
			d.r = 0
		}
		if len(d.buf)-d.w < readChunk {
			n := 2 * len(d.buf)
			if n < initialBuf {
				n = initialBuf
			}
			if lim := d.max + readChunk; n > lim {
				n = lim
			}
			if n < d.w+readChunk {
				n = d.w + readChunk
			}
			if n > len(d.buf) {
				nb := make([]byte, n)
				copy(nb, d.buf[:d.w])
				d.buf = nb
			}
		}
	}
	for range 100 {
		n, err := d.rd.Read(d.buf[d.w:])
		if n < 0 || n > len(d.buf)-d.w {
			return errors.New("xmlstream: reader returned invalid count")
		}
		d.w += n
		if n > 0 {
			d.rdErr = err
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// Next reads the next stream-level token. Errors of the input are *Error and
// final (Next keeps returning them); reader errors are returned as they are
// and Next may be called again if the reader can recover (e.g. a deadline).
func (d *Decoder) Next() (Kind, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.pendingEnd {
		d.pendingEnd = false
		d.state = stEnded
		return KindStreamEnd, nil
	}
	for {
		avail := d.w - d.r
		if avail == 0 {
			if err := d.fill(); err != nil {
				return 0, err
			}
			continue
		}
		if !d.fr.active {
			c := d.buf[d.r]
			if isWS(c) {
				if k, err, ok := d.whitespace(); ok {
					return k, err
				}
				continue
			}
			switch {
			case d.state == stEnded:
				return d.fail(errf(CondNotWellFormed, "content after the end of the stream"))
			case c != '<':
				return d.fail(errf(CondNotWellFormed, "character data at stream level"))
			case avail < 2:
				if err := d.fill(); err != nil {
					return 0, err
				}
				continue
			}
			if c1 := d.buf[d.r+1]; d.state == stInStream && c1 != '/' && c1 != '!' && c1 != '?' {
				// Fast path: the whole element is usually buffered already;
				// validate it in one pass without framing it first.
				if k, err, ok := d.elementFast(); ok {
					return k, err
				}
				d.fr.reset()
				d.fr.diagAt = 2 * (d.w - d.r) // elementFast validated that much
			} else {
				d.fr.reset()
			}
		}
		lim := min(d.w-d.r, d.max)
		b := d.buf[d.r : d.r+lim]
		switch d.fr.run(b) {
		case feMore:
			if lim >= d.max {
				return d.fail(d.diagnose(b, errf(CondPolicyViolation, "element larger than the limit")))
			}
			// The framer does not judge, so validate what we have now and
			// then whenever the token has doubled (O(n) in total): errors
			// surface soon after their bytes arrive, not only when the
			// token completes, just as on the fast path.
			if lim >= d.fr.diagAt {
				if e := d.diagnose(b, nil); e != nil {
					return d.fail(e)
				}
				d.fr.diagAt = 2 * lim
			}
			if err := d.fill(); err != nil {
				// The input ends (or stalls) inside a token: a syntax error
				// in what did arrive is the verdict, whatever the chunking.
				// (fill may have moved the bytes: slice again.)
				if e := d.diagnose(d.buf[d.r:d.r+lim], nil); e != nil {
					return d.fail(e)
				}
				return 0, err
			}
		case feStop:
			// The validator may need a byte or two past where the framer
			// stopped to name the error ("<!" then '-' or 'D').
			if e := d.diagnose(b, nil); e != nil {
				return d.fail(e)
			}
			if lim >= d.max {
				return d.fail(errf(CondPolicyViolation, "element larger than the limit"))
			}
			if err := d.fill(); err != nil {
				return 0, err
			}
		case feRootTag:
			if k, err, ok := d.rootTag(b[:d.fr.pos]); ok {
				return k, err
			}
		case feDone:
			d.fr.active = false
			return d.token(b[:d.fr.pos])
		}
	}
}

// whitespace consumes the buffered run of whitespace. Whitespace is never
// buffered, only counted: a peer streaming nothing but whitespace is cut off
// once the run exceeds the limit. (An idle client sending one keepalive a
// minute needs limit-many minutes to get there; any element resets the run.)
func (d *Decoder) whitespace() (Kind, error, bool) {
	i := d.r
	for i < d.w && isWS(d.buf[i]) {
		i++
	}
	d.wsRun += i - d.r
	d.r = i
	if d.wsRun > d.max {
		k, err := d.fail(errf(CondPolicyViolation, "too much whitespace"))
		return k, err, true
	}
	if d.state == stBeforeHeader {
		return 0, nil, false
	}
	return KindWhitespace, nil, true
}

func (d *Decoder) configure(requireStart bool) {
	v := &d.v
	v.checkRestart = true
	v.requireStart = requireStart
	v.defNS = d.hdrDef
	v.streamSpace, v.streamLocal = d.hdr.StreamNS, d.hdr.Local
}

// elementFast validates the element at d.r directly from the buffer.
// ok is false when the element is not complete yet.
func (d *Decoder) elementFast() (Kind, error, bool) {
	lim := min(d.w-d.r, d.max)
	b := d.buf[d.r : d.r+lim]
	d.configure(d.declSeen)
	switch d.v.element(b) {
	case stOK:
		k, err := d.emit(b[:d.v.n])
		return k, err, true
	case stRestart:
		k, err := d.header(b[:d.v.root.tagEnd])
		return k, err, true
	case stErr:
		k, err := d.fail(d.v.lx.err)
		return k, err, true
	}
	if lim >= d.max {
		k, err := d.fail(errf(CondPolicyViolation, "element larger than the limit"))
		return k, err, true
	}
	return 0, nil, false
}

// rootTag handles the framer reaching the end of a root start tag. Before
// the stream header that tag is the header; inside the stream it may be a
// restart (RFC 6120 §4.3.3), so it is validated now rather than after the
// element: a restart header has no end tag to wait for.
func (d *Decoder) rootTag(tag []byte) (Kind, error, bool) {
	if d.state == stBeforeHeader {
		k, err := d.header(tag)
		return k, err, true
	}
	d.configure(d.declSeen)
	switch d.v.element(tag) {
	case stRestart:
		k, err := d.header(tag)
		return k, err, true
	case stErr:
		k, err := d.fail(d.v.lx.err)
		return k, err, true
	}
	return 0, nil, false
}

// diagnose names the first error in the token prefix b after the framer gave
// up on it; if the validator finds none, def is the verdict.
func (d *Decoder) diagnose(b []byte, def *Error) *Error {
	lx := &d.v.lx
	lx.b, lx.pos, lx.err = b, 0, nil
	var st status
	switch {
	case len(b) < 2:
		return def
	case b[1] == '?':
		if _, err := d.parseDecl(b); err != nil && err.Condition != CondNotWellFormed {
			return err
		}
		return def
	case b[1] == '!':
		// At stream level even a CDATA section is character data.
		switch {
		case len(b) < 3:
			return def
		case b[2] == '-':
			return errf(CondRestrictedXML, "comment not allowed")
		case b[2] >= 'A' && b[2] <= 'Z':
			return errf(CondRestrictedXML, "DTD not allowed")
		}
		return errf(CondNotWellFormed, "character data at stream level")
	case b[1] == '/':
		st = lx.endTag()
	case d.state == stBeforeHeader:
		st = lx.startTag()
	default:
		d.configure(d.declSeen)
		st = d.v.element(b)
	}
	if st == stErr {
		return lx.err
	}
	return def
}

// token handles a complete stream-level token found by the framer.
func (d *Decoder) token(b []byte) (Kind, error) {
	switch b[1] {
	case '?':
		return d.decl(b)
	case '/':
		if d.state != stInStream || d.declSeen {
			return d.fail(errf(CondNotWellFormed, "unexpected end tag"))
		}
		lx := &d.v.lx
		lx.b, lx.pos, lx.err = b, 0, nil
		switch lx.endTag() {
		case stErr:
			return d.fail(lx.err)
		case stMore:
			return d.fail(errf(CondNotWellFormed, "malformed end tag"))
		}
		if lx.pos != len(b) || string(b[lx.name.s:lx.name.e]) != d.qname {
			return d.fail(errf(CondNotWellFormed, "mismatched end tag"))
		}
		d.r += len(b)
		d.wsRun = 0
		d.state = stEnded
		return KindStreamEnd, nil
	}
	if d.state == stBeforeHeader {
		return d.header(b)
	}
	d.configure(d.declSeen)
	switch d.v.element(b) {
	case stOK:
		if d.v.n == len(b) {
			return d.emit(b)
		}
	case stRestart:
		return d.header(b[:d.v.root.tagEnd])
	case stErr:
		return d.fail(d.v.lx.err)
	}
	return d.fail(errf(CondNotWellFormed, "malformed element"))
}

// decl handles "<?...?>" at stream level: only the XML declaration is
// allowed, once, right before a stream header (RFC 6120 §11.1, §11.5).
func (d *Decoder) decl(b []byte) (Kind, error) {
	if d.state == stEnded {
		return d.fail(errf(CondNotWellFormed, "content after the end of the stream"))
	}
	if _, err := d.parseDecl(b); err != nil {
		return d.fail(err)
	}
	if d.declSeen {
		return d.fail(errf(CondNotWellFormed, "duplicate XML declaration"))
	}
	d.declSeen = true
	d.r += len(b)
	d.wsRun = 0
	return d.Next()
}

// parseDecl checks an XML declaration (XML 1.0 §2.8) and its encoding
// (RFC 6120 §11.6: UTF-8 only). b may be a prefix when diagnosing.
func (d *Decoder) parseDecl(b []byte) (bool, *Error) {
	const target = "<?xml"
	if len(b) < len(target)+1 {
		return false, errf(CondNotWellFormed, "truncated processing instruction")
	}
	if !strings.EqualFold(string(b[:len(target)]), target) || !isWS(b[len(target)]) && b[len(target)] != '?' {
		return false, errf(CondRestrictedXML, "processing instruction not allowed")
	}
	if string(b[2:5]) != "xml" {
		return false, errf(CondRestrictedXML, "processing instruction not allowed")
	}
	lx := &d.v.lx
	lx.b = b
	p := len(target)
	seen := 0
	names := [...]string{"version", "encoding", "standalone"}
	for {
		q := lx.skipWS(p)
		if q >= len(b) {
			return false, errf(CondNotWellFormed, "truncated XML declaration")
		}
		if b[q] == '?' {
			if q+2 != len(b) || b[q+1] != '>' {
				return false, errf(CondNotWellFormed, "malformed XML declaration")
			}
			if seen&1 == 0 {
				return false, errf(CondNotWellFormed, "XML declaration without version")
			}
			return true, nil
		}
		if q == p {
			return false, errf(CondNotWellFormed, "malformed XML declaration")
		}
		p = q
		e := p
		for e < len(b) && b[e] >= 'a' && b[e] <= 'z' {
			e++
		}
		name := string(b[p:e])
		idx := -1
		for i, n := range names {
			if n == name && 1<<i > seen {
				idx = i
			}
		}
		if idx < 0 {
			return false, errf(CondNotWellFormed, "malformed XML declaration")
		}
		if idx > 0 && seen&1 == 0 {
			return false, errf(CondNotWellFormed, "XML declaration without version")
		}
		seen |= 1 << idx
		p = lx.skipWS(e)
		if p >= len(b) || b[p] != '=' {
			return false, errf(CondNotWellFormed, "malformed XML declaration")
		}
		p = lx.skipWS(p + 1)
		if p >= len(b) || b[p] != '\'' && b[p] != '"' {
			return false, errf(CondNotWellFormed, "malformed XML declaration")
		}
		quote := b[p]
		vs := p + 1
		ve := vs
		for ve < len(b) && b[ve] != quote {
			c := b[ve]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false, errf(CondNotWellFormed, "malformed XML declaration")
			}
			ve++
		}
		if ve >= len(b) {
			return false, errf(CondNotWellFormed, "truncated XML declaration")
		}
		val := string(b[vs:ve])
		switch idx {
		case 0:
			if len(val) < 3 || val[:2] != "1." || strings.Trim(val[2:], "0123456789") != "" {
				return false, errf(CondNotWellFormed, "unsupported XML version")
			}
		case 1:
			if !strings.EqualFold(val, "UTF-8") {
				return false, errf(CondUnsupportedEncoding, "only UTF-8 is allowed")
			}
		case 2:
			if val != "yes" && val != "no" {
				return false, errf(CondNotWellFormed, "malformed XML declaration")
			}
		}
		p = ve + 1
	}
}

// header parses a stream header tag (the first one, or a restart) and makes
// its declarations the stream-level namespace scope.
func (d *Decoder) header(tag []byte) (Kind, error) {
	v := &d.v
	lx := &v.lx
	lx.b, lx.pos, lx.err = tag, 0, nil
	if tag[1] == '/' || tag[1] == '!' || tag[1] == '?' {
		return d.fail(errf(CondNotWellFormed, "expected a stream header"))
	}
	switch lx.startTag() {
	case stErr:
		return d.fail(lx.err)
	case stMore:
		return d.fail(errf(CondNotWellFormed, "malformed stream header"))
	}
	if lx.pos != len(tag) {
		return d.fail(errf(CondNotWellFormed, "malformed stream header"))
	}
	selfClose := lx.selfClose
	// A new stream starts a new namespace scope: only the header's own
	// declarations count (plus xml:).
	v.ns = v.ns[:0]
	v.hdr, v.hdrBytes = nil, nil
	v.defNS = ""
	v.checkRestart, v.requireStart = false, false
	if st := v.startElem(true); st != stOK {
		return d.fail(lx.err)
	}
	h := &Header{}
	ri := &v.root
	if ri.defDecl >= 0 {
		uri, _ := v.attrValue(&lx.attrs[ri.defDecl])
		h.DefaultNS = string(uri)
	}
	switch ri.spaceKind {
	case spaceInherited:
		h.StreamNS = h.DefaultNS
	case spaceXML:
		h.StreamNS = NSXML
	case spaceRaw:
		h.StreamNS = string(tag[ri.spaceRaw.s:ri.spaceRaw.e])
	default:
		h.StreamNS = string(ri.spaceBytes)
	}
	h.Local = string(tag[lx.name.s:lx.name.e])
	if lx.colon >= 0 {
		h.Prefix = h.Local[:lx.colon-lx.name.s]
		h.Local = h.Local[lx.colon-lx.name.s+1:]
	}
	var hdr []hdrBind
	var hdrBytes [][]byte
	for _, nb := range v.ns {
		hdr = append(hdr, hdrBind{prefix: string(nb.prefix), uri: string(nb.uri)})
		hdrBytes = append(hdrBytes, []byte(string(nb.uri)))
	}
	for i := range lx.attrs {
		a := &lx.attrs[i]
		var dst *string
		switch string(tag[a.name.s:a.name.e]) {
		case "to":
			dst = &h.To
		case "from":
			dst = &h.From
		case "id":
			dst = &h.ID
		case "version":
			dst = &h.Version
		case "xml:lang":
			dst = &h.Lang
		default:
			continue
		}
		val, _ := v.attrValue(a)
		*dst = string(val)
	}
	d.qname = string(tag[lx.name.s:lx.name.e])
	v.ns = v.ns[:0]
	v.hdr, v.hdrBytes = hdr, hdrBytes
	v.hdrUsed, v.anyHdrUsed = nil, false
	d.hdr, d.hdrDef = h, h.DefaultNS
	d.r += len(tag)
	d.fr.active = false
	d.wsRun = 0
	d.declSeen = false
	d.state = stInStream
	if selfClose {
		d.pendingEnd = true
	}
	return KindStreamStart, nil
}

// emit builds the Element for the validated bytes b (v holds the root info)
// and consumes them. Two allocations: Raw and the Element.
func (d *Decoder) emit(b []byte) (Kind, error) {
	v := &d.v
	ri := &v.root
	var raw string
	shift := 0
	if v.anyHdrUsed {
		raw, shift = d.rawWithDecls(b)
	} else {
		raw = string(b)
	}
	e := &Element{Raw: raw, parentNS: d.hdrDef, parentSet: true}
	if ri.colon >= 0 {
		e.Name.Local = raw[ri.colon+1 : ri.name.e]
	} else {
		e.Name.Local = raw[ri.name.s:ri.name.e]
	}
	switch ri.spaceKind {
	case spaceInherited:
		e.Name.Space = d.hdrDef
	case spaceRaw:
		e.Name.Space = raw[ri.spaceRaw.s+shift : ri.spaceRaw.e+shift]
	case spaceDecoded:
		e.Name.Space = string(ri.spaceBytes)
	case spaceHeader:
		e.Name.Space = v.hdr[ri.spaceHdr].uri
	case spaceXML:
		e.Name.Space = NSXML
	}
	if ri.headSet != 0 {
		dsts := [numHead]*string{&e.To, &e.From, &e.Type, &e.ID, &e.Lang}
		for k := range numHead {
			if ri.headSet&(1<<k) == 0 {
				continue
			}
			a := &ri.head[k]
			if a.decode {
				*dsts[k] = string(unescape(nil, b[a.val.s:a.val.e], true))
			} else {
				*dsts[k] = raw[a.val.s+shift : a.val.e+shift]
			}
		}
	}
	d.r += len(b)
	d.wsRun = 0
	d.fr.active = false
	d.elem = e
	return KindElement, nil
}

// rawWithDecls copies b adding, right after the root's name, declarations
// for the header prefixes the element relies on, so that Raw stands alone
// (rare: server-to-server dialback's db: prefix, stream:error, ...).
func (d *Decoder) rawWithDecls(b []byte) (string, int) {
	v := &d.v
	at := v.root.name.e
	var sb strings.Builder
	sb.Grow(len(b) + 64)
	sb.Write(b[:at])
	for i, h := range v.hdr {
		if !v.hdrUsed[i] {
			continue
		}
		sb.WriteString(" xmlns:")
		sb.WriteString(h.prefix)
		sb.WriteString("='")
		sb.Write(AppendEscapedAttr(nil, h.uri))
		sb.WriteByte('\'')
	}
	shift := sb.Len() - at
	sb.Write(b[at:])
	return sb.String(), shift
}
