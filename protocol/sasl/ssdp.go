package sasl

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"io"
	"slices"
	"strings"
)

// DowngradeHash is the XEP-0474 (SASL SCRAM Downgrade Protection, v0.5) §4.1 value of the "h" attribute the
// server adds to its server-first-message: the advertised mechanisms sorted (RFC 4790 i;octet, which is Go's
// string order) and joined by %x1E; then, when XEP-0440 <sasl-channel-binding/> was advertised (cbAdvertised),
// %x1F and the advertised channel-binding types sorted and joined by %x1E; hashed with the SCRAM mechanism's
// hash, base64. The attribute is part of AuthMessage (RFC 5802 §3), so the client proof signs it: a man in the
// middle who edited either list cannot also fix the hash the client checks.
//
// When a stream offers both SASL profiles, mechs is the list of the profile the client authenticates with
// (§4.1 note).
func DowngradeHash(h Hash, mechs, cbTypes []string, cbAdvertised bool) string {
	m := slices.Clone(mechs)
	slices.Sort(m)
	s := strings.Join(m, "\x1e")
	if cbAdvertised {
		c := slices.Clone(cbTypes)
		slices.Sort(c)
		s += "\x1f" + strings.Join(c, "\x1e")
	}
	d := h.New()
	d.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(d.Sum(nil))
}

// SetDowngradeHash makes the server-first-message carry the XEP-0474 attribute h=v (see DowngradeHash); ""
// leaves it out. Call before ServerFirst. v is base64 and therefore a valid RFC 5802 attribute value.
func (s *SCRAM) SetDowngradeHash(v string) { s.ssdp = v }

// ---- the HT mechanisms (draft-schmaus-kitten-sasl-ht-08), used by XEP-0484 FAST ----

// HTMechanism is one Hashed Token mechanism: HT-<hash>-<cb>, where cb names the channel binding the hashed token
// covers ("NONE": none).
type HTMechanism struct {
	Name string
	// CB is the channel binding type ("" for -NONE).
	CB string
}

// htMechanisms: the SHA-256 family, channel-bound ones first (XEP-0484 §4: clients MUST prefer them).
var htMechanisms = []HTMechanism{
	{Name: "HT-SHA-256-EXPR", CB: CBTLSExporter},
	{Name: "HT-SHA-256-UNIQ", CB: CBTLSUnique},
	{Name: "HT-SHA-256-ENDP", CB: CBTLSServerEndPoint},
	{Name: "HT-SHA-256-NONE"},
}

// LookupHT returns the HT mechanism of that name.
func LookupHT(name string) (HTMechanism, bool) {
	for _, m := range htMechanisms {
		if m.Name == name {
			return m, true
		}
	}
	return HTMechanism{}, false
}

// HTOffered lists the HT mechanisms a connection with these channel binding types can verify, preferred first:
// -NONE always, each channel-bound one only with its binding (XEP-0484 §2.1: at least one without, one with when
// possible).
func HTOffered(cbTypes []string) []string {
	var out []string
	for _, m := range htMechanisms {
		if m.CB == "" || slices.Contains(cbTypes, m.CB) {
			out = append(out, m.Name)
		}
	}
	return out
}

// HTTokenLen is the length of the tokens NewHTToken makes: longer than SHA-256's 64-byte block, so that by RFC
// 2104 §2 the HMAC key is SHA-256(token). The server therefore keeps only that digest (HTKey), never the token,
// and still verifies. (Whoever reads the digest can compute the HMAC as well: with HT, as with any shared-key
// mechanism, the stored verifier is what authenticates; what hashing keeps out of the database is the token the
// client holds.)
const HTTokenLen = 88

// ErrHTMalformed: the HT initial response is not authcid NUL hashed-token.
var ErrHTMalformed = errors.New("sasl: malformed HT message")

// NewHTToken returns a fresh token (66 bytes from random, base64url: HTTokenLen characters) and its key.
func NewHTToken(random io.Reader) (token string, key []byte, err error) {
	var b [66]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", nil, err
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, HTKey(token), nil
}

// HTKey is the HMAC-SHA-256 key of a token as stored: SHA-256(token) for tokens longer than the block size (RFC
// 2104 §2), which are the only ones NewHTToken issues.
func HTKey(token string) []byte {
	d := sha256.Sum256([]byte(token))
	return d[:]
}

// ParseHT splits the HT initial message (draft-schmaus-kitten-sasl-ht-08 §3.1): authcid NUL
// initiator-hashed-token, the latter 32 bytes for SHA-256. The authcid is returned as sent (the caller prepares it
// as a username).
func ParseHT(msg []byte) (authcid string, hashed []byte, err error) {
	i := strings.IndexByte(string(msg), 0)
	if i <= 0 || len(msg)-i-1 != sha256.Size || len(msg) > maxMessageLen {
		return "", nil, ErrHTMalformed
	}
	return string(msg[:i]), msg[i+1:], nil
}

// HTVerify reports whether hashed is HMAC(key, "Initiator" || cbData) (§3.1), compared in constant time
// (XEP-0484 §5).
func HTVerify(key, cbData, hashed []byte) bool {
	want := hmacSum(SHA256, key, append([]byte("Initiator"), cbData...))
	return subtle.ConstantTimeCompare(want, hashed) == 1
}

// HTResponder is the server's final message HMAC(key, "Responder" || cbData) (§3.2), sent as SASL2
// additional-data: it proves the server knows the token too.
func HTResponder(key, cbData []byte) []byte {
	return hmacSum(SHA256, key, append([]byte("Responder"), cbData...))
}

// Data returns the binding data of this connection for a channel binding type, nil if it has none.
func (cb ChannelBinding) Data(typ string) []byte { return cb.data(typ) }
