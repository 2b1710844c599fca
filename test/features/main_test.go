// Package features drives the features of issue 7 (disco, caps, vCard, private XML, blocking, carbons, CSI,
// last activity, entity time, ad-hoc admin commands) end to end against the real xmppd binary with
// mellium.im/xmpp as the client.
package features

import (
	"os"
	"testing"

	"github.com/xmppd/xmppd/test/harness"

	"github.com/xmppd/xmppd/test/xmppclient"
)

const adminLocal = "boss"

const adminPassword = "boss-password-1"

// featuresServer is the one server of this package: admins = [boss@localhost], vCards readable by contacts
// only, XEP-0157 addresses configured. admins is a top-level key the harness cannot append, so the config is
// patched and the server restarted once.
var featuresServer = &xmppclient.Shared{
	Name: "features",
	Options: harness.Options{
		ExtraTOML: "[vcard]\naccess = \"contacts\"\nmax_size = 4096\n\n[pep]\nmax_item_bytes = 4096\n\n[contact]\nabuse = [\"mailto:abuse@localhost\"]\nadmin = [\"xmpp:boss@localhost\"]\n",
	},
	Setup: func(t testing.TB, srv *harness.Server) {
		// Only the config changes: how the first run ends does not matter (a SIGTERM right after start may
		// arrive before the server's handler is installed).
		srv.Stop()
		b, err := os.ReadFile(srv.ConfigPath)
		if err != nil {
			t.Fatal(err)
		}
		cfg := "admins = [\"" + adminLocal + "@" + srv.Domain + "\"]\n" + string(b)
		if err := os.WriteFile(srv.ConfigPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		srv.Restart(t)
		srv.AddUser(t, adminLocal, adminPassword)
	},
}

func TestMain(m *testing.M) { os.Exit(featuresServer.Main(m)) }

// server returns the package's server, starting it on first use.
func server(t *testing.T) *testServer {
	t.Helper()
	return &testServer{featuresServer.Get(t)}
}

// user creates a fresh account through the CLI (see xmppclient.NewAccount).
func (s *testServer) user(t *testing.T, role string) (local, password string) {
	t.Helper()
	return xmppclient.NewAccount(t, s.Server, role)
}

func (s *testServer) bare(local string) string { return local + "@" + s.Domain }

// online logs a user in with a resource and sends initial presence (see xmppclient.Online).
func online(t *testing.T, s *testServer, local, pw, res string) *xmppclient.Client {
	t.Helper()
	return xmppclient.Online(t, s.Server, local, pw, res)
}

// subscribeBoth makes a and b subscribed to each other (both online, A and B their bare JIDs).
func subscribeBoth(t *testing.T, a, b *xmppclient.Client, A, B string) {
	t.Helper()
	a.Send("<presence to='" + B + "' type='subscribe'/>")
	b.Expect("subscribe", xmppclient.IsPresence(A, "subscribe"))
	b.Send("<presence to='" + A + "' type='subscribed'/>")
	a.Expect("b's presence", xmppclient.IsPresence(B, ""))
	b.Send("<presence to='" + A + "' type='subscribe'/>")
	a.Expect("subscribe", xmppclient.IsPresence(B, "subscribe"))
	a.Send("<presence to='" + B + "' type='subscribed'/>")
	b.Expect("a's presence", xmppclient.IsPresence(A, ""))
}

func hasFeature(q *xmppclient.Elem, v string) bool {
	for _, f := range q.Children("", "feature") {
		if f.Get("var") == v {
			return true
		}
	}
	return false
}

func errCond(e *xmppclient.Elem) string { _, c := e.StanzaError(); return c }

func mustResult(t *testing.T, e *xmppclient.Elem) *xmppclient.Elem {
	t.Helper()
	if e.Get("type") != "result" {
		t.Fatalf("want result, got %s", e)
	}
	return e
}
