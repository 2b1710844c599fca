// Package sm is XEP-0198 stream management on the wire: the elements a client sends (<enable/>, <resume/>, <r/>,
// <a/>) parsed, the ones the server sends encoded, and the arithmetic of the h counters: h is an xs:unsignedInt
// that wraps to zero after 2^32-1 (§4), which is what uint32 arithmetic does, so every comparison here is a
// difference modulo 2^32. Pure: the session actor that owns a stream's counters and queue uses it.
package sm

import (
	"errors"
	"strconv"
	"strings"

	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// NS is the XEP-0198 namespace (version 3).
const NS = "urn:xmpp:sm:3"

// Feature is the stream feature offered after authentication (§3).
const Feature = "<sm xmlns='" + NS + "'/>"

// Request is <r/> (§4).
const Request = "<r xmlns='" + NS + "'/>"

// ErrBadElement: the element is not the one asked for, or its attributes are not what §3–§5 allow.
var ErrBadElement = errors.New("sm: malformed stream management element")

// Enable is a client's <enable/> (§3).
type Enable struct {
	// Resume: the client asks for a resumable session.
	Resume bool
	// Max is the client's preferred resumption time in seconds (0: none given).
	Max int
}

// ParseEnable reads <enable/>.
func ParseEnable(n *xmlstream.Node) (Enable, error) {
	if !is(n, "enable") {
		return Enable{}, ErrBadElement
	}
	var e Enable
	switch strings.TrimSpace(n.Attr("resume")) {
	case "true", "1":
		e.Resume = true
	case "", "false", "0":
	default:
		return Enable{}, ErrBadElement
	}
	if m := n.Attr("max"); m != "" {
		v, err := strconv.ParseUint(strings.TrimSpace(m), 10, 31)
		if err != nil {
			return Enable{}, ErrBadElement
		}
		e.Max = int(v)
	}
	return e, nil
}

// Resume is a client's <resume/> (§5).
type Resume struct {
	PrevID string
	H      uint32
}

// ParseResume reads <resume/>: previd and h are required.
func ParseResume(n *xmlstream.Node) (Resume, error) {
	if !is(n, "resume") || n.Attr("previd") == "" {
		return Resume{}, ErrBadElement
	}
	h, err := parseH(n)
	if err != nil {
		return Resume{}, err
	}
	return Resume{PrevID: n.Attr("previd"), H: h}, nil
}

// ParseAck reads <a h/> (§4).
func ParseAck(n *xmlstream.Node) (uint32, error) {
	if !is(n, "a") {
		return 0, ErrBadElement
	}
	return parseH(n)
}

// IsRequest reports whether n is <r/>.
func IsRequest(n *xmlstream.Node) bool { return is(n, "r") }

func is(n *xmlstream.Node, local string) bool {
	return n != nil && n.Name.Space == NS && n.Name.Local == local
}

// parseH reads the h attribute, an xs:unsignedInt (§4).
func parseH(n *xmlstream.Node) (uint32, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(n.Attr("h")), 10, 32)
	if err != nil {
		return 0, ErrBadElement
	}
	return uint32(v), nil
}

// Newly reports how many stanzas an acknowledgement h confirms beyond acked, when sent have been sent (all three
// counted modulo 2^32): ok false when h claims more than was ever sent (§4: <handled-count-too-high/>).
func Newly(acked, h, sent uint32) (n uint32, ok bool) {
	n = h - acked
	return n, n <= sent-acked
}

// Enabled answers <enable/> (§3); id and max only for a resumable session.
func Enabled(id string, resume bool, max int) string {
	b := []byte("<enabled xmlns='" + NS + "'")
	if resume {
		b = append(b, " id='"...)
		b = xmlstream.AppendEscapedAttr(b, id)
		b = append(b, "' resume='true'"...)
		if max > 0 {
			b = append(b, " max='"...)
			b = strconv.AppendInt(b, int64(max), 10)
			b = append(b, '\'')
		}
	}
	return string(append(b, "/>"...))
}

// Resumed answers a successful <resume/> with the server's h (§5).
func Resumed(previd string, h uint32) string {
	b := []byte("<resumed xmlns='" + NS + "' previd='")
	b = xmlstream.AppendEscapedAttr(b, previd)
	b = append(b, "' h='"...)
	b = strconv.AppendUint(b, uint64(h), 10)
	return string(append(b, "'/>"...))
}

// Failed is <failed/> with a stanza error condition (§3 unexpected-request, §5 item-not-found); withH adds the
// server's h, which lets a client whose resumption failed know what of its last stanzas arrived (§5).
func Failed(c stanza.Condition, h uint32, withH bool) string {
	b := []byte("<failed xmlns='" + NS + "'")
	if withH {
		b = append(b, " h='"...)
		b = strconv.AppendUint(b, uint64(h), 10)
		b = append(b, '\'')
	}
	b = append(b, "><"...)
	b = append(b, c...)
	return string(append(b, " xmlns='"+stanza.NSStanzas+"'/></failed>"...))
}

// Ack is <a h/> (§4).
func Ack(h uint32) string {
	return "<a xmlns='" + NS + "' h='" + strconv.FormatUint(uint64(h), 10) + "'/>"
}

// TooHigh is the application condition of the undefined-condition stream error a client gets for acknowledging
// more stanzas than it was sent (§4).
func TooHigh(h, sent uint32) string {
	return "<handled-count-too-high xmlns='" + NS + "' h='" + strconv.FormatUint(uint64(h), 10) +
		"' send-count='" + strconv.FormatUint(uint64(sent), 10) + "'/>"
}
