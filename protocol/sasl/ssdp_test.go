package sasl

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

func TestDowngradeHash(t *testing.T) {
	for _, tc := range []struct {
		name        string
		h           Hash
		mechs, cbs  []string
		cbAdvertise bool
		want        string // the hashed string; "" = use wantB64
		wantB64     string
	}{
		// The XEP-0474 §4.3 example: SHA-1 of 'SCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter\x1etls-server-end-point'.
		{name: "xep example", h: SHA1, mechs: []string{"SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"},
			cbs: []string{"tls-server-end-point", "tls-exporter"}, cbAdvertise: true, wantB64: "G6k/rBLDqgOhRRaCuuatSDFkJ08="},
		{name: "no xep-0440", h: SHA256, mechs: []string{"SCRAM-SHA-256", "PLAIN"}, cbs: []string{"tls-exporter"},
			want: "PLAIN\x1eSCRAM-SHA-256"},
		{name: "octet order", h: SHA256, mechs: []string{"b", "B", "a"}, cbs: []string{"y", "x"}, cbAdvertise: true,
			want: "B\x1ea\x1eb\x1fx\x1ey"},
		{name: "advertised, empty list", h: SHA512, mechs: []string{"SCRAM-SHA-512"}, cbAdvertise: true,
			want: "SCRAM-SHA-512\x1f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.wantB64
			if want == "" {
				d := tc.h.New()
				d.Write([]byte(tc.want))
				want = base64.StdEncoding.EncodeToString(d.Sum(nil))
			}
			in := append([]string(nil), tc.mechs...)
			if got := DowngradeHash(tc.h, tc.mechs, tc.cbs, tc.cbAdvertise); got != want {
				t.Fatalf("DowngradeHash = %s, want %s", got, want)
			}
			if strings.Join(in, ",") != strings.Join(tc.mechs, ",") {
				t.Fatal("DowngradeHash sorted the caller's slice")
			}
		})
	}
}

// The h attribute is part of server-first and therefore of AuthMessage: a client that computes its proof over
// the server-first it received (with h) succeeds, one whose AuthMessage lacks it (a MITM stripped it) fails.
func TestServerFirstCarriesDowngradeHash(t *testing.T) {
	m, _ := Lookup("SCRAM-SHA-256")
	creds := DeriveCredentials(SHA256, "pencil", []byte("salt"), 4096)
	for _, strip := range []bool{false, true} {
		s := NewSCRAM(m, ChannelBinding{}, false)
		s.SetDowngradeHash("abc=")
		if _, _, err := s.ClientFirst([]byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO")); err != nil {
			t.Fatal(err)
		}
		sf, err := s.ServerFirst(creds, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(sf, []byte(",h=abc=")) {
			t.Fatalf("server-first %q lacks h=", sf)
		}
		seen := sf
		if strip {
			seen = bytes.TrimSuffix(sf, []byte(",h=abc="))
		}
		nonce := strings.TrimPrefix(strings.Split(string(sf), ",")[0], "r=")
		withoutProof := "c=biws,r=" + nonce
		auth := "n=user,r=rOprNGfwEbeRWgbNEkqO," + string(seen) + "," + withoutProof
		salted := saltedPassword(SHA256, []byte("pencil"), []byte("salt"), 4096)
		clientKey := hmacSum(SHA256, salted, []byte("Client Key"))
		stored := sha256.Sum256(clientKey)
		sig := hmacSum(SHA256, stored[:], []byte(auth))
		proof := make([]byte, len(sig))
		for i := range proof {
			proof[i] = clientKey[i] ^ sig[i]
		}
		_, err = s.ClientFinal([]byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)))
		if strip != (err != nil) {
			t.Fatalf("strip=%v: ClientFinal err = %v", strip, err)
		}
	}
}

func TestHT(t *testing.T) {
	token, key, err := NewHTToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != HTTokenLen || len(token) <= sha256.BlockSize {
		t.Fatalf("token length %d", len(token))
	}
	cb := []byte("channel binding data")
	// The client computes the HMAC with the token itself; the server with the stored key (RFC 2104 §2).
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("Initiator"))
	m.Write(cb)
	hashed := m.Sum(nil)
	msg := append([]byte("user\x00"), hashed...)
	user, got, err := ParseHT(msg)
	if err != nil || user != "user" || !bytes.Equal(got, hashed) {
		t.Fatalf("ParseHT = %q, %x, %v", user, got, err)
	}
	if !HTVerify(key, cb, got) {
		t.Fatal("HTVerify refused the right token")
	}
	if HTVerify(key, nil, got) || HTVerify(HTKey(token+"x"), cb, got) {
		t.Fatal("HTVerify accepted another binding or token")
	}
	r := hmac.New(sha256.New, []byte(token))
	r.Write([]byte("Responder"))
	r.Write(cb)
	if !bytes.Equal(HTResponder(key, cb), r.Sum(nil)) {
		t.Fatal("HTResponder differs from HMAC(token, Responder||cb)")
	}
	for _, bad := range []string{"", "\x00" + string(hashed), "user" + string(hashed), "user\x00short", "user\x00" + string(hashed) + "x"} {
		if _, _, err := ParseHT([]byte(bad)); err == nil {
			t.Errorf("ParseHT(%q) accepted", bad)
		}
	}
}

func TestHTOffered(t *testing.T) {
	for _, tc := range []struct {
		cbs  []string
		want string
	}{
		{nil, "HT-SHA-256-NONE"},
		{[]string{CBTLSExporter, CBTLSServerEndPoint}, "HT-SHA-256-EXPR HT-SHA-256-ENDP HT-SHA-256-NONE"},
		{[]string{CBTLSUnique, CBTLSServerEndPoint}, "HT-SHA-256-UNIQ HT-SHA-256-ENDP HT-SHA-256-NONE"},
	} {
		if got := strings.Join(HTOffered(tc.cbs), " "); got != tc.want {
			t.Errorf("HTOffered(%v) = %s, want %s", tc.cbs, got, tc.want)
		}
	}
	if m, ok := LookupHT("HT-SHA-256-ENDP"); !ok || m.CB != CBTLSServerEndPoint {
		t.Fatal("LookupHT")
	}
	if _, ok := LookupHT("SCRAM-SHA-1"); ok {
		t.Fatal("LookupHT found a SCRAM mechanism")
	}
}

func FuzzParseHT(f *testing.F) {
	f.Add([]byte("user\x00" + strings.Repeat("a", 32)))
	f.Add([]byte("\x00"))
	f.Add([]byte("u\x00\x00" + strings.Repeat("b", 31)))
	f.Fuzz(func(t *testing.T, msg []byte) {
		user, hashed, err := ParseHT(msg)
		if err != nil {
			return
		}
		if user == "" || len(hashed) != sha256.Size || len(user)+1+len(hashed) != len(msg) || strings.Contains(user, "\x00") {
			t.Fatalf("ParseHT(%q) = %q, %x", msg, user, hashed)
		}
	})
}
