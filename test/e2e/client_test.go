package e2e

import (
	"crypto/tls"
	"testing"

	"mellium.im/sasl"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// testServer wraps harness.Server with per-test helpers.
type testServer struct {
	*harness.Server
}

// loginOpts mirrors xmppclient.Options with the short field names the tests
// in this package are written with.
type loginOpts struct {
	direct   bool             // XEP-0368 direct TLS port instead of STARTTLS
	mechs    []sasl.Mechanism // default SCRAM-SHA-256
	resource string           // "" = server-generated
	tlsCfg   *tls.Config      // default: trust the server's CA, TLS ≥ 1.2
}

func (s *testServer) tlsConfig() *tls.Config { return xmppclient.TrustTLS(s.Domain, s.CertPool) }

func (s *testServer) target() xmppclient.Target {
	return xmppclient.Target{Domain: s.Domain, C2SAddr: s.C2SAddr, DirectTLSAddr: s.DirectTLSAddr, TLS: s.tlsConfig()}
}

func (o loginOpts) options() xmppclient.Options {
	return xmppclient.Options{Direct: o.direct, Mechs: o.mechs, Resource: o.resource, TLSConfig: o.tlsCfg}
}

// login logs local in to srv (see xmppclient.Login).
func login(t testing.TB, srv *testServer, local, password string, o loginOpts) (*xmppclient.Client, error) {
	t.Helper()
	return xmppclient.Login(t, srv.target(), local, password, o.options())
}

func mustLogin(t testing.TB, srv *testServer, local, password string, o loginOpts) *xmppclient.Client {
	t.Helper()
	return xmppclient.MustLogin(t, srv.target(), local, password, o.options())
}
