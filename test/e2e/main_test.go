// Package e2e drives the real xmppd binary from outside: an independent client
// library (mellium.im/xmpp), hand-written XML over raw sockets, the CLI, and
// (when installed) Debian's python3-slixmpp. See test/harness for how the
// server is started and test/xmppclient for the clients and fixtures.
package e2e

import (
	"os"
	"strconv"
	"testing"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// sharedMaxStanza is the shared server's max_stanza_size: small enough that
// the policy-violation test need not send megabytes.
const sharedMaxStanza = 65536

// sharedMaxUpload is the shared server's [upload] max_file_size.
const sharedMaxUpload = 16 << 20

// sharedTURNSecret is the shared secret of the shared server's TURN service (XEP-0215).
const sharedTURNSecret = "e2e-turn-secret"

// sharedServer is the server most tests use (registration allowed,
// encryption required, max_stanza_size 64 KiB; XEP-0363 upload on the
// public HTTP listener, as by default; the XEP-0065 proxy on a free loopback
// port; a STUN and a TURN service).
var sharedServer = &xmppclient.Shared{Name: "e2e", Options: harness.Options{
	RegistrationAllow: true,
	MaxStanzaSize:     sharedMaxStanza,
	Sections: map[string]string{
		"upload":  "max_file_size = " + strconv.Itoa(sharedMaxUpload),
		"proxy65": "listen = \"127.0.0.1:0\"",
	},
	ExtraTOML: "[[external_services]]\ntype = \"stun\"\nhost = \"stun.example.org\"\nport = 3478\ntransport = \"udp\"\n\n" +
		"[[external_services]]\ntype = \"turn\"\nhost = \"turn.example.org\"\nport = 3478\ntransport = \"udp\"\nsecret = \"" + sharedTURNSecret + "\"\nttl = \"1h\"\n",
}}

func TestMain(m *testing.M) { os.Exit(sharedServer.Main(m)) }

// shared returns the shared server (see xmppclient.Shared). Tests on it
// create their own accounts with unique names, so they do not see each other.
func shared(t testing.TB) *testServer {
	t.Helper()
	return &testServer{sharedServer.Get(t)}
}

// own starts a private server for tests that change configuration or the
// process itself.
func own(t testing.TB, o harness.Options) *testServer {
	t.Helper()
	return &testServer{harness.Start(t, o)}
}

// newName returns a fresh localpart (see xmppclient.NewLocal).
func newName(t testing.TB, role string) string { return xmppclient.NewLocal(t, role) }

// secret returns a fresh random password (see xmppclient.NewPassword).
func secret() string { return xmppclient.NewPassword() }

// user creates a fresh account through the CLI and returns its localpart and
// password.
func (s *testServer) user(t testing.TB, role string) (local, password string) {
	t.Helper()
	return xmppclient.NewAccount(t, s.Server, role)
}

func (s *testServer) bare(local string) string { return local + "@" + s.Domain }
