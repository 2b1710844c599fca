package xmlstream

// Stream error conditions (RFC 6120 §4.9.3) the decoder reports. The caller
// sends <stream:error><{Condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>
// and closes the stream.
const (
	CondNotWellFormed       = "not-well-formed"      // §4.9.3.13
	CondRestrictedXML       = "restricted-xml"       // §4.9.3.18, §11.1
	CondPolicyViolation     = "policy-violation"     // §4.9.3.14 (size limits)
	CondBadNamespacePrefix  = "bad-namespace-prefix" // §4.9.3.2
	CondUnsupportedEncoding = "unsupported-encoding" // §4.9.3.22, §11.6
)

// Error is returned by Decoder.Next (always as *Error) and by ParseNode for
// input that must end the stream. Errors from the underlying reader are
// returned unwrapped instead.
type Error struct {
	Condition string // RFC 6120 §4.9.3 defined condition
	Msg       string // human-readable detail, safe to put in <text/>
}

func (e *Error) Error() string { return "xmlstream: " + e.Condition + ": " + e.Msg }

func errf(cond, msg string) *Error { return &Error{Condition: cond, Msg: msg} }
