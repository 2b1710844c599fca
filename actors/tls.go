package actors

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/xmppd/xmppd/config"

	"github.com/rs/zerolog"
)

// certStore holds the current certificate. It is read by every TLS handshake (on reader goroutines) and replaced
// on SIGHUP; an atomic pointer is the whole synchronisation, so handshakes never wait on a reload.
type certStore struct {
	cert     atomic.Pointer[tls.Certificate]
	certFile string
	keyFile  string
	// postQuantum is [tls] post_quantum: offer the hybrid X25519MLKEM768 key exchange.
	postQuantum bool
}

// SelfSignedPaths is where a generated certificate for the first domain is written.
func SelfSignedPaths(cfg *config.Config) (certFile, keyFile string) {
	dir := filepath.Join(cfg.DataDir, "certs")
	return filepath.Join(dir, cfg.Domains[0]+".crt"), filepath.Join(dir, cfg.Domains[0]+".key")
}

// loadCertificate loads the configured certificate or generates a self-signed ECDSA P-256 one for every served
// domain and every service domain (conference, upload…) into data_dir/certs (reused on later starts).
func loadCertificate(cfg *config.Config, services []string, log zerolog.Logger) (*certStore, error) {
	cs := &certStore{certFile: cfg.TLS.CertFile, keyFile: cfg.TLS.KeyFile, postQuantum: cfg.TLS.PostQuantum}
	if cs.certFile == "" {
		cs.certFile, cs.keyFile = SelfSignedPaths(cfg)
		if _, err := os.Stat(cs.certFile); errors.Is(err, os.ErrNotExist) {
			names := append(slices.Clone(cfg.Domains), services...)
			if err := generateSelfSigned(names, cs.certFile, cs.keyFile); err != nil {
				return nil, err
			}
			log.Warn().Str("cert", cs.certFile).Strs("domains", names).
				Msg("no certificate configured: generated a self-signed one (clients must trust it explicitly)")
		} else {
			log.Info().Str("cert", cs.certFile).Msg("using the self-signed certificate generated earlier")
		}
	}
	if err := cs.reload(); err != nil {
		return nil, err
	}
	return cs, nil
}

func (cs *certStore) reload() error {
	c, err := tls.LoadX509KeyPair(cs.certFile, cs.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if c.Leaf == nil {
		// The leaf is needed for tls-server-end-point channel binding (RFC 5929).
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
	}
	cs.cert.Store(&c)
	return nil
}

func generateSelfSigned(domains []string, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: domains[0], Organization: []string{"xmppd self-signed"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so clients can trust this one file as their CA
	}
	for _, d := range domains {
		if ip := net.ParseIP(d); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, d)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// curves is the key exchange preference: nil (Go's default, X25519MLKEM768 first) with [tls] post_quantum, else
// the classical groups only. The server takes the first of these that the client offered a key share for, so a
// client sending both an X25519MLKEM768 and an X25519 share gets X25519 without post_quantum, with no
// HelloRetryRequest.
func (cs *certStore) curves() []tls.CurveID {
	if cs.postQuantum {
		return nil
	}
	return []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}
}

// serverTLSConfig is TLS 1.2+ with modern suites only (RFC 7525 / RFC 9325).
func (cs *certStore) serverTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{ // TLS 1.2 only; TLS 1.3 suites are not configurable and all fine.
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		CurvePreferences: cs.curves(),
		NextProtos:       []string{"xmpp-client"}, // XEP-0368 ALPN
		// crypto/tls otherwise cuts the first ~128 KiB of a connection into records of at most one TCP segment
		// (1208 bytes of payload), each its own write(2): a web page's first bytes render sooner. An XMPP client
		// acts on whole elements only, and the features after STARTTLS are about 1.2 KiB: they went out as two
		// records in two writes. Now one response is one record (up to 16 KiB) and one write. The same holds for
		// s2s and for the HTTP listener, whose WebSocket and BOSH bodies are XMPP too.
		DynamicRecordSizingDisabled: true,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return cs.cert.Load(), nil
		},
	}
}
