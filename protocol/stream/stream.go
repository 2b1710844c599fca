// Package stream holds the XML stream layer of RFC 6120 as pure values and functions: the stream error conditions
// (§4.9.3) and their encoder (§4.9.2), the checks a receiving entity applies to an initial stream header (§4.7,
// §4.8) and the encoders of the response header (§4.7) and of <stream:features> (§4.3.2). It knows nothing about
// connections or actors; stanza errors (§8.3) are in package stanza.
package stream

import "github.com/xmppd/xmppd/protocol/xmlstream"

// Namespaces and names of the stream layer.
const (
	// NS is the stream namespace (RFC 6120 §4.8.1), the namespace of <stream:stream>, <stream:features> and
	// <stream:error>.
	NS = "http://etherx.jabber.org/streams"
	// NSErrors is the namespace of the stream error conditions (RFC 6120 §4.9.2).
	NSErrors = "urn:ietf:params:xml:ns:xmpp-streams"
	// NSClient is the content namespace of client-to-server streams (RFC 6120 §4.8.2), the only one this server
	// accepts.
	NSClient = "jabber:client"
	// Prefix is the stream namespace prefix, the one this server requires (RFC 6120 §4.8.5) and declares on every
	// header it sends; the encoders of this package assume it.
	Prefix = "stream"
	// Close is the closing tag of a stream (RFC 6120 §4.4).
	Close = "</stream:stream>"
)

// Condition is a stream error condition (RFC 6120 §4.9.3): the local name of the condition element of a
// <stream:error>.
type Condition string

// The stream error conditions of RFC 6120 §4.9.3, with their section.
const (
	BadFormat              Condition = "bad-format"               // §4.9.3.1
	BadNamespacePrefix     Condition = "bad-namespace-prefix"     // §4.9.3.2
	Conflict               Condition = "conflict"                 // §4.9.3.3
	ConnectionTimeout      Condition = "connection-timeout"       // §4.9.3.4
	HostGone               Condition = "host-gone"                // §4.9.3.5
	HostUnknown            Condition = "host-unknown"             // §4.9.3.6
	ImproperAddressing     Condition = "improper-addressing"      // §4.9.3.7
	InternalServerError    Condition = "internal-server-error"    // §4.9.3.8
	InvalidFrom            Condition = "invalid-from"             // §4.9.3.9
	InvalidNamespace       Condition = "invalid-namespace"        // §4.9.3.10
	InvalidXML             Condition = "invalid-xml"              // §4.9.3.11
	NotAuthorized          Condition = "not-authorized"           // §4.9.3.12
	NotWellFormed          Condition = "not-well-formed"          // §4.9.3.13
	PolicyViolation        Condition = "policy-violation"         // §4.9.3.14
	RemoteConnectionFailed Condition = "remote-connection-failed" // §4.9.3.15
	Reset                  Condition = "reset"                    // §4.9.3.16
	ResourceConstraint     Condition = "resource-constraint"      // §4.9.3.17
	RestrictedXML          Condition = "restricted-xml"           // §4.9.3.18
	// SeeOtherHost (§4.9.3.19) carries the other host as character data of the condition element, which
	// AppendError does not write: it is listed for completeness.
	SeeOtherHost          Condition = "see-other-host"          // §4.9.3.19
	SystemShutdown        Condition = "system-shutdown"         // §4.9.3.20
	UndefinedCondition    Condition = "undefined-condition"     // §4.9.3.21
	UnsupportedEncoding   Condition = "unsupported-encoding"    // §4.9.3.22
	UnsupportedFeature    Condition = "unsupported-feature"     // §4.9.3.23
	UnsupportedStanzaType Condition = "unsupported-stanza-type" // §4.9.3.24
	UnsupportedVersion    Condition = "unsupported-version"     // §4.9.3.25
)

// Defined reports whether c is one of the conditions RFC 6120 §4.9.3 defines.
func (c Condition) Defined() bool {
	switch c {
	case BadFormat, BadNamespacePrefix, Conflict, ConnectionTimeout, HostGone, HostUnknown, ImproperAddressing,
		InternalServerError, InvalidFrom, InvalidNamespace, InvalidXML, NotAuthorized, NotWellFormed,
		PolicyViolation, RemoteConnectionFailed, Reset, ResourceConstraint, RestrictedXML, SeeOtherHost,
		SystemShutdown, UndefinedCondition, UnsupportedEncoding, UnsupportedFeature, UnsupportedStanzaType,
		UnsupportedVersion:
		return true
	}
	return false
}

// AppendError appends the <stream:error> element (RFC 6120 §4.9.2) for condition c to b, with a <text/> in English
// when text is not empty (escaped; characters XML does not allow become U+FFFD). The condition is written as is:
// it must be a valid element name, which every constant of this package is. The element uses the prefix
// "stream", which this server declares on every header it sends. A stream error ends the stream: the caller
// follows it with Close (RFC 6120 §4.9.1.1).
func AppendError(b []byte, c Condition, text string) []byte { return AppendErrorApp(b, c, text, "") }

// AppendErrorApp is AppendError with an application-specific condition element (RFC 6120 §4.9.4), app ("" none).
func AppendErrorApp(b []byte, c Condition, text, app string) []byte {
	b = append(b, "<stream:error><"...)
	b = append(b, c...)
	b = append(b, " xmlns='"+NSErrors+"'/>"...)
	if text != "" {
		b = append(b, "<text xmlns='"+NSErrors+"' xml:lang='en'>"...)
		b = xmlstream.AppendEscapedText(b, text)
		b = append(b, "</text>"...)
	}
	b = append(b, app...)
	return append(b, "</stream:error>"...)
}
