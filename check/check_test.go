package check

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
)

// zone is a fixed DNS table (the checks read records; the test decides which exist).
type zone struct {
	srv   map[string][]*net.SRV // "_service._tcp.domain"
	hosts map[string][]string
}

func (z zone) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	if r, ok := z.srv["_"+service+"._"+proto+"."+name]; ok {
		return "", r, nil
	}
	return "", nil, errors.New("no such host")
}

func (z zone) LookupHost(_ context.Context, host string) ([]string, error) {
	if a, ok := z.hosts[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func writeCert(t *testing.T, names []string, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func find(fs []Finding, level Level, what string) bool {
	for _, f := range fs {
		if f.Level == level && strings.Contains(f.What, what) {
			return true
		}
	}
	return false
}

func TestCertificate(t *testing.T) {
	now := time.Now()
	cfg := config.Default()
	cfg.Domains = []string{"example.org"}
	cfg.TLS.CertFile = writeCert(t, []string{"example.org", "conference.example.org"}, now.Add(90*24*time.Hour))
	fs := certificate(&cfg, now)
	for _, want := range []struct {
		l Level
		s string
	}{{OK, "valid until"}, {OK, "covers example.org"}, {OK, "covers conference.example.org"},
		{Warn, "does not cover upload.example.org"}, {Warn, "does not cover pubsub.example.org"}, {Warn, "self-signed"}} {
		if !find(fs, want.l, want.s) {
			t.Errorf("no %s finding %q in %+v", want.l, want.s, fs)
		}
	}
	cfg.Domains = []string{"other.org"}
	cfg.TLS.CertFile = writeCert(t, []string{"example.org"}, now.Add(-time.Hour))
	fs = certificate(&cfg, now)
	if !find(fs, Error, "expired") || !find(fs, Error, "does not cover other.org") || Errors(fs) != 2 {
		t.Errorf("expired certificate for another domain: %+v", fs)
	}
}

func TestDNS(t *testing.T) {
	cfg := config.Default()
	cfg.Domains = []string{"example.org"}
	cfg.S2S.Listen = ":5269"
	z := zone{srv: map[string][]*net.SRV{
		"_xmpp-client._tcp.example.org": {{Target: "xmpp.example.org.", Port: 5222}},
	}, hosts: map[string][]string{"example.org": {"192.0.2.1"}}}
	fs := dns(context.Background(), &cfg, z)
	if !find(fs, OK, "_xmpp-client._tcp.example.org → xmpp.example.org:5222") {
		t.Errorf("client SRV not reported: %+v", fs)
	}
	if !find(fs, Error, "no _xmpp-server._tcp.example.org SRV record") || !find(fs, Warn, "no _xmpps-client._tcp.example.org") {
		t.Errorf("missing records not reported: %+v", fs)
	}
	for _, f := range fs {
		if strings.Contains(f.What, "_xmpp-server._tcp.example.org SRV") && !strings.Contains(f.Fix, "SRV 0 5 5269") {
			t.Errorf("fix %q does not give the record", f.Fix)
		}
	}
	cfg.Domains = []string{"localhost"}
	if fs := dns(context.Background(), &cfg, z); Errors(fs) != 0 || !find(fs, OK, "local name") {
		t.Errorf("localhost: %+v", fs)
	}
}

func TestPorts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()
	cfg := config.Default()
	cfg.C2S.Listen, cfg.C2S.DirectTLSListen = ln.Addr().String(), freeAddr
	cfg.HTTP.Listen, cfg.Proxy65.Listen, cfg.Debug.Listen = "", "", ""
	var d net.Dialer
	fs := ports(context.Background(), &cfg, d.DialContext)
	if len(fs) != 2 || !find(fs, OK, "c2s.listen "+ln.Addr().String()+" answers") || !find(fs, Warn, "c2s.direct_tls_listen "+freeAddr+" does not answer") {
		t.Errorf("ports: %+v", fs)
	}
}
