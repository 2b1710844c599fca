package sasl

import (
	"bytes"
	"crypto/tls"
	"slices"
	"testing"
)

// tls-unique (RFC 5929 §3) exists on TLS 1.2 only: RFC 8446 §C.5 and RFC 9266
// leave it undefined for TLS 1.3, where tls-exporter takes its place.
func TestTLSChannelBindingVersions(t *testing.T) {
	cs, ss, cert := tlsPair(t, tls.VersionTLS12)
	cb := TLSChannelBinding(&ss, cert)
	if len(cs.TLSUnique) == 0 || !bytes.Equal(cb.Unique, cs.TLSUnique) {
		t.Fatalf("server tls-unique %x, client sees %x", cb.Unique, cs.TLSUnique)
	}
	// crypto/tls negotiates extended master secret, so tls-exporter is
	// defined on this TLS 1.2 connection too (RFC 9266 §3).
	if want := []string{CBTLSExporter, CBTLSUnique, CBTLSServerEndPoint}; !slices.Equal(cb.Types(), want) {
		t.Fatalf("TLS 1.2 types %v, want %v", cb.Types(), want)
	}
	ss.TLSUnique[0] ^= 0xff
	if cb.Unique[0] == ss.TLSUnique[0] {
		t.Fatal("Unique aliases the connection state")
	}

	_, ss13, cert13 := tlsPair(t, tls.VersionTLS13)
	cb13 := TLSChannelBinding(&ss13, cert13)
	if cb13.Unique != nil {
		t.Fatal("tls-unique on TLS 1.3")
	}
	if want := []string{CBTLSExporter, CBTLSServerEndPoint}; !slices.Equal(cb13.Types(), want) {
		t.Fatalf("TLS 1.3 types %v, want %v", cb13.Types(), want)
	}
}

// A full SCRAM-PLUS exchange with tls-unique for every hash, with our own
// client: the right data succeeds, data of another connection fails, and a
// client that only knows tls-unique gets unsupported-channel-binding-type on
// a connection without it (TLS 1.3) rather than a silently unbound login.
func TestSCRAMTLSUnique(t *testing.T) {
	_, ss, cert := tlsPair(t, tls.VersionTLS12)
	cb := TLSChannelBinding(&ss, cert)
	_, ss13, cert13 := tlsPair(t, tls.VersionTLS13)
	cb13 := TLSChannelBinding(&ss13, cert13)
	for _, h := range Hashes {
		m := mech(t, "SCRAM-"+h.String()+"-PLUS")
		creds := DeriveCredentials(h, "pw", []byte("saltsaltsaltsalt"), 4096)
		t.Run(m.Name, func(t *testing.T) {
			c := &testClient{h: h, user: "u", password: "pw", flag: "p=tls-unique", cbData: cb.Unique, nonce: "nonce"}
			if _, _, err := exchange(t, m, cb, true, creds, c); err != nil {
				t.Fatalf("tls-unique exchange: %v", err)
			}
			wrong := append([]byte(nil), cb.Unique...)
			wrong[len(wrong)-1] ^= 1
			c = &testClient{h: h, user: "u", password: "pw", flag: "p=tls-unique", cbData: wrong, nonce: "nonce"}
			_, _, err := exchange(t, m, cb, true, creds, c)
			if f := wantFailure(t, err, NotAuthorized); f.Text != "channel-bindings-dont-match" {
				t.Fatalf("text %q", f.Text)
			}
			c = &testClient{h: h, user: "u", password: "pw", flag: "p=tls-unique", cbData: make([]byte, 12), nonce: "nonce"}
			_, _, err = exchange(t, m, cb13, true, creds, c)
			if f := wantFailure(t, err, NotAuthorized); f.Text != "unsupported-channel-binding-type" {
				t.Fatalf("text %q", f.Text)
			}
		})
	}
}

// Supporting tls-unique changes nothing about downgrade protection: with -PLUS
// advertised, "y" fails on TLS 1.2 and on TLS 1.3 alike (RFC 5802 §6), for
// every hash.
func TestSCRAMYFlagRefusedWhenPlusOffered(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		_, ss, cert := tlsPair(t, v)
		cb := TLSChannelBinding(&ss, cert)
		if !slices.Contains(Offered(cb.Types(), true), "SCRAM-SHA-256-PLUS") {
			t.Fatalf("%s: -PLUS not offered with types %v", tls.VersionName(v), cb.Types())
		}
		for _, h := range Hashes {
			creds := DeriveCredentials(h, "pw", []byte("saltsaltsaltsalt"), 4096)
			c := &testClient{h: h, user: "u", password: "pw", flag: "y", nonce: "nonce"}
			_, _, err := exchange(t, mech(t, "SCRAM-"+h.String()), cb, true, creds, c)
			if f := wantFailure(t, err, NotAuthorized); f.Text != "server-does-support-channel-binding" {
				t.Fatalf("%s %s: text %q", tls.VersionName(v), h, f.Text)
			}
		}
	}
}
