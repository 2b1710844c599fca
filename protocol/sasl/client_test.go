package sasl

import (
	"bytes"
	"crypto/hmac"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// testClient is a minimal SCRAM client, written from RFC 5802 §3 and §7
// independently of the server code (it shares only Hash), used to drive the
// server through exchanges the mellium client cannot produce: SHA-512,
// tls-server-end-point, authzid, escaped usernames and deliberate faults.
type testClient struct {
	h        Hash
	user     string // unescaped
	password string
	authzid  string
	flag     string // "n", "y" or "p=<cb-name>"
	cbData   []byte // appended to the gs2 header in c= (for "p=")
	nonce    string

	gs2       string
	firstBare string
	serverSig []byte
}

func escapeSaslname(s string) string {
	s = strings.ReplaceAll(s, "=", "=3D")
	return strings.ReplaceAll(s, ",", "=2C")
}

func (c *testClient) first() []byte {
	c.gs2 = c.flag + ","
	if c.authzid != "" {
		c.gs2 += "a=" + escapeSaslname(c.authzid)
	}
	c.gs2 += ","
	c.firstBare = "n=" + escapeSaslname(c.user) + ",r=" + c.nonce
	return []byte(c.gs2 + c.firstBare)
}

// final computes the client-final-message for serverFirst.
func (c *testClient) final(serverFirst []byte) ([]byte, error) {
	var nonce, salt string
	iter := -1
	for _, f := range strings.Split(string(serverFirst), ",") {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "r":
			nonce = v
		case "s":
			salt = v
		case "i":
			iter, _ = strconv.Atoi(v)
		}
	}
	if !strings.HasPrefix(nonce, c.nonce) || len(nonce) == len(c.nonce) || iter <= 0 {
		return nil, errors.New("bad server-first-message")
	}
	rawSalt, err := base64.StdEncoding.DecodeString(salt)
	if err != nil {
		return nil, err
	}
	salted := hi(c.h, []byte(c.password), rawSalt, iter)
	clientKey := mac(c.h, salted, "Client Key")
	sum := c.h.New()
	sum.Write(clientKey)
	storedKey := sum.Sum(nil)
	serverKey := mac(c.h, salted, "Server Key")

	withoutProof := "c=" + base64.StdEncoding.EncodeToString(append([]byte(c.gs2), c.cbData...)) + ",r=" + nonce
	authMessage := c.firstBare + "," + string(serverFirst) + "," + withoutProof
	clientSig := mac(c.h, storedKey, authMessage)
	proof := make([]byte, len(clientKey))
	subtle.XORBytes(proof, clientKey, clientSig)
	c.serverSig = mac(c.h, serverKey, authMessage)
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

func (c *testClient) verify(serverFinal []byte) error {
	want := "v=" + base64.StdEncoding.EncodeToString(c.serverSig)
	if !bytes.Equal(serverFinal, []byte(want)) {
		return errors.New("server signature mismatch")
	}
	return nil
}

// hi is Hi() from RFC 5802 §2.2 written out, rather than calling PBKDF2, so
// that the test does not share the server's derivation code.
func hi(h Hash, password, salt []byte, iter int) []byte {
	u := mac(h, password, string(salt)+"\x00\x00\x00\x01")
	out := append([]byte(nil), u...)
	for i := 1; i < iter; i++ {
		u = mac(h, password, string(u))
		for j := range out {
			out[j] ^= u[j]
		}
	}
	return out
}

func mac(h Hash, key []byte, msg string) []byte {
	m := hmac.New(h.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
