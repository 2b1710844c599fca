package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
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
//
// Against Prosody the figure adds Prosody's own CPU (utime+stime of its process from /proc).

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

// Between two xmppd with certificates from a CA both trust: SASL EXTERNAL, and XEP-0198 on the stream (an <r/>
// every 16 stanzas, answered by the peer).
func BenchmarkS2SChatExternalSM(b *testing.B) {
	p := startFed(b, fedOptions{}, fedOptions{})
	a, apw := p.a.user(b, "alice")
	u, upw := p.b.user(b, "bob")
	alice := xmppclient.MustLoginTo(b, p.a.Server, a, apw, xmppclient.Options{Resource: "r"})
	bob := xmppclient.MustLoginTo(b, p.b.Server, u, upw, xmppclient.Options{Resource: "r"})
	benchChat(b, []*harness.Server{p.a.Server, p.b.Server}, alice, bob, bob.JID.String())
}

// xmppd → Prosody over one s2s stream (TLS, dialback, as BenchmarkS2SChat): alice on xmppd, paul on Prosody; the
// CPU of both servers per message.
func BenchmarkS2SProsodyChat(b *testing.B) {
	certs := newFedCA(b)
	aS2S := freeAddr(b)
	_, ap, _ := net.SplitHostPort(aS2S)
	aPort, _ := strconv.Atoi(ap)
	dns := startFakeDNS(b, map[string]uint16{"xmppd.example": uint16(aPort)})
	pCert, pKey := certs.leaf(b, "prosody.example", false)
	pros := startProsodyLog(b, "prosody.example", pCert, pKey, dns.addr(), "", "warn")
	aCert, aKey := certs.leaf(b, "xmppd.example", true)
	a := own(b, harness.Options{Domains: []string{"xmppd.example"}, CertFile: aCert, KeyFile: aKey, CAFile: aCert + ".ca",
		Sections:  map[string]string{"s2s": fmt.Sprintf("listen = %q\nconnect_timeout = \"15s\"", aS2S)},
		ExtraTOML: fmt.Sprintf("[s2s.routes]\n\"prosody.example\" = %q\n", pros.s2s)})
	waitListening(b, aS2S)
	al, apw := a.user(b, "alice")
	pros.register(b, "paul", "prosody.example", "paul-secret")
	alice := xmppclient.MustLoginTo(b, a.Server, al, apw, xmppclient.Options{Resource: "r"})
	paul := xmppclient.MustLogin(b, xmppclient.Target{Domain: "prosody.example", C2SAddr: pros.c2s,
		TLS: xmppclient.TrustTLS("prosody.example", certs.pool(b))}, "paul", "paul-secret", xmppclient.Options{Resource: "desk"})
	paul.Send("<presence/>")
	paul.IQ(`<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`) // the presence is in before the first message
	to := "paul@prosody.example/desk"
	chatLoop(b, alice, paul, to, 20)
	cpu := func() float64 { return processCPU(b, a.Server) + pidCPU(b, pros.cmd.Process.Pid) }
	c0 := cpu()
	b.ResetTimer()
	chatLoop(b, alice, paul, to, b.N)
	b.StopTimer()
	b.ReportMetric((cpu()-c0)*1e6/float64(b.N), "cpu-µs/msg")
}

// pidCPU is the user+system CPU seconds of a process (/proc/<pid>/stat fields 14 and 15, in clock ticks of
// 1/100 s on Linux).
func pidCPU(b *testing.B, pid int) float64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}
