package debugapi

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// TestSnapshotUnderChat keeps 200 clients (100 pairs) chatting while the actor tree is fetched over and over,
// and checks that every message arrives exactly once. It runs the chat without snapshots, then with them (in
// as many rounds as three snapshots take), and logs the delivery latency of both (not asserted: the machine is shared).
func TestSnapshotUnderChat(t *testing.T) {
	if testing.Short() {
		t.Skip("200 clients; skipped with -short")
	}
	const pairs = 100
	const perPhase = 30 // messages each client sends per phase
	srv := start(t)

	type rx struct {
		mu   sync.Mutex
		seen map[string]int
		lat  map[string][]time.Duration // by phase
	}
	recv := &rx{seen: map[string]int{}, lat: map[string][]time.Duration{}}
	onMsg := func(e *xmppclient.Elem) {
		id := e.Get("id")
		phase, _, _ := strings.Cut(id, ":")
		sent, err := strconv.ParseInt(e.ChildText("body"), 10, 64)
		recv.mu.Lock()
		recv.seen[id]++
		if err == nil {
			recv.lat[phase] = append(recv.lat[phase], time.Since(time.Unix(0, sent)))
		}
		recv.mu.Unlock()
	}

	// Connect 200 clients, a few at a time (registration derives SCRAM keys: CPU-bound on the server).
	clients := make([]*xmppclient.Raw, 2*pairs)
	var wg sync.WaitGroup
	var connErr atomic.Value
	sem := make(chan struct{}, 8)
	t0 := time.Now()
	for i := range clients {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := connect(srv, uniq("chat"), "secret-pw", "r"+strconv.Itoa(i), true, onMsg)
			if err != nil {
				connErr.Store(err)
				return
			}
			clients[i] = c
		}(i)
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				_ = c.Conn().Close()
			}
		}
	})
	if err, _ := connErr.Load().(error); err != nil {
		t.Fatal(err)
	}
	t.Logf("200 clients connected in %v", time.Since(t0).Round(time.Millisecond))

	chat := func(phase string) {
		var wg sync.WaitGroup
		for i, c := range clients {
			peer := clients[i^1] // pairs: 0↔1, 2↔3, …
			wg.Add(1)
			go func(c, peer *xmppclient.Raw, i int) {
				defer wg.Done()
				for n := 0; n < perPhase; n++ {
					id := fmt.Sprintf("%s:%d:%d", phase, i, n)
					if err := c.TryWrite(`<message type='chat' to='` + peer.JID + `' id='` + id + `'><body>` +
						strconv.FormatInt(time.Now().UnixNano(), 10) + `</body></message>`); err != nil {
						t.Errorf("client %d: %v", i, err)
						return
					}
					time.Sleep(time.Duration(45+i%11) * time.Millisecond)
				}
			}(c, peer, i)
		}
		wg.Wait()
	}
	waitAll := func(phase string) {
		want := len(clients) * perPhase
		deadline := time.Now().Add(20 * time.Second)
		for {
			recv.mu.Lock()
			got := len(recv.lat[phase])
			recv.mu.Unlock()
			if got >= want {
				return
			}
			if time.Now().After(deadline) {
				var missing []string
				recv.mu.Lock()
				for i := range clients {
					for n := 0; n < perPhase; n++ {
						if id := fmt.Sprintf("%s:%d:%d", phase, i, n); recv.seen[id] == 0 && len(missing) < 10 {
							missing = append(missing, id)
						}
					}
				}
				recv.mu.Unlock()
				t.Fatalf("phase %s: %d of %d messages delivered; missing e.g. %v", phase, got, want, missing)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	chat("quiet")
	waitAll("quiet")

	// Phase 2: the same chat while snapshots are taken back to back.
	stop := make(chan struct{})
	var snaps []float64
	var nsnaps atomic.Int32 // len(snaps), for the chat loop below
	var snapErr error
	snapDone := make(chan struct{})
	go func() {
		defer close(snapDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			s, err := fetchTree(srv)
			if err != nil {
				snapErr = err
				return
			}
			if s.Truncated || s.Unanswered != 0 || s.Counts["conn"] != len(clients) || s.Counts["session"] != len(clients) {
				snapErr = fmt.Errorf("snapshot under load: truncated=%v unanswered=%d counts=%v", s.Truncated, s.Unanswered, s.Counts)
				return
			}
			snaps = append(snaps, s.ElapsedMS)
			nsnaps.Add(1)
		}
	}()
	// A snapshot of 600 actors under -race on a busy machine can take longer than one round of chat, so the chat
	// goes on in further rounds until three snapshots were taken during it (at most ten rounds).
	var snapPhases []string
	for round := 0; round == 0 || nsnaps.Load() < 3 && round < 10; round++ {
		snapPhases = append(snapPhases, fmt.Sprintf("snap%d", round))
		chat(snapPhases[round])
	}
	close(stop)
	<-snapDone
	if snapErr != nil {
		t.Fatal(snapErr)
	}
	for _, ph := range snapPhases {
		waitAll(ph)
	}

	recv.mu.Lock()
	for id, n := range recv.seen {
		if n != 1 {
			t.Errorf("message %s delivered %d times", id, n)
		}
	}
	var underSnap []time.Duration
	for _, ph := range snapPhases {
		underSnap = append(underSnap, recv.lat[ph]...)
	}
	q, s := quantiles(recv.lat["quiet"]), quantiles(underSnap)
	recv.mu.Unlock()
	if len(snaps) < 3 {
		t.Errorf("only %d snapshots during %d rounds of chat", len(snaps), len(snapPhases))
	}
	sort.Float64s(snaps)
	t.Logf("%d snapshots of %d actors during the chat: median %.1f ms, max %.1f ms", len(snaps), 2+len(clients)*2+len(clients), snaps[len(snaps)/2], snaps[len(snaps)-1])
	t.Logf("delivery latency without snapshots: %s", q)
	t.Logf("delivery latency with snapshots:    %s", s)
	for _, c := range clients {
		c.Close()
	}
}

func quantiles(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(p float64) time.Duration {
		return s[min(len(s)-1, int(p*float64(len(s))))].Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("n=%d p50=%v p90=%v p99=%v max=%v", len(s), at(0.5), at(0.9), at(0.99), s[len(s)-1].Round(10*time.Microsecond))
}

// fetchTree is tree() for goroutines other than the test's.
func fetchTree(srv *harness.Server) (*snapshot, error) {
	return getSnapshot("http://" + srv.DebugAddr + "/debug/actors")
}
