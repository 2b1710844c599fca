// Package xmppload is a load generator that speaks only standard XMPP
// (RFC 6120/6121, XEP-0077), so that the same run can measure xmppd, Prosody
// and ejabberd. cmd/xmppload is its command line; scripts/bench.sh runs it
// against all three servers.
//
// A run has phases: optional in-band registration, login of all clients
// (paced by Ramp and LoginConcurrency), a settle pause, the measured phase
// of Duration for the chosen profile, a drain period in which in-flight
// messages may still arrive, and a clean close of every stream.
package xmppload

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Profiles.
const (
	ProfileIdle   = "idle"
	ProfileChat   = "chat"
	ProfileRoster = "roster"
	ProfileChurn  = "churn"
	ProfileMUC    = "muc"
	// ProfileReconnect: sessions with XEP-0198 resumption whose connections
	// drop every ~Hold and are resumed on a new one.
	ProfileReconnect = "reconnect"
)

// Config describes one run. Zero values are replaced by the defaults noted.
type Config struct {
	Addr     string        // host:port of the c2s listener
	Domain   string        // XMPP domain (stream 'to')
	Clients  int           // number of simulated users
	Duration time.Duration // length of the measured phase
	Profile  string        // idle|chat|roster|churn|muc|reconnect

	SM       bool // XEP-0198: enable stream management (with resume) after bind; always on for reconnect
	AckEvery int  // SM: send <r/> after this many stanzas sent (default 10; <0: never)
	// TLSResume gives each client a TLS session cache of its own, as a phone's TLS stack has: its reconnections
	// resume the TLS session with the server's ticket (RFC 8446 §2.2) instead of a full handshake. Off: every
	// connection is a full handshake.
	TLSResume bool

	Register            bool   // create accounts by XEP-0077 first
	UserPrefix          string // accounts are <prefix><i>@<domain>, i = FirstIndex…
	FirstIndex          int    // default 1
	Password            string // password of every account…
	PasswordSuffixIndex bool   // …or <password><i>

	TLS string // starttls (default) | direct | none; with Transport websocket/bosh: wss/https unless none
	// Transport is tcp (default), websocket (RFC 7395: Addr is then the HTTP listener, WebSocketPath the path) or
	// bosh (XEP-0124/0206: Addr the HTTP listener, BOSHPath the path).
	Transport     string
	WebSocketPath string // default /xmpp-websocket
	BOSHPath      string // default /http-bind (Transport bosh: XEP-0124/0206 over https, http with TLS none)
	// BOSHGap: a request is sent while another is outstanding only once that one has been out this long (0: at
	// once). For connection managers that mishandle a request overtaking its predecessor (bosh.go, pump).
	BOSHGap  time.Duration
	Mech     string // auto (default) | SCRAM-SHA-256 | SCRAM-SHA-1 | PLAIN
	CAFile   string // PEM roots; empty: certificates are not verified
	Resource string // resource requested at bind (default "xl")

	Rate float64 // chat: msgs/s per client (0 = closed loop); roster: presence updates/s per client
	// Stagger spreads the senders over each period of Rate (sender k of n sends 1/Rate × k/n later than sender
	// 0), as independent clients would, instead of all sending on the same tick: at 1 msg/s per client the
	// unstaggered run is one burst a second, which a server that batches (an archive commit per batch) serves
	// far more cheaply than the same rate arriving spread out (Tsung's users each keep their own timer).
	Stagger  bool
	Window   int // chat: max messages in flight per client (default 10)
	BodySize int // chat: pad each body to at least this many bytes
	// Burst (idle): after the idle phase every client sends this many messages padded to BodySize to its pair
	// (1↔2, 3↔4…); once all arrived and Settle passed the server's memory is sampled again (does it fall back?).
	Burst       int
	BurstSettle time.Duration // pause after the burst arrived before sampling (default: Settle)
	RosterSize  int           // roster: contacts per user (default 10)
	// RosterOnline (roster): the share of the Clients accounts that log in for the measured phase, spread evenly
	// over the ring of accounts so that every user's contacts are online in that share too (0.5: every second
	// account, half of each roster). The rosters span all Clients accounts; when they need setting up, every
	// account logs in for the setup (an offline account cannot approve a subscription). Default 1: all.
	RosterOnline float64
	Hold         time.Duration // churn: how long each session stays; reconnect: how long each connection lasts (default 1s, ±50 % random)
	Rooms        int           // muc: rooms the clients are spread over (default 1)
	MUCService   string        // muc: the service's domain (default conference.<Domain>)

	Ramp             float64 // connection attempts started per second (0 = unpaced)
	LoginConcurrency int     // logins in progress at once (default 50)
	SourceIPs        []net.IP

	Settle       time.Duration // pause after the login phase (default 2s)
	Drain        time.Duration // wait for in-flight messages (default 5s)
	LoginTimeout time.Duration // per login step deadline (default 30s)
	WriteTimeout time.Duration // per write deadline (default 30s)

	ServerPIDs []int // sample these processes' RSS and CPU from /proc
	// ServerMetrics: a Prometheus text endpoint of a Go server (its /metrics); heap and stack in use and the
	// goroutine count are read from it at each phase boundary, beside RSS.
	ServerMetrics string
	// ServerPprof: a Go server's /debug/pprof/profile URL; a CPU profile of the measured phase (churn: the whole
	// run) is written to ServerPprofOut.
	ServerPprof    string
	ServerPprofOut string

	Progress      io.Writer     // progress lines (nil: none)
	ProgressTTY   bool          // rewrite one line instead of printing lines
	ProgressEvery time.Duration // default 1s on a TTY, 5s otherwise
}

func (c *Config) defaults() error {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:5222"
	}
	if c.Domain == "" {
		c.Domain = "localhost"
	}
	if c.Clients <= 0 {
		c.Clients = 10
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Profile == "" {
		c.Profile = ProfileChat
	}
	switch c.Profile {
	case ProfileIdle, ProfileChat, ProfileRoster, ProfileChurn, ProfileMUC:
	case ProfileReconnect:
		c.SM = true
	default:
		return fmt.Errorf("unknown profile %q (idle|chat|roster|churn|muc|reconnect)", c.Profile)
	}
	if c.Rooms <= 0 {
		c.Rooms = 1
	}
	if c.MUCService == "" {
		c.MUCService = "conference." + c.Domain
	}
	if c.Profile == ProfileMUC && c.Rate <= 0 {
		c.Rate = 1
	}
	if c.AckEvery == 0 {
		c.AckEvery = 10
	}
	if !c.SM {
		c.AckEvery = 0
	}
	if c.UserPrefix == "" {
		c.UserPrefix = "u"
	}
	if c.FirstIndex <= 0 {
		c.FirstIndex = 1
	}
	switch c.TLS {
	case "":
		c.TLS = "starttls"
	case "starttls", "direct", "none":
	default:
		return fmt.Errorf("unknown -tls %q (starttls|direct|none)", c.TLS)
	}
	if c.Mech == "" {
		c.Mech = "auto"
	}
	switch c.Transport {
	case "":
		c.Transport = "tcp"
	case "tcp", "websocket", "bosh":
	default:
		return fmt.Errorf("unknown -transport %q (tcp|websocket|bosh)", c.Transport)
	}
	if c.BOSHPath == "" {
		c.BOSHPath = "/http-bind"
	}
	if c.WebSocketPath == "" {
		c.WebSocketPath = "/xmpp-websocket"
	}
	if c.Resource == "" {
		c.Resource = "xl"
	}
	if c.Window <= 0 {
		c.Window = 10
	}
	if c.RosterSize <= 0 {
		c.RosterSize = 10
	}
	if c.RosterOnline <= 0 {
		c.RosterOnline = 1
	}
	if c.RosterOnline > 1 {
		return fmt.Errorf("-roster-online %v: a share between 0 and 1", c.RosterOnline)
	}
	if c.Hold <= 0 {
		c.Hold = time.Second
	}
	if c.LoginConcurrency <= 0 {
		c.LoginConcurrency = 50
	}
	if c.Settle <= 0 {
		c.Settle = 2 * time.Second
	}
	if c.Drain <= 0 {
		c.Drain = 5 * time.Second
	}
	if c.LoginTimeout <= 0 {
		c.LoginTimeout = 30 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = time.Second
		if !c.ProgressTTY {
			c.ProgressEvery = 5 * time.Second
		}
	}
	return nil
}

// ParseSourceIPs parses "127.0.0.1-127.0.0.50" (a range in the last octet
// or across octets) or a comma-separated list of addresses.
func ParseSourceIPs(s string) ([]net.IP, error) {
	var out []net.IP
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a := net.ParseIP(lo).To4()
		if a == nil {
			return nil, fmt.Errorf("bad source address %q", lo)
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		b := net.ParseIP(hi).To4()
		if b == nil {
			return nil, fmt.Errorf("bad source address %q", hi)
		}
		x, y := ipv4Uint(a), ipv4Uint(b)
		if y < x || y-x > 1<<16 {
			return nil, fmt.Errorf("bad source range %q", part)
		}
		for v := x; v <= y; v++ {
			out = append(out, net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).To4())
		}
	}
	return out, nil
}

func ipv4Uint(ip net.IP) uint32 {
	return uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
}

// ParseRate accepts "500", "500/s", "30/m".
func ParseRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	num, unit, _ := strings.Cut(s, "/")
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad rate %q", s)
	}
	switch unit {
	case "", "s":
	case "m":
		v /= 60
	case "h":
		v /= 3600
	default:
		return 0, fmt.Errorf("bad rate unit in %q (use /s, /m or /h)", s)
	}
	return v, nil
}

type runStats struct {
	sent, received, dups, ooo, stale, msgStanzas atomic.Uint64
	presSent, presRecv                           atomic.Uint64
	// roster: deliveries the updates sent should make (each update × the sender's online contacts), updates of
	// this run delivered to a contact, and the copies a server sent back to the sender itself (RFC 6121 §4.4.2).
	presExpected, presDelivered, presSelf atomic.Uint64
	logins, loginErrors, logouts          atomic.Int64
	registered, regExisting, regErrors    atomic.Int64
	connected, peakConnected              atomic.Int64
	// XEP-0198
	smRequests, smAcks, smServerRequests atomic.Int64
	resent, smDups                       atomic.Uint64
	drops, resumes, resumesFailed        atomic.Int64
	tlsResumed                           atomic.Int64 // handshakes that resumed a TLS session (TLSResume)
}

type runner struct {
	cfg       Config
	tlsConfig *tls.Config
	sourceIPs []net.IP
	addrs     []string // -addr, split (cluster nodes)
	salts     saltCache
	runID     uint64
	start     time.Time
	pad       []byte

	clients  []*client
	flows    []*flow
	chatting atomic.Bool
	stopping atomic.Bool
	dropping atomic.Bool // reconnect: connections are being dropped

	reconnecting atomic.Int64 // reconnect: clients between a drop and their new session

	msgLatency    Histogram
	loginLatency  Histogram
	presLatency   Histogram
	ackLatency    Histogram // SM: our <r/> to the <a/> that covers it
	resumeLatency Histogram // reconnect: dial to <resumed/>
	stats         runStats
	presSeq       atomic.Uint64
	subTraffic    atomic.Int64 // roster setup: subscription stanzas and roster pushes received
	subscribed    atomic.Int64 // roster setup: <presence type='subscribed'/> received
	mucOccupants  []int        // muc: occupants per room, set before the measured phase

	errMu sync.Mutex
	errs  map[string]int64
	phase atomic.Value // string, for the progress line
}

func (r *runner) now() int64 { return int64(time.Since(r.start)) }

func (r *runner) addError(kind string) {
	r.errMu.Lock()
	if r.errs == nil {
		r.errs = make(map[string]int64)
	}
	r.errs[kind]++
	r.errMu.Unlock()
}

func (r *runner) errorCount() int64 {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	var n int64
	for _, v := range r.errs {
		n += v
	}
	return n
}

func (r *runner) password(i int) string {
	if r.cfg.PasswordSuffixIndex {
		return r.cfg.Password + strconv.Itoa(i)
	}
	return r.cfg.Password
}

func (r *runner) bare(i int) string {
	return r.cfg.UserPrefix + strconv.Itoa(i) + "@" + r.cfg.Domain
}

// Run executes one load run and returns its report. The error is non-nil
// only when the run could not be carried out at all; lost messages and
// login errors are in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, sourceIPs: cfg.SourceIPs, start: time.Now(), runID: uint64(rand.Uint32())}
	// -addr may list several addresses (the nodes of a cluster): client i connects to the (i mod n)th.
	for _, a := range strings.Split(cfg.Addr, ",") {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("bad -addr: %w", err)
		}
		r.addrs = append(r.addrs, a)
	}
	if len(r.addrs) > 1 && cfg.Transport != "tcp" && cfg.Transport != "" {
		return nil, fmt.Errorf("-addr lists several addresses: only for -transport tcp")
	}
	// Without -cafile the certificate is not verified (benchmarks use
	// self-signed ones); no session cache unless -tls-resume (each client
	// then has its own, clientTLS), so every login is a full handshake.
	r.tlsConfig = &tls.Config{ServerName: cfg.Domain, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificates in %s", cfg.CAFile)
		}
		r.tlsConfig.RootCAs = pool
		r.tlsConfig.InsecureSkipVerify = false
	}
	if cfg.BodySize > 0 {
		r.pad = make([]byte, cfg.BodySize)
		r.pad[0] = ' '
		for i := 1; i < len(r.pad); i++ {
			r.pad[i] = 'x'
		}
	}
	raiseFileLimit(cfg.Clients + 256)
	r.phase.Store("start")
	r.clients = make([]*client, cfg.Clients)
	for i := range r.clients {
		idx := cfg.FirstIndex + i
		r.clients[i] = &client{r: r, idx: idx, user: cfg.UserPrefix + strconv.Itoa(idx)}
		if cfg.Profile == ProfileMUC {
			// Before the client's reader starts: only the reader touches track afterwards.
			r.clients[i].muc = &mucState{room: i % cfg.Rooms, track: map[uint64]*seqTracker{}}
		}
		r.clients[i].sm.keep = cfg.Profile == ProfileReconnect
	}
	rep := &Report{}
	rep.fillConfig(&cfg)
	rep.StartedAt = r.start.UTC().Format(time.RFC3339)

	var err error
	stopProgress := r.startProgress()
	defer stopProgress()

	if cfg.Register {
		r.phase.Store("register")
		r.registerAll(ctx)
		rep.Registrations = r.stats.registered.Load()
		rep.RegistrationsExisting = r.stats.regExisting.Load()
		rep.RegistrationErrors = r.stats.regErrors.Load()
	}
	srv := newServerSampler(r, cfg.ServerPIDs, cfg.ServerMetrics)
	srv.mark("start")

	switch cfg.Profile {
	case ProfileChurn:
		err = r.runChurn(ctx, rep, srv)
	default:
		err = r.runSessions(ctx, rep, srv)
	}
	if err != nil {
		return nil, err
	}
	r.fillCounters(rep)
	rep.Server = srv.report(rep)
	rep.LoadCPUSeconds = selfCPU()
	return rep, nil
}

// pacer spaces connection attempts to cfg.Ramp per second.
type pacer struct {
	start time.Time
	rate  float64
	n     int
}

func (p *pacer) wait(ctx context.Context) error {
	if p.rate <= 0 {
		return ctx.Err()
	}
	at := p.start.Add(time.Duration(float64(p.n) / p.rate * float64(time.Second)))
	p.n++
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return ctx.Err()
}

func (r *runner) registerAll(ctx context.Context) {
	sem := make(chan struct{}, r.cfg.LoginConcurrency)
	var wg sync.WaitGroup
	p := &pacer{start: time.Now(), rate: r.cfg.Ramp}
	for _, c := range r.clients {
		if p.wait(ctx) != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			existed, err := c.register(ctx)
			switch {
			case err != nil:
				r.stats.regErrors.Add(1)
				r.addError(errorKind(err))
			case existed:
				r.stats.regExisting.Add(1)
			default:
				r.stats.registered.Add(1)
			}
		}()
	}
	wg.Wait()
}

// loginOne logs c in, recording latency and errors.
func (r *runner) loginOne(ctx context.Context, c *client) bool {
	t0 := time.Now()
	err := c.login(ctx)
	if err != nil {
		if c.nc != nil {
			c.nc.Close()
		}
		r.stats.loginErrors.Add(1)
		r.addError(errorKind(err))
		return false
	}
	r.loginLatency.RecordDuration(time.Since(t0))
	r.stats.logins.Add(1)
	r.connectedUp()
	return true
}

// connectedUp counts one more connected client and the peak.
func (r *runner) connectedUp() {
	n := r.stats.connected.Add(1)
	for {
		p := r.stats.peakConnected.Load()
		if n <= p || r.stats.peakConnected.CompareAndSwap(p, n) {
			break
		}
	}
}

// session lifetime after login: read until the stream ends.
func (r *runner) serve(c *client) {
	err := c.readLoop()
	if err != nil && !r.stopping.Load() {
		r.addError(errorKind(err))
	}
	c.nc.Close()
	r.stats.connected.Add(-1)
}

// loginAll logs every client in (paced), or those whose position only
// accepts (nil: all), and starts its reader; it returns when every attempt
// has finished, and the WaitGroup that ends with the readers.
func (r *runner) loginAll(ctx context.Context, only func(i int) bool) (*sync.WaitGroup, time.Duration) {
	serve := r.serve
	if r.cfg.Profile == ProfileReconnect {
		serve = func(c *client) { r.serveReconnect(ctx, c) }
	}
	sem := make(chan struct{}, r.cfg.LoginConcurrency)
	readers := &sync.WaitGroup{}
	var logins sync.WaitGroup
	t0 := time.Now()
	p := &pacer{start: t0, rate: r.cfg.Ramp}
	for i, c := range r.clients {
		if only != nil && !only(i) {
			// Offline in this phase; it may have had a (now closed) session in the roster setup.
			c.nc, c.jid = nil, ""
			continue
		}
		if p.wait(ctx) != nil {
			break
		}
		sem <- struct{}{}
		logins.Add(1)
		readers.Add(1)
		go func() {
			defer readers.Done()
			ok := r.loginOne(ctx, c)
			if !ok {
				c.nc = nil
			}
			<-sem
			logins.Done()
			if ok {
				serve(c)
			}
		}()
	}
	logins.Wait()
	return readers, time.Since(t0)
}

// closeAll closes every stream cleanly and waits for the readers.
func (r *runner) closeAll(readers *sync.WaitGroup) {
	r.phase.Store("close")
	r.stopping.Store(true)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range r.clients {
		if c.nc == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.closeStream()
			<-sem
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { readers.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(5 * time.Second):
	}
	// Servers that never answer our </stream:stream>: cut the sockets.
	for _, c := range r.clients {
		if c.nc != nil {
			c.nc.Close()
		}
	}
	<-done
}

// runSessions implements idle, chat and roster.
func (r *runner) runSessions(ctx context.Context, rep *Report, srv *serverSampler) error {
	r.phase.Store("login")
	var online func(int) bool
	if r.cfg.Profile == ProfileRoster && r.cfg.RosterOnline < 1 {
		online = r.rosterOnline
	}
	readers, took := r.loginAll(ctx, online)
	if r.cfg.Profile == ProfileRoster && r.stats.logins.Load() > 0 && r.needRosterSetup() {
		rep.RosterSetup = true
		relogin := func(only func(int) bool) {
			r.closeAll(readers)
			r.stopping.Store(false)
			srv.waitQuiet(ctx, 10*time.Minute)
			r.resetLoginStats()
			srv.mark("start")
			r.phase.Store("login")
			readers, took = r.loginAll(ctx, only)
		}
		if online != nil {
			// Subscriptions to and from the accounts offline in the measured phase need them online now.
			relogin(nil)
		}
		// Rounds: a request a slow server delivers after its recipient logged out waits for the next login
		// (RFC 6121 §3.1.3), and a login that timed out during the setup's storm left its account out.
		for round := 1; ; round++ {
			r.phase.Store("roster-setup")
			r.setupRosters(ctx)
			rep.RosterSetupRounds = round
			relogin(nil)
			// A login that failed leaves a roster unchecked: another round (after the server quietened down).
			if round == 3 || (!r.needRosterSetup() && r.stats.loginErrors.Load() == 0) {
				break
			}
		}
		if online != nil {
			relogin(online)
		}
	}
	if r.cfg.Profile == ProfileRoster {
		rep.RosterIncomplete = r.rosterIncomplete()
	}
	rep.LoginPhaseSeconds = took.Seconds()
	if r.cfg.Profile == ProfileMUC && r.stats.logins.Load() > 0 {
		r.phase.Store("enter-rooms")
		rep.RoomOccupants = r.enterRooms(ctx)
	}
	srv.mark("logged-in")
	r.phase.Store("settle")
	sleepCtx(ctx, r.cfg.Settle)
	srv.mark("settled")
	if r.stats.logins.Load() == 0 {
		r.closeAll(readers)
		return nil
	}

	r.phase.Store(r.cfg.Profile)
	prof := r.startProfile(r.cfg.Duration)
	recv0 := r.stats.received.Load()
	pres0 := r.stats.presRecv.Load()
	steadyStart := time.Now()
	var stopTicker func()
	switch r.cfg.Profile {
	case ProfileChat:
		r.startChat()
		stopTicker = r.startTicker(r.chatTick)
	case ProfileRoster:
		r.setFanouts()
		stopTicker = r.startTicker(r.presenceTick)
	case ProfileMUC:
		stopTicker = r.startTicker(r.mucTick)
	case ProfileReconnect:
		if r.cfg.Rate > 0 {
			r.startChat()
			stopTicker = r.startTicker(r.chatTick)
		}
		r.startDrops()
	}
	sleepCtx(ctx, r.cfg.Duration)
	r.chatting.Store(false)
	if stopTicker != nil {
		stopTicker()
	}
	if r.cfg.Profile == ProfileReconnect {
		r.stopDrops(ctx)
	}
	steady := time.Since(steadyStart)
	rep.DurationSeconds = steady.Seconds()
	rep.MsgsPerSec = round2(float64(r.stats.received.Load()-recv0) / steady.Seconds())
	rep.PresencesPerSec = round2(float64(r.stats.presRecv.Load()-pres0) / steady.Seconds())
	if r.cfg.Profile != ProfileIdle && (r.cfg.Profile != ProfileReconnect || r.cfg.Rate > 0) {
		r.phase.Store("drain")
		r.drain(ctx)
	}
	srv.mark("steady-end")
	r.endProfile(rep, prof)
	if r.cfg.Profile == ProfileIdle && r.cfg.Burst > 0 {
		r.phase.Store("burst")
		r.pairFlows()
		for _, f := range r.flows {
			f.send(r.cfg.Burst)
		}
		r.drain(ctx)
		srv.mark("burst-received")
		r.phase.Store("burst-settle")
		bs := r.cfg.BurstSettle
		if bs <= 0 {
			bs = r.cfg.Settle
		}
		sleepCtx(ctx, bs)
		srv.mark("burst-settled")
		rep.BurstSent = int64(r.stats.sent.Load())
	}
	r.closeAll(readers)
	return nil
}

// startProfile starts the server's CPU profile for d when one is asked for.
func (r *runner) startProfile(d time.Duration) *serverProfile {
	if r.cfg.ServerPprof == "" || r.cfg.ServerPprofOut == "" {
		return nil
	}
	return startServerProfile(r.cfg.ServerPprof, r.cfg.ServerPprofOut, d)
}

// endProfile waits for the profile and records where it is (or why not).
func (r *runner) endProfile(rep *Report, p *serverProfile) {
	if p == nil {
		return
	}
	r.phase.Store("profile")
	if err := p.wait(); err != nil {
		r.addError("server-pprof")
		rep.ServerPprofError = err.Error()
		return
	}
	rep.ServerPprof = r.cfg.ServerPprofOut
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (r *runner) resetLoginStats() {
	r.loginLatency = Histogram{}
	r.stats.logins.Store(0)
	r.stats.loginErrors.Store(0)
	r.stats.peakConnected.Store(0)
}

// startChat pairs clients (1,2), (3,4)… that are both logged in; each
// sends to the other's full JID.
func (r *runner) startChat() {
	r.pairFlows()
	r.chatting.Store(true)
	if r.cfg.Rate == 0 {
		for _, f := range r.flows {
			f.send(r.cfg.Window)
		}
	}
}

// pairFlows sets up the flows of the pairs (1,2), (3,4)… that are both logged in.
func (r *runner) pairFlows() {
	for i := 0; i+1 < len(r.clients); i += 2 {
		a, b := r.clients[i], r.clients[i+1]
		if a.nc == nil || b.nc == nil || a.jid == "" || b.jid == "" {
			continue
		}
		ab := &flow{from: a, to: b, toJID: b.jid}
		ba := &flow{from: b, to: a, toJID: a.jid}
		if r.cfg.Stagger {
			ab.phase, ba.phase = r.staggerPhase(i), r.staggerPhase(i+1)
		}
		b.setInFlow(ab)
		a.setInFlow(ba)
		a.outFlow, b.outFlow = ab, ba
		r.flows = append(r.flows, ab, ba)
	}
}

// startTicker runs fn every 10 ms with the elapsed time until stopped.
func (r *runner) startTicker(fn func(elapsed time.Duration)) func() {
	if r.cfg.Rate == 0 && r.cfg.Profile == ProfileChat {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t0 := time.Now()
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				fn(time.Since(t0))
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// chatTick keeps each flow at Rate messages per second since the start,
// never above Window in flight (open loop with a safety cap: a server that
// cannot keep up shows as a lower msgs_per_sec, not as unbounded queues).
func (r *runner) chatTick(elapsed time.Duration) {
	for _, f := range r.flows {
		// phase: a staggered flow counts its period from k/n of a period before time 0, so its sends fall
		// between the others' (without Stagger, 0: every flow's next message is due on the same tick).
		target := uint64(r.cfg.Rate*elapsed.Seconds() + f.phase)
		due := int64(target) - int64(f.sentAt.Load())
		room := int64(r.cfg.Window) - f.inflight.Load()
		if due > room {
			due = room
		}
		if due > 0 {
			f.send(int(due))
		}
	}
}

// staggerPhase is client position i's share of a sending period ahead of
// client 0's, spread evenly over [0, 1); the first message of a phase p
// leaves at (1-p)/Rate.
func (r *runner) staggerPhase(i int) float64 {
	return float64(len(r.clients)-1-i) / float64(len(r.clients))
}

// drain waits until every sent message arrived or Drain passed.
func (r *runner) drain(ctx context.Context) {
	deadline := time.Now().Add(r.cfg.Drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if r.stats.received.Load() >= r.stats.sent.Load() && r.inflightPresences() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inflightPresences reports whether every presence update sent reached the
// contacts that were online when the measured phase began.
func (r *runner) inflightPresences() bool {
	if r.cfg.Profile != ProfileRoster {
		return true
	}
	return r.stats.presDelivered.Load() >= r.stats.presExpected.Load()
}

func (r *runner) fillCounters(rep *Report) {
	s := &r.stats
	rep.Logins = s.logins.Load()
	rep.LoginErrors = s.loginErrors.Load()
	rep.Logouts = s.logouts.Load()
	rep.PeakConnected = s.peakConnected.Load()
	rep.LoginLatency = r.loginLatency.SummaryMS()
	if rep.LoginPhaseSeconds > 0 {
		rep.LoginsPerSec = round2(float64(rep.Logins) / rep.LoginPhaseSeconds)
	}
	rep.MessagesSent = int64(s.sent.Load())
	rep.MessagesReceived = int64(s.received.Load())
	rep.MessagesDuplicated = int64(s.dups.Load())
	rep.MessagesOutOfOrder = int64(s.ooo.Load())
	rep.MessagesStale = int64(s.stale.Load())
	rep.MessagesLost = rep.MessagesSent - rep.MessagesReceived
	if rep.MessagesLost < 0 {
		rep.MessagesLost = 0
	}
	rep.Latency = r.msgLatency.SummaryMS()
	rep.MessagesResent = int64(s.resent.Load())
	rep.MessagesSMDuplicates = int64(s.smDups.Load())
	if r.cfg.SM {
		rep.SMRequests = s.smRequests.Load()
		rep.SMAcks = s.smAcks.Load()
		rep.SMServerRequests = s.smServerRequests.Load()
		p := r.ackLatency.SummaryMS()
		rep.AckLatency = &p
	}
	if r.cfg.Profile == ProfileReconnect {
		rep.Drops = s.drops.Load()
		rep.Resumes = s.resumes.Load()
		rep.ResumesFailed = s.resumesFailed.Load()
		rep.TLSResumed = s.tlsResumed.Load()
		p := r.resumeLatency.SummaryMS()
		rep.ResumeLatency = &p
	}
	rep.PresencesSent = int64(s.presSent.Load())
	rep.PresencesReceived = int64(s.presRecv.Load())
	if r.cfg.Profile == ProfileRoster {
		rep.PresencesExpected = int64(s.presExpected.Load())
		rep.PresencesDelivered = int64(s.presDelivered.Load())
		rep.PresencesSelf = int64(s.presSelf.Load())
		rep.PresencesLost = max(rep.PresencesExpected-rep.PresencesDelivered, 0)
	}
	if r.presLatency.Count() > 0 {
		p := r.presLatency.SummaryMS()
		rep.PresenceLatency = &p
	}
	r.errMu.Lock()
	rep.Errors = make(map[string]int64, len(r.errs))
	for k, v := range r.errs {
		rep.Errors[k] = v
	}
	r.errMu.Unlock()
}

func round2(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return math.Round(v*100) / 100
}

func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return round2(tv(ru.Utime) + tv(ru.Stime))
}

// raiseFileLimit lifts RLIMIT_NOFILE (soft, and hard when privileged) so
// that tens of thousands of sockets can be open.
func raiseFileLimit(need int) {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil || l.Cur >= uint64(need) {
		return
	}
	want := l
	want.Cur = uint64(need)
	if want.Max < want.Cur {
		want.Max = want.Cur
	}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
		want.Cur = l.Max
		want.Max = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
	}
}
