package sasl

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
)

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func mech(t testing.TB, name string) Mechanism {
	t.Helper()
	m, ok := Lookup(name)
	if !ok {
		t.Fatalf("Lookup(%q) failed", name)
	}
	return m
}

func wantFailure(t *testing.T, err error, cond string) *Failure {
	t.Helper()
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("error = %v (%T), want *Failure %s", err, err, cond)
	}
	if f.Condition != cond {
		t.Fatalf("condition = %q (%v), want %q", f.Condition, err, cond)
	}
	return f
}

// TestRFCExamples replays the example exchanges of RFC 5802 §5 (SHA-1) and
// RFC 7677 §3 (SHA-256) byte for byte.
func TestRFCExamples(t *testing.T) {
	tests := []struct {
		name                              string
		hash                              Hash
		salt                              string
		clientFirst, serverNonce          string
		serverFirst, clientFinal, srvFinl string
		clientNonce                       string
	}{
		{
			name: "SCRAM-SHA-1", hash: SHA1, salt: "QSXCR+Q6sek8bf92",
			clientFirst: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
			clientNonce: "fyko+d2lbbFgONRv9qkxdawL",
			serverNonce: "3rfcNHYJY1ZVvWVs7j",
			serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
			clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
			srvFinl:     "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
		},
		{
			name: "SCRAM-SHA-256", hash: SHA256, salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
			clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
			clientNonce: "rOprNGfwEbeRWgbNEkqO",
			serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			srvFinl:     "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			creds := DeriveCredentials(tc.hash, "pencil", mustB64(tc.salt), 4096)
			s := NewSCRAM(mech(t, tc.name), ChannelBinding{}, false)
			user, authz, err := s.ClientFirst([]byte(tc.clientFirst))
			if err != nil || user != "user" || authz != "" {
				t.Fatalf("ClientFirst = %q, %q, %v", user, authz, err)
			}
			sf, err := s.serverFirstWithNonce(creds, tc.serverNonce)
			if err != nil || string(sf) != tc.serverFirst {
				t.Fatalf("server-first = %q, %v\nwant %q", sf, err, tc.serverFirst)
			}
			fin, err := s.ClientFinal([]byte(tc.clientFinal))
			if err != nil || string(fin) != tc.srvFinl {
				t.Fatalf("server-final = %q, %v\nwant %q", fin, err, tc.srvFinl)
			}

			// Our test client must reproduce the RFC's client messages too,
			// or the round-trip tests below would prove nothing.
			c := &testClient{h: tc.hash, user: "user", password: "pencil", flag: "n", nonce: tc.clientNonce}
			if got := string(c.first()); got != tc.clientFirst {
				t.Fatalf("test client first = %q", got)
			}
			cf, err := c.final([]byte(tc.serverFirst))
			if err != nil || string(cf) != tc.clientFinal {
				t.Fatalf("test client final = %q, %v", cf, err)
			}
			if err := c.verify([]byte(tc.srvFinl)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// exchange runs one full exchange between c and a fresh server.
func exchange(t *testing.T, m Mechanism, cb ChannelBinding, plusAdvertised bool, creds Credentials, c *testClient) (user, authzid string, err error) {
	t.Helper()
	s := NewSCRAM(m, cb, plusAdvertised)
	user, authzid, err = s.ClientFirst(c.first())
	if err != nil {
		return "", "", err
	}
	sf, err := s.ServerFirst(creds, rand.Reader)
	if err != nil {
		return "", "", err
	}
	cf, err := c.final(sf)
	if err != nil {
		t.Fatalf("client rejected server-first %q: %v", sf, err)
	}
	fin, err := s.ClientFinal(cf)
	if err != nil {
		return "", "", err
	}
	if err := c.verify(fin); err != nil {
		t.Fatalf("client rejected server-final %q: %v", fin, err)
	}
	return user, authzid, nil
}

func TestRoundTripAllMechanisms(t *testing.T) {
	cb := ChannelBinding{Exporter: bytes.Repeat([]byte{1}, 32), EndPoint: bytes.Repeat([]byte{2}, 32)}
	for _, h := range Hashes {
		creds := DeriveCredentials(h, "correct horse", []byte("0123456789abcdef"), 4096)
		for _, flag := range []string{"n", "y", "p=tls-exporter", "p=tls-server-end-point"} {
			name := "SCRAM-" + h.String()
			var data []byte
			if strings.HasPrefix(flag, "p=") {
				name += "-PLUS"
				data = cb.data(flag[2:])
			}
			t.Run(name+"/"+flag, func(t *testing.T) {
				c := &testClient{h: h, user: "Ju,li=et", password: "correct horse", authzid: "romeo@example.net", flag: flag, cbData: data, nonce: "abc+/=!~def"}
				user, authz, err := exchange(t, mech(t, name), cb, false, creds, c)
				if err != nil {
					t.Fatal(err)
				}
				if user != "ju,li=et" || authz != "romeo@example.net" {
					t.Fatalf("user, authzid = %q, %q", user, authz)
				}
			})
		}
	}
}

func TestWrongPasswordAndUnknownUser(t *testing.T) {
	creds := DeriveCredentials(SHA256, "right", []byte("saltsaltsaltsalt"), 4096)
	c := &testClient{h: SHA256, user: "juliet", password: "wrong", flag: "n", nonce: "n0nce"}
	_, _, err := exchange(t, mech(t, "SCRAM-SHA-256"), ChannelBinding{}, false, creds, c)
	wantFailure(t, err, NotAuthorized)

	secret := []byte("0123456789abcdef0123456789abcdef")
	fake := FakeCredentials(SHA256, secret, "nobody", 4096)
	for _, pw := range []string{"", "right", "nobody", "password"} {
		c := &testClient{h: SHA256, user: "nobody", password: pw, flag: "n", nonce: "n0nce"}
		_, _, err := exchange(t, mech(t, "SCRAM-SHA-256"), ChannelBinding{}, false, fake, c)
		wantFailure(t, err, NotAuthorized)
	}
}

func TestFakeCredentials(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	for _, h := range Hashes {
		a := FakeCredentials(h, secret, "nobody", 4096)
		b := FakeCredentials(h, secret, "nobody", 4096)
		if !a.Valid() || a.Hash != h || a.Iterations != 4096 {
			t.Fatalf("%v: fake credentials invalid: %+v", h, a)
		}
		if !bytes.Equal(a.Salt, b.Salt) || !bytes.Equal(a.StoredKey, b.StoredKey) || !bytes.Equal(a.ServerKey, b.ServerKey) {
			t.Fatalf("%v: fake credentials are not deterministic", h)
		}
		// Same shape as real credentials, so server-first looks alike.
		real, err := NewCredentials("pw", DefaultIterations, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Salt) != len(real[0].Salt) {
			t.Fatalf("fake salt length %d, real %d", len(a.Salt), len(real[0].Salt))
		}
		for _, other := range []Credentials{
			FakeCredentials(h, secret, "nobody2", 4096),
			FakeCredentials(h, []byte("another secret of thirty-two by"), "nobody", 4096),
		} {
			if bytes.Equal(a.Salt, other.Salt) || bytes.Equal(a.StoredKey, other.StoredKey) {
				t.Fatalf("%v: fake credentials do not depend on user and secret", h)
			}
		}
		if VerifyPassword(a, "") || VerifyPassword(a, "nobody") {
			t.Fatal("fake credentials verified a password")
		}
	}
	if bytes.Equal(FakeCredentials(SHA1, secret, "x", 1).Salt, FakeCredentials(SHA256, secret, "x", 1).Salt) {
		t.Fatal("fake salt identical across hashes; real accounts have one salt per hash")
	}
}

func TestChannelBindingChecks(t *testing.T) {
	cb := ChannelBinding{Exporter: bytes.Repeat([]byte{7}, 32), EndPoint: bytes.Repeat([]byte{9}, 32)}
	creds := DeriveCredentials(SHA256, "pw", []byte("saltsaltsaltsalt"), 4096)
	plus, noPlus := mech(t, "SCRAM-SHA-256-PLUS"), mech(t, "SCRAM-SHA-256")
	tests := []struct {
		name           string
		m              Mechanism
		cb             ChannelBinding
		plusAdvertised bool
		flag           string
		cbData         []byte
		cond           string
		text           string
	}{
		{"downgrade y while plus advertised", noPlus, cb, true, "y", nil, NotAuthorized, "server-does-support-channel-binding"},
		{"n on plus", plus, cb, true, "n", nil, MalformedRequest, ""},
		{"y on plus", plus, cb, false, "y", nil, MalformedRequest, ""},
		{"p on non-plus", noPlus, cb, true, "p=tls-exporter", cb.Exporter, MalformedRequest, ""},
		{"unknown cb type", plus, cb, true, "p=tls-foo", []byte("x"), NotAuthorized, "unsupported-channel-binding-type"},
		{"tls-unique unavailable (TLS 1.3)", plus, cb, true, "p=tls-unique", []byte("x"), NotAuthorized, "unsupported-channel-binding-type"},
		{"exporter unavailable", plus, ChannelBinding{EndPoint: cb.EndPoint}, true, "p=tls-exporter", cb.Exporter, NotAuthorized, "unsupported-channel-binding-type"},
		{"wrong exporter data (MITM)", plus, cb, true, "p=tls-exporter", bytes.Repeat([]byte{8}, 32), NotAuthorized, "channel-bindings-dont-match"},
		{"endpoint data under exporter name", plus, cb, true, "p=tls-exporter", cb.EndPoint, NotAuthorized, "channel-bindings-dont-match"},
		{"missing cb data", plus, cb, true, "p=tls-server-end-point", nil, NotAuthorized, "channel-bindings-dont-match"},
		{"invalid cb name", plus, cb, true, "p=tls_exporter", nil, MalformedRequest, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &testClient{h: SHA256, user: "u", password: "pw", flag: tc.flag, cbData: tc.cbData, nonce: "nonce"}
			_, _, err := exchange(t, tc.m, tc.cb, tc.plusAdvertised, creds, c)
			f := wantFailure(t, err, tc.cond)
			if tc.text != "" && f.Text != tc.text {
				t.Fatalf("text = %q, want %q", f.Text, tc.text)
			}
		})
	}
	// 'y' is fine when we did not advertise -PLUS (e.g. no TLS binding).
	c := &testClient{h: SHA256, user: "u", password: "pw", flag: "y", nonce: "nonce"}
	if _, _, err := exchange(t, noPlus, ChannelBinding{}, false, creds, c); err != nil {
		t.Fatalf("y without plusAdvertised: %v", err)
	}
}

// serverAt runs an exchange up to the point where the client-final-message
// is due and returns the server, the correct final message and the
// server-first-message.
func serverAt(t testing.TB, clientFirst string) (*SCRAM, []byte) {
	creds := serverAtCreds()
	s := NewSCRAM(mech(t, "SCRAM-SHA-256"), ChannelBinding{}, false)
	c := &testClient{h: SHA256, user: "u", password: "pw", flag: "n", nonce: "cnonce"}
	first := c.first()
	if clientFirst != "" {
		first = []byte(clientFirst)
	}
	if _, _, err := s.ClientFirst(first); err != nil {
		t.Fatal(err)
	}
	sf, err := s.serverFirstWithNonce(creds, "SNONCE")
	if err != nil {
		t.Fatal(err)
	}
	cf, err := c.final(sf)
	if err != nil {
		t.Fatal(err)
	}
	return s, cf
}

var serverAtCreds = sync.OnceValue(func() Credentials {
	return DeriveCredentials(SHA256, "pw", []byte("saltsaltsaltsalt"), 4096)
})

// serverReady is serverAt without the client side, for fuzzing: the
// server state is identical because nonces are fixed.
func serverReady(t testing.TB) *SCRAM {
	s := NewSCRAM(mech(t, "SCRAM-SHA-256"), ChannelBinding{}, false)
	if _, _, err := s.ClientFirst([]byte("n,,n=u,r=cnonce")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.serverFirstWithNonce(serverAtCreds(), "SNONCE"); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestClientFinalValidation(t *testing.T) {
	_, good := serverAt(t, "")
	// Computed independently with Python's hashlib.pbkdf2_hmac and hmac.
	const pythonGood = "c=biws,r=cnonceSNONCE,p=rS3Y9+qdLdCatalXmSa1bTtRou9zqRcDRoJMYAiHZK8="
	if string(good) != pythonGood {
		t.Fatalf("test client final %q, want %q", good, pythonGood)
	}
	goodStr := string(good)
	cPart, rest, _ := strings.Cut(goodStr, ",r=")
	nonce, proof, _ := strings.Cut(rest, ",p=")
	tests := []struct {
		name, msg, cond string
	}{
		{"empty", "", MalformedRequest},
		{"no proof", cPart + ",r=" + nonce, MalformedRequest},
		{"no c", "r=" + nonce + ",p=" + proof, MalformedRequest},
		{"no r", cPart + ",p=" + proof, MalformedRequest},
		{"bad c base64", "c=b!ws,r=" + nonce + ",p=" + proof, MalformedRequest},
		{"bad proof base64", cPart + ",r=" + nonce + ",p=" + proof[1:], MalformedRequest},
		{"short proof", cPart + ",r=" + nonce + ",p=AAAA", MalformedRequest},
		{"client nonce only", cPart + ",r=cnonce,p=" + proof, NotAuthorized},
		{"nonce extended", cPart + ",r=" + nonce + "x,p=" + proof, NotAuthorized},
		{"c for y header", "c=eSws,r=" + nonce + ",p=" + proof, NotAuthorized},
		{"c with authzid", "c=" + base64.StdEncoding.EncodeToString([]byte("n,a=x,")) + ",r=" + nonce + ",p=" + proof, NotAuthorized},
		{"extension changes auth message", cPart + ",r=" + nonce + ",x=1,p=" + proof, NotAuthorized},
		{"reserved m extension", cPart + ",r=" + nonce + ",m=1,p=" + proof, MalformedRequest},
		{"NUL in extension", cPart + ",r=" + nonce + ",x=\x00,p=" + proof, MalformedRequest},
		{"empty extension value", cPart + ",r=" + nonce + ",x=,p=" + proof, MalformedRequest},
		{"trailing comma before proof", cPart + ",r=" + nonce + ",,p=" + proof, MalformedRequest},
		{"flipped proof bit", cPart + ",r=" + nonce + ",p=" + flipB64(proof), NotAuthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := serverAt(t, "")
			_, err := s.ClientFinal([]byte(tc.msg))
			wantFailure(t, err, tc.cond)
			// Any failure ends the exchange: the correct message no longer works.
			if _, err := s.ClientFinal(good); err == nil {
				t.Fatal("exchange continued after failure")
			}
		})
	}
	s, _ := serverAt(t, "")
	if _, err := s.ClientFinal(good); err != nil {
		t.Fatalf("good message rejected: %v", err)
	}
	if _, err := serverReady(t).ClientFinal(good); err != nil {
		t.Fatalf("serverReady state differs from serverAt: %v", err)
	}
	if _, err := s.ClientFinal(good); err == nil {
		t.Fatal("replayed client-final accepted on a finished exchange")
	}
}

func flipB64(s string) string {
	b := mustB64(s)
	b[0] ^= 1
	return base64.StdEncoding.EncodeToString(b)
}

func TestClientFirstValidation(t *testing.T) {
	cb := ChannelBinding{Exporter: bytes.Repeat([]byte{7}, 32)}
	tests := []struct {
		msg       string
		user, az  string
		cond      string // "" means success
		plusMech  bool
		plusAdvtd bool
	}{
		{msg: "n,,n=user,r=abc", user: "user"},
		{msg: "n,,n=User,r=abc", user: "user"},       // case-mapped
		{msg: "n,,n=ｕｓｅｒ,r=abc", user: "user"},       // width-mapped
		{msg: "n,,n=a=2Cb=3Dc,r=abc", user: "a,b=c"}, // escapes
		{msg: "n,a=juliet@example.com,n=user,r=abc", user: "user", az: "juliet@example.com"},
		{msg: "n,a=x=3Dy=2Cz,n=user,r=abc", user: "user", az: "x=y,z"},
		{msg: "n,,n=user,r=abc,x=ext,y==", user: "user"}, // optional extensions allowed
		{msg: "n,,n=user,r=abc,x=", cond: MalformedRequest},
		{msg: "n,,n=us\x00er,r=abc", cond: MalformedRequest},
		{msg: "n,a=x\x00,n=user,r=abc", cond: MalformedRequest},
		{msg: "p=tls-exporter,,n=user,r=abc", user: "user", plusMech: true},
		{msg: "y,,n=user,r=abc", user: "user"},
		{msg: "", cond: MalformedRequest},
		{msg: "n", cond: MalformedRequest},
		{msg: "n,", cond: MalformedRequest},
		{msg: "n,,", cond: MalformedRequest},
		{msg: "x,,n=user,r=abc", cond: MalformedRequest},
		{msg: "F,n,,n=user,r=abc", cond: MalformedRequest}, // gs2-nonstd-flag not in SCRAM
		{msg: "p=,,n=user,r=abc", cond: MalformedRequest, plusMech: true},
		{msg: "n,b=x,n=user,r=abc", cond: MalformedRequest},
		{msg: "n,a=,n=user,r=abc", cond: MalformedRequest},
		{msg: "n,a=x=41,n=user,r=abc", cond: MalformedRequest},
		{msg: "n,,n=,r=abc", cond: MalformedRequest},
		{msg: "n,,n=a=41,r=abc", cond: MalformedRequest},
		{msg: "n,,n=a=2,r=abc", cond: MalformedRequest},
		{msg: "n,,n=a=,r=abc", cond: MalformedRequest},
		{msg: "n,,n=a=2c,r=abc", cond: MalformedRequest}, // escapes are upper case
		{msg: "n,,r=abc,n=user", cond: MalformedRequest},
		{msg: "n,,n=user", cond: MalformedRequest},
		{msg: "n,,n=user,r=", cond: MalformedRequest},
		{msg: "n,,n=user,r=a b", cond: MalformedRequest},
		{msg: "n,,n=user,r=ab\x7f", cond: MalformedRequest},
		{msg: "n,,n=user,r=abc,", cond: MalformedRequest},
		{msg: "n,,n=user,r=abc,m=1", cond: MalformedRequest},
		{msg: "n,,n=user,r=abc,1=x", cond: MalformedRequest},
		{msg: "n,,m=ext,n=user,r=abc", cond: MalformedRequest},
		{msg: "n,,n=us\xffer,r=abc", cond: MalformedRequest},
		{msg: "n,,n=user name,r=abc", cond: NotAuthorized}, // not a valid username
		{msg: "n,,n=\u2163,r=abc", cond: NotAuthorized},
		{msg: "n,,n=user,r=" + strings.Repeat("a", maxMessageLen), cond: MalformedRequest},
	}
	for _, tc := range tests {
		name := "SCRAM-SHA-1"
		if tc.plusMech {
			name += "-PLUS"
		}
		s := NewSCRAM(mech(t, name), cb, tc.plusAdvtd)
		user, az, err := s.ClientFirst([]byte(tc.msg))
		if tc.cond == "" {
			if err != nil || user != tc.user || az != tc.az {
				t.Errorf("ClientFirst(%q) = %q, %q, %v; want %q, %q", tc.msg, user, az, err, tc.user, tc.az)
			}
			continue
		}
		var f *Failure
		if !errors.As(err, &f) || f.Condition != tc.cond {
			t.Errorf("ClientFirst(%q) = %q, %q, %v; want %s", tc.msg, user, az, err, tc.cond)
		}
	}
}

func TestClientNonceIsEchoed(t *testing.T) {
	s := NewSCRAM(mech(t, "SCRAM-SHA-1"), ChannelBinding{}, false)
	if _, _, err := s.ClientFirst([]byte("n,,n=user,r=CLIENTNONCE,x=ext")); err != nil {
		t.Fatal(err)
	}
	creds := DeriveCredentials(SHA1, "pw", []byte("s"), 4096)
	sf, err := s.ServerFirst(creds, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, _, _ := strings.Cut(string(sf), ",")
	if !strings.HasPrefix(r, "r=CLIENTNONCE") || len(r) < len("r=CLIENTNONCE")+24 || strings.ContainsAny(r[2:], ", ") {
		t.Fatalf("server-first nonce %q", r)
	}
	// Two exchanges get different server nonces.
	s2 := NewSCRAM(mech(t, "SCRAM-SHA-1"), ChannelBinding{}, false)
	s2.ClientFirst([]byte("n,,n=user,r=CLIENTNONCE"))
	sf2, _ := s2.ServerFirst(creds, rand.Reader)
	if bytes.Equal(sf, sf2) {
		t.Fatal("server nonce repeated")
	}
}

func TestStepOrder(t *testing.T) {
	creds := DeriveCredentials(SHA1, "pw", []byte("salt"), 4096)
	s := NewSCRAM(mech(t, "SCRAM-SHA-1"), ChannelBinding{}, false)
	if _, err := s.ServerFirst(creds, rand.Reader); err == nil {
		t.Fatal("ServerFirst before ClientFirst succeeded")
	}
	s = NewSCRAM(mech(t, "SCRAM-SHA-1"), ChannelBinding{}, false)
	if _, err := s.ClientFinal([]byte("c=biws,r=x,p=AAAA")); err == nil {
		t.Fatal("ClientFinal before ClientFirst succeeded")
	}
	s = NewSCRAM(mech(t, "SCRAM-SHA-1"), ChannelBinding{}, false)
	s.ClientFirst([]byte("n,,n=u,r=x"))
	if _, _, err := s.ClientFirst([]byte("n,,n=u,r=x")); err == nil {
		t.Fatal("second ClientFirst succeeded")
	}
	// Credentials of the wrong hash are a caller bug.
	s = NewSCRAM(mech(t, "SCRAM-SHA-256"), ChannelBinding{}, false)
	s.ClientFirst([]byte("n,,n=u,r=x"))
	_, err := s.ServerFirst(creds, rand.Reader)
	wantFailure(t, err, TemporaryAuthFailure)
	// A failing random source must not produce a predictable nonce.
	s = NewSCRAM(mech(t, "SCRAM-SHA-1"), ChannelBinding{}, false)
	s.ClientFirst([]byte("n,,n=u,r=x"))
	_, err = s.ServerFirst(creds, io.LimitReader(rand.Reader, 3))
	wantFailure(t, err, TemporaryAuthFailure)
	// PLAIN is not a SCRAM mechanism.
	s = NewSCRAM(mech(t, "PLAIN"), ChannelBinding{}, false)
	_, _, err = s.ClientFirst([]byte("n,,n=u,r=x"))
	wantFailure(t, err, InvalidMechanism)
}

func TestChannelBindingType(t *testing.T) {
	s := NewSCRAM(mech(t, "SCRAM-SHA-1-PLUS"), ChannelBinding{EndPoint: []byte{1}}, true)
	if _, _, err := s.ClientFirst([]byte("p=tls-server-end-point,a=x,n=u,r=x")); err != nil {
		t.Fatal(err)
	}
	if got := s.ChannelBindingType(); got != CBTLSServerEndPoint {
		t.Fatalf("ChannelBindingType = %q", got)
	}
	s = NewSCRAM(mech(t, "SCRAM-SHA-1"), ChannelBinding{}, false)
	s.ClientFirst([]byte("n,,n=u,r=x"))
	if got := s.ChannelBindingType(); got != "" {
		t.Fatalf("ChannelBindingType = %q", got)
	}
}

// constReader yields the same bytes forever so that a benchmark can replay
// a precomputed client-final-message against fresh servers.
type constReader struct{}

func (constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

// BenchmarkSCRAMSHA256Exchange measures the server side of one full
// SCRAM-SHA-256 exchange with stored credentials: no PBKDF2 is involved.
func BenchmarkSCRAMSHA256Exchange(b *testing.B) {
	creds := DeriveCredentials(SHA256, "pencil", []byte("0123456789abcdef"), DefaultIterations)
	m, _ := Lookup("SCRAM-SHA-256")
	c := &testClient{h: SHA256, user: "user", password: "pencil", flag: "n", nonce: "rOprNGfwEbeRWgbNEkqO"}
	first := c.first()
	s := NewSCRAM(m, ChannelBinding{}, false)
	s.ClientFirst(first)
	sf, _ := s.ServerFirst(creds, constReader{})
	final, err := c.final(sf)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s := NewSCRAM(m, ChannelBinding{}, false)
		if _, _, err := s.ClientFirst(first); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ServerFirst(creds, constReader{}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ClientFinal(final); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyPassword shows the PLAIN cost (one PBKDF2 per attempt) for
// comparison.
func BenchmarkVerifyPassword(b *testing.B) {
	creds := DeriveCredentials(SHA256, "pencil", []byte("0123456789abcdef"), DefaultIterations)
	b.ReportAllocs()
	for b.Loop() {
		if !VerifyPassword(creds, "pencil") {
			b.Fatal("verify failed")
		}
	}
}
