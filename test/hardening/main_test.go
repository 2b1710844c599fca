// Package hardening proves the abuse limits and the durability guarantees of issue 6 against the real xmppd
// binary (test/harness): each test provokes one limit from a raw socket (xmppclient.Raw), asserts the RFC-named
// error, that the offender is gone, the /metrics counter, and that well-behaved clients on the same server lose
// nothing.
package hardening

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// wait bounds every read and write of the raw clients here, and most waits of the tests.
const wait = 15 * time.Second

// dial connects a raw client to srv's STARTTLS port.
func dial(t testing.TB, srv *harness.Server) *xmppclient.Raw {
	t.Helper()
	return xmppclient.MustDialRaw(t, xmppclient.TargetOf(srv), xmppclient.RawOptions{Timeout: wait})
}

// login: STARTTLS, PLAIN, restart, bind (xmppclient.Raw.Login); then initial presence when available.
func login(t testing.TB, srv *harness.Server, user, pass, resource string, available bool) *xmppclient.Raw {
	t.Helper()
	r := dial(t, srv)
	r.Login(user, pass, resource)
	if available {
		r.Write(`<presence/>`)
	}
	return r
}

// streamError reads until the stream ends and returns the stream error condition ("" if none), whether the
// server then closed the connection, and what it sent before the error.
func streamError(r *xmppclient.Raw) (cond string, closed bool, before []*xmppclient.Elem) {
	res := r.ReadStreamEnd()
	return res.Error.Condition(), res.EOF, res.Before
}

var seq atomic.Int64

// newUser creates an account through the CLI.
func newUser(t testing.TB, srv *harness.Server, role string) (string, string) {
	t.Helper()
	u := fmt.Sprintf("%s%d", role, seq.Add(1))
	p := "pw-" + u + "-secret"
	srv.AddUser(t, u, p)
	return u, p
}

// metric returns the value of one sample from the server's /metrics ("name" or `name{label="v"}`).
func metric(t testing.TB, srv *harness.Server, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + srv.DebugAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, sample+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(line[len(sample):]), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not found", sample)
	return 0
}

func limitHits(t testing.TB, srv *harness.Server, limit string) float64 {
	return metric(t, srv, `xmppd_limit_hits_total{limit="`+limit+`"}`)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// chatCheck proves a well-behaved pair on srv still chats without loss: a sends n messages to b, b gets all, in
// order.
func chatCheck(t testing.TB, srv *harness.Server, a, b *xmppclient.Raw, n int) {
	t.Helper()
	go func() {
		for i := 0; i < n; i++ {
			if a.TryWrite(fmt.Sprintf(`<message to='%s@%s' type='chat' id='ok%d'><body>ok %d</body></message>`, b.User, srv.Domain, i, i)) != nil {
				return
			}
		}
	}()
	for i := 0; i < n; {
		e, err := b.Next(wait)
		if err != nil {
			t.Fatalf("well-behaved client: message %d of %d: %v", i, n, err)
		}
		if !e.Is(xmppclient.NSClient, "message") {
			continue
		}
		if want := fmt.Sprintf("ok%d", i); e.Get("id") != want {
			t.Fatalf("well-behaved client got %s, want id %s", e, want)
		}
		i++
	}
}

func msgID(e *xmppclient.Elem) string { return e.Get("id") }

// ourServer starts a private server with extra config.
func ourServer(t testing.TB, sections map[string]string, registration bool) *harness.Server {
	t.Helper()
	return harness.Start(t, harness.Options{Sections: sections, RegistrationAllow: registration})
}
