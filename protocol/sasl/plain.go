package sasl

import (
	"bytes"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

// maxPlainField is the RFC 4616 §2 limit: authzid, authcid and passwd are
// each at most 255 octets.
const maxPlainField = 255

// ParsePlain parses a PLAIN message (RFC 4616 §2):
//
//	message = [authzid] UTF8NUL authcid UTF8NUL passwd
//
// authcid is returned prepared with the PRECIS UsernameCaseMapped profile,
// the same as a SCRAM username, so both mechanisms look up the same account.
// The password is returned as sent; VerifyPassword prepares it. The caller
// validates authzid as a JID (invalid-authzid) and must only offer PLAIN over
// TLS.
func ParsePlain(msg []byte) (authzid, authcid, password string, err error) {
	az, rest, ok := bytes.Cut(msg, []byte{0})
	if !ok {
		return "", "", "", fail(MalformedRequest, "missing NUL separator")
	}
	ac, pw, ok := bytes.Cut(rest, []byte{0})
	if !ok {
		return "", "", "", fail(MalformedRequest, "missing NUL separator")
	}
	if bytes.IndexByte(pw, 0) >= 0 {
		return "", "", "", fail(MalformedRequest, "too many NUL separators")
	}
	if len(ac) == 0 || len(pw) == 0 {
		return "", "", "", fail(MalformedRequest, "empty authcid or password")
	}
	if len(az) > maxPlainField || len(ac) > maxPlainField || len(pw) > maxPlainField {
		return "", "", "", fail(MalformedRequest, "field longer than 255 octets")
	}
	if !utf8.Valid(az) || !utf8.Valid(ac) || !utf8.Valid(pw) {
		return "", "", "", fail(MalformedRequest, "invalid UTF-8")
	}
	prepared, perr := precis.UsernameCaseMapped.Bytes(ac)
	if perr != nil || len(prepared) == 0 {
		// Cannot name an account: same answer as a wrong password.
		return "", "", "", fail(NotAuthorized, "")
	}
	return string(az), string(prepared), string(pw), nil
}
