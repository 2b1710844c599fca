// Package bosh reads and writes XEP-0124 <body/> wrappers with the XEP-0206 XMPP attributes. Pure: it works on
// []byte and strings; the session logic (rid windows, held requests) is the conn actor's (actors/conn_bosh.go).
package bosh

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/xmppd/xmppd/protocol/framing"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Namespaces (XEP-0124 §4, XEP-0206 §3).
const (
	NS      = "http://jabber.org/protocol/httpbind"
	NSXBOSH = "urn:xmpp:xbosh"
)

// Body is one parsed request.
type Body struct {
	RID                          uint64
	SID, To, Lang, Ver, Version  string // Version is xmpp:version
	Type                         string // "" or "terminate"
	Wait, Hold, Inactivity, Reqs int    // -1 when absent
	Restart                      bool   // xmpp:restart='true' (XEP-0206 §5)
	Elements                     []*xmlstream.Element
}

// Errors that the caller answers with XEP-0124 §17 conditions.
var (
	ErrBadRequest = errors.New("bosh: bad-request")
)

// Parse reads a request body of at most max bytes per element. Payload elements must be in a namespace of
// their own (XEP-0206 §6: stanzas are qualified by jabber:client); the wrapper's attributes are read from its
// start tag.
func Parse(b []byte, max int) (*Body, error) {
	tagEnd := startTagEnd(b)
	if tagEnd < 0 {
		return nil, ErrBadRequest
	}
	tag := b[:tagEnd+1]
	if !bytes.HasSuffix(tag, []byte("/>")) {
		tag = append(append(tag[:len(tag)-1:len(tag)-1], '/'), '>')
	}
	n, err := xmlstream.ParseNode(string(tag), "")
	if err != nil || n.Name != (xmlstream.Name{Space: NS, Local: "body"}) {
		return nil, ErrBadRequest
	}
	body := &Body{SID: n.Attr("sid"), To: n.Attr("to"), Ver: n.Attr("ver"), Type: n.Attr("type"),
		Lang: n.AttrNS("http://www.w3.org/XML/1998/namespace", "lang"), Version: n.AttrNS(NSXBOSH, "version"),
		Restart: n.AttrNS(NSXBOSH, "restart") == "true" || n.AttrNS(NSXBOSH, "restart") == "1"}
	body.RID, err = strconv.ParseUint(n.Attr("rid"), 10, 53) // §7.1: at most 2^53-1
	if err != nil {
		return nil, ErrBadRequest
	}
	for _, a := range []struct {
		name string
		p    *int
	}{{"wait", &body.Wait}, {"hold", &body.Hold}, {"inactivity", &body.Inactivity}, {"requests", &body.Reqs}} {
		*a.p = -1
		if v := n.Attr(a.name); v != "" {
			if *a.p, err = strconv.Atoi(v); err != nil || *a.p < 0 {
				return nil, ErrBadRequest
			}
		}
	}
	dec := xmlstream.NewDecoder(bytes.NewReader(b), max)
	for {
		k, err := dec.Next()
		if err != nil {
			var xe *xmlstream.Error
			if errors.As(err, &xe) {
				return nil, err
			}
			return nil, ErrBadRequest // the input ended before </body>
		}
		switch k {
		case xmlstream.KindStreamEnd:
			return body, nil
		case xmlstream.KindElement:
			el := dec.Element()
			if el.Name.Space == NS || el.Name.Space == "" {
				return nil, ErrBadRequest
			}
			body.Elements = append(body.Elements, el)
		}
	}
}

// startTagEnd is the index of the '>' that ends the first start tag, -1 if none.
func startTagEnd(b []byte) int {
	var q byte
	for i, c := range b {
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '\'' || c == '"':
			q = c
		case c == '>':
			return i
		}
	}
	return -1
}

// Attr is one attribute of a response wrapper.
type Attr struct{ Name, Value string }

// Response is a <body/> with attrs (already-qualified names such as "xmpp:version") around payloads, each one
// top-level element as the conn writes it (made standalone: jabber:client or xmlns:stream declared on it).
func Response(attrs []Attr, payloads [][]byte) []byte {
	b := []byte("<body xmlns='" + NS + "'")
	for _, a := range attrs {
		b = append(b, ' ')
		b = append(b, a.Name...)
		b = append(b, "='"...)
		b = xmlstream.AppendEscapedAttr(b, a.Value)
		b = append(b, '\'')
	}
	if len(payloads) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	for _, p := range payloads {
		b = framing.AppendStandalone(b, p)
	}
	return append(b, "</body>"...)
}

// Terminate is a terminating response (XEP-0124 §17) with an optional condition and payloads.
func Terminate(condition string, payloads [][]byte) []byte {
	attrs := []Attr{{"type", "terminate"}}
	if condition != "" {
		attrs = append(attrs, Attr{"condition", condition})
	}
	return Response(attrs, payloads)
}

// StreamEnd reads what the conn writes at the end of its stream (an optional stream error, then the closing
// tag) into XEP-0206 §7 terms: the stream error element, if any, for a remote-stream-error termination.
func StreamEnd(seg []byte) (streamError []byte) {
	msgs, err := framing.Translate(seg)
	if err != nil {
		return nil
	}
	for _, m := range msgs {
		if len(m) > 13 && m[:13] == "<stream:error" {
			return []byte(m)
		}
	}
	return nil
}

// StreamID is the id of the stream header the conn wrote (XEP-0206 §4: the session creation response's authid).
func StreamID(header []byte) string {
	dec := xmlstream.NewDecoder(bytes.NewReader(header), len(header)+1)
	for {
		k, err := dec.Next()
		if err != nil {
			return ""
		}
		if k == xmlstream.KindStreamStart {
			return dec.Header().ID
		}
	}
}

// IsHeader tells the stream header among the non-element bytes the conn writes.
func IsHeader(seg []byte) bool {
	return bytes.HasPrefix(seg, []byte("<?xml")) || bytes.HasPrefix(seg, []byte("<"+stream.Prefix+":stream"))
}
