package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// CPU per message routed between two users, closed loop over one connection each: over s2s between two xmppd
// (both processes' CPU counted), and the c2s baseline with both users on one server. The figure is
// process_cpu_seconds_total from each server's /metrics. Run without the race detector:
//
//	XMPPD_E2E_NORACE=1 go test ./test/e2e/ -run '^$' -bench 'Chat' -benchtime 2000x

func processCPU(b *testing.B, s *harness.Server) float64 {
	b.Helper()
	resp, err := http.Get("http://" + s.DebugAddr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_cpu_seconds_total "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	b.Fatal("no process_cpu_seconds_total")
	return 0
}

// chatLoop sends n messages from alice to bob, a window of 50 in flight, and waits for all of them.
func chatLoop(b *testing.B, alice, bob *xmppclient.Client, to string, n int) {
	b.Helper()
	const window = 50
	sent, got := 0, 0
	for got < n {
		for sent < n && sent-got < window {
			alice.Send(fmt.Sprintf(`<message to='%s' type='chat'><body>m%d</body></message>`, to, sent))
			sent++
		}
		if _, err := bob.Wait(func(e *xmppclient.Elem) bool { return e.Name.Local == "message" }, 30*time.Second); err != nil {
			b.Fatalf("after %d of %d: %v", got, n, err)
		}
		got++
	}
}

func benchChat(b *testing.B, servers []*harness.Server, alice, bob *xmppclient.Client, to string) {
	chatLoop(b, alice, bob, to, 20) // warm: the s2s stream is up, caches are filled
	cpu := func() (t float64) {
		for _, s := range servers {
			t += processCPU(b, s)
		}
		return t
	}
	c0 := cpu()
	b.ResetTimer()
	chatLoop(b, alice, bob, to, b.N)
	b.StopTimer()
	b.ReportMetric((cpu()-c0)*1e6/float64(b.N), "cpu-µs/msg")
}

func BenchmarkS2SChat(b *testing.B) {
	p := startFed(b, fedOptions{selfSigned: true}, fedOptions{selfSigned: true})
	a, apw := p.a.user(b, "alice")
	u, upw := p.b.user(b, "bob")
	alice := xmppclient.MustLoginTo(b, p.a.Server, a, apw, xmppclient.Options{Resource: "r"})
	bob := xmppclient.MustLoginTo(b, p.b.Server, u, upw, xmppclient.Options{Resource: "r"})
	benchChat(b, []*harness.Server{p.a.Server, p.b.Server}, alice, bob, bob.JID.String())
}

func BenchmarkC2SChat(b *testing.B) {
	s := own(b, harness.Options{})
	a, apw := s.user(b, "alice")
	u, upw := s.user(b, "bob")
	alice := xmppclient.MustLoginTo(b, s.Server, a, apw, xmppclient.Options{Resource: "r"})
	bob := xmppclient.MustLoginTo(b, s.Server, u, upw, xmppclient.Options{Resource: "r"})
	benchChat(b, []*harness.Server{s.Server}, alice, bob, bob.JID.String())
}
