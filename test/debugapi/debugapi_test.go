// Package debugapi tests the operator's view of a running xmppd end to end: the actor tree
// (GET /debug/actors as JSON and as a page, checked in a real headless browser), the `xmppd debug actors`
// command, /metrics and /healthz, and that taking snapshots does not lose messages under load.
package debugapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/actors"
	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

var seq atomic.Int64

func uniq(role string) string { return fmt.Sprintf("%s%d", role, seq.Add(1)) }

func start(t *testing.T) *harness.Server {
	t.Helper()
	// No message archive: TestSnapshotUnderChat's 200 clients send 4000 messages a second, and under the race
	// detector the archive's two SQLite inserts per message (pure Go, instrumented) cost four times the rest of
	// the message's path (BenchmarkRoutedMessage with -race: 172 vs 41 CPU-µs), more than a shared 2-core machine
	// has; what this package tests is the actor tree, not the archive (test/e2e's TestMAM* and storage/sqlite's
	// benchmarks are about that).
	srv := harness.Start(t, harness.Options{RegistrationAllow: true, Sections: map[string]string{"mam": "enabled = false"}})
	// The harness waits for the client ports; the debug listener comes up just after them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", srv.DebugAddr, time.Second)
		if err == nil {
			c.Close()
			return srv
		}
		if time.Now().After(deadline) {
			t.Fatalf("debug listener %s: %v", srv.DebugAddr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ioTimeout bounds every read and write of the clients here.
const ioTimeout = 20 * time.Second

// connect makes a deliberately small raw-socket client (xmppclient.Raw), cheap enough to run 200 of them on a
// small machine next to a race-enabled server: direct TLS (XEP-0368), in-band registration (XEP-0077) when
// register is set, SASL PLAIN, resource binding and initial presence; then a reader goroutine hands every
// <message/> to onMessage, when not nil. It needs no test, so goroutines can call it.
func connect(srv *harness.Server, local, password, resource string, register bool, onMessage func(*xmppclient.Elem)) (*xmppclient.Raw, error) {
	target := xmppclient.TargetOf(srv)
	target.TLS.NextProtos = []string{"xmpp-client"}
	c, err := xmppclient.DialRaw(target, xmppclient.RawOptions{Direct: true, Timeout: ioTimeout})
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", local, resource, err)
	}
	if err := signIn(c, local, password, resource, register); err != nil {
		c.Conn().Close()
		return nil, fmt.Errorf("%s/%s: %w", local, resource, err)
	}
	c.Serve(func(e *xmppclient.Elem) {
		if e.Is("", "message") && onMessage != nil {
			onMessage(e)
		}
	})
	return c, nil
}

func signIn(c *xmppclient.Raw, local, password, resource string, register bool) error {
	if _, _, err := c.TryOpen(); err != nil {
		return err
	}
	if register {
		if err := c.TryWrite(`<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>` + local +
			`</username><password>` + password + `</password></query></iq>`); err != nil {
			return err
		}
		e, err := c.TryExpect(xmppclient.NSClient, "iq")
		if err != nil {
			return err
		}
		if e.Get("type") != "result" {
			return fmt.Errorf("registration: %s", e)
		}
	}
	if _, err := c.TryAuthBind(local, password, resource); err != nil {
		return err
	}
	return c.TryWrite(`<presence/>`)
}

func mustConnect(t *testing.T, srv *harness.Server, local, resource string, register bool, onMsg func(*xmppclient.Elem)) *xmppclient.Raw {
	t.Helper()
	c, err := connect(srv, local, "secret-"+local, resource, register, onMsg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Conn().Close() })
	return c
}

func get(t testing.TB, srv *harness.Server, path string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+srv.DebugAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b), res.Header
}

type snapshot = actors.Snapshot

func getSnapshot(u string) (*snapshot, error) {
	res, err := (&http.Client{Timeout: 30 * time.Second}).Get(u)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return nil, fmt.Errorf("GET %s: %s %s", u, res.Status, b)
	}
	var s snapshot
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return nil, err
	}
	return &s, nil
}

func tree(t testing.TB, srv *harness.Server, query string) *actors.Snapshot {
	t.Helper()
	code, body, _ := get(t, srv, "/debug/actors?"+query)
	if code != http.StatusOK {
		t.Fatalf("GET /debug/actors?%s: %d %s", query, code, body)
	}
	var s actors.Snapshot
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("decoding tree: %v\n%s", err, body)
	}
	return &s
}

// flat lists every node below the root as "kind jid" (or "kind id" when it serves no JID), sorted, and checks
// on the way that each node sits where the architecture puts it (id = parent id + "/" + name).
func flat(t testing.TB, s *actors.Snapshot) []string {
	t.Helper()
	var out []string
	var walk func(n *actors.ActorInfo, parent string)
	walk = func(n *actors.ActorInfo, parent string) {
		if parent != "" && !strings.HasPrefix(n.ID, parent+"/") {
			t.Errorf("node %s is under %s", n.ID, parent)
		}
		label := n.Kind + " " + n.JID
		if n.JID == "" {
			label = n.Kind + " " + n.ID
		}
		out = append(out, label)
		for _, c := range n.Children {
			walk(c, n.ID)
		}
	}
	for _, c := range s.Root.Children {
		walk(c, "")
	}
	sort.Strings(out)
	return out
}

func find(s *actors.Snapshot, pred func(*actors.ActorInfo) bool) *actors.ActorInfo {
	var hit *actors.ActorInfo
	var walk func(n *actors.ActorInfo)
	walk = func(n *actors.ActorInfo) {
		if hit == nil && pred(n) {
			hit = n
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(s.Root)
	return hit
}

func sorted(v ...string) []string { sort.Strings(v); return v }

func equal(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

func TestActorTree(t *testing.T) {
	srv := start(t)
	alice, bob := uniq("alice"), uniq("bob")
	a1 := mustConnect(t, srv, alice, "phone", true, nil)
	a2 := mustConnect(t, srv, alice, "laptop", false, nil)
	b1 := mustConnect(t, srv, bob, "desk", true, nil)
	aj, bj := alice+"@"+srv.Domain, bob+"@"+srv.Domain

	// The pubsub, MUC and upload services (on by default; upload with the public HTTP listener) are there from
	// the start: services → service pubsub.<domain>, service conference.<domain>, service upload.<domain>. (The
	// SOCKS5 proxy is off: the harness gives it no listener.)
	svc, muc, up := "service pubsub."+srv.Domain, "service conference."+srv.Domain, "service upload."+srv.Domain
	want := sorted("listener c2s", "router router", "caps caps", "services services", svc, muc, up,
		"conn "+a1.JID, "conn "+a2.JID, "conn "+b1.JID,
		"user "+aj, "user "+bj,
		"session "+a1.JID, "session "+a2.JID, "session "+b1.JID)
	s := tree(t, srv, "")
	if got := flat(t, s); !equal(got, want) {
		t.Fatalf("tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s.Truncated || s.Unanswered != 0 || s.Nodes != len(want) {
		t.Errorf("truncated=%v unanswered=%d nodes=%d, want false, 0, %d", s.Truncated, s.Unanswered, s.Nodes, len(want))
	}
	if s.Counts["conn"] != 3 || s.Counts["session"] != 3 || s.Counts["user"] != 2 {
		t.Errorf("counts = %v", s.Counts)
	}
	if s.Live["conn"] != 3 || s.Live["session"] != 3 {
		t.Errorf("live = %v, want 3 conns and 3 sessions", s.Live)
	}
	// Stream state of a conn, and what each kind says about itself.
	c := find(s, func(n *actors.ActorInfo) bool { return n.Kind == "conn" && n.JID == a1.JID })
	if c.State != "bound" || c.TLS == nil || !*c.TLS || c.Mechanism != "PLAIN" || c.BoundJID != a1.JID ||
		c.Resource != "phone" || !strings.HasPrefix(c.Remote, "127.0.0.1:") || !strings.HasPrefix(c.ID, "c2s/") {
		t.Errorf("conn node = %+v", c)
	}
	if c.Processed == 0 || c.Mailbox < 0 || c.AgeSecs <= 0 || c.Started.IsZero() {
		t.Errorf("conn counters: processed=%d mailbox=%d age=%v started=%v", c.Processed, c.Mailbox, c.AgeSecs, c.Started)
	}
	sess := find(s, func(n *actors.ActorInfo) bool { return n.Kind == "session" && n.JID == a1.JID })
	if sess.ID != "router/"+aj+"/phone" || sess.Attrs["conn"] != c.ID || sess.Attrs["available"] != "true" {
		t.Errorf("session node = %+v", sess)
	}
	ros := find(s, func(n *actors.ActorInfo) bool { return n.Kind == "user" && n.JID == aj })
	if ros.ChildCount != 2 || ros.Attrs["resources"] != "2" || ros.Attrs["exists"] != "true" {
		t.Errorf("user node = %+v", ros)
	}
	l := find(s, func(n *actors.ActorInfo) bool { return n.Kind == "listener" })
	if l.Attrs["connections"] != "3" || l.ChildCount != 3 {
		t.Errorf("listener node = %+v", l)
	}

	t.Run("filters", func(t *testing.T) {
		got := flat(t, tree(t, srv, "kind=conn"))
		if w := sorted("listener c2s", "conn "+a1.JID, "conn "+a2.JID, "conn "+b1.JID); !equal(got, w) {
			t.Errorf("kind=conn:\n%s", strings.Join(got, "\n"))
		}
		got = flat(t, tree(t, srv, "kind=session,user"))
		if w := sorted("router router", "user "+aj, "user "+bj, "session "+a1.JID, "session "+a2.JID, "session "+b1.JID); !equal(got, w) {
			t.Errorf("kind=session,user:\n%s", strings.Join(got, "\n"))
		}
		got = flat(t, tree(t, srv, "jid="+url.QueryEscape(aj)))
		if w := sorted("listener c2s", "router router", "conn "+a1.JID, "conn "+a2.JID, "user "+aj, "session "+a1.JID, "session "+a2.JID); !equal(got, w) {
			t.Errorf("jid=%s:\n%s", aj, strings.Join(got, "\n"))
		}
		fs := tree(t, srv, "jid="+url.QueryEscape(a2.JID))
		got = flat(t, fs)
		if w := sorted("listener c2s", "router router", "conn "+a2.JID, "user "+aj, "session "+a2.JID); !equal(got, w) {
			t.Errorf("jid=%s:\n%s", a2.JID, strings.Join(got, "\n"))
		}
		if r := find(fs, func(n *actors.ActorInfo) bool { return n.Kind == "user" }); r.Matched {
			t.Errorf("user %s kept as an ancestor is marked matched", r.JID)
		}
		if n := flat(t, tree(t, srv, "jid=nobody@"+srv.Domain)); len(n) != 0 {
			t.Errorf("jid=nobody: %v", n)
		}
		ls := tree(t, srv, "limit=3")
		if !ls.Truncated || ls.Nodes != 3 || len(flat(t, ls)) != 3 {
			t.Errorf("limit=3: truncated=%v nodes=%d %v", ls.Truncated, ls.Nodes, flat(t, ls))
		}
		for _, q := range []string{"kind=bogus", "limit=0", "limit=x", "jid=" + url.QueryEscape("@@"), "timeout=1h"} {
			if code, body, _ := get(t, srv, "/debug/actors?"+q); code != http.StatusBadRequest {
				t.Errorf("%s: %d %s, want 400", q, code, body)
			}
		}
	})

	t.Run("page", func(t *testing.T) {
		for _, p := range []string{"/debug/actors.html", "/debug/actors"} {
			code, body, h := get(t, srv, p, "Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
			if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(body, "<title>xmppd actors</title>") {
				t.Errorf("GET %s as a browser: %d %s", p, code, h.Get("Content-Type"))
			}
			if strings.Contains(body, "http://") || strings.Contains(body, "https://") || strings.Contains(body, "src=\"//") {
				t.Errorf("%s refers to an external resource", p)
			}
		}
		if _, _, h := get(t, srv, "/debug/actors"); !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Errorf("GET /debug/actors without Accept: %s, want JSON", h.Get("Content-Type"))
		}
	})

	t.Run("cli", func(t *testing.T) {
		out, stderr, err := srv.Run("debug", "actors", "--jid", aj)
		if err != nil {
			t.Fatalf("xmppd debug actors: %v\n%s", err, stderr)
		}
		for _, w := range []string{"c2s [listener]", "  router/" + aj + " [user] " + aj, "    router/" + aj + "/phone [session] " + a1.JID, "state=bound", "tls=true", "mechanism=PLAIN"} {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
		if strings.Contains(out, bj) {
			t.Errorf("--jid %s printed %s:\n%s", aj, bj, out)
		}
		out, _, err = srv.Run("debug", "actors", "--kind", "conn")
		if err != nil || strings.Count(out, "[conn]") != 3 || strings.Contains(out, "[session]") {
			t.Errorf("--kind conn: %v\n%s", err, out)
		}
	})

	// Disconnect: bob's conn and session go; his user actor stays (idle, no resources) until its idle timeout.
	b1.Close()
	a2.Close()
	want = sorted("listener c2s", "router router", "caps caps", "services services", svc, muc, up, "conn "+a1.JID, "user "+aj, "user "+bj, "session "+a1.JID)
	// The session's end reaches its parent as a Terminated after the session has stopped reporting itself, so
	// the user actor's child count may lag the tree by a moment: both are waited for.
	isBob := func(n *actors.ActorInfo) bool { return n.Kind == "user" && n.JID == bj }
	deadline := time.Now().Add(10 * time.Second)
	for {
		s = tree(t, srv, "")
		got := flat(t, s)
		if equal(got, want) {
			if r := find(s, isBob); r.Attrs["resources"] == "0" && r.ChildCount == 0 {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("bob's user actor after logout: %+v", r)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after disconnecting, tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	a1.Close()
}

func metric(text, series string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

func TestMetricsAndHealth(t *testing.T) {
	srv := start(t)
	if code, body, _ := get(t, srv, "/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	got := make(chan *xmppclient.Elem, 10)
	alice, bob, carol := uniq("alice"), uniq("bob"), uniq("carol")
	a := mustConnect(t, srv, alice, "phone", true, nil)
	b := mustConnect(t, srv, bob, "desk", true, func(e *xmppclient.Elem) { got <- e })
	// carol registers and leaves, so that a message to her goes to the offline queue.
	c := mustConnect(t, srv, carol, "x", true, nil)
	c.Close()
	// Her session ends after her stream does: a message routed to it meanwhile would be delivered there (and
	// counted as out) before coming back to the offline queue. Wait until only alice's and bob's remain.
	waitSessions(t, srv, 2)
	if err := a.TryWrite(`<message to='` + b.JID + `' id='m1' type='chat'><body>hi</body></message>`); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Get("id") != "m1" || e.Get("from") != a.JID {
			t.Fatalf("bob got %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("message not delivered")
	}
	if err := a.TryWrite(`<message to='` + carol + `@` + srv.Domain + `' id='m2' type='chat'><body>later</body></message>`); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		series string
		ok     func(float64) bool
	}{
		{`xmppd_auth_success_total{mechanism="PLAIN"}`, func(v float64) bool { return v == 3 }},
		{`xmppd_c2s_connections`, func(v float64) bool { return v == 2 }},
		{`xmppd_c2s_connections_by_state{state="bound"}`, func(v float64) bool { return v == 2 }},
		{`xmppd_c2s_connections_by_state{state="negotiating"}`, func(v float64) bool { return v == 0 }},
		{`xmppd_sessions`, func(v float64) bool { return v == 2 }},
		{`xmppd_actors{kind="conn"}`, func(v float64) bool { return v == 2 }},
		{`xmppd_actors{kind="session"}`, func(v float64) bool { return v == 2 }},
		{`xmppd_actors{kind="router"}`, func(v float64) bool { return v == 1 }},
		{`xmppd_actors{kind="service"}`, func(v float64) bool { return v == 3 }},
		{`xmppd_actors{kind="pubsub-node"}`, func(v float64) bool { return v == 0 }},
		{`xmppd_actors{kind="room"}`, func(v float64) bool { return v == 0 }},
		{`xmppd_stanzas_in_total{kind="message"}`, func(v float64) bool { return v == 2 }},
		{`xmppd_stanzas_out_total{kind="message"}`, func(v float64) bool { return v == 1 }},
		{`xmppd_routing_latency_seconds_count`, func(v float64) bool { return v >= 1 }},
		{`xmppd_routing_latency_seconds_sum`, func(v float64) bool { return v > 0 && v < 10 }},
		{`xmppd_offline_stored_total`, func(v float64) bool { return v == 1 }},
		{`xmppd_storage_latency_seconds_count{op="credentials"}`, func(v float64) bool { return v >= 3 }},
		{`xmppd_storage_latency_seconds_count{op="push_offline_batch"}`, func(v float64) bool { return v == 1 }}, // one message: one group commit
		{`xmppd_storage_latency_seconds_count{op="create_account"}`, func(v float64) bool { return v == 3 }},
		{`xmppd_routed_total`, func(v float64) bool { return v >= 2 }},
		{`go_goroutines`, func(v float64) bool { return v > 0 }},
	}
	var text string
	deadline := time.Now().Add(10 * time.Second)
	for {
		var code int
		code, text, _ = get(t, srv, "/metrics")
		if code != 200 {
			t.Fatalf("/metrics: %d", code)
		}
		bad := ""
		for _, c := range checks {
			if v, ok := metric(text, c.series); !ok || !c.ok(v) {
				bad += fmt.Sprintf("%s = %v (present %v)\n", c.series, v, ok)
			}
		}
		if bad == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("implausible metrics:\n%s", bad)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "# TYPE ") {
			name := strings.Fields(line)[2]
			if !strings.HasPrefix(name, "xmppd_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
				t.Errorf("metric %s is not named xmppd_…", name)
			}
		}
	}
	// carol logs in again: the offline message is delivered and counted.
	cgot := make(chan *xmppclient.Elem, 4)
	c2 := mustConnect(t, srv, carol, "y", false, func(e *xmppclient.Elem) { cgot <- e })
	select {
	case e := <-cgot:
		if e.Get("id") != "m2" {
			t.Errorf("carol got %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("offline message not delivered")
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		_, text, _ = get(t, srv, "/metrics")
		if v, _ := metric(text, "xmppd_offline_delivered_total"); v == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("xmppd_offline_delivered_total did not reach 1")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, cl := range []*xmppclient.Raw{a, b, c2} {
		cl.Close()
	}
	if code, _, _ := get(t, srv, "/debug/pprof/"); code != 200 {
		t.Errorf("/debug/pprof/: %d", code)
	}
}

// waitSessions waits until /metrics counts n sessions.
func waitSessions(t *testing.T, srv *harness.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, text, _ := get(t, srv, "/metrics")
		if v, ok := metric(text, "xmppd_sessions"); ok && v == float64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("xmppd_sessions never reached %d", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
