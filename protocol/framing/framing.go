// Package framing is the RFC 7395 (XMPP over WebSocket) framing: the <open/> and <close/> elements of
// urn:ietf:params:xml:ns:xmpp-framing, and the translation between the RFC 6120 byte stream the conn actor
// writes (a stream header, top-level elements, a stream error and the closing tag) and WebSocket messages, each
// one standalone XML document. Pure: no I/O, no goroutines.
package framing

import (
	"bytes"
	"errors"
	"strings"

	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// NS is the framing namespace (RFC 7395 §3.3.2).
const NS = "urn:ietf:params:xml:ns:xmpp-framing"

// Close is the <close/> element (RFC 7395 §3.6).
const Close = "<close xmlns='" + NS + "'/>"

// Open is the server's <open/> (RFC 7395 §3.4): the stream header's attributes on an empty element.
func Open(id, from, to, lang string) string {
	b := []byte("<open xmlns='" + NS + "'")
	for _, a := range [...][2]string{{"from", from}, {"to", to}, {"id", id}} {
		if a[1] != "" {
			b = append(b, ' ')
			b = append(b, a[0]...)
			b = append(b, "='"...)
			b = xmlstream.AppendEscapedAttr(b, a[1])
			b = append(b, '\'')
		}
	}
	b = append(b, " version='1.0'"...)
	if lang != "" {
		b = append(b, " xml:lang='"...)
		b = xmlstream.AppendEscapedAttr(b, lang)
		b = append(b, '\'')
	}
	return string(append(b, "/>"...))
}

// CloseSeeOther is <close see-other-uri/> (RFC 7395 §3.6.1): the server's redirect to another WebSocket endpoint.
func CloseSeeOther(uri string) string {
	b := []byte("<close xmlns='" + NS + "' see-other-uri='")
	b = xmlstream.AppendEscapedAttr(b, uri)
	return string(append(b, "'/>"...))
}

// IsOpen and IsClose tell the framing elements.
func IsOpen(el *xmlstream.Element) bool  { return el.Name == xmlstream.Name{Space: NS, Local: "open"} }
func IsClose(el *xmlstream.Element) bool { return el.Name == xmlstream.Name{Space: NS, Local: "close"} }

// Header turns a client's <open/> into the stream header the RFC 6120 §4.7 checks (stream.CheckHeader) judge:
// the stream and content namespaces are those the framing implies; to, from, version and xml:lang are the
// element's.
func Header(el *xmlstream.Element) (*xmlstream.Header, error) {
	if !IsOpen(el) {
		return nil, errors.New("framing: not an <open/>")
	}
	n, err := el.Parse()
	if err != nil {
		return nil, err
	}
	return &xmlstream.Header{To: el.To, From: el.From, ID: el.ID, Lang: el.Lang, Version: n.Attr("version"),
		DefaultNS: stanza.NSClient, StreamNS: stream.NS, Local: "stream", Prefix: stream.Prefix}, nil
}

// AppendStandalone appends to dst seg, one top-level element as the conn writes it on a stream whose default
// namespace is jabber:client and whose 'stream' prefix the header declared, made a standalone document (RFC 7395
// §3.3.3: every message is a complete XML document): a stream:-prefixed root gets xmlns:stream, a root with no
// default namespace of its own gets xmlns='jabber:client'. Everything else is copied as it is.
func AppendStandalone(dst, seg []byte) []byte {
	nameEnd, hasNS, hasStream, ok := scanStartTag(seg)
	if !ok {
		return append(dst, seg...)
	}
	name := seg[1:nameEnd]
	var decl string
	switch {
	case bytes.HasPrefix(name, []byte("stream:")):
		if !hasStream {
			decl = " xmlns:stream='" + stream.NS + "'"
		}
	case bytes.IndexByte(name, ':') < 0 && !hasNS:
		decl = " xmlns='" + stanza.NSClient + "'"
	}
	if decl == "" {
		return append(dst, seg...)
	}
	dst = append(dst, seg[:nameEnd]...)
	dst = append(dst, decl...)
	return append(dst, seg[nameEnd:]...)
}

// scanStartTag finds the end of the root's name and whether the start tag declares a default namespace or the
// stream prefix. ok is false when seg does not start with a start tag.
func scanStartTag(seg []byte) (nameEnd int, hasNS, hasStream, ok bool) {
	if len(seg) < 2 || seg[0] != '<' {
		return 0, false, false, false
	}
	i := 1
	for i < len(seg) && !isSpace(seg[i]) && seg[i] != '/' && seg[i] != '>' {
		i++
	}
	if i == 1 || i == len(seg) {
		return 0, false, false, false
	}
	nameEnd = i
	for i < len(seg) {
		for i < len(seg) && isSpace(seg[i]) {
			i++
		}
		if i >= len(seg) || seg[i] == '>' || seg[i] == '/' {
			return nameEnd, hasNS, hasStream, true
		}
		start := i
		for i < len(seg) && seg[i] != '=' && !isSpace(seg[i]) {
			i++
		}
		attr := string(seg[start:i])
		for i < len(seg) && (isSpace(seg[i]) || seg[i] == '=') {
			i++
		}
		if i >= len(seg) || (seg[i] != '\'' && seg[i] != '"') {
			return 0, false, false, false
		}
		q := seg[i]
		end := bytes.IndexByte(seg[i+1:], q)
		if end < 0 {
			return 0, false, false, false
		}
		i += end + 2
		switch attr {
		case "xmlns":
			hasNS = true
		case "xmlns:stream":
			hasStream = true
		}
	}
	return 0, false, false, false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// streamPrefix is the context of what the conn writes outside the header.
const streamPrefix = "<stream:stream xmlns='" + stanza.NSClient + "' xmlns:stream='" + stream.NS + "'>"

// Translate turns bytes the conn writes that are not one top-level element (its stream header, or the end of
// the stream: an optional stream error and the closing tag) into WebSocket messages: the header becomes <open/>,
// a stream error a standalone element (RFC 7395 §3.5), the closing tag <close/> (§3.6). A <see-other-host/>
// error naming a ws:// or wss:// URI becomes <close see-other-uri/> instead (§3.6.1).
func Translate(seg []byte) ([]string, error) {
	s := string(seg)
	if strings.HasPrefix(s, "<?xml") || strings.HasPrefix(s, "<stream:stream") {
		dec := xmlstream.NewDecoder(strings.NewReader(s), len(s)+1)
		for {
			k, err := dec.Next()
			if err != nil {
				return nil, err
			}
			if k == xmlstream.KindStreamStart {
				h := dec.Header()
				return []string{Open(h.ID, h.From, h.To, h.Lang)}, nil
			}
		}
	}
	dec := xmlstream.NewDecoder(strings.NewReader(streamPrefix+s), len(streamPrefix)+len(s)+1)
	var out []string
	for {
		k, err := dec.Next()
		if err != nil {
			return out, err
		}
		switch k {
		case xmlstream.KindElement:
			el := dec.Element()
			if uri := seeOther(el); uri != "" {
				return append(out, CloseSeeOther(uri)), nil
			}
			out = append(out, string(AppendStandalone(nil, []byte(el.Raw))))
		case xmlstream.KindStreamEnd:
			return append(out, Close), nil
		}
	}
}

func seeOther(el *xmlstream.Element) string {
	if el.Name != (xmlstream.Name{Space: stream.NS, Local: "error"}) {
		return ""
	}
	n, err := el.Parse()
	if err != nil {
		return ""
	}
	c := n.Child(stream.NSErrors, "see-other-host")
	if c == nil {
		return ""
	}
	if uri := strings.TrimSpace(c.TextContent()); strings.HasPrefix(uri, "ws://") || strings.HasPrefix(uri, "wss://") {
		return uri
	}
	return ""
}
