package actors

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/config"
)

// TestTLSPostQuantumKeyExchange checks [tls] post_quantum against a Go client, which offers key shares for both
// X25519MLKEM768 and X25519: the hybrid is chosen by default, plain X25519 without it.
func TestTLSPostQuantumKeyExchange(t *testing.T) {
	for _, tc := range []struct {
		postQuantum bool
		want        tls.CurveID
	}{{true, tls.X25519MLKEM768}, {false, tls.X25519}} {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.TLS.PostQuantum = tc.postQuantum
		cs, err := loadCertificate(&cfg, nil, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		a, b := net.Pipe()
		srv := tls.Server(a, cs.serverTLSConfig())
		cli := tls.Client(b, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
		errc := make(chan error, 1)
		go func() { errc <- srv.Handshake() }()
		if err := cli.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if got := cli.ConnectionState().CurveID; got != tc.want {
			t.Errorf("post_quantum = %v: key exchange %v, want %v", tc.postQuantum, got, tc.want)
		}
		cli.Close()
		srv.Close()
	}
}
