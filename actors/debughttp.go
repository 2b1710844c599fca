package actors

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/xmppd/xmppd/actors/debugpage"
	"github.com/xmppd/xmppd/protocol/jid"
)

// Limits of GET /debug/actors.
const (
	defaultTreeLimit = 10000
	maxTreeLimit     = 1000000
	treeTimeout      = 5 * time.Second
	maxTreeTimeout   = 30 * time.Second
	// concurrentTrees bounds the walks in flight: each holds up to its limit of nodes.
	concurrentTrees = 2
)

// debugHandler serves the operator endpoints: the actor tree (JSON and a page), Prometheus metrics, health and
// pprof. When a token is configured every request must carry it as a bearer token, except the page itself,
// which is static and holds no data (its script asks for the token and sends it with each request).
func (s *Server) debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.env.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	sem := make(chan struct{}, concurrentTrees)
	mux.HandleFunc("/debug/actors", func(w http.ResponseWriter, r *http.Request) {
		if wantsHTML(r) {
			servePage(w, r)
			return
		}
		s.actorTree(w, r, sem)
	})
	mux.HandleFunc("/debug/actors.html", servePage)
	mux.HandleFunc("/debug/cluster", s.clusterStatus) // cluster_debug.go
	token := s.env.cfg.Debug.Token
	if token == "" {
		return mux
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isPage := r.URL.Path == "/debug/actors.html" || r.URL.Path == "/debug/actors" && wantsHTML(r)
		if !isPage && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="xmppd"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// wantsHTML: a browser navigating to /debug/actors (Accept: text/html…) gets the page; scripts and curl (no
// Accept, */* or application/json) get JSON. format=json forces JSON.
func wantsHTML(r *http.Request) bool {
	if f := r.URL.Query().Get("format"); f != "" {
		return f == "html"
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func servePage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Everything the page needs is inline; the policy makes "no external resources" hold in the browser too.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(debugpage.HTML)
}

// actorTree answers GET /debug/actors: kind= (comma-separated kinds), jid= (a JID; a bare JID also matches its
// full JIDs), limit= (nodes, default 10000), timeout= (Go duration, default 5s), pretty=1.
func (s *Server) actorTree(w http.ResponseWriter, r *http.Request, sem chan struct{}) {
	q := r.URL.Query()
	req := snapshotRequest{limit: defaultTreeLimit, timeout: treeTimeout, kindText: q.Get("kind")}
	var bad string
	if req.kinds, bad = s.env.parseKinds(req.kindText); bad != "" {
		http.Error(w, "unknown kind "+strconv.Quote(bad)+" (want "+strings.Join(s.env.reg.kindNames(), ", ")+")", http.StatusBadRequest)
		return
	}
	if v := strings.TrimSpace(q.Get("jid")); v != "" {
		j, err := jid.Parse(v)
		if err != nil {
			http.Error(w, "jid: "+err.Error(), http.StatusBadRequest)
			return
		}
		req.jid, req.bare = j.String(), j.Bare()
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxTreeLimit {
			http.Error(w, "limit must be an integer from 1 to "+strconv.Itoa(maxTreeLimit), http.StatusBadRequest)
			return
		}
		req.limit = n
	}
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxTreeTimeout {
			http.Error(w, "timeout must be a duration up to "+maxTreeTimeout.String(), http.StatusBadRequest)
			return
		}
		req.timeout = d
	}
	select {
	case sem <- struct{}{}:
		defer func() { <-sem }()
	case <-r.Context().Done():
		return
	case <-time.After(req.timeout):
		http.Error(w, "too many actor tree requests in progress", http.StatusServiceUnavailable)
		return
	}
	req.tops = []*actor.PID{s.listener, s.env.router, s.env.caps}
	if s.env.services != nil {
		req.tops = append(req.tops, s.env.services)
	}
	if s.env.s2s != nil {
		req.tops = append(req.tops, s.env.s2s)
	}
	if s.env.components != nil {
		req.tops = append(req.tops, s.env.components)
	}
	req.out = make(chan *Snapshot, 1)
	pid := s.sys.Root.SpawnPrefix(newSnapshotProps(req), "debug-snapshot-")
	var snap *Snapshot
	select {
	case snap = <-req.out:
	case <-r.Context().Done():
		s.sys.Root.Stop(pid)
		return
	}
	s.env.metrics.snapshotTime.Observe(snap.ElapsedMS / 1000)
	snap.Live = make(map[string]int64, len(s.env.metrics.live))
	for k, n := range s.env.metrics.live {
		snap.Live[k] = n.Load()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	if q.Get("pretty") != "" {
		enc.SetIndent("", "  ")
	}
	_ = enc.Encode(snap)
}

// healthz is 200 when storage answers and the listener actor is alive, 503 with the reason otherwise.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.env.store.Ping(ctx); err != nil {
		http.Error(w, "storage: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	// inspect is answered from the mailbox hook, which does not see envelopes: the reply address travels in
	// the message.
	f := actor.NewFuture(s.sys, 2*time.Second)
	s.sys.Root.Send(s.listener, &inspect{kinds: kListener, replyTo: f.PID()})
	res, err := f.Result()
	if err != nil {
		http.Error(w, "c2s listener: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if rep, ok := res.(*inspectReply); ok && rep.info != nil && rep.info.Attrs["shutdown"] == "true" {
		http.Error(w, "c2s listener: shutting down", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}
