package sasl

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func TestHash(t *testing.T) {
	for _, tc := range []struct {
		h    Hash
		name string
		size int
	}{{SHA1, "SHA-1", 20}, {SHA256, "SHA-256", 32}, {SHA512, "SHA-512", 64}} {
		if tc.h.String() != tc.name || tc.h.Size() != tc.size || tc.h.New().Size() != tc.size {
			t.Errorf("%v: String %q Size %d", tc.h, tc.h.String(), tc.h.Size())
		}
	}
	if Hash(0).valid() || Hash(0).String() != "unknown" {
		t.Error("zero Hash must be invalid")
	}
}

func TestNewCredentialsAndVerify(t *testing.T) {
	creds, err := NewCredentials("s3cret pässword", DefaultIterations, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != len(Hashes) {
		t.Fatalf("got %d credentials", len(creds))
	}
	seen := map[string]bool{}
	for i, c := range creds {
		if c.Hash != Hashes[i] || !c.Valid() || len(c.Salt) < 16 || c.Iterations != DefaultIterations {
			t.Fatalf("credentials %d: %+v", i, c)
		}
		if seen[string(c.Salt)] {
			t.Fatal("salt reused across hashes")
		}
		seen[string(c.Salt)] = true
		if !VerifyPassword(c, "s3cret pässword") {
			t.Fatalf("%v: correct password rejected", c.Hash)
		}
		// NFC: "a" + COMBINING DIAERESIS is the same password.
		if !VerifyPassword(c, "s3cret pa\u0308ssword") {
			t.Fatalf("%v: password not normalised", c.Hash)
		}
		// OpaqueString maps non-ASCII spaces to U+0020.
		if !VerifyPassword(c, "s3cret\u00a0pässword") {
			t.Fatalf("%v: NBSP not mapped", c.Hash)
		}
		for _, bad := range []string{"", "s3cret", "S3cret pässword", "s3cret pässword "} {
			if VerifyPassword(c, bad) {
				t.Fatalf("%v: wrong password %q accepted", c.Hash, bad)
			}
		}
	}
	if VerifyPassword(Credentials{}, "") {
		t.Fatal("empty credentials verified")
	}
}

func TestNewCredentialsErrors(t *testing.T) {
	if _, err := NewCredentials("pw", 1000, rand.Reader); err == nil {
		t.Error("accepted fewer than 4096 iterations")
	}
	if _, err := NewCredentials("", DefaultIterations, rand.Reader); err == nil {
		t.Error("accepted empty password")
	}
	if _, err := NewCredentials("a\x00b", DefaultIterations, rand.Reader); err == nil {
		t.Error("accepted password with control character")
	}
	if _, err := NewCredentials("pw", DefaultIterations, bytes.NewReader(make([]byte, 20))); err == nil {
		t.Error("short random source not reported")
	}
}

// TestDeriveCredentialsMatchesManualHi checks DeriveCredentials (PBKDF2)
// against Hi() written out from RFC 5802 §2.2, for every hash.
func TestDeriveCredentialsMatchesManualHi(t *testing.T) {
	salt := mustB64("QSXCR+Q6sek8bf92")
	for _, h := range Hashes {
		c := DeriveCredentials(h, "pencil", salt, 4096)
		salted := hi(h, []byte("pencil"), salt, 4096)
		if !bytes.Equal(c.ServerKey, mac(h, salted, "Server Key")) {
			t.Fatalf("%v: ServerKey mismatch", h)
		}
		d := h.New()
		d.Write(mac(h, salted, "Client Key"))
		if !bytes.Equal(c.StoredKey, d.Sum(nil)) {
			t.Fatalf("%v: StoredKey mismatch", h)
		}
	}
}

func TestDecodeBase64(t *testing.T) {
	for _, tc := range []struct {
		in, out string
		ok      bool
	}{
		{"", "", true},
		{"=", "", true},
		{"biws", "n,,", true},
		{"AA==", "\x00", true},
		{"AA=", "", false},
		{"AB==", "", false}, // non-canonical trailing bits
		{"b!ws", "", false},
		{"==", "", false},
	} {
		got, err := DecodeBase64([]byte(tc.in))
		if tc.ok != (err == nil) || (tc.ok && string(got) != tc.out) {
			t.Errorf("DecodeBase64(%q) = %q, %v", tc.in, got, err)
		}
		var f *Failure
		if err != nil && (!errors.As(err, &f) || f.Condition != IncorrectEncoding) {
			t.Errorf("DecodeBase64(%q) error %v is not incorrect-encoding", tc.in, err)
		}
	}
	if string(EncodeBase64(nil)) != "=" || string(EncodeBase64([]byte("n,,"))) != "biws" {
		t.Error("EncodeBase64")
	}
}
