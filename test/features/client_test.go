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
// xmppclient.LoginTo).
func login(t testing.TB, srv *testServer, local, password string, o loginOpts) (*xmppclient.Client, error) {
	t.Helper()
	return xmppclient.LoginTo(t, srv.Server, local, password, xmppclient.Options{Resource: o.resource})
}

// mustLogin is login failing the test on error.
func mustLogin(t testing.TB, srv *testServer, local, password string, o loginOpts) *xmppclient.Client {
	t.Helper()
	return xmppclient.MustLoginTo(t, srv.Server, local, password, xmppclient.Options{Resource: o.resource})
}
