package features

import (
	"testing"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// testServer wraps harness.Server with per-test helpers.
type testServer struct {
	*harness.Server
}

// loginOpts holds the only login option these tests vary.
type loginOpts struct {
	resource string // "" = server-generated
}

// login logs local in to srv over STARTTLS with SCRAM-SHA-256 (see
// xmppclient.Login).
func login(t testing.TB, srv *testServer, local, password string, o loginOpts) (*xmppclient.Client, error) {
	t.Helper()
	target := xmppclient.Target{Domain: srv.Domain, C2SAddr: srv.C2SAddr, DirectTLSAddr: srv.DirectTLSAddr,
		TLS: xmppclient.TrustTLS(srv.Domain, srv.CertPool)}
	return xmppclient.Login(t, target, local, password, xmppclient.Options{Resource: o.resource})
}

// mustLogin is login failing the test on error.
func mustLogin(t testing.TB, srv *testServer, local, password string, o loginOpts) *xmppclient.Client {
	t.Helper()
	c, err := login(t, srv, local, password, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
