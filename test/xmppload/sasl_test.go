package xmppload

import (
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"testing"

	"mellium.im/sasl"
)

// RFC 5802 §5 and RFC 7677 §3 example exchanges.
func TestSCRAMRFCVectors(t *testing.T) {
	for _, tc := range []struct {
		mech, nonce, serverFirst, clientFinal, serverFinal string
	}{
		{"SCRAM-SHA-1", "fyko+d2lbbFgONRv9qkxdawL",
			"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
			"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
			"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="},
		{"SCRAM-SHA-256", "rOprNGfwEbeRWgbNEkqO",
			"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="},
	} {
		t.Run(tc.mech, func(t *testing.T) {
			c := &saslClient{mech: saslMechs[tc.mech], user: "user", password: "pencil", nonce: tc.nonce, cache: &saltCache{}}
			if got := string(c.initial()); got != "n,,n=user,r="+tc.nonce {
				t.Fatalf("client-first %q", got)
			}
			got, err := c.challenge([]byte(tc.serverFirst))
			if err != nil || string(got) != tc.clientFinal {
				t.Fatalf("client-final %q, %v", got, err)
			}
			if err := c.verify([]byte(tc.serverFinal)); err != nil {
				t.Fatalf("verify: %v", err)
			}
			if err := c.verify([]byte("v=AAAA")); !errors.Is(err, errSASLServer) {
				t.Fatalf("forged server signature accepted: %v", err)
			}
		})
	}
}

// The client against mellium's SCRAM server, including the salt cache on a
// second login of the same account.
func TestSCRAMAgainstMellium(t *testing.T) {
	for _, tc := range []struct {
		mech   string
		server sasl.Mechanism
		hash   func() []byte
	}{
		{"SCRAM-SHA-1", sasl.ScramSha1, nil},
		{"SCRAM-SHA-256", sasl.ScramSha256, nil},
	} {
		t.Run(tc.mech, func(t *testing.T) {
			salt, iter := []byte("0123456789abcdef"), 4096
			var sp []byte
			if tc.mech == "SCRAM-SHA-1" {
				sp = sasl.SCRAMSaltPassword(sha1.New, []byte("pw"), salt, iter)
			} else {
				sp = sasl.SCRAMSaltPassword(sha256.New, []byte("pw"), salt, iter)
			}
			cache := &saltCache{}
			for round := 0; round < 2; round++ {
				srv := sasl.NewServer(tc.server, nil, sasl.SaltedCredentials(func(user, _ []byte, _ string) ([]byte, []byte, int64, error) {
					if string(user) != "u1" {
						return nil, nil, 0, errors.New("unknown user")
					}
					return salt, sp, int64(iter), nil
				}))
				c := &saslClient{mech: saslMechs[tc.mech], user: "u1", password: "pw", cache: cache}
				_, sf, err := srv.Step(c.initial())
				if err != nil {
					t.Fatalf("server first: %v", err)
				}
				cf, err := c.challenge(sf)
				if err != nil {
					t.Fatalf("challenge: %v", err)
				}
				more, fin, err := srv.Step(cf)
				if err != nil || more {
					t.Fatalf("server final: more=%v err=%v", more, err)
				}
				if err := c.verify(fin); err != nil {
					t.Fatalf("verify: %v", err)
				}
			}
			if len(cache.m) != 1 {
				t.Fatalf("salt cache has %d entries, want 1", len(cache.m))
			}
		})
	}
}

func TestSCRAMRejectsBadServerFirst(t *testing.T) {
	for _, sf := range []string{
		"r=other,s=QSXCR+Q6sek8bf92,i=4096",  // nonce not extending ours
		"r=abc,s=QSXCR+Q6sek8bf92,i=4096",    // nonce equal to ours
		"r=abcX,s=,i=4096",                   // empty salt
		"r=abcX,s=QSXCR+Q6sek8bf92,i=0",      // bad count
		"r=abcX,s=QSXCR+Q6sek8bf92,i=999999", // above maxIter
		"m=ext,r=abcX,s=QSXCR+Q6sek8bf92,i=1",
	} {
		c := &saslClient{mech: saslMechs["SCRAM-SHA-1"], user: "u", password: "p", nonce: "abc", maxIter: 100000}
		c.initial()
		if _, err := c.challenge([]byte(sf)); err == nil {
			t.Errorf("accepted server-first %q", sf)
		}
	}
}

func TestPlainAndMechChoice(t *testing.T) {
	c := &saslClient{mech: saslMechs["PLAIN"], user: "u1", password: "pw"}
	if got := string(c.initial()); got != "\x00u1\x00pw" {
		t.Fatalf("PLAIN initial %q", got)
	}
	for _, tc := range []struct {
		want    string
		offered []string
		got     string
		ok      bool
	}{
		{"auto", []string{"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"}, "SCRAM-SHA-256", true},
		{"auto", []string{"PLAIN", "SCRAM-SHA-1"}, "SCRAM-SHA-1", true},
		{"auto", []string{"X-OAUTH2"}, "", false},
		{"plain", []string{"PLAIN", "SCRAM-SHA-1"}, "PLAIN", true},
		{"SCRAM-SHA-256", []string{"SCRAM-SHA-1"}, "", false},
		{"DIGEST-MD5", []string{"DIGEST-MD5"}, "", false},
	} {
		m, err := chooseMech(tc.want, tc.offered)
		if (err == nil) != tc.ok || m.name != tc.got {
			t.Errorf("chooseMech(%q, %v) = %q, %v", tc.want, tc.offered, m.name, err)
		}
	}
	if saslEscapeName("a=b,c") != "a=3Db=2Cc" {
		t.Fatal("saslname escaping")
	}
}
