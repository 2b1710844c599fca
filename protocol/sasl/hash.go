package sasl

import (
	"crypto/sha1" // #nosec G505 -- SCRAM-SHA-1 is still mandatory-to-implement for XMPP (RFC 6120 §13.8.3).
	"crypto/sha256"
	"crypto/sha512"
	"hash"
)

// Hash identifies the hash function of a SCRAM mechanism.
type Hash int

// The hash functions this package supports. The zero value is deliberately
// not a valid Hash so that an uninitialised Credentials is never usable.
const (
	SHA1 Hash = iota + 1
	SHA256
	SHA512
)

// Hashes lists every supported Hash, weakest first.
var Hashes = []Hash{SHA1, SHA256, SHA512}

// String returns the hash name as it appears in mechanism names.
func (h Hash) String() string {
	switch h {
	case SHA1:
		return "SHA-1"
	case SHA256:
		return "SHA-256"
	case SHA512:
		return "SHA-512"
	}
	return "unknown"
}

// New returns a new hash.Hash computing h. It panics for an unknown Hash.
func (h Hash) New() hash.Hash {
	switch h {
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	case SHA512:
		return sha512.New()
	}
	panic("sasl: unknown hash")
}

// Size returns the digest length in bytes, or 0 for an unknown Hash.
func (h Hash) Size() int {
	switch h {
	case SHA1:
		return sha1.Size
	case SHA256:
		return sha256.Size
	case SHA512:
		return sha512.Size
	}
	return 0
}

func (h Hash) valid() bool { return h.Size() != 0 }
