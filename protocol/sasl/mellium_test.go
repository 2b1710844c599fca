package sasl

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	msasl "mellium.im/sasl"
)

// tlsPair performs a real TLS handshake over an in-memory pipe and returns
// the client's and server's connection states and the server certificate.
func tlsPair(t *testing.T, version uint16) (client, server tls.ConnectionState, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "example.com"},
		DNSNames:     []string{"example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	srv := tls.Server(c1, &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		MinVersion:   version, MaxVersion: version,
	})
	cli := tls.Client(c2, &tls.Config{RootCAs: pool, ServerName: "example.com", MinVersion: version, MaxVersion: version})
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return cli.ConnectionState(), srv.ConnectionState(), cert
}

func TestTLSChannelBinding(t *testing.T) {
	cs, ss, cert := tlsPair(t, tls.VersionTLS13)
	cb := TLSChannelBinding(&ss, cert)
	want, err := cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cb.Exporter, want) {
		t.Fatal("server and client exporter values differ")
	}
	sum := sha256.Sum256(cs.PeerCertificates[0].Raw) // ECDSA-SHA256 → SHA-256 (RFC 5929 §4.1)
	if !bytes.Equal(cb.EndPoint, sum[:]) {
		t.Fatal("tls-server-end-point is not SHA-256 of the certificate the client saw")
	}
	if got := TLSChannelBinding(nil, nil); got.Exporter != nil || got.EndPoint != nil {
		t.Fatal("binding without TLS")
	}
	md5 := &x509.Certificate{Raw: []byte("x"), SignatureAlgorithm: x509.SHA1WithRSA}
	if s := sha256.Sum256([]byte("x")); !bytes.Equal(TLSServerEndPoint(md5), s[:]) {
		t.Fatal("SHA-1 signature must be upgraded to SHA-256")
	}
	if len(TLSServerEndPoint(&x509.Certificate{Raw: []byte("x"), SignatureAlgorithm: x509.ECDSAWithSHA384})) != 48 {
		t.Fatal("ECDSA-SHA384 must use SHA-384")
	}
	if TLSServerEndPoint(&x509.Certificate{Raw: []byte("x"), SignatureAlgorithm: x509.PureEd25519}) != nil {
		t.Fatal("Ed25519 has no defined tls-server-end-point hash")
	}
}

// TestMelliumClient cross-tests the server against the independent SCRAM
// client of mellium.im/sasl. mellium has no SCRAM-SHA-512 and no
// tls-server-end-point; those are covered by the test client instead.
func TestMelliumClient(t *testing.T) {
	cs, ss, cert := tlsPair(t, tls.VersionTLS13)
	cb := TLSChannelBinding(&ss, cert)
	for _, tc := range []struct {
		m      msasl.Mechanism
		plus   bool
		cbType string
	}{
		{msasl.ScramSha1, false, ""},
		{msasl.ScramSha256, false, ""},
		{msasl.ScramSha1Plus, true, CBTLSExporter},
		{msasl.ScramSha256Plus, true, CBTLSExporter},
	} {
		t.Run(tc.m.Name, func(t *testing.T) {
			m := mech(t, tc.m.Name)
			for _, pw := range []string{"pencil", "wrong"} {
				creds := DeriveCredentials(m.Hash, "pencil", []byte("0123456789abcdef"), 4096)
				client := msasl.NewClient(tc.m,
					msasl.Credentials(func() ([]byte, []byte, []byte) {
						return []byte("Juliet,=x"), []byte(pw), []byte("juliet@example.com")
					}),
					msasl.TLSState(cs),
					msasl.RemoteMechanisms(Offered(cb.Types(), false)...),
				)
				_, first, err := client.Step(nil)
				if err != nil {
					t.Fatal(err)
				}
				s := NewSCRAM(m, cb, true)
				user, authz, err := s.ClientFirst(first)
				if err != nil {
					t.Fatalf("ClientFirst(%q): %v", first, err)
				}
				if user != "juliet,=x" || authz != "juliet@example.com" {
					t.Fatalf("user, authzid = %q, %q", user, authz)
				}
				if got := s.ChannelBindingType(); got != tc.cbType {
					t.Fatalf("channel binding type %q, want %q", got, tc.cbType)
				}
				sf, err := s.ServerFirst(creds, rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				_, final, err := client.Step(sf)
				if err != nil {
					t.Fatalf("mellium rejected server-first %q: %v", sf, err)
				}
				v, err := s.ClientFinal(final)
				if pw == "wrong" {
					wantFailure(t, err, NotAuthorized)
					continue
				}
				if err != nil {
					t.Fatalf("ClientFinal(%q): %v", final, err)
				}
				more, _, err := client.Step(v)
				if err != nil || more {
					t.Fatalf("mellium rejected server-final %q: more=%v err=%v", v, more, err)
				}
			}
		})
	}
}

// TestMelliumPlusWrongConnection: a client on a different TLS connection
// (as behind a MITM proxy) has different tls-exporter data and must fail.
func TestMelliumPlusWrongConnection(t *testing.T) {
	cs, _, _ := tlsPair(t, tls.VersionTLS13)
	_, ss2, cert2 := tlsPair(t, tls.VersionTLS13)
	cb := TLSChannelBinding(&ss2, cert2)
	client := msasl.NewClient(msasl.ScramSha256Plus,
		msasl.Credentials(func() ([]byte, []byte, []byte) { return []byte("u"), []byte("pw"), nil }),
		msasl.TLSState(cs), msasl.RemoteMechanisms("SCRAM-SHA-256-PLUS"))
	_, first, _ := client.Step(nil)
	s := NewSCRAM(mech(t, "SCRAM-SHA-256-PLUS"), cb, true)
	if _, _, err := s.ClientFirst(first); err != nil {
		t.Fatal(err)
	}
	sf, err := s.ServerFirst(DeriveCredentials(SHA256, "pw", []byte("salt"), 4096), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, final, err := client.Step(sf)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.ClientFinal(final)
	if f := wantFailure(t, err, NotAuthorized); f.Text != "channel-bindings-dont-match" {
		t.Fatalf("text %q", f.Text)
	}
}

// TestMelliumTLS12Unique: on TLS 1.2 mellium binds with tls-unique (RFC 5929
// §3, the RFC 5802 default before TLS 1.3), which the server supports there;
// the same data from another connection (a MITM) is refused.
func TestMelliumTLS12Unique(t *testing.T) {
	cs, ss, cert := tlsPair(t, tls.VersionTLS12)
	cb := TLSChannelBinding(&ss, cert)
	if cb.Unique == nil || cb.EndPoint == nil {
		t.Fatalf("TLS 1.2 binding types %v, want tls-unique and tls-server-end-point", cb.Types())
	}
	_, other, otherCert := tlsPair(t, tls.VersionTLS12)
	for _, tc := range []struct {
		name string
		cb   ChannelBinding
		err  string
	}{
		{"same connection", cb, ""},
		{"other connection", TLSChannelBinding(&other, otherCert), "channel-bindings-dont-match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := msasl.NewClient(msasl.ScramSha256Plus,
				msasl.Credentials(func() ([]byte, []byte, []byte) { return []byte("u"), []byte("pw"), nil }),
				msasl.TLSState(cs), msasl.RemoteMechanisms("SCRAM-SHA-256-PLUS"))
			_, first, err := client.Step(nil)
			if err != nil {
				t.Fatal(err)
			}
			s := NewSCRAM(mech(t, "SCRAM-SHA-256-PLUS"), tc.cb, true)
			if _, _, err := s.ClientFirst(first); err != nil {
				t.Fatalf("ClientFirst(%q): %v", first, err)
			}
			if got := s.ChannelBindingType(); got != CBTLSUnique {
				t.Fatalf("mellium chose %q on TLS 1.2, want tls-unique", got)
			}
			sf, err := s.ServerFirst(DeriveCredentials(SHA256, "pw", []byte("salt"), 4096), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			_, final, err := client.Step(sf)
			if err != nil {
				t.Fatal(err)
			}
			v, err := s.ClientFinal(final)
			if tc.err != "" {
				if f := wantFailure(t, err, NotAuthorized); f.Text != tc.err {
					t.Fatalf("text %q, want %q", f.Text, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ClientFinal: %v", err)
			}
			if more, _, err := client.Step(v); err != nil || more {
				t.Fatalf("mellium rejected server-final %q: more=%v err=%v", v, more, err)
			}
		})
	}
}
