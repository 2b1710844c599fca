package sasl

import "encoding/base64"

// SASL failure conditions of RFC 6120 §6.5. The caller sends
// <failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><CONDITION/></failure>.
const (
	Aborted              = "aborted"
	AccountDisabled      = "account-disabled"
	CredentialsExpired   = "credentials-expired"
	EncryptionRequired   = "encryption-required"
	IncorrectEncoding    = "incorrect-encoding"
	InvalidAuthzid       = "invalid-authzid"
	InvalidMechanism     = "invalid-mechanism"
	MalformedRequest     = "malformed-request"
	MechanismTooWeak     = "mechanism-too-weak"
	NotAuthorized        = "not-authorized"
	TemporaryAuthFailure = "temporary-auth-failure"
)

// Failure is the error type of this package. Condition is one of the RFC
// 6120 §6.5 conditions above. Text is a short diagnostic that is safe to send
// to the peer (for SCRAM failures it is the RFC 5802 §7 server-error-value
// where one applies); it never contains secrets.
type Failure struct {
	Condition string
	Text      string
}

func (f *Failure) Error() string {
	if f.Text == "" {
		return "sasl: " + f.Condition
	}
	return "sasl: " + f.Condition + ": " + f.Text
}

func fail(cond, text string) *Failure { return &Failure{Condition: cond, Text: text} }

// DecodeBase64 decodes the character data of an <auth/> or <response/>
// element. Per RFC 6120 §6.4.2 a single "=" stands for a zero-length
// response, and an empty element for no response at all; both decode to an
// empty slice. Anything that is not canonical base64 yields an
// incorrect-encoding Failure (RFC 6120 §6.5.2).
func DecodeBase64(data []byte) ([]byte, error) {
	if len(data) == 0 || (len(data) == 1 && data[0] == '=') {
		return []byte{}, nil
	}
	enc := base64.StdEncoding.Strict()
	out := make([]byte, enc.DecodedLen(len(data)))
	n, err := enc.Decode(out, data)
	if err != nil {
		return nil, fail(IncorrectEncoding, "invalid base64")
	}
	return out[:n], nil
}

// EncodeBase64 encodes challenge or success data for the wire; an empty
// payload is sent as "=" (RFC 6120 §6.4.3, §6.4.6).
func EncodeBase64(data []byte) []byte {
	if len(data) == 0 {
		return []byte{'='}
	}
	out := make([]byte, base64.StdEncoding.EncodedLen(len(data)))
	base64.StdEncoding.Encode(out, data)
	return out
}
