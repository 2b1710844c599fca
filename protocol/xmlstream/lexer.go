package xmlstream

import "unicode/utf8"

// status is the outcome of a lexing step.
type status uint8

const (
	stOK      status = iota
	stMore           // the token runs past the end of the bytes we have
	stErr            // lexer.err says why
	stRestart        // (validator) the root start tag is a new stream header
)

type span struct{ s, e int }

// attrTok is one attribute of the last start tag, as offsets into lexer.b.
type attrTok struct {
	name   span
	colon  int  // absolute offset of ':' in the name, -1 if unprefixed
	val    span // without the quotes
	decode bool // value holds a reference or \t\n\r: needs unescape()
}

// lexer is the strict XML tokenizer shared by the stream decoder and the DOM
// parser. It never allocates on valid input (attrs is reused) and it never
// looks past the end of b: when a token is cut off it reports stMore, so a
// result is a function of the bytes seen only, however they were chunked.
//
// It enforces the XMPP restrictions of RFC 6120 §11.1 (no comments, PIs,
// DTDs or non-predefined entities) but knows nothing about namespaces; the
// validator resolves those.
type lexer struct {
	b   []byte
	pos int
	err *Error

	// last start or end tag
	name      span
	colon     int
	selfClose bool
	attrs     []attrTok

	// last text or CDATA token
	text   span
	decode bool // text holds references or \r
	cdata  bool
}

func (l *lexer) fail(cond, msg string) status {
	l.err = errf(cond, msg)
	return stErr
}

// high validates the UTF-8 sequence at p (b[p] >= 0x80) as an XML Char and
// returns its length.
func (l *lexer) high(p int) (int, status) {
	if !utf8.FullRune(l.b[p:]) {
		return 0, stMore
	}
	r, n := utf8.DecodeRune(l.b[p:])
	if r == utf8.RuneError && n == 1 {
		return 0, l.fail(CondNotWellFormed, "invalid UTF-8")
	}
	if !isChar(r) {
		return 0, l.fail(CondNotWellFormed, "character not allowed in XML")
	}
	return n, stOK
}

// qname scans a Name at p that is also a QName (Namespaces in XML §4: at most
// one colon, both parts non-empty NCNames). It returns the end offset and the
// offset of the colon (-1 if none). The byte at the end offset is not
// checked; callers decide what may follow a name.
func (l *lexer) qname(p int) (end, colon int, st status) {
	b := l.b
	// Fast path: an unprefixed ASCII name followed by an ASCII delimiter.
	if p < len(b) && nameTab[b[p]]&nmStart != 0 {
		q := p + 1
		for q < len(b) && nameTab[b[q]]&nmChar != 0 {
			q++
		}
		if q < len(b) && b[q] != ':' && b[q] < 0x80 {
			return q, -1, stOK
		}
	}
	colon = -1
	seg := p // start of the current NCName
	for {
		if p >= len(b) {
			return p, colon, stMore
		}
		c := b[p]
		if c < 0x80 {
			k := nameTab[c]
			switch {
			case k&nmStart != 0 || k&nmChar != 0 && p > seg:
				p++
				continue
			case c == ':' && colon < 0 && p > seg:
				colon = p
				p++
				seg = p
				continue
			}
			if p == seg {
				return p, colon, l.fail(CondNotWellFormed, "invalid name")
			}
			return p, colon, stOK
		}
		if !utf8.FullRune(b[p:]) {
			return p, colon, stMore
		}
		r, n := utf8.DecodeRune(b[p:])
		if r == utf8.RuneError && n == 1 {
			return p, colon, l.fail(CondNotWellFormed, "invalid UTF-8")
		}
		if p == seg && !isNameStartRune(r) || p > seg && !isNameRune(r) {
			if p == seg {
				return p, colon, l.fail(CondNotWellFormed, "invalid name")
			}
			return p, colon, stOK
		}
		p += n
	}
}

// ref validates the reference starting at b[p] == '&' and returns the offset
// after its ';'. Only the five predefined entities and character references
// are allowed (RFC 6120 §11.1: no other entity references).
func (l *lexer) ref(p int) (int, status) {
	b := l.b
	q := p + 1
	if q >= len(b) {
		return 0, stMore
	}
	if b[q] == '#' {
		q++
		if q >= len(b) {
			return 0, stMore
		}
		base := rune(10)
		if b[q] == 'x' {
			base = 16
			q++
		}
		var v rune
		digits := 0
		for ; ; q++ {
			if q >= len(b) {
				return 0, stMore
			}
			c := b[q]
			if c == ';' {
				break
			}
			var d rune
			switch {
			case c >= '0' && c <= '9':
				d = rune(c - '0')
			case base == 16 && c >= 'a' && c <= 'f':
				d = rune(c-'a') + 10
			case base == 16 && c >= 'A' && c <= 'F':
				d = rune(c-'A') + 10
			default:
				return 0, l.fail(CondNotWellFormed, "malformed character reference")
			}
			if v <= utf8.MaxRune { // clamp: leading zeros are legal, overflow is not
				v = v*base + d
			}
			digits++
		}
		if digits == 0 || !isChar(v) {
			return 0, l.fail(CondNotWellFormed, "invalid character reference")
		}
		return q + 1, stOK
	}
	e, _, st := l.qname(q)
	if st != stOK {
		if st == stErr {
			l.err = errf(CondNotWellFormed, "malformed reference")
		}
		return 0, st
	}
	if e >= len(b) {
		return 0, stMore
	}
	if b[e] != ';' {
		return 0, l.fail(CondNotWellFormed, "malformed reference")
	}
	switch string(b[q:e]) {
	case "lt", "gt", "amp", "apos", "quot":
		return e + 1, stOK
	}
	return 0, l.fail(CondRestrictedXML, "entity reference not allowed")
}

// markup lexes the markup token at l.pos (b[l.pos] == '<') that is not a
// start or end tag: a CDATA section (allowed; RFC 6120 §11.1 does not forbid
// it) or a comment, PI or declaration (restricted).
func (l *lexer) markup() status {
	b := l.b
	p := l.pos + 1
	if p >= len(b) {
		return stMore
	}
	if b[p] == '?' {
		return l.fail(CondRestrictedXML, "processing instruction not allowed")
	}
	p++ // after "<!"
	if p >= len(b) {
		return stMore
	}
	switch c := b[p]; {
	case c == '-':
		return l.fail(CondRestrictedXML, "comment not allowed")
	case c >= 'A' && c <= 'Z':
		return l.fail(CondRestrictedXML, "DTD not allowed")
	case c != '[':
		return l.fail(CondNotWellFormed, "invalid markup")
	}
	const open = "[CDATA["
	for i := 0; i < len(open); i++ {
		if p+i >= len(b) {
			return stMore
		}
		if b[p+i] != open[i] {
			return l.fail(CondNotWellFormed, "invalid markup")
		}
	}
	p += len(open)
	start := p
	l.decode = false
	for {
		if p >= len(b) {
			return stMore
		}
		c := b[p]
		switch cdataTab[c] {
		case cPlain:
			p++
		case cGT:
			if p-start >= 2 && b[p-1] == ']' && b[p-2] == ']' {
				l.text = span{start, p - 2}
				l.cdata = true
				l.pos = p + 1
				return stOK
			}
			p++
		case cCR:
			l.decode = true
			p++
		case cBad:
			return l.fail(CondNotWellFormed, "character not allowed in XML")
		default:
			n, st := l.high(p)
			if st != stOK {
				return st
			}
			p += n
		}
	}
}

// charData lexes character data from l.pos up to the next '<'. Reaching the
// end of b is stMore: inside an element text is always followed by markup.
func (l *lexer) charData() status {
	b := l.b
	p := l.pos
	start := p
	l.decode = false
	for {
		for p < len(b) && textTab[b[p]] == cPlain {
			p++
		}
		if p >= len(b) {
			return stMore
		}
		switch textTab[b[p]] {
		case cLT:
			l.text = span{start, p}
			l.cdata = false
			l.pos = p
			return stOK
		case cAmp:
			n, st := l.ref(p)
			if st != stOK {
				return st
			}
			l.decode = true
			p = n
		case cGT:
			// XML 1.0 §2.4: "]]>" must not appear in character data.
			if p-start >= 2 && b[p-1] == ']' && b[p-2] == ']' {
				return l.fail(CondNotWellFormed, "']]>' in character data")
			}
			p++
		case cCR:
			l.decode = true
			p++
		case cBad:
			return l.fail(CondNotWellFormed, "character not allowed in XML")
		default:
			n, st := l.high(p)
			if st != stOK {
				return st
			}
			p += n
		}
	}
}

func (l *lexer) skipWS(p int) int {
	for p < len(l.b) && isWS(l.b[p]) {
		p++
	}
	return p
}

// startTag lexes the start tag at l.pos (b[l.pos] == '<', b[l.pos+1] is not
// one of / ! ?).
func (l *lexer) startTag() status {
	p := l.pos + 1
	e, colon, st := l.qname(p)
	if st != stOK {
		return st
	}
	l.name, l.colon = span{p, e}, colon
	l.attrs = l.attrs[:0]
	p = e
	for {
		a, q, st := l.attr(p)
		switch st {
		case stOK:
			l.attrs = append(l.attrs, a)
			p = q
		case stTagEnd:
			l.pos = q
			return stOK
		default:
			return st
		}
	}
}

// stTagEnd is attr's report that the tag ended (l.selfClose says how).
const stTagEnd = stRestart + 1

// attr lexes what follows offset p inside a start tag (p is right after the
// name or the previous attribute): either the end of the tag (stTagEnd, end
// is after the '>') or one attribute (stOK, end is after its closing quote).
func (l *lexer) attr(p int) (a attrTok, end int, st status) {
	b := l.b
	q := l.skipWS(p)
	if q >= len(b) {
		return a, 0, stMore
	}
	switch b[q] {
	case '>':
		l.selfClose = false
		return a, q + 1, stTagEnd
	case '/':
		if q+1 >= len(b) {
			return a, 0, stMore
		}
		if b[q+1] != '>' {
			return a, 0, l.fail(CondNotWellFormed, "expected '>' after '/'")
		}
		l.selfClose = true
		return a, q + 2, stTagEnd
	}
	if q == p {
		return a, 0, l.fail(CondNotWellFormed, "expected whitespace, '>' or '/>' in tag")
	}
	p = q
	e, colon, st := l.qname(p)
	if st != stOK {
		return a, 0, st
	}
	a.name, a.colon = span{p, e}, colon
	p = l.skipWS(e)
	if p >= len(b) {
		return a, 0, stMore
	}
	if b[p] != '=' {
		return a, 0, l.fail(CondNotWellFormed, "expected '=' after attribute name")
	}
	p = l.skipWS(p + 1)
	if p >= len(b) {
		return a, 0, stMore
	}
	quote := b[p]
	if quote != '\'' && quote != '"' {
		return a, 0, l.fail(CondNotWellFormed, "attribute value not quoted")
	}
	p++
	a.val.s = p
	for {
		for p < len(b) && attrTab[b[p]] == cPlain {
			p++
		}
		if p >= len(b) {
			return a, 0, stMore
		}
		c := b[p]
		switch attrTab[c] {
		case cQuote:
			if c == quote {
				a.val.e = p
				return a, p + 1, stOK
			}
			p++
		case cLT:
			return a, 0, l.fail(CondNotWellFormed, "'<' in attribute value")
		case cAmp:
			n, st := l.ref(p)
			if st != stOK {
				return a, 0, st
			}
			a.decode = true
			p = n
		case cWS:
			a.decode = true
			p++
		case cBad:
			return a, 0, l.fail(CondNotWellFormed, "character not allowed in XML")
		default:
			n, st := l.high(p)
			if st != stOK {
				return a, 0, st
			}
			p += n
		}
	}
}

// endTag lexes the end tag at l.pos (b[l.pos:l.pos+2] == "</").
func (l *lexer) endTag() status {
	p := l.pos + 2
	e, colon, st := l.qname(p)
	if st != stOK {
		return st
	}
	l.name, l.colon = span{p, e}, colon
	p = l.skipWS(e)
	if p >= len(l.b) {
		return stMore
	}
	if l.b[p] != '>' {
		return l.fail(CondNotWellFormed, "expected '>' in end tag")
	}
	l.pos = p + 1
	return stOK
}

// unescape decodes a validated text or attribute value: references are
// replaced, line ends normalised (XML 1.0 §2.11) and, for attributes,
// whitespace normalised (§3.3.3, CDATA-typed attributes).
func unescape(dst, raw []byte, attr bool) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '\r':
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
			if attr {
				dst = append(dst, ' ')
			} else {
				dst = append(dst, '\n')
			}
		case '\t', '\n':
			if attr {
				dst = append(dst, ' ')
			} else {
				dst = append(dst, c)
			}
		case '&':
			j := i + 1
			for raw[j] != ';' {
				j++
			}
			ent := raw[i+1 : j]
			i = j
			if ent[0] == '#' {
				var v rune
				if ent[1] == 'x' {
					for _, d := range ent[2:] {
						switch {
						case d <= '9':
							v = v*16 + rune(d-'0')
						case d >= 'a':
							v = v*16 + rune(d-'a') + 10
						default:
							v = v*16 + rune(d-'A') + 10
						}
					}
				} else {
					for _, d := range ent[1:] {
						v = v*10 + rune(d-'0')
						if v > utf8.MaxRune { // only leading zeros can get here validated
							v = utf8.MaxRune + 1
						}
					}
				}
				dst = utf8.AppendRune(dst, v)
				continue
			}
			switch string(ent) {
			case "lt":
				dst = append(dst, '<')
			case "gt":
				dst = append(dst, '>')
			case "amp":
				dst = append(dst, '&')
			case "apos":
				dst = append(dst, '\'')
			case "quot":
				dst = append(dst, '"')
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// normalizeCR applies line-end normalisation (XML 1.0 §2.11) to CDATA
// section contents, where references are not recognised.
func normalizeCR(dst, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\r' {
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
			c = '\n'
		}
		dst = append(dst, c)
	}
	return dst
}
