package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/subtle"
	"errors"
	"io"

	"golang.org/x/text/secure/precis"
)

// DefaultIterations is the PBKDF2 iteration count for new credentials. RFC
// 7677 §4 asks for at least 4096; operators may configure more.
const DefaultIterations = 4096

// MinIterations is the lowest iteration count NewCredentials accepts.
const MinIterations = 4096

// saltLen is the salt length for new and fake credentials (RFC 5802 does
// not fix one; 16 bytes is the common choice and what RFC 7677 §3 shows).
const saltLen = 16

// Credentials are what the server stores for one user and one hash: the
// RFC 5802 §3 salted keys, never the password or SaltedPassword itself.
// Knowing StoredKey does not let anyone log in (they would need ClientKey),
// and ServerKey only lets its holder impersonate the server.
type Credentials struct {
	Hash       Hash
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// Valid reports whether c is complete enough to run an exchange with.
func (c Credentials) Valid() bool {
	return c.Hash.valid() && len(c.Salt) > 0 && c.Iterations > 0 &&
		len(c.StoredKey) == c.Hash.Size() && len(c.ServerKey) == c.Hash.Size()
}

// preparePassword applies the PRECIS OpaqueString profile (RFC 8265 §4.2),
// which replaces SASLprep for XMPP passwords. If the password cannot be
// prepared (e.g. it is empty or contains control characters) the raw bytes
// are used: such a password can never have been stored through
// NewCredentials, so verification with it simply fails.
func preparePassword(password string) []byte {
	p, err := precis.OpaqueString.Bytes([]byte(password))
	if err != nil {
		return []byte(password)
	}
	return p
}

// DeriveCredentials computes the stored credentials for password:
// SaltedPassword = Hi(password, salt, i) (PBKDF2-HMAC), ClientKey =
// HMAC(SaltedPassword, "Client Key"), StoredKey = H(ClientKey), ServerKey =
// HMAC(SaltedPassword, "Server Key") (RFC 5802 §3).
func DeriveCredentials(h Hash, password string, salt []byte, iterations int) Credentials {
	salted := saltedPassword(h, preparePassword(password), salt, iterations)
	clientKey := hmacSum(h, salted, []byte("Client Key"))
	stored := h.New()
	stored.Write(clientKey)
	return Credentials{
		Hash:       h,
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  stored.Sum(nil),
		ServerKey:  hmacSum(h, salted, []byte("Server Key")),
	}
}

func saltedPassword(h Hash, password, salt []byte, iterations int) []byte {
	// crypto/pbkdf2 only errors for FIPS-mode policy violations (short
	// password or salt, too few iterations). Rather than fail open, fall
	// back to an unusable all-zero key, which matches no proof.
	k, err := pbkdf2.Key(h.New, string(password), salt, iterations, h.Size())
	if err != nil {
		return make([]byte, h.Size())
	}
	return k
}

func hmacSum(h Hash, key, msg []byte) []byte {
	m := hmac.New(h.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// NewCredentials derives credentials for every Hash in Hashes, each with a
// fresh random salt from random. The password must be valid under the
// OpaqueString profile and iterations at least MinIterations.
func NewCredentials(password string, iterations int, random io.Reader) ([]Credentials, error) {
	if iterations < MinIterations {
		return nil, errors.New("sasl: iteration count below 4096 (RFC 7677 §4)")
	}
	if _, err := precis.OpaqueString.String(password); err != nil {
		return nil, errors.New("sasl: password is not valid under the PRECIS OpaqueString profile")
	}
	out := make([]Credentials, 0, len(Hashes))
	for _, h := range Hashes {
		salt := make([]byte, saltLen)
		if _, err := io.ReadFull(random, salt); err != nil {
			return nil, err
		}
		out = append(out, DeriveCredentials(h, password, salt, iterations))
	}
	return out, nil
}

// VerifyPassword reports whether password matches c, as needed by PLAIN.
// It costs one PBKDF2 run. For an unknown user, run it against
// FakeCredentials so that the response time does not reveal which accounts
// exist.
func VerifyPassword(c Credentials, password string) bool {
	if !c.Valid() {
		return false
	}
	d := DeriveCredentials(c.Hash, password, c.Salt, c.Iterations)
	return subtle.ConstantTimeCompare(d.StoredKey, c.StoredKey) == 1
}

// FakeCredentials derives deterministic credentials for a username that has
// no account, keyed by a server secret (which must be random, at least 32
// bytes and stable across restarts). The salt is stable per user and hash,
// so that repeated attempts see the same server-first-message as they would
// for a real account; StoredKey and ServerKey are pseudo-random values that
// no password derives to, so the exchange fails at the proof check, just as a
// wrong password does (no account enumeration, RFC 5802 §9 / RFC 7677 §4).
// No PBKDF2 is run, matching the cost of a real SCRAM exchange with stored
// keys.
func FakeCredentials(h Hash, secret []byte, username string, iterations int) Credentials {
	derive := func(label string, n int) []byte {
		m := hmac.New(Hash(SHA512).New, secret)
		m.Write([]byte("xmppd fake scram credentials\x00"))
		m.Write([]byte(label))
		m.Write([]byte{0})
		m.Write([]byte(h.String()))
		m.Write([]byte{0})
		m.Write([]byte(username))
		return m.Sum(nil)[:n]
	}
	return Credentials{
		Hash:       h,
		Salt:       derive("salt", saltLen),
		Iterations: iterations,
		StoredKey:  derive("stored key", h.Size()),
		ServerKey:  derive("server key", h.Size()),
	}
}
