package xmlstream

import "bytes"

// The framer finds where a stream-level token (an element, a stream header
// tag, an XML declaration, the stream end tag) ends, byte by byte and
// resumably, so a token trickling in over many reads is scanned once instead
// of being re-lexed from its start after every read. It is deliberately lax:
// on any input the strict validator accepts it agrees on the structure, and
// anything odd makes it stop (feStop) and hand over to the validator, which
// then names the error. That keeps every verdict a function of the bytes
// alone, never of how reads happened to split them.

type fstate uint8

const (
	fsStart    fstate = iota // at the token's '<'
	fsRootLT                 // after the token's '<'
	fsRootName               // inside the root start tag's name
	fsLT                     // after an inner '<'
	fsTag                    // inside a start tag
	fsQuote                  // inside a quoted attribute value
	fsEnd                    // inside an end tag
	fsText                   // character data
	fsBang                   // after an inner "<!"
	fsCDATA                  // inside a CDATA section
	fsPI                     // inside the token-level "<?...?>"
)

type fevent uint8

const (
	feMore    fevent = iota // all bytes consumed, token incomplete
	feRootTag               // the root start tag ended at pos (not self-closing)
	feDone                  // the token is b[:pos]
	feStop                  // something the framer does not handle; validate b
)

// Token kinds as told by the framer.
const (
	tkElem uint8 = iota
	tkEnd
	tkPI
)

type framer struct {
	active  bool
	st      fstate
	kind    uint8
	quote   byte
	pos     int
	depth   int
	sub     int
	nameEnd int
	diagAt  int // (decoder) validate the token again once it is this long
}

func (f *framer) reset() { *f = framer{active: true} }

func (f *framer) run(b []byte) fevent {
	for f.pos < len(b) {
		c := b[f.pos]
		switch f.st {
		case fsStart:
			f.pos++
			f.st = fsRootLT
		case fsRootLT:
			switch c {
			case '/':
				f.kind, f.st = tkEnd, fsEnd
				f.depth = 0
				f.pos++
			case '?':
				f.kind, f.st = tkPI, fsPI
				f.pos++
			case '!':
				return feStop
			default:
				f.kind, f.st = tkElem, fsRootName
			}
		case fsRootName:
			for f.pos < len(b) && !isWS(b[f.pos]) && b[f.pos] != '/' && b[f.pos] != '>' && b[f.pos] != '<' {
				f.pos++
			}
			if f.pos < len(b) {
				f.nameEnd = f.pos
				f.st = fsTag
			}
		case fsLT:
			switch c {
			case '/':
				f.st = fsEnd
				f.pos++
			case '!':
				f.st, f.sub = fsBang, 0
				f.pos++
			case '?':
				return feStop
			default:
				f.st = fsTag
			}
		case fsTag:
			switch c {
			case '>':
				self := b[f.pos-1] == '/'
				f.pos++
				f.st = fsText
				if self {
					if f.depth == 0 {
						return feDone
					}
				} else {
					f.depth++
					if f.depth == 1 {
						return feRootTag
					}
				}
			case '\'', '"':
				f.quote, f.st = c, fsQuote
				f.pos++
			case '<':
				return feStop
			default:
				f.pos++
			}
		case fsQuote:
			i := bytes.IndexByte(b[f.pos:], f.quote)
			if i < 0 {
				f.pos = len(b)
				break
			}
			f.pos += i + 1
			f.st = fsTag
		case fsEnd:
			i := bytes.IndexByte(b[f.pos:], '>')
			if i < 0 {
				f.pos = len(b)
				break
			}
			f.pos += i + 1
			f.depth--
			if f.depth <= 0 {
				return feDone
			}
			f.st = fsText
		case fsText:
			i := bytes.IndexByte(b[f.pos:], '<')
			if i < 0 {
				f.pos = len(b)
				break
			}
			f.pos += i + 1
			f.st = fsLT
		case fsBang:
			const open = "[CDATA["
			if c != open[f.sub] {
				return feStop
			}
			f.pos++
			f.sub++
			if f.sub == len(open) {
				f.st, f.sub = fsCDATA, 0
			}
		case fsCDATA:
			f.pos++
			switch {
			case c == ']':
				f.sub++
			case c == '>' && f.sub >= 2:
				f.st, f.sub = fsText, 0
			default:
				f.sub = 0
			}
		case fsPI:
			f.pos++
			switch {
			case c == '?':
				f.sub = 1
			case c == '>' && f.sub == 1:
				return feDone
			default:
				f.sub = 0
			}
		}
	}
	return feMore
}
