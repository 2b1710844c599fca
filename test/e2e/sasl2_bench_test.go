package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// The server's own CPU per one-round-trip reconnection, measured on the real xmppd process (utime+stime from
// /proc/PID/stat; the clients run in the test process and are not counted). Each op includes TCP, STARTTLS with a
// full TLS 1.3 handshake and two stream headers; StartTLS is that part alone. The …TLSResumed variants are what a
// returning mobile client does: its TLS client keeps a session cache, so the handshake resumes the TLS session
// with the server's ticket (RFC 8446 §2.2: no certificate, no signature) instead of a full one. The …DirectTLS
// variants connect to the XEP-0368 port instead of running STARTTLS.
//
//	go test -run XXX -bench SASL2ServerCPU -benchtime 500x ./test/e2e/
//
// The server is the benchmark's own, with [tls] post_quantum = false as scripts/bench/xmppd.toml has it (the
// peers' OpenSSL negotiates X25519, and so does a client offering both shares): XMPPD_BENCH_PQ=1 keeps the
// X25519MLKEM768 hybrid, the default, to measure what it adds. It logs at info, the shipped default
// (config.toml), not at the harness's debug level, whose lines to stderr cost the server a write(2) each:
// XMPPD_BENCH_LOG=debug (or warn, as scripts/bench/xmppd.toml) sets another level.

// serverCPU is the server process's CPU time so far, in seconds (USER_HZ = 100 ticks).
func serverCPU(b *testing.B, pid int) float64 {
	b.Helper()
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	f := bytes.Fields(st[bytes.LastIndexByte(st, ')')+1:])
	ut, _ := strconv.ParseFloat(string(f[11]), 64)
	stm, _ := strconv.ParseFloat(string(f[12]), 64)
	return (ut + stm) / 100
}

func BenchmarkSASL2ServerCPU(b *testing.B) {
	opts := harness.Options{Sections: map[string]string{"tls": "post_quantum = false"}}
	if os.Getenv("XMPPD_BENCH_PQ") == "1" {
		opts = harness.Options{}
	}
	srv := own(b, opts)
	level := os.Getenv("XMPPD_BENCH_LOG")
	if level == "" {
		level = "info"
	}
	if level != "debug" {
		// The harness writes level = "debug"; the server reads its configuration again when it starts.
		cfg, err := os.ReadFile(srv.ConfigPath)
		if err != nil {
			b.Fatal(err)
		}
		cfg = bytes.Replace(cfg, []byte("level = \"debug\""), []byte("level = "+strconv.Quote(level)), 1)
		if err := os.WriteFile(srv.ConfigPath, cfg, 0o600); err != nil {
			b.Fatal(err)
		}
		srv.Restart(b)
	}
	pid := srv.PID()
	a, pw := srv.user(b, "bench")
	ua := newUA()
	rc, f := s2Dial(b, srv)
	succ := rc.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, ua: ua,
		inline: bind2("Bench", "<enable xmlns='urn:xmpp:sm:3' resume='true'/>") + "<request-token xmlns='" + nsFast + "' mechanism='HT-SHA-256-NONE'/>"})
	wantSuccess(b, succ)
	token := succ.Child(nsFast, "token").Get("token")
	id := succ.Child(nsBind2, "bound").Child(nsSM, "enabled").Get("id")
	count := 0
	// dial is s2Dial, or with a TLS session cache (a resumed TLS session once the cache has the server's ticket).
	dial := s2Dial
	cached := func(b *testing.B, fn func(b *testing.B)) {
		target := xmppclient.TargetOf(srv.Server)
		target.TLS = target.TLS.Clone()
		target.TLS.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		dial = func(t testing.TB, srv *testServer) (*rawConn, *xmppclient.Elem) {
			rc := &rawConn{xmppclient.MustDialRaw(t, target, xmppclient.RawOptions{})}
			rc.open(srv.Domain)
			return rc, rc.starttls() // reading the new stream's features takes the ticket, sent after the handshake
		}
		defer func() { dial = s2Dial }()
		warm, _ := dial(b, srv)
		warm.Conn().Close()
		fn(b)
		if !dialResumed(b, dial, srv) {
			b.Fatal("the TLS session was not resumed")
		}
	}
	measure := func(b *testing.B, unit string, op func(i int)) {
		start, alloc := serverCPU(b, pid), serverAllocated(b, srv)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			op(i)
		}
		b.StopTimer()
		b.ReportMetric((serverCPU(b, pid)-start)*1e6/float64(b.N), "server-cpu-µs/"+unit)
		// What the server allocated (the collector's work follows it): unlike CPU time, not inflated by a busy
		// machine, so it shows small changes that the CPU figure's noise hides.
		b.ReportMetric((serverAllocated(b, srv)-alloc)/float64(b.N), "server-alloc-B/"+unit)
	}
	startTLS := func(b *testing.B) {
		measure(b, "conn", func(int) {
			c, _ := dial(b, srv)
			c.Write("</stream:stream>")
			c.Conn().Close()
		})
	}
	b.Run("StartTLS", startTLS)
	b.Run("StartTLSTLSResumed", func(b *testing.B) { cached(b, startTLS) })
	fastLogin := func(withCount bool) func(int) {
		return func(int) {
			c, _ := dial(b, srv)
			attrs := ""
			if withCount {
				count++
				attrs = fmt.Sprintf("count='%d'", count)
			}
			wantSuccess(b, c.sasl2Fast(a, token, "HT-SHA-256-NONE", ua, attrs, bind2("Other", "")))
			c.Write("</stream:stream>")
			c.Conn().Close()
		}
	}
	// With a count the token's counter is written (one durable SQLite commit); without, the token is only read.
	b.Run("FastLogin", func(b *testing.B) { measure(b, "login", fastLogin(true)) })
	b.Run("FastLoginNoCount", func(b *testing.B) { measure(b, "login", fastLogin(false)) })
	b.Run("FastLoginTLSResumed", func(b *testing.B) { cached(b, func(b *testing.B) { measure(b, "login", fastLogin(true)) }) })
	resume := func(auth func(c *rawConn, inline string) *xmppclient.Elem) func(int) {
		return func(int) {
			rc.Conn().Close() // the phone's connection drops
			c, f := dial(b, srv)
			_ = f
			e := auth(c, "<resume xmlns='urn:xmpp:sm:3' previd='"+id+"' h='0'/>")
			if e.Child(nsSM, "resumed") == nil {
				b.Fatalf("not resumed: %s", e)
			}
			rc = c
		}
	}
	fastResume := func(b *testing.B) {
		measure(b, "resume", resume(func(c *rawConn, inline string) *xmppclient.Elem {
			return c.sasl2Fast(a, token, "HT-SHA-256-NONE", ua, "", inline)
		}))
	}
	b.Run("FastResume", fastResume)
	b.Run("FastResumeTLSResumed", func(b *testing.B) { cached(b, fastResume) })
	// XEP-0368 direct TLS: no plaintext stream header, no <proceed/>, one stream header fewer.
	direct := func(b *testing.B, cache tls.ClientSessionCache, fn func(b *testing.B)) {
		cfg := xmppclient.TargetOf(srv.Server).TLS.Clone()
		cfg.ClientSessionCache = cache
		dial = func(t testing.TB, srv *testServer) (*rawConn, *xmppclient.Elem) {
			rc := dialRawTLS(t, srv, cfg)
			_, f := rc.open(srv.Domain)
			return rc, f
		}
		defer func() { dial = s2Dial }()
		if cache != nil {
			warm, _ := dial(b, srv)
			warm.Conn().Close()
		}
		fn(b)
		if resumed := dialResumed(b, dial, srv); resumed != (cache != nil) {
			b.Fatalf("TLS session resumed: %v", resumed)
		}
	}
	b.Run("FastResumeDirectTLS", func(b *testing.B) { direct(b, nil, fastResume) })
	b.Run("FastResumeDirectTLSResumed", func(b *testing.B) { direct(b, tls.NewLRUClientSessionCache(4), fastResume) })
	// SCRAM costs the server a few HMACs and a credentials read; the client's PBKDF2 is not counted.
	b.Run("ScramResume", func(b *testing.B) {
		measure(b, "resume", func(int) {
			rc.Conn().Close()
			c, f := s2Dial(b, srv)
			e := c.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, ua: ua, inline: "<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='0'/>"})
			if e.Child(nsSM, "resumed") == nil {
				b.Fatalf("not resumed: %s", e)
			}
			rc = c
		})
	})
	// FastResumeQueued: the client got five messages it did not acknowledge before its connection dropped, so the
	// resumption sends them again behind <success/> (XEP-0198 §4), with an <r/>. The op includes routing the five
	// (and archiving them) and the client's reading them twice.
	b.Run("FastResumeQueued", func(b *testing.B) {
		const queued = 5
		so, spw := srv.user(b, "sender")
		sender := xmppclient.Online(b, srv.Server, so, spw, "s")
		full := succ.ChildText("authorization-identifier")
		handled := 0 // h: what the client acknowledges at each resumption
		readMessages := func(c *rawConn) {
			for got := 0; got < queued; {
				e, err := c.Next(xmppclient.WaitTimeout)
				if err != nil {
					b.Fatalf("waiting for the queued messages: %v", err)
				}
				if e.Is(xmppclient.NSClient, "message") {
					got++
				}
			}
		}
		resumeOn := func(c *rawConn) {
			e := c.sasl2Fast(a, token, "HT-SHA-256-NONE", ua, "", fmt.Sprintf("<resume xmlns='urn:xmpp:sm:3' previd='%s' h='%d'/>", id, handled))
			if e.Child(nsSM, "resumed") == nil {
				b.Fatalf("not resumed: %s", e)
			}
		}
		// A live connection of this run (the testing package closes the ones of a run when it ends).
		rc.Conn().Close()
		rc, _ = dial(b, srv)
		resumeOn(rc)
		measure(b, "resume", func(int) {
			for k := 0; k < queued; k++ {
				sender.Send("<message type='chat' to='" + full + "'><body>queued</body></message>")
			}
			readMessages(rc) // received, not acknowledged
			rc.Conn().Close()
			c, _ := dial(b, srv)
			resumeOn(c)
			readMessages(c) // sent again
			handled += queued
			rc = c
		})
	})
}

// serverAllocated is the server's go_memstats_alloc_bytes_total, from its debug listener's /metrics.
func serverAllocated(b *testing.B, srv *testServer) float64 {
	b.Helper()
	resp, err := http.Get("http://" + srv.DebugAddr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "go_memstats_alloc_bytes_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				b.Fatal(err)
			}
			return f
		}
	}
	b.Fatal("no go_memstats_alloc_bytes_total in /metrics")
	return 0
}

// dialResumed: a connection from dial resumed its TLS session.
func dialResumed(b *testing.B, dial func(testing.TB, *testServer) (*rawConn, *xmppclient.Elem), srv *testServer) bool {
	c, _ := dial(b, srv)
	defer c.Conn().Close()
	return c.TLSState().DidResume
}
