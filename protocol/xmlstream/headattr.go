package xmlstream

import "unsafe"

// SetHeadAttr returns raw (a top-level element's bytes) with the unprefixed
// attribute name on the root start tag set to value: replaced if present,
// inserted right after the element name otherwise, removed if value is "".
// Only the root start tag is looked at, so stamping 'from'/'to' on a routed
// stanza (RFC 6120 §8.1.2.1) costs one copy and no re-serialisation of the
// payload. raw is returned unchanged if its root tag does not lex or name is
// not a valid unprefixed attribute name.
func SetHeadAttr(raw, name, value string) string {
	b := unsafe.Slice(unsafe.StringData(raw), len(raw)) // read only
	if len(b) < 2 || b[0] != '<' || b[1] == '/' || b[1] == '!' || b[1] == '?' || !validNCName(name) {
		return raw
	}
	// Walk the root tag's attributes without collecting them (no
	// allocation): only the one named name matters.
	lx := lexer{b: b}
	p, _, st := lx.qname(1)
	if st != stOK {
		return raw
	}
	nameEnd := p
	var found attrTok
	idx := -1
	for {
		a, q, st := lx.attr(p)
		if st == stTagEnd {
			break
		}
		if st != stOK {
			return raw
		}
		if idx < 0 && a.colon < 0 && raw[a.name.s:a.name.e] == name {
			found, idx = a, 0
		}
		p = q
	}
	if value == "" {
		if idx < 0 {
			return raw
		}
		a := &found
		ws := a.name.s
		for ws > 0 && isWS(b[ws-1]) {
			ws--
		}
		out := make([]byte, 0, len(raw)-(a.val.e+1-ws))
		out = append(out, raw[:ws]...)
		out = append(out, raw[a.val.e+1:]...)
		return unsafe.String(unsafe.SliceData(out), len(out))
	}
	out := make([]byte, 0, len(raw)+len(name)+len(value)+8)
	if idx >= 0 {
		a := &found
		out = append(out, raw[:a.val.s-1]...)
		out = append(out, '\'')
		out = AppendEscapedAttr(out, value)
		out = append(out, '\'')
		out = append(out, raw[a.val.e+1:]...)
	} else {
		at := nameEnd
		out = append(out, raw[:at]...)
		out = append(out, ' ')
		out = append(out, name...)
		out = append(out, "='"...)
		out = AppendEscapedAttr(out, value)
		out = append(out, '\'')
		out = append(out, raw[at:]...)
	}
	// out is never written again, so it can back the string directly.
	return unsafe.String(unsafe.SliceData(out), len(out))
}

func validNCName(s string) bool {
	if s == "" || s == "xmlns" {
		return false
	}
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	lx := lexer{b: b}
	e, colon, st := lx.qname(0)
	// qname reports stMore when the name runs to the end of its input.
	return st == stMore && colon < 0 && e == len(b)
}
