// Package sasl2 is XEP-0388 (Extensible SASL Profile) on the wire, with what rides inside it: XEP-0386 Bind 2
// requests, the XEP-0198 <resume/> a client puts in <authenticate/>, and XEP-0484 FAST token requests and token
// authentications. The client's <authenticate/> is parsed here into one value; the server's answers (<challenge/>,
// <success/>, <failure/>, the stream features) are encoded here. Pure: the conn actor drives the exchange and the
// SASL mechanisms are protocol/sasl's.
package sasl2

import (
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xmppd/xmppd/protocol/sasl"
	"github.com/xmppd/xmppd/protocol/sm"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Namespaces.
const (
	NS     = "urn:xmpp:sasl:2" // XEP-0388
	NSBind = "urn:xmpp:bind:0" // XEP-0386
	NSFast = "urn:xmpp:fast:0" // XEP-0484
)

// Limits on what a client may send: the user-agent id is stored with FAST tokens, the tag becomes part of a
// resource.
const (
	MaxUserAgentID = 256
	MaxTag         = 64
	maxInline      = 16
)

// ErrMalformed: the element is not what XEP-0388 §2.2 (or the inline extensions) allow; the answer is a
// <failure/> with <malformed-request/>.
var ErrMalformed = errors.New("sasl2: malformed request")

// UserAgent is the client's <user-agent/> (XEP-0388 §2.2): id identifies one installation (a UUID), stable over
// its connections; software and device are for display.
type UserAgent struct {
	ID, Software, Device string
}

// Bind is a XEP-0386 §2.2 bind request.
type Bind struct {
	Tag string // the client's <tag/>, trimmed; "" none
	// Inline are the other children, features to enable for the new session (carbons <enable/>, CSI
	// <inactive/>), in document order, without the XEP-0198 <enable/> (SM).
	Inline []*xmlstream.Node
	// SM is the XEP-0198 <enable/> inside the bind, nil if none.
	SM *sm.Enable
}

// Fast is the XEP-0484 §4.4 <fast/> of a token authentication.
type Fast struct {
	// Count is the replay counter (§4.4); HasCount false when the client sent none.
	Count    uint32
	HasCount bool
	// Invalidate: the client logs out; the token dies with this authentication (§4.6).
	Invalidate bool
}

// Authenticate is a client's <authenticate/> (XEP-0388 §2.2) with everything inline.
type Authenticate struct {
	Mechanism string
	// Initial is the decoded <initial-response/>; HasInitial false when there was none (an empty element is a
	// present, empty response: §2.1).
	Initial    []byte
	HasInitial bool
	UserAgent  UserAgent
	Bind       *Bind
	// Resume is an inline XEP-0198 <resume/> (processed before the bind, XEP-0386 §2.2 note).
	Resume *sm.Resume
	// RequestToken is the mechanism of a XEP-0484 <request-token/>, "" if none.
	RequestToken string
	// Fast is set when the client authenticates with a token.
	Fast *Fast
}

// ParseAuthenticate reads <authenticate xmlns='urn:xmpp:sasl:2'/>. A base64 error in the initial response is a
// *sasl.Failure with incorrect-encoding; anything else wrong is ErrMalformed.
func ParseAuthenticate(n *xmlstream.Node) (Authenticate, error) {
	var a Authenticate
	if n == nil || n.Name.Space != NS || n.Name.Local != "authenticate" {
		return a, ErrMalformed
	}
	a.Mechanism = n.Attr("mechanism")
	if a.Mechanism == "" || len(a.Mechanism) > 20 { // RFC 4422 §3.1: at most 20 characters
		return a, ErrMalformed
	}
	seen := map[xmlstream.Name]bool{}
	for _, c := range n.Elements() {
		if seen[c.Name] {
			return a, ErrMalformed // each of these at most once
		}
		seen[c.Name] = true
		switch c.Name {
		case xmlstream.Name{Space: NS, Local: "initial-response"}:
			b, err := Decode(c)
			if err != nil {
				return a, err
			}
			a.Initial, a.HasInitial = b, true
		case xmlstream.Name{Space: NS, Local: "user-agent"}:
			ua, err := parseUserAgent(c)
			if err != nil {
				return a, err
			}
			a.UserAgent = ua
		case xmlstream.Name{Space: NSBind, Local: "bind"}:
			b, err := parseBind(c)
			if err != nil {
				return a, err
			}
			a.Bind = b
		case xmlstream.Name{Space: sm.NS, Local: "resume"}:
			r, err := sm.ParseResume(c)
			if err != nil {
				return a, ErrMalformed
			}
			a.Resume = &r
		case xmlstream.Name{Space: NSFast, Local: "request-token"}:
			if a.RequestToken = c.Attr("mechanism"); a.RequestToken == "" {
				return a, ErrMalformed
			}
		case xmlstream.Name{Space: NSFast, Local: "fast"}:
			f, err := parseFast(c)
			if err != nil {
				return a, err
			}
			a.Fast = f
		}
		// Anything else (<supported/>, an extension we do not know) is informational or not ours: ignored.
	}
	return a, nil
}

func parseUserAgent(n *xmlstream.Node) (UserAgent, error) {
	ua := UserAgent{ID: n.Attr("id")}
	if len(ua.ID) > MaxUserAgentID {
		return ua, ErrMalformed
	}
	if c := n.Child(NS, "software"); c != nil {
		ua.Software = strings.TrimSpace(c.TextContent())
	}
	if c := n.Child(NS, "device"); c != nil {
		ua.Device = strings.TrimSpace(c.TextContent())
	}
	return ua, nil
}

func parseBind(n *xmlstream.Node) (*Bind, error) {
	b := &Bind{}
	for _, c := range n.Elements() {
		switch {
		case c.Name == xmlstream.Name{Space: NSBind, Local: "tag"}:
			b.Tag = strings.TrimSpace(c.TextContent())
			if utf8.RuneCountInString(b.Tag) > MaxTag {
				return nil, ErrMalformed
			}
		case c.Name == xmlstream.Name{Space: sm.NS, Local: "enable"}:
			e, err := sm.ParseEnable(c)
			if err != nil || b.SM != nil {
				return nil, ErrMalformed
			}
			b.SM = &e
		case c.Name.Space == NSBind:
			// Unknown Bind 2 children: ignored.
		default:
			if len(b.Inline) >= maxInline {
				return nil, ErrMalformed
			}
			b.Inline = append(b.Inline, c)
		}
	}
	return b, nil
}

func parseFast(n *xmlstream.Node) (*Fast, error) {
	f := &Fast{}
	switch strings.TrimSpace(n.Attr("invalidate")) {
	case "true", "1":
		f.Invalidate = true
	case "", "false", "0":
	default:
		return nil, ErrMalformed
	}
	if c := strings.TrimSpace(n.Attr("count")); c != "" {
		v, ok := parseUint32(c)
		if !ok {
			return nil, ErrMalformed
		}
		f.Count, f.HasCount = v, true
	}
	return f, nil
}

func parseUint32(s string) (uint32, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		v = v*10 + uint64(s[i]-'0')
	}
	return uint32(v), v <= 1<<32-1
}

// Decode returns the base64 content of a <initial-response/> or <response/> (XEP-0388 §2.1: an empty element is
// an empty string). Whitespace around it, which the XEP's own examples have, is ignored.
func Decode(n *xmlstream.Node) ([]byte, error) {
	s := strings.TrimSpace(n.TextContent())
	if s == "" {
		return []byte{}, nil
	}
	if len(s) > 16384 {
		return nil, ErrMalformed
	}
	return sasl.DecodeBase64([]byte(s))
}

// ParseResponse reads <response xmlns='urn:xmpp:sasl:2'/>.
func ParseResponse(n *xmlstream.Node) ([]byte, error) {
	if n == nil || n.Name.Space != NS || n.Name.Local != "response" {
		return nil, ErrMalformed
	}
	return Decode(n)
}

// ---- what the server sends ----

// Challenge is <challenge/> with data (§2.4).
func Challenge(data []byte) string {
	return "<challenge xmlns='" + NS + "'>" + b64(data) + "</challenge>"
}

func b64(data []byte) string {
	if len(data) == 0 {
		return ""
	}
	return string(sasl.EncodeBase64(data))
}

// Success is <success/> (§2.5.1): additional data when the mechanism has some (nil: none), the authorization
// identifier (the full JID when a resource was bound inline, the bare JID otherwise), then extra: the inline
// results (<bound/>, <resumed/> or <failed/>, <token/>), already XML.
func Success(additional []byte, authzid, extra string) string {
	b := []byte("<success xmlns='" + NS + "'>")
	if additional != nil {
		b = append(b, "<additional-data>"+b64(additional)+"</additional-data>"...)
	}
	b = append(b, "<authorization-identifier>"...)
	b = xmlstream.AppendEscapedText(b, authzid)
	b = append(b, "</authorization-identifier>"...)
	b = append(b, extra...)
	return string(append(b, "</success>"...))
}

// Failure is <failure/> (§2.5.2) with one RFC 6120 §6.5 condition (in the SASL namespace) and an optional text.
func Failure(condition, text string) string {
	b := []byte("<failure xmlns='" + NS + "'><" + condition + " xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
	if text != "" {
		b = append(b, "<text xml:lang='en'>"...)
		b = xmlstream.AppendEscapedText(b, text)
		b = append(b, "</text>"...)
	}
	return string(append(b, "</failure>"...))
}

// Feature is the <authentication/> stream feature (§2.1): the mechanisms and the inline features (already XML:
// Bind 2, SM, FAST).
func Feature(mechs []string, inline string) string {
	var b strings.Builder
	b.WriteString("<authentication xmlns='" + NS + "'>")
	for _, m := range mechs {
		b.WriteString("<mechanism>" + m + "</mechanism>") // RFC 4422 §3.1: A-Z 0-9 - _
	}
	if inline != "" {
		b.WriteString("<inline>" + inline + "</inline>")
	}
	b.WriteString("</authentication>")
	return b.String()
}

// BindFeature is XEP-0386 §2.1's inline <bind/> with the features a client may enable inline.
func BindFeature(vars []string) string {
	var b strings.Builder
	b.WriteString("<bind xmlns='" + NSBind + "'>")
	if len(vars) > 0 {
		b.WriteString("<inline>")
		for _, v := range vars {
			b.WriteString("<feature var='")
			b.Write(xmlstream.AppendEscapedAttr(nil, v))
			b.WriteString("'/>")
		}
		b.WriteString("</inline>")
	}
	b.WriteString("</bind>")
	return b.String()
}

// Bound is XEP-0386's <bound/> with the answers of the inline features (the XEP-0198 <enabled/>).
func Bound(inner string) string {
	if inner == "" {
		return "<bound xmlns='" + NSBind + "'/>"
	}
	return "<bound xmlns='" + NSBind + "'>" + inner + "</bound>"
}

// FastFeature is XEP-0484 §4.1's inline <fast/> with its mechanisms. No tls-0rtt: xmppd takes no TLS early data.
func FastFeature(mechs []string) string {
	var b strings.Builder
	b.WriteString("<fast xmlns='" + NSFast + "'>")
	for _, m := range mechs {
		b.WriteString("<mechanism>" + m + "</mechanism>")
	}
	b.WriteString("</fast>")
	return b.String()
}

// Token is XEP-0484 §4.3's <token/>; expiry in the XEP-0082 DateTime profile.
func Token(token string, expiry time.Time) string {
	b := []byte("<token xmlns='" + NSFast + "' expiry='" + expiry.UTC().Format("2006-01-02T15:04:05Z") + "' token='")
	b = xmlstream.AppendEscapedAttr(b, token)
	return string(append(b, "'/>"...))
}

// Resource is the XEP-0386 §2.3 resource: the client's tag as a prefix, '/', the server's part ("[client
// tag]/[server generated identifier]"); the server's part alone when there is no tag.
func Resource(tag, generated string) string {
	if tag == "" {
		return generated
	}
	return tag + "/" + generated
}
