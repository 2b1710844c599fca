package sasl

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
)

func FuzzClientFirst(f *testing.F) {
	for _, s := range []string{
		"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
		"y,,n=user,r=abc",
		"p=tls-exporter,,n=user,r=abc",
		"p=tls-server-end-point,a=juliet@example.com,n=u=2Cv=3D,r=abc,x=1",
		"n,a=x=3D,n=user,r=abc",
		"n,,m=x,n=user,r=abc",
		"n,,n=a=41,r=abc",
		"p=tls-unique,,n=user,r=abc",
	} {
		f.Add([]byte(s))
	}
	cb := ChannelBinding{Exporter: bytes.Repeat([]byte{1}, 32), Unique: bytes.Repeat([]byte{3}, 12), EndPoint: bytes.Repeat([]byte{2}, 32)}
	creds := DeriveCredentials(SHA256, "pw", []byte("salt"), 1)
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, name := range []string{"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"} {
			m, _ := Lookup(name)
			s := NewSCRAM(m, cb, true)
			user, authzid, err := s.ClientFirst(msg)
			if err != nil {
				if _, ok := err.(*Failure); !ok {
					t.Fatalf("error %T is not *Failure", err)
				}
				continue
			}
			if user == "" {
				t.Fatal("accepted empty username")
			}
			if !bytes.HasSuffix(msg, s.clientFirstBare) || !bytes.HasPrefix(msg, s.gs2Header) ||
				len(s.gs2Header)+len(s.clientFirstBare) != len(msg) {
				t.Fatalf("gs2 header %q + bare %q != message %q", s.gs2Header, s.clientFirstBare, msg)
			}
			if !validNonce(s.clientNonce) || !bytes.Contains(s.clientFirstBare, append([]byte(",r="), s.clientNonce...)) {
				t.Fatalf("client nonce %q not taken from %q", s.clientNonce, msg)
			}
			if m.Plus != (s.ChannelBindingType() != "") {
				t.Fatalf("%s accepted with cb type %q", name, s.ChannelBindingType())
			}
			if authzid != "" && !strings.Contains(string(msg), "a=") {
				t.Fatal("authzid without a=")
			}
			sf, err := s.ServerFirst(creds, rand.Reader)
			if err != nil || !bytes.HasPrefix(sf, append([]byte("r="), s.clientNonce...)) {
				t.Fatalf("ServerFirst = %q, %v", sf, err)
			}
		}
	})
}

func FuzzClientFinal(f *testing.F) {
	_, good := serverAt(f, "")
	f.Add(good)
	f.Add([]byte("c=biws,r=cnonceSNONCE,p=AAAA"))
	f.Add([]byte("c=biws,r=cnonceSNONCE,x=y,p=" + strings.Repeat("A", 44)))
	f.Add([]byte("c=eSws,r=cnonce,p="))
	f.Fuzz(func(t *testing.T, msg []byte) {
		s := serverReady(t)
		v, err := s.ClientFinal(msg)
		if err != nil {
			if _, ok := err.(*Failure); !ok {
				t.Fatalf("error %T is not *Failure", err)
			}
			return
		}
		// Only the one correct message can carry a valid proof.
		if !bytes.Equal(msg, good) {
			t.Fatalf("accepted forged client-final %q", msg)
		}
		if !bytes.HasPrefix(v, []byte("v=")) {
			t.Fatalf("server-final %q", v)
		}
	})
}

func FuzzParsePlain(f *testing.F) {
	for _, s := range []string{"\x00tim\x00tanstaaftanstaaf", "Ursel\x00Kurt\x00xipj3plmq", "\x00\x00", "a\x00b\x00c\x00d", "\x00ｊｕｌｉｅｔ\x00p"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		az, ac, pw, err := ParsePlain(msg)
		if err != nil {
			if _, ok := err.(*Failure); !ok {
				t.Fatalf("error %T is not *Failure", err)
			}
			return
		}
		if ac == "" || pw == "" || strings.ContainsRune(az+ac+pw, 0) {
			t.Fatalf("ParsePlain(%q) = %q, %q, %q", msg, az, ac, pw)
		}
		if !bytes.HasPrefix(msg, []byte(az+"\x00")) || !bytes.HasSuffix(msg, []byte("\x00"+pw)) {
			t.Fatalf("authzid/password not taken verbatim from %q", msg)
		}
	})
}
