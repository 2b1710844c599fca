package hardening

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// parkedReaders counts the server's reader goroutines parked on a quiet connection (actors/reader.go park):
// they wait in the socket poller with a fresh, minimal stack and no read buffer.
func parkedReaders(t testing.TB, addr string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatalf("goroutine dump: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("goroutine dump: %v", err)
	}
	// debug=1 groups identical stacks: "<count> @ ..." then the frames; sum the groups that contain park.
	n := 0
	for _, g := range strings.Split(string(b), "\n\n") {
		if !strings.Contains(g, "actors.(*reader).park") {
			continue
		}
		var c int
		if _, err := fmt.Sscan(g, &c); err == nil {
			n += c
		}
	}
	return n
}

// A TLS session that goes quiet parks its reader (no buffer, a small stack) and loses nothing: stanzas sent
// after the pause are read and routed; whitespace keepalives wake it and it parks again, so it lives past
// c2s.idle_timeout; and once it is silent for idle_timeout it is still closed with <connection-timeout/>
// (RFC 6120 §4.9.3.4), the deadline counted from its last byte.
func TestQuietConnectionParks(t *testing.T) {
	t.Parallel()
	srv := ourServer(t, map[string]string{"c2s": `idle_timeout = "6s"`}, false)
	ua, pa := newUser(t, srv, "a")
	ub, pb := newUser(t, srv, "b")
	a := login(t, srv, ua, pa, "r", true)
	b := login(t, srv, ub, pb, "r", true)
	chatCheck(t, srv, a, b, 5)
	eventually(t, 10*time.Second, "both readers parked", func() bool { return parkedReaders(t, srv.DebugAddr) >= 2 })
	// Bytes after the pause, in both directions, over the same TLS sessions.
	chatCheck(t, srv, a, b, 20)
	chatCheck(t, srv, b, a, 20)
	// Keepalives every 2.5 s for 9 s: past the 6 s idle timeout, and each wake-up ends in a park again.
	for i := 0; i < 4; i++ {
		time.Sleep(2500 * time.Millisecond)
		if err := a.TryWrite(" "); err != nil {
			t.Fatalf("keepalive %d: %v", i, err)
		}
		if err := b.TryWrite(" "); err != nil {
			t.Fatalf("keepalive %d: %v", i, err)
		}
	}
	chatCheck(t, srv, a, b, 5)
	eventually(t, 10*time.Second, "readers parked again", func() bool { return parkedReaders(t, srv.DebugAddr) >= 2 })
	// Now silence on a: the idle timeout still ends it, parked or not.
	start := time.Now()
	stop := make(chan struct{})
	kept := make(chan struct{})
	go func() { // b stays alive meanwhile
		defer close(kept)
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Second):
				_ = b.TryWrite(" ")
			}
		}
	}()
	cond, closed, _ := streamError(a)
	close(stop)
	<-kept
	if cond != "connection-timeout" || !closed {
		t.Fatalf("silent parked session: condition %q closed %v, want connection-timeout", cond, closed)
	}
	if el := time.Since(start); el > 12*time.Second {
		t.Errorf("closed %v after going silent, want about the 6s idle timeout", el)
	}
	chatCheck(t, srv, b, b, 3)
}
