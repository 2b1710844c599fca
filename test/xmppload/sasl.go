package xmppload

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
)

// A small SASL client for PLAIN (RFC 4616) and SCRAM-SHA-1/-256 (RFC 5802,
// RFC 7677), without channel binding. We do not use mellium.im/sasl here
// for one reason: the client's PBKDF2 (10 000 iterations is ~2-4 ms of CPU)
// runs on the same two cores as the server under test, and mellium gives no
// way to reuse a salted password. Servers keep the salt per account, so a
// repeated login of the same account (churn, or a second benchmark round)
// can reuse the salted password from saltCache and leaves the CPU to the
// server. The unit tests check this client against mellium's SCRAM server
// and the RFC test vectors.

// saslMech is one supported mechanism.
type saslMech struct {
	name string
	hash func() hash.Hash
}

var saslMechs = map[string]saslMech{
	"PLAIN":         {name: "PLAIN"},
	"SCRAM-SHA-1":   {name: "SCRAM-SHA-1", hash: sha1.New},
	"SCRAM-SHA-256": {name: "SCRAM-SHA-256", hash: sha256.New},
}

// mechPreference is the order used by -mech auto.
var mechPreference = []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}

// chooseMech picks want among offered ("auto" = the strongest we support).
func chooseMech(want string, offered []string) (saslMech, error) {
	has := func(n string) bool {
		for _, o := range offered {
			if strings.EqualFold(o, n) {
				return true
			}
		}
		return false
	}
	if want == "" || strings.EqualFold(want, "auto") {
		for _, n := range mechPreference {
			if has(n) {
				return saslMechs[n], nil
			}
		}
		return saslMech{}, fmt.Errorf("no supported mechanism among %v", offered)
	}
	want = strings.ToUpper(want)
	m, ok := saslMechs[want]
	if !ok {
		return saslMech{}, fmt.Errorf("unsupported mechanism %q", want)
	}
	if !has(want) {
		return saslMech{}, fmt.Errorf("server does not offer %s (offers %v)", want, offered)
	}
	return m, nil
}

// saltCache maps (hash, password, salt, iterations) to the salted password.
type saltCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (c *saltCache) salted(mech string, h func() hash.Hash, password string, salt []byte, iter int) ([]byte, error) {
	if c == nil {
		return pbkdf2.Key(h, password, salt, iter, h().Size())
	}
	key := mech + "\x00" + password + "\x00" + string(salt) + "\x00" + strconv.Itoa(iter)
	c.mu.Lock()
	sp, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return sp, nil
	}
	sp, err := pbkdf2.Key(h, password, salt, iter, h().Size())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string][]byte)
	}
	c.m[key] = sp
	c.mu.Unlock()
	return sp, nil
}

// saslClient runs one exchange. Step is called first with nil and then with
// each decoded challenge; the final step is given the success payload.
type saslClient struct {
	mech     saslMech
	user     string
	password string
	cache    *saltCache
	nonce    string // client nonce; random when empty

	step        int
	clientFirst string // client-first-message-bare
	serverSig   []byte
	maxIter     int
}

var errSASLServer = errors.New("sasl: server signature mismatch")

// saslEscapeName applies RFC 5802 §5.1 saslname escaping.
func saslEscapeName(s string) string {
	if !strings.ContainsAny(s, ",=") {
		return s
	}
	s = strings.ReplaceAll(s, "=", "=3D")
	return strings.ReplaceAll(s, ",", "=2C")
}

func (c *saslClient) initial() []byte {
	if c.mech.hash == nil {
		return []byte("\x00" + c.user + "\x00" + c.password)
	}
	if c.nonce == "" {
		var b [18]byte
		_, _ = rand.Read(b[:])
		c.nonce = base64.RawStdEncoding.EncodeToString(b[:])
	}
	c.clientFirst = "n=" + saslEscapeName(c.user) + ",r=" + c.nonce
	c.step = 1
	return []byte("n,," + c.clientFirst)
}

// challenge answers the server-first-message.
func (c *saslClient) challenge(serverFirst []byte) ([]byte, error) {
	if c.mech.hash == nil || c.step != 1 {
		return nil, errors.New("sasl: unexpected challenge")
	}
	c.step = 2
	var nonce, salt64 string
	iter := 0
	for _, f := range bytes.Split(serverFirst, []byte(",")) {
		if len(f) < 2 || f[1] != '=' {
			continue
		}
		v := string(f[2:])
		switch f[0] {
		case 'r':
			nonce = v
		case 's':
			salt64 = v
		case 'i':
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("sasl: bad iteration count %q", v)
			}
			iter = n
		case 'm':
			return nil, errors.New("sasl: unsupported mandatory extension")
		}
	}
	if !strings.HasPrefix(nonce, c.nonce) || len(nonce) == len(c.nonce) {
		return nil, errors.New("sasl: server nonce does not extend ours")
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil || len(salt) == 0 {
		return nil, errors.New("sasl: bad salt")
	}
	if iter < 1 || (c.maxIter > 0 && iter > c.maxIter) {
		return nil, fmt.Errorf("sasl: iteration count %d refused", iter)
	}
	sp, err := c.cache.salted(c.mech.name, c.mech.hash, c.password, salt, iter)
	if err != nil {
		return nil, err
	}
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(c.mech.hash, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(sp, "Client Key")
	h := c.mech.hash()
	h.Write(clientKey)
	storedKey := h.Sum(nil)
	final := "c=biws,r=" + nonce // biws = base64("n,,")
	authMsg := c.clientFirst + "," + string(serverFirst) + "," + final
	sig := mac(storedKey, authMsg)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	c.serverSig = mac(mac(sp, "Server Key"), authMsg)
	return []byte(final + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// verify checks the server-final-message carried by <success/> (RFC 6120
// §6.4.6 puts it there) or by a last challenge.
func (c *saslClient) verify(serverFinal []byte) error {
	if c.mech.hash == nil {
		return nil
	}
	if c.step != 2 {
		return errors.New("sasl: success before the exchange finished")
	}
	s := string(serverFinal)
	if strings.HasPrefix(s, "e=") {
		return fmt.Errorf("sasl: server error %s", s[2:])
	}
	if !strings.HasPrefix(s, "v=") {
		return errors.New("sasl: missing server signature")
	}
	v, err := base64.StdEncoding.DecodeString(s[2:])
	if err != nil || subtle.ConstantTimeCompare(v, c.serverSig) != 1 {
		return errSASLServer
	}
	return nil
}
