// Package stanza holds the XMPP namespaces, stream errors (RFC 6120 §4.9) and stanza errors (RFC 6120 §8.3)
// as pure values and encoders. It knows nothing about connections or actors.
package stanza

import (
	"strings"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Namespaces used by the core server.
const (
	NSClient   = "jabber:client"
	NSServer   = "jabber:server"
	NSStream   = "http://etherx.jabber.org/streams"
	NSStreams  = "urn:ietf:params:xml:ns:xmpp-streams"
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

// Stream error conditions (RFC 6120 §4.9.3) that the server sends.
const (
	BadFormat              = "bad-format"
	BadNamespacePrefix     = "bad-namespace-prefix"
	Conflict               = "conflict"
	ConnectionTimeout      = "connection-timeout"
	HostUnknown            = "host-unknown"
	ImproperAddressing     = "improper-addressing"
	InternalServerError    = "internal-server-error"
	InvalidFrom            = "invalid-from"
	InvalidNamespace       = "invalid-namespace"
	InvalidXML             = "invalid-xml"
	NotAuthorized          = "not-authorized"
	NotWellFormed          = "not-well-formed"
	PolicyViolation        = "policy-violation"
	ResourceConstraint     = "resource-constraint"
	RestrictedXML          = "restricted-xml"
	SystemShutdown         = "system-shutdown"
	UnsupportedEncoding    = "unsupported-encoding"
	UnsupportedFeature     = "unsupported-feature"
	UnsupportedStanzaType  = "unsupported-stanza-type"
	UnsupportedVersion     = "unsupported-version"
	StreamUndefinedCondErr = "undefined-condition"
)

// StreamError encodes <stream:error> (RFC 6120 §4.9.2). It assumes the stream prefix "stream", which is the
// prefix this server always declares on the headers it sends.
func StreamError(condition, text string) []byte {
	b := make([]byte, 0, 128+len(text))
	b = append(b, "<stream:error><"...)
	b = append(b, condition...)
	b = append(b, " xmlns='"+NSStreams+"'/>"...)
	if text != "" {
		b = append(b, "<text xmlns='"+NSStreams+"' xml:lang='en'>"...)
		b = xmlstream.AppendEscapedText(b, text)
		b = append(b, "</text>"...)
	}
	return append(b, "</stream:error>"...)
}

// Stanza error types (RFC 6120 §8.3.2).
const (
	Auth     = "auth"
	Cancel   = "cancel"
	Continue = "continue"
	Modify   = "modify"
	Wait     = "wait"
)

// Stanza error conditions (RFC 6120 §8.3.3).
const (
	BadRequest            = "bad-request"
	FeatureNotImplemented = "feature-not-implemented"
	Forbidden             = "forbidden"
	Gone                  = "gone"
	ItemNotFound          = "item-not-found"
	JIDMalformed          = "jid-malformed"
	NotAcceptable         = "not-acceptable"
	NotAllowed            = "not-allowed"
	PaymentRequired       = "payment-required"
	PolicyViolationErr    = "policy-violation"
	RecipientUnavailable  = "recipient-unavailable"
	Redirect              = "redirect"
	RegistrationRequired  = "registration-required"
	RemoteServerNotFound  = "remote-server-not-found"
	RemoteServerTimeout   = "remote-server-timeout"
	ResourceConstraintErr = "resource-constraint"
	ServiceUnavailable    = "service-unavailable"
	SubscriptionRequired  = "subscription-required"
	UndefinedCondition    = "undefined-condition"
	UnexpectedRequest     = "unexpected-request"
	InternalServerErr     = "internal-server-error"
	ConflictErr           = "conflict"
	NotAuthorizedErr      = "not-authorized"
)

// defaultType is the error type RFC 6120 §8.3.3 gives as usual for each condition.
var defaultType = map[string]string{
	BadRequest:            Modify,
	ConflictErr:           Cancel,
	FeatureNotImplemented: Cancel,
	Forbidden:             Auth,
	Gone:                  Cancel,
	InternalServerErr:     Cancel,
	ItemNotFound:          Cancel,
	JIDMalformed:          Modify,
	NotAcceptable:         Modify,
	NotAllowed:            Cancel,
	NotAuthorizedErr:      Auth,
	PolicyViolationErr:    Modify,
	RecipientUnavailable:  Wait,
	Redirect:              Modify,
	RegistrationRequired:  Auth,
	RemoteServerNotFound:  Cancel,
	RemoteServerTimeout:   Wait,
	ResourceConstraintErr: Wait,
	ServiceUnavailable:    Cancel,
	SubscriptionRequired:  Auth,
	UndefinedCondition:    Cancel,
	UnexpectedRequest:     Wait,
}

// Error is a stanza error (RFC 6120 §8.3). Extra is an optional application-specific condition element, already
// serialised with its own xmlns (e.g. XEP-0191's <blocked/>).
type Error struct {
	Type      string
	Condition string
	Text      string
	By        string
	Extra     string
}

// NewError returns the error for condition with its usual type.
func NewError(condition string) Error {
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
