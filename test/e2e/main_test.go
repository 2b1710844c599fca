// Package e2e drives the real xmppd binary from outside: an independent client
// library (mellium.im/xmpp), hand-written XML over raw sockets, the CLI, and
// (when installed) Debian's python3-slixmpp. See test/harness for how the
// server is started.
package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/xmppd/xmppd/test/harness"
)

var (
	sharedOnce sync.Once
	sharedSrv  *harness.Server
	sharedErr  error
	sharedDir  string
)

// sharedMaxStanza is the shared server's max_stanza_size: small enough that
// the policy-violation test need not send megabytes.
const sharedMaxStanza = 65536

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedSrv != nil {
		if err := sharedSrv.Shutdown(); err != nil {
			fmt.Fprintf(os.Stderr, "shared xmppd: %v\nlog: %s\n", err, sharedSrv.LogPath)
			if code == 0 {
				code = 1
			}
		}
	}
	// Failing tests already logged the server output; XMPPD_E2E_KEEP=1
	// keeps the whole directory (config, data, log) for a post-mortem.
	if sharedDir != "" {
		if os.Getenv("XMPPD_E2E_KEEP") != "" {
			fmt.Fprintf(os.Stderr, "shared xmppd directory kept: %s\n", sharedDir)
		} else {
			os.RemoveAll(sharedDir)
		}
	}
	harness.Cleanup()
	os.Exit(code)
}

// shared returns the server most tests use (registration allowed, encryption
// required, max_stanza_size 64 KiB). Tests on it create their own accounts
// with unique names, so they do not see each other. On failure the test logs
// the server's recent output.
func shared(t testing.TB) *testServer {
	t.Helper()
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "xmppd-e2e-shared-")
		if sharedErr != nil {
			return
		}
		sharedSrv, sharedErr = harness.Launch(sharedDir, harness.Options{
			RegistrationAllow: true,
			MaxStanzaSize:     sharedMaxStanza,
		})
	})
	if sharedErr != nil {
		t.Fatalf("shared server: %v", sharedErr)
	}
	if !sharedSrv.Running() {
		t.Fatalf("shared server is not running (crashed?); log tail in %s", sharedSrv.LogPath)
	}
	races := sharedSrv.RaceReports()
	t.Cleanup(func() {
		if n := sharedSrv.RaceReports(); n > races {
			t.Errorf("the race-enabled shared xmppd reported %d new data races during this test (log %s)", n-races, sharedSrv.LogPath)
		}
		if t.Failed() {
			sharedSrv.LogTail(t, 60)
		}
	})
	return &testServer{sharedSrv}
}

// own starts a private server for tests that change configuration or the
// process itself.
func own(t testing.TB, o harness.Options) *testServer {
	t.Helper()
	return &testServer{harness.Start(t, o)}
}

var userSeq atomic.Int64

var nonAlnum = regexp.MustCompile(`[^a-z0-9]+`)

// newName returns a fresh localpart derived from the test name and role, so
// that the server log is easy to read.
func newName(t testing.TB, role string) string {
	n := userSeq.Add(1)
	base := nonAlnum.ReplaceAllString(strings.ToLower(t.Name()), "")
	if len(base) > 20 {
		base = base[len(base)-20:]
	}
	return fmt.Sprintf("%s-%s%d", role, base, n)
}

// secret returns a random password, unique so the log can be searched for it.
func secret() string {
	b := make([]byte, 9)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "pw-" + hex.EncodeToString(b)
}

// user creates a fresh account through the CLI and returns its localpart and
// password.
func (s *testServer) user(t testing.TB, role string) (local, password string) {
	t.Helper()
	local, password = newName(t, role), secret()
	s.AddUser(t, local, password)
	return local, password
}

func (s *testServer) bare(local string) string { return local + "@" + s.Domain }
