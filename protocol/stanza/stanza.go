// Package stanza holds the XMPP namespaces, stanza errors (RFC 6120 §8.3) and stanza encoders as pure values and
// functions. It knows nothing about connections or actors. Stream-level values (the stream namespace, stream error
// conditions and their encoder, stream headers) are in package stream.
package stanza

import (
	"strings"

	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Namespaces used by the core server.
const (
	NSClient   = stream.NSClient
	NSServer   = "jabber:server"
	NSStanzas  = "urn:ietf:params:xml:ns:xmpp-stanzas"
	NSTLS      = "urn:ietf:params:xml:ns:xmpp-tls"
	NSSASL     = "urn:ietf:params:xml:ns:xmpp-sasl"
	NSBind     = "urn:ietf:params:xml:ns:xmpp-bind"
	NSSession  = "urn:ietf:params:xml:ns:xmpp-session"
	NSRoster   = "jabber:iq:roster"
	NSRegister = "jabber:iq:register"
	NSRegFeat  = "http://jabber.org/features/iq-register"
	NSPing     = "urn:xmpp:ping"
	NSDelay    = "urn:xmpp:delay"
	NSPreApp   = "urn:xmpp:features:pre-approval"
	NSRosterV  = "urn:xmpp:features:rosterver"
	NSDiscoInf = "http://jabber.org/protocol/disco#info"
	NSDiscoIt  = "http://jabber.org/protocol/disco#items"
	NSVersion  = "jabber:iq:version"
	NSXData    = "jabber:x:data"
)

// Stanza error types (RFC 6120 §8.3.2).
const (
	Auth     = "auth"
	Cancel   = "cancel"
	Continue = "continue"
	Modify   = "modify"
	Wait     = "wait"
)

// Condition is a stanza error condition (RFC 6120 §8.3.3): the local name of the condition element of an
// <error/>.
type Condition string

// The stanza error conditions of RFC 6120 §8.3.3, with their section.
const (
	BadRequest            Condition = "bad-request"             // §8.3.3.1
	FeatureNotImplemented Condition = "feature-not-implemented" // §8.3.3.3
	Forbidden             Condition = "forbidden"               // §8.3.3.4
	Gone                  Condition = "gone"                    // §8.3.3.5
	ItemNotFound          Condition = "item-not-found"          // §8.3.3.7
	JIDMalformed          Condition = "jid-malformed"           // §8.3.3.8
	NotAcceptable         Condition = "not-acceptable"          // §8.3.3.9
	NotAllowed            Condition = "not-allowed"             // §8.3.3.10
	RecipientUnavailable  Condition = "recipient-unavailable"   // §8.3.3.13
	Redirect              Condition = "redirect"                // §8.3.3.14
	RegistrationRequired  Condition = "registration-required"   // §8.3.3.15
	RemoteServerNotFound  Condition = "remote-server-not-found" // §8.3.3.16
	RemoteServerTimeout   Condition = "remote-server-timeout"   // §8.3.3.17
	ServiceUnavailable    Condition = "service-unavailable"     // §8.3.3.19
	SubscriptionRequired  Condition = "subscription-required"   // §8.3.3.20
	UndefinedCondition    Condition = "undefined-condition"     // §8.3.3.21
	UnexpectedRequest     Condition = "unexpected-request"      // §8.3.3.22

	// PaymentRequired is the payment-required condition of RFC 3920 §9.3.3, which RFC 6120 dropped.
	PaymentRequired Condition = "payment-required"
)

// Stanza error conditions whose names are stream error conditions too (RFC 6120 §4.9.3): as stream errors
// they are package stream's (stream.Conflict, ...), a type of their own.
const (
	Conflict            Condition = "conflict"              // §8.3.3.2
	InternalServerError Condition = "internal-server-error" // §8.3.3.6
	NotAuthorized       Condition = "not-authorized"        // §8.3.3.11
	PolicyViolation     Condition = "policy-violation"      // §8.3.3.12
	ResourceConstraint  Condition = "resource-constraint"   // §8.3.3.18
)

// defaultType is the error type RFC 6120 §8.3.3 gives as usual for each condition.
var defaultType = map[Condition]string{
	BadRequest:            Modify,
	Conflict:              Cancel,
	FeatureNotImplemented: Cancel,
	Forbidden:             Auth,
	Gone:                  Cancel,
	InternalServerError:   Cancel,
	ItemNotFound:          Cancel,
	JIDMalformed:          Modify,
	NotAcceptable:         Modify,
	NotAllowed:            Cancel,
	NotAuthorized:         Auth,
	PolicyViolation:       Modify,
	RecipientUnavailable:  Wait,
	Redirect:              Modify,
	RegistrationRequired:  Auth,
	RemoteServerNotFound:  Cancel,
	RemoteServerTimeout:   Wait,
	ResourceConstraint:    Wait,
	ServiceUnavailable:    Cancel,
	SubscriptionRequired:  Auth,
	UndefinedCondition:    Cancel,
	UnexpectedRequest:     Wait,
}

// Defined reports whether c is one of the conditions RFC 6120 §8.3.3 defines.
func (c Condition) Defined() bool {
	_, ok := defaultType[c]
	return ok
}

// Error is a stanza error (RFC 6120 §8.3). Extra is an optional application-specific condition element, already
// serialised with its own xmlns (e.g. XEP-0191's <blocked/>).
type Error struct {
	Type      string
	Condition Condition
	Text      string
	By        string
	Extra     string
}

// NewError returns the error for condition with its usual type (RFC 6120 §8.3.3), cancel for a condition RFC 6120
// does not define.
func NewError(condition Condition) Error {
	t := defaultType[condition]
	if t == "" {
		t = Cancel
	}
	return Error{Type: t, Condition: condition}
}

// WithText returns e with a human-readable text.
func (e Error) WithText(text string) Error { e.Text = text; return e }

// AppendXML appends the <error/> child.
func (e Error) AppendXML(b []byte) []byte {
	b = append(b, "<error type='"...)
	b = append(b, e.Type...)
	b = append(b, '\'')
	if e.By != "" {
		b = append(b, " by='"...)
		b = xmlstream.AppendEscapedAttr(b, e.By)
		b = append(b, '\'')
	}
	b = append(b, "><"...)
	b = append(b, e.Condition...)
	b = append(b, " xmlns='"+NSStanzas+"'/>"...)
	if e.Text != "" {
		b = append(b, "<text xmlns='"+NSStanzas+"' xml:lang='en'>"...)
		b = xmlstream.AppendEscapedText(b, e.Text)
		b = append(b, "</text>"...)
	}
	b = append(b, e.Extra...)
	return append(b, "</error>"...)
}

// Head is what routing needs from a stanza: its name and the addressing attributes.
type Head struct {
	Name, ID, Type, From, To string
}

// ErrorReply builds the error response to a stanza with the given head (RFC 6120 §8.3.1): same name and id,
// 'to' and 'from' swapped, type='error'. from is the address the error comes from (usually the original 'to', or the
// server's domain when 'to' was absent).
func ErrorReply(h Head, from string, e Error) string {
	b := make([]byte, 0, 192)
	b = append(b, '<')
	b = append(b, h.Name...)
	if from != "" {
		b = appendAttr(b, "from", from)
	}
	if h.From != "" {
		b = appendAttr(b, "to", h.From)
	}
	b = append(b, " type='error'"...)
	if h.ID != "" {
		b = appendAttr(b, "id", h.ID)
	}
	b = append(b, '>')
	b = e.AppendXML(b)
	b = append(b, "</"...)
	b = append(b, h.Name...)
	b = append(b, '>')
	return string(b)
}

// IQResult builds an empty <iq type='result'/> answering h, or one with payload (already serialised) inside.
func IQResult(h Head, from, payload string) string {
	b := make([]byte, 0, 96+len(payload))
	b = append(b, "<iq type='result'"...)
	if from != "" {
		b = appendAttr(b, "from", from)
	}
	if h.From != "" {
		b = appendAttr(b, "to", h.From)
	}
	b = appendAttr(b, "id", h.ID)
	if payload == "" {
		return string(append(b, "/>"...))
	}
	b = append(b, '>')
	b = append(b, payload...)
	return string(append(b, "</iq>"...))
}

// Build encodes a stanza from its head attributes and an already-serialised payload. Empty attributes are omitted.
func Build(name, from, to, typ, id, payload string) string {
	b := make([]byte, 0, 64+len(payload))
	b = append(b, '<')
	b = append(b, name...)
	if from != "" {
		b = appendAttr(b, "from", from)
	}
	if to != "" {
		b = appendAttr(b, "to", to)
	}
	if typ != "" {
		b = appendAttr(b, "type", typ)
	}
	if id != "" {
		b = appendAttr(b, "id", id)
	}
	if payload == "" {
		return string(append(b, "/>"...))
	}
	b = append(b, '>')
	b = append(b, payload...)
	b = append(b, "</"...)
	b = append(b, name...)
	return string(append(b, '>'))
}

// Delay encodes an XEP-0203 delay element.
func Delay(from string, stampRFC3339 string, reason string) string {
	b := make([]byte, 0, 96)
	b = append(b, "<delay xmlns='"+NSDelay+"'"...)
	b = appendAttr(b, "from", from)
	b = appendAttr(b, "stamp", stampRFC3339)
	if reason == "" {
		return string(append(b, "/>"...))
	}
	b = append(b, '>')
	b = xmlstream.AppendEscapedText(b, reason)
	return string(append(b, "</delay>"...))
}

func appendAttr(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, "='"...)
	b = xmlstream.AppendEscapedAttr(b, value)
	return append(b, '\'')
}

// InsertChild returns raw (one complete element named name) with child appended as its last child. It handles
// the self-closed form (<message .../>) as well as the usual one.
func InsertChild(raw, name, child string) string {
	if len(raw) >= 2 && raw[len(raw)-2:] == "/>" {
		return raw[:len(raw)-2] + ">" + child + "</" + name + ">"
	}
	// The last end tag of a complete element is its root's, whatever its spelling (prefix, whitespace).
	end := strings.LastIndex(raw, "</")
	if end < 0 {
		return raw
	}
	return raw[:end] + child + raw[end:]
}
