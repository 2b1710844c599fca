package xmlstream

import "unicode/utf8"

// Namespaces that XML itself reserves (Namespaces in XML 1.0 §3).
const (
	NSXML   = "http://www.w3.org/XML/1998/namespace"
	nsXMLNS = "http://www.w3.org/2000/xmlns/"
)

// Byte classes. The lexer and the escapers walk bytes through these tables so
// the common (printable ASCII) case costs one load and one compare per byte.
const (
	cPlain uint8 = iota
	cLT
	cAmp
	cGT
	cCR
	cQuote
	cWS // \t or \n inside an attribute value (needs normalisation)
	cBad
	cHigh // first byte of a multi-byte UTF-8 sequence (or an invalid byte)
)

const (
	nmStart uint8 = 1 << iota // NameStartChar (ASCII part, without ':')
	nmChar                    // NameChar (ASCII part, without ':')
)

var (
	textTab  [256]uint8 // character data
	attrTab  [256]uint8 // attribute values
	cdataTab [256]uint8 // CDATA section contents
	nameTab  [256]uint8
	escText  [256]bool // bytes AppendEscapedText must look at
	escAttr  [256]bool // bytes AppendEscapedAttr must look at
)

func init() {
	for i := 0; i < 256; i++ {
		c := byte(i)
		var k uint8
		switch {
		case c >= 0x80:
			k = cHigh
		case c < 0x20 && c != '\t' && c != '\n' && c != '\r':
			k = cBad
		}
		textTab[i], attrTab[i], cdataTab[i] = k, k, k
		escText[i] = k != cPlain
		escAttr[i] = k != cPlain
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' {
			nameTab[i] = nmStart | nmChar
		}
		if c >= '0' && c <= '9' || c == '-' || c == '.' {
			nameTab[i] = nmChar
		}
	}
	textTab['<'], textTab['&'], textTab['>'], textTab['\r'] = cLT, cAmp, cGT, cCR
	attrTab['<'], attrTab['&'], attrTab['\''], attrTab['"'] = cLT, cAmp, cQuote, cQuote
	attrTab['\t'], attrTab['\n'], attrTab['\r'] = cWS, cWS, cWS
	cdataTab['>'], cdataTab['\r'] = cGT, cCR
	for _, c := range "&<>\r" {
		escText[c] = true
	}
	for _, c := range "&<>\"'\t\n\r" {
		escAttr[c] = true
	}
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// isChar reports whether r matches the XML 1.0 Char production (§2.2).
func isChar(r rune) bool {
	switch {
	case r < 0x20:
		return r == '\t' || r == '\n' || r == '\r'
	case r <= 0xD7FF:
		return true
	case r < 0xE000:
		return false
	case r <= 0xFFFD:
		return true
	default:
		return r >= 0x10000 && r <= utf8.MaxRune
	}
}

// isNameStartRune / isNameRune implement NameStartChar / NameChar (XML 1.0
// §2.3) for non-ASCII runes; ASCII goes through nameTab.
func isNameStartRune(r rune) bool {
	switch {
	case r < 0xC0:
		return false
	case r <= 0xD6, r >= 0xD8 && r <= 0xF6, r >= 0xF8 && r <= 0x2FF,
		r >= 0x370 && r <= 0x37D, r >= 0x37F && r <= 0x1FFF,
		r >= 0x200C && r <= 0x200D, r >= 0x2070 && r <= 0x218F,
		r >= 0x2C00 && r <= 0x2FEF, r >= 0x3001 && r <= 0xD7FF,
		r >= 0xF900 && r <= 0xFDCF, r >= 0xFDF0 && r <= 0xFFFD,
		r >= 0x10000 && r <= 0xEFFFF:
		return true
	}
	return false
}

func isNameRune(r rune) bool {
	return isNameStartRune(r) || r == 0xB7 || r >= 0x300 && r <= 0x36F || r >= 0x203F && r <= 0x2040
}

// AppendEscapedText appends s escaped for use as character data: & < > are
// escaped, and so is \r (as &#xD;) because a literal one would be turned into
// \n by the receiver's line-end normalisation (XML 1.0 §2.11). Bytes that are
// not valid UTF-8 or not XML Chars are replaced by U+FFFD so that whatever a
// caller hands us (database contents, user input) can never make our output
// not-well-formed.
func AppendEscapedText(dst []byte, s string) []byte {
	return appendEscaped(dst, s, &escText)
}

// AppendEscapedAttr appends s escaped for use inside a quoted attribute value
// (either quote style): & < > " ' are escaped, and \t \n \r as character
// references because attribute-value normalisation (XML 1.0 §3.3.3) would
// otherwise turn them into spaces. Invalid characters become U+FFFD.
func AppendEscapedAttr(dst []byte, s string) []byte {
	return appendEscaped(dst, s, &escAttr)
}

func appendEscaped(dst []byte, s string, tab *[256]bool) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if !tab[c] {
			i++
			continue
		}
		var rep string
		n := 1
		switch c {
		case '&':
			rep = "&amp;"
		case '<':
			rep = "&lt;"
		case '>':
			rep = "&gt;"
		case '"':
			rep = "&quot;"
		case '\'':
			rep = "&apos;"
		case '\t':
			rep = "&#x9;"
		case '\n':
			rep = "&#xA;"
		case '\r':
			rep = "&#xD;"
		default:
			if c < 0x80 {
				rep = "\uFFFD"
				break
			}
			r, size := utf8.DecodeRuneInString(s[i:])
			if (r != utf8.RuneError || size > 1) && isChar(r) {
				i += size
				continue
			}
			rep, n = "\uFFFD", size
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, rep...)
		i += n
		last = i
	}
	return append(dst, s[last:]...)
}
