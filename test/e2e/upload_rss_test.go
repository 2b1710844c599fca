package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// The upload path streams: a 100 MiB PUT goes from the socket to a file through a fixed buffer, so the server's
// resident memory grows by at most 8 MiB while it runs (issue 15). TestUploadMemoryBound checks that bound;
// BenchmarkUpload100MiB reports the throughput (and the same growth) on loopback.

const bigUpload = 100 << 20

// pattern is a reader of deterministic bytes (no 100 MiB buffer on the client side either).
type pattern struct{ n int64 }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(p.n*31 + p.n>>11)
		p.n++
	}
	return len(b), nil
}

// rssKiB is VmRSS of pid from /proc/<pid>/status.
func rssKiB(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "VmRSS:")
	if !ok {
		t.Fatal("no VmRSS in /proc status")
	}
	line, _, _ := strings.Cut(rest, "\n")
	v, err := strconv.ParseInt(strings.Fields(line)[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// bigUploadServer is a server taking files of 100 MiB.
func bigUploadServer(t testing.TB) (*testServer, *xmppclient.Client) {
	srv := own(t, harness.Options{Sections: map[string]string{
		"upload": fmt.Sprintf("listen = \"127.0.0.1:0\"\nmax_file_size = %d\nquota_per_user = 0\ndaily_limit = 0", bigUpload),
	}})
	local, pw := srv.user(t, "big")
	return srv, xmppclient.MustLoginTo(t, srv.Server, local, pw, xmppclient.Options{})
}

// putStreamed uploads size pattern bytes to a fresh slot and returns the slot, the RSS growth of the server
// (peak during the PUT minus before, KiB) and the PUT's duration.
func putStreamed(t testing.TB, srv *testServer, c *xmppclient.Client, size int64) (slot, int64, time.Duration) {
	t.Helper()
	s := mustSlot(t, requestSlot(c, srv.Domain, "big.bin", size, "application/octet-stream"))
	pid := srv.PID()
	before := rssKiB(t, pid)
	peak := before
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if v := rssKiB(t, pid); v > peak {
					peak = v
				}
			}
		}
	}()
	req, err := http.NewRequest(http.MethodPut, s.put, io.LimitReader(&pattern{}, size))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Authorization", s.auth)
	req.Header.Set("Content-Type", "application/octet-stream")
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", res.Status)
	}
	return s, peak - before, took
}

func TestUploadMemoryBound(t *testing.T) {
	srv, c := bigUploadServer(t)
	// A small upload first: the handler's code and buffers are resident before the measurement.
	putStreamed(t, srv, c, 1<<20)
	s, growth, took := putStreamed(t, srv, c, bigUpload)
	t.Logf("100 MiB PUT: server RSS grew by %d KiB (peak minus before), %v", growth, took.Round(time.Millisecond))
	if growth > 8<<10 {
		t.Errorf("server RSS grew by %d KiB during a 100 MiB upload; the bound is 8 MiB", growth)
	}
	// The file is what was sent.
	res, err := http.Get(s.get)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, res.Body)
	want := sha256.New()
	_, _ = io.Copy(want, io.LimitReader(&pattern{}, bigUpload))
	if err != nil || n != bigUpload || !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
		t.Fatalf("GET: %d bytes, %v, or other bytes than were sent", n, err)
	}
}

func BenchmarkUpload100MiB(b *testing.B) {
	srv, c := bigUploadServer(b)
	putStreamed(b, srv, c, 1<<20)
	b.SetBytes(bigUpload)
	b.ResetTimer()
	var worst int64
	for i := 0; i < b.N; i++ {
		_, growth, _ := putStreamed(b, srv, c, bigUpload)
		worst = max(worst, growth)
	}
	b.ReportMetric(float64(worst)/1024, "MiB-rss-growth")
}
