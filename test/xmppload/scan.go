package xmppload

import (
	"bytes"
	"errors"
	"io"
)

// scanner splits an XMPP stream into its top-level parts: the stream header,
// each complete first-level element (stanza or nonza) as raw bytes, and the
// stream close. It does not build a tree or decode entities: the hot path
// (messages) only needs a few byte searches, and negotiation elements are
// small enough to hand to encoding/xml. One scanner per connection, one
// buffer that starts small (idle connections are the memory benchmark's
// subject, on the client side too) and grows only for large elements.
type scanner struct {
	r          io.Reader
	buf        []byte
	start, end int
	inStream   bool
	maxElement int
	// beforeFill, when set, runs before each blocking read: the reader
	// flushes the writes produced by the batch it just processed.
	beforeFill func()
}

type scanEvent uint8

const (
	evStreamOpen scanEvent = iota + 1
	evElement
	evStreamClose
)

var (
	errElementTooLarge = errors.New("element larger than the scanner limit")
	errXMLSyntax       = errors.New("unexpected XML at stream level")
)

const scanInitial = 4096

func newScanner(r io.Reader) *scanner {
	return &scanner{r: r, maxElement: 1 << 20}
}

// reset restarts the stream (after STARTTLS or SASL success, RFC 6120 §5.4.3.3
// and §6.4.6) on a possibly new reader; unread bytes are discarded because the
// server must not send anything before our new header.
func (s *scanner) reset(r io.Reader) {
	s.r = r
	s.start, s.end = 0, 0
	s.inStream = false
}

// next returns the next event; the element bytes are valid until the next call.
func (s *scanner) next() (scanEvent, []byte, error) {
	for {
		ev, a, b, ok, err := s.scan()
		if err != nil {
			return 0, nil, err
		}
		if ok {
			el := s.buf[a:b]
			s.start = b
			return ev, el, nil
		}
		if s.beforeFill != nil {
			s.beforeFill()
		}
		if err := s.fill(); err != nil {
			return 0, nil, err
		}
	}
}

// fill reads more bytes, compacting or growing the buffer first when full.
func (s *scanner) fill() error {
	if s.buf == nil {
		s.buf = make([]byte, scanInitial)
	}
	if s.start == s.end {
		s.start, s.end = 0, 0
	}
	if s.end == len(s.buf) {
		if s.start > 0 {
			n := copy(s.buf, s.buf[s.start:s.end])
			s.start, s.end = 0, n
		} else {
			if len(s.buf) >= s.maxElement {
				return errElementTooLarge
			}
			nb := make([]byte, 2*len(s.buf))
			copy(nb, s.buf[:s.end])
			s.buf = nb
		}
	}
	n, err := s.r.Read(s.buf[s.end:])
	s.end += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// scan looks for one complete event in buf[start:end].
func (s *scanner) scan() (ev scanEvent, a, b int, ok bool, err error) {
	buf := s.buf[:s.end]
	p := s.start
	for {
		i := bytes.IndexByte(buf[p:], '<')
		if i < 0 {
			// Text between top-level elements is whitespace keepalive
			// (RFC 6120 §4.6.1); drop it.
			s.start = s.end
			return 0, 0, 0, false, nil
		}
		p += i
		s.start = p
		if p+1 >= len(buf) {
			return 0, 0, 0, false, nil
		}
		switch buf[p+1] {
		case '?': // XML declaration
			j := bytes.Index(buf[p:], []byte("?>"))
			if j < 0 {
				return 0, 0, 0, false, nil
			}
			p += j + 2
			continue
		case '/':
			j := bytes.IndexByte(buf[p:], '>')
			if j < 0 {
				return 0, 0, 0, false, nil
			}
			s.inStream = false
			return evStreamClose, p, p + j + 1, true, nil
		case '!':
			return 0, 0, 0, false, errXMLSyntax
		}
		if !s.inStream {
			j, _ := tagEnd(buf[p:])
			if j < 0 {
				return 0, 0, 0, false, nil
			}
			s.inStream = true
			return evStreamOpen, p, p + j + 1, true, nil
		}
		n := elementEnd(buf[p:])
		if n < 0 {
			return 0, 0, 0, false, nil
		}
		return evElement, p, p + n, true, nil
	}
}

// tagEnd returns the index of the '>' closing the tag that starts at b[0]
// (quotes respected) and whether the tag is self-closing; -1 if incomplete.
func tagEnd(b []byte) (int, bool) {
	var quote byte
	for i := 1; i < len(b); i++ {
		c := b[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return i, b[i-1] == '/'
		}
	}
	return -1, false
}

// elementEnd returns the length of the complete element starting at b[0], or
// -1 when more bytes are needed.
func elementEnd(b []byte) int {
	depth := 0
	p := 0
	for {
		i := bytes.IndexByte(b[p:], '<')
		if i < 0 {
			return -1
		}
		p += i
		if p+1 >= len(b) {
			return -1
		}
		switch b[p+1] {
		case '/':
			j := bytes.IndexByte(b[p:], '>')
			if j < 0 {
				return -1
			}
			p += j + 1
			depth--
			if depth == 0 {
				return p
			}
			continue
		case '!':
			end := []byte("-->")
			if bytes.HasPrefix(b[p:], []byte("<![CDATA[")) {
				end = []byte("]]>")
			}
			j := bytes.Index(b[p:], end)
			if j < 0 {
				return -1
			}
			p += j + len(end)
			continue
		case '?':
			j := bytes.Index(b[p:], []byte("?>"))
			if j < 0 {
				return -1
			}
			p += j + 2
			continue
		}
		j, selfClosing := tagEnd(b[p:])
		if j < 0 {
			return -1
		}
		p += j + 1
		if !selfClosing {
			depth++
		} else if depth == 0 {
			return p
		}
	}
}

// elemName returns the qualified name of the element or tag starting at el[0].
func elemName(el []byte) []byte {
	for i := 1; i < len(el); i++ {
		switch el[i] {
		case ' ', '\t', '\r', '\n', '/', '>':
			return el[1:i]
		}
	}
	return el[1:]
}

// attr returns the raw (still escaped) value of attribute name in the start
// tag at el[0], or nil.
func attr(el []byte, name string) []byte {
	end, _ := tagEnd(el)
	if end < 0 {
		end = len(el)
	}
	t := el[:end]
	i := len(elemName(t)) + 1
	for i < len(t) {
		for i < len(t) && (t[i] == ' ' || t[i] == '\t' || t[i] == '\r' || t[i] == '\n') {
			i++
		}
		ns := i
		for i < len(t) && t[i] != '=' && t[i] != ' ' && t[i] != '/' {
			i++
		}
		an := t[ns:i]
		for i < len(t) && (t[i] == ' ' || t[i] == '=') {
			i++
		}
		if i >= len(t) || (t[i] != '"' && t[i] != '\'') {
			return nil
		}
		q := t[i]
		vs := i + 1
		ve := bytes.IndexByte(t[vs:], q)
		if ve < 0 {
			return nil
		}
		if string(an) == name {
			return t[vs : vs+ve]
		}
		i = vs + ve + 1
	}
	return nil
}
