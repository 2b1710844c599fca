package e2e

import (
	"crypto/tls"
	"testing"
	"time"

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

func (o loginOpts) options() xmppclient.Options {
	return xmppclient.Options{Direct: o.direct, Mechs: o.mechs, Resource: o.resource, TLSConfig: o.tlsCfg}
}

// login logs local in to srv with mellium (see xmppclient.LoginTo).
func login(t testing.TB, srv *testServer, local, password string, o loginOpts) (*xmppclient.Client, error) {
	t.Helper()
	return xmppclient.LoginTo(t, srv.Server, local, password, o.options())
}

func mustLogin(t testing.TB, srv *testServer, local, password string, o loginOpts) *xmppclient.Client {
	t.Helper()
	return xmppclient.MustLoginTo(t, srv.Server, local, password, o.options())
}

// rawConn is the package's view of xmppclient.Raw: the raw-socket client plus
// this package's own SCRAM client (scram_test.go). The lower-case methods
// below keep the names register_test.go and process_test.go are written
// with; everything else calls xmppclient.Raw directly.
type rawConn struct {
	*xmppclient.Raw
}

// dialRaw connects to srv's STARTTLS port (see xmppclient.MustDialRaw).
func dialRaw(t testing.TB, srv *testServer) *rawConn {
	t.Helper()
	return &rawConn{xmppclient.MustDialRaw(t, xmppclient.TargetOf(srv.Server), xmppclient.RawOptions{})}
}

// dialRawTLS connects to the XEP-0368 direct TLS port (cfg nil = trust the
// server's CA).
func dialRawTLS(t testing.TB, srv *testServer, cfg *tls.Config) *rawConn {
	t.Helper()
	return &rawConn{xmppclient.MustDialRaw(t, xmppclient.TargetOf(srv.Server), xmppclient.RawOptions{Direct: true, TLS: cfg})}
}

func (rc *rawConn) open(domain string) (header, features *xmppclient.Elem) {
	rc.T.Helper()
	header, features, err := rc.TryOpenTo(domain)
	if err != nil {
		rc.T.Fatal(err)
	}
	return header, features
}

func (rc *rawConn) starttls() *xmppclient.Elem { rc.T.Helper(); return rc.StartTLS() }
func (rc *rawConn) write(s string)             { rc.T.Helper(); rc.Write(s) }
func (rc *rawConn) next(d time.Duration) (*xmppclient.Elem, error) {
	return rc.Next(d)
}
func (rc *rawConn) expectIQ(id string) *xmppclient.Elem { rc.T.Helper(); return rc.ExpectIQ(id) }
func (rc *rawConn) authPlain(user, password string) *xmppclient.Elem {
	rc.T.Helper()
	return rc.AuthPlain(user, password)
}
func (rc *rawConn) expectStreamError(conds ...string) xmppclient.StreamEnd {
	rc.T.Helper()
	return rc.ExpectStreamError(conds...)
}
