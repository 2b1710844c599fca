package actors

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/features"
	"github.com/xmppd/xmppd/protocol/caps"

	"github.com/xmppd/xmppd/config"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/measured"
	"github.com/xmppd/xmppd/storage/postgres"
	"github.com/xmppd/xmppd/storage/sqlite"
	"github.com/xmppd/xmppd/web"
)

// Version is set at build time (-ldflags "-X github.com/xmppd/xmppd/actors.Version=...").
var Version = "0.1.0-dev"

// Server is one running xmppd: the actor system, its listeners and the debug HTTP endpoint.
type Server struct {
	env      *env
	sys      *actor.ActorSystem
	listener *actor.PID
	debug    *http.Server
	debugLn  net.Listener
	web      *web.Server // the public HTTP listener ([http]); nil when disabled
	c2sAddrs []string
	// requests carries an admin's XEP-0133 shutdown (false) or restart (true) to the process (ShutdownRequests).
	requests chan bool
	// shutdownOnce makes Shutdown idempotent (a signal and a deferred call may both ask).
	shutdownOnce sync.Once
	// handlers are the services' HTTP sides; stopOutside stops what the services run outside the actors.
	handlers    []ServiceHandler
	stopOutside func()
	stopTrim    chan struct{}    // ends memTrimmer (memtrim.go)
	cluster     *cluster.Cluster // nil unless [cluster] enabled (cluster.go)
}

// ShutdownRequests delivers an admin's request to shut down (false) or restart (true) the server (XEP-0133).
func (s *Server) ShutdownRequests() <-chan bool { return s.requests }

// OpenStorage opens the configured storage engine (also used by the CLI's user subcommands).
func OpenStorage(cfg *config.Config) (storage.Store, error) {
	switch cfg.Storage.Driver {
	case "sqlite":
		return sqlite.Open(cfg.DBPath())
	case "postgres":
		// Connecting and migrating get a minute: a database that does not answer by then is reported rather
		// than waited for forever (the service manager restarts us).
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		db, err := postgres.Open(ctx, cfg.Storage.DSN, postgres.WithPoolSize(cfg.Storage.PoolSize))
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	return nil, fmt.Errorf("storage driver %q is not supported", cfg.Storage.Driver)
}

// LockStorage keeps `xmppd import` (exclusive) from running beside a server (shared). On SQLite it is the
// flock of the data directory (storage.LockDataDir): the database file is in it, so every process that can
// open the database sees the lock. On PostgreSQL the nodes run on other machines with data directories of
// their own, so a flock there proves nothing: the lock is an advisory lock in the shared database
// (postgres.LockServers). Either way it never waits: storage.ErrLocked if the other kind is held.
func LockStorage(cfg *config.Config, exclusive bool) (release func(), err error) {
	if cfg.Storage.Driver == "postgres" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return postgres.LockServers(ctx, cfg.Storage.DSN, exclusive)
	}
	return storage.LockDataDir(cfg.DataDir, exclusive)
}

// Start opens storage, loads or generates the certificate, starts the actors and the listeners.
// The features are the registry's (features.All); the actors run whatever it lists and never name a feature.
// Importing the registry here is also what keeps features out of actors: a feature package that imported
// actors would make an import cycle, which the compiler refuses.
func Start(cfg config.Config, log zerolog.Logger) (*Server, error) {
	return start(cfg, log, features.All())
}

// start is Start with the feature list given (the actors' own tests add features of their own).
func start(cfg config.Config, log zerolog.Logger, all []*feature.Feature) (*Server, error) {
	reg, err := newRegistry(&cfg, all)
	if err != nil {
		return nil, err
	}
	for _, off := range reg.offInCluster {
		log.Error().Err(off.err).Str("feature", off.feature).Str("service", off.host).
			Msg("service off: it cannot run in this cluster as configured")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	certs, err := loadCertificate(&cfg, reg.serviceDomains(), log)
	if err != nil {
		return nil, err
	}
	store, err := OpenStorage(&cfg)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		_ = store.Close()
		return nil, err
	}
	e := &env{
		cfg: cfg, certs: certs, tlsConfig: certs.serverTLSConfig(), log: log,
		secret: secret, metrics: newMetrics(reg.kindNames()), reg: reg, sockets: new(sync.WaitGroup),
		workers: newWorkers(maxIdleWorkers),
	}
	e.store = measured.Wrap(store, e.metrics.storageLatency, e.metrics.storageErrors) // xmppd_storage_latency_seconds for every call
	requests := make(chan bool, 1)
	for _, f := range reg.list {
		for _, l := range f.Limits {
			e.metrics.limits.WithLabelValues(l) // pre-created, as newLimitHits does for the actors' own
		}
	}
	e.srv = &serverInfo{cfg: &e.cfg, store: e.store, started: time.Now(), reg: reg, metrics: e.metrics, shutdown: func(restart bool) {
		select {
		case requests <- restart:
		default: // one request is enough
		}
	}}
	// The server's own XEP-0115 hash depends only on the configuration: computed once, not per stream.
	if err := e.metrics.addFeatureCounters(reg.list); err != nil {
		_ = store.Close()
		return nil, err
	}
	e.srv.capsVer = caps.ServerVer(e.srv.DiscoInfo(""))
	e.streamFeatures = e.srv.streamFeatures()
	e.features = newFeatureTable(e)
	var socks []net.Listener
	var direct []bool
	closeAll := func() {
		e.workers.close()
		for _, s := range socks {
			_ = s.Close()
		}
		_ = store.Close()
	}
	for _, l := range []struct {
		addr   string
		direct bool
	}{{cfg.C2S.Listen, false}, {cfg.C2S.DirectTLSListen, true}} {
		if l.addr == "" {
			continue
		}
		s, err := net.Listen("tcp", l.addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("c2s listen %s: %w", l.addr, err)
		}
		socks = append(socks, s)
		direct = append(direct, l.direct)
	}

	sys := actor.NewActorSystem(
		actor.WithLoggerFactory(func(s *actor.ActorSystem) *slog.Logger {
			// protoactor's own logs go through zerolog too, one level quieter: its Info lines are our Debug.
			return slog.New(zerolog.NewSlogHandler(log.With().Str("lib", "protoactor").Logger().Level(max(log.GetLevel(), zerolog.WarnLevel))))
		}),
		actor.WithDeadLetterThrottleCount(3),
		actor.WithDeadLetterRequestLogging(false),
	)
	e.instrument(sys) // supervision metrics; dead actors answer the debug tree's questions
	var cl *cluster.Cluster
	var topologies <-chan *cluster.ClusterTopology
	if cfg.Cluster.Enabled {
		// The remote starts before the first actor is spawned: it sets the system's address, which every PID
		// takes at its spawn (and reads concurrently).
		if cl, topologies, err = e.joinCluster(sys); err != nil { // cluster.go
			closeAll()
			return nil, err
		}
		stopStore := closeAll
		closeAll = func() { stopStore(); cl.Shutdown(false) }
	}
	router, err := sys.Root.SpawnNamed(newRouterProps(e), "router")
	if err != nil {
		closeAll()
		return nil, err
	}
	e.router = router
	if cl != nil {
		// After the router (it tells it the member lists), before anything that routes.
		if err = e.spawnCluster(sys, cl, topologies); err != nil {
			closeAll()
			return nil, err
		}
	}
	if e.caps, err = sys.Root.SpawnNamed(newCapsProps(e), "caps"); err != nil {
		closeAll()
		return nil, err
	}
	if len(reg.services) > 0 {
		if e.services, err = sys.Root.SpawnNamed(newServicesProps(e), "services"); err != nil {
			closeAll()
			return nil, err
		}
	}
	if cfg.ComponentListen != "" {
		if err := e.startComponents(sys.Root); err != nil { // component.go
			closeAll()
			sys.Shutdown()
			return nil, err
		}
	}
	if cfg.Federates() {
		if _, err := e.startS2S(sys.Root); err != nil { // s2s.go
			closeAll()
			sys.Shutdown()
			return nil, err
		}
	}
	srv := &Server{env: e, sys: sys, requests: requests, stopTrim: make(chan struct{}), cluster: cl}
	// The services' outsides (their listeners) start before the c2s listener: what they tell their service
	// actors (the bound addresses) is in those mailboxes before any client can ask.
	if len(reg.services) > 0 {
		if srv.stopOutside, err = srv.startOutside(); err != nil {
			closeAll()
			return nil, err
		}
	}
	lpid, err := sys.Root.SpawnNamed(newListenerProps(e, socks, direct), "c2s")
	if err != nil {
		if srv.stopOutside != nil {
			srv.stopOutside()
		}
		closeAll()
		return nil, err
	}
	srv.listener = lpid
	for i, s := range socks {
		srv.c2sAddrs = append(srv.c2sAddrs, s.Addr().String())
		log.Info().Str("listen", s.Addr().String()).Bool("direct_tls", direct[i]).Strs("domains", cfg.Domains).Msg("c2s listening")
	}
	if cfg.HTTP.Listen != "" {
		if err := srv.startWeb(); err != nil {
			srv.Shutdown(time.Second)
			return nil, err
		}
	}
	if cfg.Debug.Listen != "" {
		if err := srv.startDebug(); err != nil {
			srv.Shutdown(time.Second)
			return nil, err
		}
	}
	go memTrimmer(srv.stopTrim, &e.log)
	return srv, nil
}

// C2SAddrs returns the bound client listener addresses, STARTTLS first.
func (s *Server) C2SAddrs() []string { return s.c2sAddrs }

// ReloadTLS re-reads the certificate files (SIGHUP); established connections keep theirs.
func (s *Server) ReloadTLS() error { return s.env.certs.reload() }

// Shutdown ends every stream with <system-shutdown/>, waits (up to timeout) until their final bytes are written,
// stops the actors and closes storage. Everything acknowledged is already in storage: writes are synchronous.
func (s *Server) Shutdown(timeout time.Duration) {
	s.shutdownOnce.Do(func() { s.shutdown(timeout) })
}

func (s *Server) shutdown(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	close(s.stopTrim)
	if s.debug != nil {
		_ = s.debug.Close()
	}
	webClosed := make(chan struct{})
	if s.web != nil {
		// No new HTTP requests; BOSH requests in progress are answered as their conns end below.
		go func() { s.web.Close(timeout); close(webClosed) }()
	} else {
		close(webClosed)
	}
	if s.cluster != nil {
		s.leaveCluster(deadline)
	}
	f := s.sys.Root.RequestFuture(s.listener, &shutdownStreams{}, timeout)
	if _, err := f.Result(); err != nil {
		s.env.log.Warn().Err(err).Msg("not every stream closed in time")
	}
	s.env.log.Debug().Msg("shutdown: streams closed")
	done := make(chan struct{})
	go func() { s.env.sockets.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
		s.env.log.Warn().Msg("some sockets were still flushing at the shutdown deadline")
	}
	select {
	case <-webClosed:
	case <-time.After(time.Until(deadline)):
	}
	_ = s.sys.Root.PoisonFuture(s.listener).Wait()
	if s.stopOutside != nil {
		s.stopOutside() // no more uploads or relayed connections reach the services
	}
	if s.env.s2s != nil {
		// Federation: the listener closes and every server stream ends with <system-shutdown/> (s2s.go).
		if _, err := s.sys.Root.RequestFuture(s.env.s2s, &s2sShutdown{}, max(time.Until(deadline), time.Second)).Result(); err != nil {
			s.env.log.Warn().Err(err).Msg("s2s streams did not close in time")
		}
	}
	if s.env.components != nil {
		if _, err := s.sys.Root.RequestFuture(s.env.components, &s2sShutdown{}, max(time.Until(deadline), time.Second)).Result(); err != nil {
			s.env.log.Warn().Err(err).Msg("component streams did not close in time")
		}
	}
	// Services retire once they and their entities have handled what reached them (every acknowledged change is
	// already stored); what they routed meanwhile reaches the user actors before those drain.
	if s.env.services != nil {
		if _, err := s.sys.Root.RequestFuture(s.env.router, &drainServices{}, max(time.Until(deadline), time.Second)).Result(); err != nil {
			s.env.log.Warn().Err(err).Msg("services did not drain in time")
		}
		s.env.log.Debug().Msg("shutdown: services drained")
	}
	// User actors retire only once they have handled everything routed to them (messages for offline users
	// are stored), sessions having first handled what their connections forwarded.
	if _, err := s.sys.Root.RequestFuture(s.env.router, &drainUsers{}, max(time.Until(deadline), time.Second)).Result(); err != nil {
		s.env.log.Warn().Err(err).Msg("user actors did not drain in time")
	}
	s.env.log.Debug().Msg("shutdown: user actors drained")
	_ = s.sys.Root.PoisonFuture(s.env.router).Wait()
	if s.env.services != nil {
		_ = s.sys.Root.PoisonFuture(s.env.services).Wait()
	}
	if s.cluster != nil {
		s.stopCluster()
	} else {
		s.sys.Shutdown()
	}
	s.env.workers.close()
	if err := s.env.store.Close(); err != nil {
		s.env.log.Error().Err(err).Msg("closing storage")
	}
}

func (s *Server) startDebug() error {
	ln, err := net.Listen("tcp", s.env.cfg.Debug.Listen)
	if err != nil {
		return fmt.Errorf("debug listen: %w", err)
	}
	s.debugLn = ln
	s.debug = &http.Server{Handler: s.debugHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.debug.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.env.log.Error().Err(err).Msg("debug http server")
		}
	}()
	s.env.log.Info().Str("listen", ln.Addr().String()).Msg("debug http listening")
	return nil
}

// DebugAddr is the bound debug listener address, "" when disabled.
func (s *Server) DebugAddr() string {
	if s.debugLn == nil {
		return ""
	}
	return s.debugLn.Addr().String()
}

// startWeb starts the public HTTP listener with the transports of the actor tree on it: RFC 7395 WebSocket (and
// XEP-0206 BOSH), named in XEP-0156 host-meta. Other packages mount their handlers with HTTP().Mount.
func (s *Server) startWeb() error {
	w, err := web.New(s.env.cfg.HTTP, s.env.tlsConfig, s.env.log, s.env.metrics.registry)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	s.web = w
	w.Mount(WebSocketPath, http.HandlerFunc(s.serveWebSocket))
	w.Advertise(web.RelWebSocket, WebSocketPath)
	w.Mount(BOSHPath, http.HandlerFunc(s.serveBOSH))
	w.Advertise(web.RelBOSH, BOSHPath)
	for _, h := range s.handlers {
		w.Mount(h.Path, h.Handler) // the services' HTTP sides (XEP-0363 upload)
	}
	w.Serve()
	return nil
}

// HTTP is the public HTTP listener, nil when [http] listen is empty: Mount adds an endpoint to it.
func (s *Server) HTTP() *web.Server { return s.web }

// HTTPAddr is the bound public HTTP address, "" when disabled.
func (s *Server) HTTPAddr() string {
	if s.web == nil {
		return ""
	}
	return s.web.Addr()
}

// leaveCluster takes this node out of the member list (clusterLeave) and waits, until deadline, for the sessions
// here whose clients are connected to other nodes to end.
func (s *Server) leaveCluster(deadline time.Time) {
	_ = s.cluster.Config.ClusterProvider.Shutdown(true) // deregisters; the others' member lists drop us
	wait := max(time.Until(deadline)/2, time.Second)
	if _, err := s.sys.Root.RequestFuture(s.env.cluster, &clusterLeave{}, wait).Result(); err != nil {
		s.env.log.Warn().Err(err).Msg("cluster: leaving timed out")
	}
	if _, err := s.sys.Root.RequestFuture(s.env.cluster, &clusterClose{}, wait).Result(); err != nil {
		s.env.log.Warn().Err(err).Msg("cluster: sessions of clients on other nodes did not end in time")
	}
}

// stopCluster stops the actor system through the cluster (which also stops the remote); bounded, because a
// provider whose server is gone can block.
func (s *Server) stopCluster() {
	done := make(chan struct{})
	go func() { s.cluster.Shutdown(true); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.env.log.Warn().Msg("cluster: shutdown did not finish in 10 s")
	}
}
