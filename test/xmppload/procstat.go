package xmppload

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// ServerStats are taken from /proc for the server processes given with
// -server-pid, at phase boundaries, so that the CPU of the logins and of
// the measured phase are counted separately.
type ServerStats struct {
	PIDs             []int   `json:"pids"`
	RSSKiBStart      int64   `json:"rss_kib_start"`
	RSSKiBConnected  int64   `json:"rss_kib_connected"`
	RSSKiBPeak       int64   `json:"rss_kib_peak"`
	ConnectedAtRSS   int64   `json:"connected_at_rss"`
	KiBPerConn       float64 `json:"kib_per_conn"`
	CPUSecondsLogin  float64 `json:"cpu_s_login"`
	CPUMsPerLogin    float64 `json:"cpu_ms_per_login"`
	CPUSecondsSteady float64 `json:"cpu_s_steady"`
	CPUMicrosPerMsg  float64 `json:"cpu_us_per_msg"`
	CPUMsPerResume   float64 `json:"cpu_ms_per_resume,omitempty"` // reconnect: measured phase CPU / resumptions

	// From -server-metrics (a Go server's Prometheus endpoint), at the start and after the settle: heap in use
	// (go_memstats_heap_inuse_bytes), goroutine stacks (go_memstats_stack_inuse_bytes), goroutines; per
	// connection = growth over the start / connections, like KiBPerConn for RSS.
	HeapKiBStart        int64   `json:"heap_kib_start,omitempty"`
	HeapKiBConnected    int64   `json:"heap_kib_connected,omitempty"`
	HeapKiBPerConn      float64 `json:"heap_kib_per_conn,omitempty"`
	StackKiBStart       int64   `json:"stack_kib_start,omitempty"`
	StackKiBConnected   int64   `json:"stack_kib_connected,omitempty"`
	StackKiBPerConn     float64 `json:"stack_kib_per_conn,omitempty"`
	GoroutinesStart     int64   `json:"goroutines_start,omitempty"`
	GoroutinesConnected int64   `json:"goroutines_connected,omitempty"`
	GoroutinesPerConn   float64 `json:"goroutines_per_conn,omitempty"`
	MetricsScrapeErrors int64   `json:"metrics_scrape_errors,omitempty"`

	// idle with -burst: after every client sent its burst, all arrived and Settle passed.
	RSSKiBAfterBurst          int64   `json:"rss_kib_after_burst,omitempty"`
	KiBPerConnAfterBurst      float64 `json:"kib_per_conn_after_burst,omitempty"`
	HeapKiBPerConnAfterBurst  float64 `json:"heap_kib_per_conn_after_burst,omitempty"`
	StackKiBPerConnAfterBurst float64 `json:"stack_kib_per_conn_after_burst,omitempty"`
	RSSKiBBurstReceived       int64   `json:"rss_kib_burst_received,omitempty"` // right after the last burst message arrived
}

type procSample struct {
	rssKiB     int64
	heapKiB    int64 // from the metrics endpoint; -1 when not read
	stackKiB   int64
	goroutines int64
	cpu        float64 // seconds
	connected  int64
	received   uint64
}

// clockTicks is USER_HZ; 100 on every Linux we run on (getconf CLK_TCK).
const clockTicks = 100

// readProc returns VmRSS (KiB) and utime+stime (s) of one process.
func readProc(pid int) (rssKiB int64, cpu float64, err error) {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// Fields after the ")" that ends the command name: state is field 3,
	// utime and stime are fields 14 and 15 (proc(5)).
	i := bytes.LastIndexByte(st, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := bytes.Fields(st[i+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseFloat(string(f[11]), 64)
	stm, _ := strconv.ParseFloat(string(f[12]), 64)
	cpu = (ut + stm) / clockTicks
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	if j := bytes.Index(status, []byte("VmRSS:")); j >= 0 {
		line := status[j+6:]
		if k := bytes.IndexByte(line, '\n'); k >= 0 {
			line = line[:k]
		}
		fs := bytes.Fields(line)
		if len(fs) > 0 {
			rssKiB, _ = strconv.ParseInt(string(fs[0]), 10, 64)
		}
	}
	return rssKiB, cpu, nil
}

type serverSampler struct {
	pids       []int
	metrics    string // Prometheus text endpoint, "" for none
	scrapeErrs int64
	r          *runner
	mu         sync.Mutex
	marks      map[string]procSample
	peak       int64
	stop       chan struct{}
	done       chan struct{}
}

func newServerSampler(r *runner, pids []int, metricsURL string) *serverSampler {
	s := &serverSampler{pids: pids, metrics: metricsURL, r: r, marks: map[string]procSample{}}
	if len(pids) == 0 {
		return s
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *serverSampler) sample() procSample {
	var ps procSample
	for _, pid := range s.pids {
		rss, cpu, err := readProc(pid)
		if err != nil {
			continue
		}
		ps.rssKiB += rss
		ps.cpu += cpu
	}
	ps.connected = s.r.stats.connected.Load()
	ps.received = s.r.stats.received.Load() + s.r.stats.presRecv.Load()
	s.mu.Lock()
	if ps.rssKiB > s.peak {
		s.peak = ps.rssKiB
	}
	s.mu.Unlock()
	return ps
}

// waitQuiet waits (at most max) until the server processes used under a
// tenth of a CPU over a second: the roster setup's storm of subscriptions
// can keep a server busy long after the last answer arrived, and logins
// made meanwhile time out. Without -server-pid it returns at once.
func (s *serverSampler) waitQuiet(ctx context.Context, max time.Duration) {
	if len(s.pids) == 0 {
		return
	}
	cpu := func() float64 {
		var t float64
		for _, pid := range s.pids {
			if _, c, err := readProc(pid); err == nil {
				t += c
			}
		}
		return t
	}
	for end := time.Now().Add(max); time.Now().Before(end) && ctx.Err() == nil; {
		a := cpu()
		sleepCtx(ctx, time.Second)
		if cpu()-a < 0.1 {
			return
		}
	}
}

func (s *serverSampler) mark(name string) {
	if len(s.pids) == 0 {
		return
	}
	ps := s.sample()
	ps.heapKiB, ps.stackKiB, ps.goroutines = -1, -1, -1
	if s.metrics != "" {
		h, st, g, err := scrapeGoMetrics(s.metrics)
		if err == nil {
			ps.heapKiB, ps.stackKiB, ps.goroutines = h, st, g
		}
		s.mu.Lock()
		if err != nil {
			s.scrapeErrs++
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.marks[name] = ps
	s.mu.Unlock()
}

func (s *serverSampler) report(rep *Report) *ServerStats {
	if len(s.pids) == 0 {
		return nil
	}
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	st, li, se, end := s.marks["start"], s.marks["logged-in"], s.marks["settled"], s.marks["steady-end"]
	out := &ServerStats{
		PIDs:             s.pids,
		RSSKiBStart:      st.rssKiB,
		RSSKiBConnected:  se.rssKiB,
		RSSKiBPeak:       s.peak,
		ConnectedAtRSS:   se.connected,
		CPUSecondsLogin:  round2(li.cpu - st.cpu),
		CPUSecondsSteady: round2(end.cpu - se.cpu),
	}
	out.MetricsScrapeErrors = s.scrapeErrs
	if se.connected > 0 {
		out.KiBPerConn = round2(float64(se.rssKiB-st.rssKiB) / float64(se.connected))
	}
	perConn := func(a, b, n int64) float64 {
		if a < 0 || b < 0 || n <= 0 {
			return 0
		}
		return round2(float64(b-a) / float64(n))
	}
	if st.heapKiB >= 0 && se.heapKiB >= 0 && s.metrics != "" {
		out.HeapKiBStart, out.HeapKiBConnected = st.heapKiB, se.heapKiB
		out.StackKiBStart, out.StackKiBConnected = st.stackKiB, se.stackKiB
		out.GoroutinesStart, out.GoroutinesConnected = st.goroutines, se.goroutines
		out.HeapKiBPerConn = perConn(st.heapKiB, se.heapKiB, se.connected)
		out.StackKiBPerConn = perConn(st.stackKiB, se.stackKiB, se.connected)
		out.GoroutinesPerConn = perConn(st.goroutines, se.goroutines, se.connected)
	}
	if bs, ok := s.marks["burst-settled"]; ok && bs.connected > 0 {
		out.RSSKiBAfterBurst = bs.rssKiB
		out.RSSKiBBurstReceived = s.marks["burst-received"].rssKiB
		out.KiBPerConnAfterBurst = perConn(st.rssKiB, bs.rssKiB, bs.connected)
		if s.metrics != "" {
			out.HeapKiBPerConnAfterBurst = perConn(st.heapKiB, bs.heapKiB, bs.connected)
			out.StackKiBPerConnAfterBurst = perConn(st.stackKiB, bs.stackKiB, bs.connected)
		}
	}
	if rep.Logins > 0 {
		out.CPUMsPerLogin = round2((li.cpu - st.cpu) * 1e3 / float64(rep.Logins))
	}
	if rep.Profile == ProfileChurn {
		out.CPUSecondsLogin = round2(end.cpu - st.cpu)
		if rep.Logins > 0 {
			out.CPUMsPerLogin = round2((end.cpu - st.cpu) * 1e3 / float64(rep.Logins))
		}
	}
	if rep.Resumes > 0 {
		out.CPUMsPerResume = round2((end.cpu - se.cpu) * 1e3 / float64(rep.Resumes))
	}
	if n := end.received - se.received; n > 0 {
		out.CPUMicrosPerMsg = round2((end.cpu - se.cpu) * 1e6 / float64(n))
	}
	return out
}

// scrapeGoMetrics reads heap and stack bytes in use (KiB) and the goroutine count from a Prometheus text
// endpoint exposing the standard Go collector's go_memstats_heap_inuse_bytes, go_memstats_stack_inuse_bytes and
// go_goroutines.
func scrapeGoMetrics(url string) (heapKiB, stackKiB, goroutines int64, err error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, 0, fmt.Errorf("%s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, 0, 0, err
	}
	found := 0
	for _, line := range bytes.Split(body, []byte{'\n'}) {
		f := bytes.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, perr := strconv.ParseFloat(string(f[1]), 64)
		if perr != nil {
			continue
		}
		switch string(f[0]) {
		case "go_memstats_heap_inuse_bytes":
			heapKiB, found = int64(v)/1024, found+1
		case "go_memstats_stack_inuse_bytes":
			stackKiB, found = int64(v)/1024, found+1
		case "go_goroutines":
			goroutines, found = int64(v), found+1
		}
	}
	if found < 3 {
		return 0, 0, 0, fmt.Errorf("%s: no Go runtime metrics", url)
	}
	return heapKiB, stackKiB, goroutines, nil
}
