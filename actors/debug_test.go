package actors

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"

	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
)

func startDebugServer(t testing.TB, token string) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.C2S.Listen = "127.0.0.1:0"
	cfg.C2S.DirectTLSListen = ""
	cfg.Debug.Listen = "127.0.0.1:0"
	cfg.Proxy65.Listen = "" // the default :7777 would be shared by every server of a test run
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Debug.Token = token
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := Start(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(10 * time.Second) })
	return srv
}

func status(t testing.TB, url, auth string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestDebugToken(t *testing.T) {
	srv := startDebugServer(t, "s3cret-token")
	base := "http://" + srv.DebugAddr()
	for _, p := range []string{"/metrics", "/healthz", "/debug/actors", "/debug/pprof/"} {
		if c := status(t, base+p, ""); c != http.StatusUnauthorized {
			t.Errorf("%s without token: %d, want 401", p, c)
		}
		if c := status(t, base+p, "Bearer wrong"); c != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d, want 401", p, c)
		}
		if c := status(t, base+p, "Bearer s3cret-token"); c != http.StatusOK {
			t.Errorf("%s with the token: %d, want 200", p, c)
		}
	}
	// The page is static and carries no data; its script sends the token.
	if c := status(t, base+"/debug/actors.html", ""); c != http.StatusOK {
		t.Errorf("page without token: %d, want 200", c)
	}
}

// TestSnapshotScale spawns many user actors and times the walk: the whole tree, a capped one and a JID lookup.
// XMPPD_DEBUG_SCALE sets the number (default 5000; the report's figures used 100000 without -race).
func TestSnapshotScale(t *testing.T) {
	n := 5000
	if v := os.Getenv("XMPPD_DEBUG_SCALE"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	if testing.Short() {
		n = 500
	}
	srv := startDebugServer(t, "")
	root := srv.sys.Root
	// Presence to an unknown local user spawns its user actor, which finds no account and drops it.
	t0 := time.Now()
	for i := 0; i < n; i++ {
		to, _ := jid.New("u"+strconv.Itoa(i), "localhost", "")
		root.Send(srv.env.router, &Route{St: &stanza.Routed{Head: stanza.Head{Name: "presence", Type: "unavailable"}, To: to, Raw: "<presence/>"}})
	}
	deadline := time.Now().Add(2 * time.Minute)
	for srv.env.metrics.live[kindUser].Load() < int64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d user actors started", srv.env.metrics.live[kindUser].Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d user actors spawned in %v", n, time.Since(t0).Round(time.Millisecond))

	get := func(q string) (*Snapshot, time.Duration) {
		start := time.Now()
		res, err := http.Get("http://" + srv.DebugAddr() + "/debug/actors?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var s Snapshot
		if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
			t.Fatal(err)
		}
		return &s, time.Since(start)
	}
	s, d := get("limit=" + strconv.Itoa(n+10))
	if s.Counts[kindUser] != n || s.Truncated || s.Unanswered != 0 {
		t.Fatalf("full tree: counts %v truncated %v unanswered %d", s.Counts, s.Truncated, s.Unanswered)
	}
	t.Logf("full tree of %d actors: walk %.1f ms, HTTP+JSON %v", s.Nodes, s.ElapsedMS, d.Round(time.Millisecond))
	s, d = get("limit=100")
	if !s.Truncated || s.Nodes != 100 {
		t.Fatalf("limit=100: nodes %d truncated %v", s.Nodes, s.Truncated)
	}
	t.Logf("limit=100: walk %.1f ms, HTTP+JSON %v", s.ElapsedMS, d.Round(time.Millisecond))
	s, d = get(fmt.Sprintf("jid=u%d@localhost", n/2))
	if s.Counts[kindUser] != 1 || s.Nodes != 2 {
		t.Fatalf("jid filter: %v", s.Counts)
	}
	t.Logf("jid=one user among %d: walk %.1f ms, HTTP+JSON %v", n, s.ElapsedMS, d.Round(time.Millisecond))
	s, d = get("kind=session")
	if s.Nodes != 0 {
		t.Fatalf("kind=session with no sessions: %d nodes", s.Nodes)
	}
	t.Logf("kind=session (walks %d users, keeps none): walk %.1f ms, HTTP+JSON %v", n, s.ElapsedMS, d.Round(time.Millisecond))
}
