package xmppclient

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/xmppd/xmppd/test/harness"
)

// Fixtures for servers started by test/harness: where one listens, fresh
// accounts on it, logins, and a server shared by all tests of a package.

// TargetOf is where srv listens, with a TLS configuration that trusts its
// certificate.
func TargetOf(srv *harness.Server) Target {
	return Target{Domain: srv.Domain, C2SAddr: srv.C2SAddr, DirectTLSAddr: srv.DirectTLSAddr,
		TLS: TrustTLS(srv.Domain, srv.CertPool)}
}

var localSeq atomic.Int64

var nonAlnum = regexp.MustCompile(`[^a-z0-9]+`)

// NewLocal returns a fresh localpart derived from the test name and role, so
// that the server log is easy to read.
func NewLocal(t testing.TB, role string) string {
	n := localSeq.Add(1)
	base := nonAlnum.ReplaceAllString(strings.ToLower(t.Name()), "")
	if len(base) > 20 {
		base = base[len(base)-20:]
	}
	return fmt.Sprintf("%s-%s%d", role, base, n)
}

// NewPassword returns a random password, unique so the log can be searched
// for it.
func NewPassword() string {
	b := make([]byte, 9)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "pw-" + hex.EncodeToString(b)
}

// NewAccount creates a fresh account on srv through the CLI and returns its
// localpart and password.
func NewAccount(t testing.TB, srv *harness.Server, role string) (local, password string) {
	t.Helper()
	local, password = NewLocal(t, role), NewPassword()
	srv.AddUser(t, local, password)
	return local, password
}

// LoginTo logs local in to srv with mellium (see Login).
func LoginTo(t testing.TB, srv *harness.Server, local, password string, o Options) (*Client, error) {
	t.Helper()
	return Login(t, TargetOf(srv), local, password, o)
}

// MustLoginTo is LoginTo failing the test on error.
func MustLoginTo(t testing.TB, srv *harness.Server, local, password string, o Options) *Client {
	t.Helper()
	return MustLogin(t, TargetOf(srv), local, password, o)
}

// Online logs local in to srv with resource, sends initial presence and waits
// for the server to reflect it.
func Online(t testing.TB, srv *harness.Server, local, password, resource string) *Client {
	t.Helper()
	c := MustLoginTo(t, srv, local, password, Options{Resource: resource})
	c.Send("<presence/>")
	c.Expect("own presence", IsPresence(c.JID.String(), ""))
	return c
}

// Shared is a server for all tests of a package: launched on first use into a
// temporary directory, checked around every test that uses it (still running,
// no new data race reports, log tail on failure) and shut down by Main. Tests
// on it create their own accounts with unique names.
type Shared struct {
	Name    string // in messages and the temporary directory's name
	Options harness.Options
	// Setup, when set, runs once after the first start, with the test that
	// started the server, for what Options cannot express.
	Setup func(t testing.TB, srv *harness.Server)

	once sync.Once
	srv  *harness.Server
	err  error
	dir  string
}

// Get returns the server, starting it on first use.
func (s *Shared) Get(t testing.TB) *harness.Server {
	t.Helper()
	s.once.Do(func() {
		// Stays the error if Setup ends the test.
		s.err = errors.New("setup did not finish")
		var err error
		if s.dir, err = os.MkdirTemp("", "xmppd-"+s.Name+"-shared-"); err != nil {
			s.err = err
			return
		}
		if s.srv, err = harness.Launch(s.dir, s.Options); err != nil {
			s.err = err
			return
		}
		if s.Setup != nil {
			s.Setup(t, s.srv)
		}
		s.err = nil
	})
	if s.err != nil {
		t.Fatalf("shared server (%s): %v", s.Name, s.err)
	}
	if !s.srv.Running() {
		t.Fatalf("shared server (%s) is not running (crashed?); log tail in %s", s.Name, s.srv.LogPath)
	}
	races := s.srv.RaceReports()
	t.Cleanup(func() {
		if n := s.srv.RaceReports(); n > races {
			t.Errorf("the race-enabled shared xmppd reported %d new data races during this test (log %s)", n-races, s.srv.LogPath)
		}
		if t.Failed() {
			s.srv.LogTail(t, 60)
		}
	})
	return s.srv
}

// Main is a TestMain body: it runs the tests, shuts the server down (a
// failed shutdown fails the run), removes its directory and the built
// binary. Failing tests already logged the server output; XMPPD_E2E_KEEP=1
// keeps the whole directory (config, data, log) for a post-mortem. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(shared.Main(m)) }
func (s *Shared) Main(m *testing.M) int {
	code := m.Run()
	if s.srv != nil {
		if err := s.srv.Shutdown(); err != nil {
			fmt.Fprintf(os.Stderr, "shared xmppd (%s): %v\nlog: %s\n", s.Name, err, s.srv.LogPath)
			if code == 0 {
				code = 1
			}
		}
	}
	if s.dir != "" {
		if os.Getenv("XMPPD_E2E_KEEP") != "" {
			fmt.Fprintf(os.Stderr, "shared xmppd directory kept: %s\n", s.dir)
		} else {
			os.RemoveAll(s.dir)
		}
	}
	harness.Cleanup()
	return code
}
