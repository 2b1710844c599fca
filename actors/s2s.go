package actors

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
)

// Federation (RFC 6120 server-to-server). The s2s actor is the parent of the subtree:
//
//	s2s                 owns the incoming listener (one accept goroutine); remote domain → outgoing actor
//	├── <remote domain> outgoing: per local domain, one stream, its state and its bounded queue (s2s_out.go)
//	└── in-<n>          incoming: one per accepted connection (s2s_in.go)
//
// The router forwards every Route to a domain that is neither served nor a service here; the s2s actor hands it to
// the outgoing actor of the 'to' domain, spawning it on first use. Incoming streams route what they accept to
// the router like a session does.

// Actor kinds of the federation and of XEP-0114 components (inspect.go).
const (
	kindS2S        = "s2s"        // the federation parent (s2s.go)
	kindS2SOut     = "s2s-out"    // an outgoing actor, one per remote domain (s2s_out.go)
	kindS2SIn      = "s2s-in"     // an incoming stream (s2s_in.go)
	kindComponents = "components" // the XEP-0114 listener and directory (component.go)
	kindComponent  = "component"  // one component connection
)

// Messages of the s2s actor.
type (
	// s2sShutdown: close the listener and every stream; answered with s2sClosed once every child is gone.
	s2sShutdown struct{}
	s2sClosed   struct{}
)

type s2sActor struct {
	env    *env
	sock   net.Listener
	outs   map[string]*actor.PID
	byID   map[string]string
	ins    int
	nextID uint64
	// shutdown: the server is stopping; waiter gets s2sClosed when the last child has stopped.
	shutdown bool
	waiter   *actor.PID
	// smSessions: the resumable XEP-0198 sessions of incoming streams by id (s2s_sm.go).
	smSessions map[string]*smSession
}

func newS2SProps(e *env, sock net.Listener) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &s2sActor{env: e, sock: sock, outs: map[string]*actor.PID{}, byID: map[string]string{},
			smSessions: map[string]*smSession{}}
	}, actor.WithSupervisor(actor.NewOneForOneStrategy(0, 0, func(reason interface{}) actor.Directive {
		e.log.Error().Interface("panic", reason).Msg("s2s actor failed; stopping it")
		e.metrics.actorPanics.Inc()
		return actor.StopDirective
	})), withInspection(e, kindS2S))
}

func (a *s2sActor) Receive(ctx actor.Context) {
	if a.receiveSM(ctx, ctx.Message()) {
		return
	}
	switch m := ctx.Message().(type) {
	case *actor.Started:
		go acceptLoop(ctx.ActorSystem().Root, ctx.Self(), a.sock, false)
	case *Route:
		if a.shutdown {
			return
		}
		d := m.St.To.Domain()
		pid, ok := a.outs[d]
		if !ok {
			var err error
			if pid, err = ctx.SpawnNamed(newS2SOutProps(a.env, d), d); err != nil {
				pid = ctx.SpawnPrefix(newS2SOutProps(a.env, d), d+"~") // the name of one still stopping
			}
			a.outs[d] = pid
			a.byID[pid.Id] = d
		}
		ctx.Send(pid, m)
	case *accepted:
		if a.shutdown {
			_ = m.conn.Close()
			return
		}
		if max := a.env.cfg.S2S.MaxIncoming; max > 0 && a.ins >= max {
			a.env.metrics.hit(limitS2SIncoming)
			_ = m.conn.Close()
			return
		}
		a.nextID++
		a.ins++
		ctx.SpawnNamed(newS2SInProps(a.env, a.nextID, m.conn), "in-"+strconv.FormatUint(a.nextID, 10))
	case *acceptEnded:
		if !a.shutdown {
			a.env.log.Error().Err(m.err).Str("listen", m.addr).Msg("s2s listener failed")
		}
	case *actor.Terminated:
		if d, ok := a.byID[m.Who.Id]; ok {
			delete(a.byID, m.Who.Id)
			if p := a.outs[d]; p != nil && p.Equal(m.Who) {
				delete(a.outs, d)
			}
		} else {
			a.ins--
			if len(a.smSessions) > 0 {
				// After its s2sSMDetached, if any: that is a user message, Terminated a system one that may overtake it.
				ctx.Send(ctx.Self(), &s2sSMGone{who: m.Who})
			}
		}
		a.maybeClosed(ctx)
	case *s2sShutdown:
		a.shutdown = true
		a.waiter = ctx.Sender()
		_ = a.sock.Close()
		for _, kid := range slices.Clone(ctx.Children()) {
			ctx.Send(kid, &closeStream{condition: "system-shutdown"})
		}
		a.maybeClosed(ctx)
	}
}

func (a *s2sActor) maybeClosed(ctx actor.Context) {
	if a.shutdown && a.waiter != nil && len(ctx.Children()) == 0 {
		ctx.Send(a.waiter, &s2sClosed{})
		a.waiter = nil
	}
}

// limitS2SQueue: [s2s] max_queue, a stanza bounced because too many wait for one remote domain.
const limitS2SQueue = "s2s_max_queue"

// limitS2SIncoming: [s2s] max_incoming, an incoming server connection closed at once.
const limitS2SIncoming = "s2s_max_incoming"

// s2sMetrics are the federation's counters (registered with the server's when federation is on).
type s2sMetrics struct {
	streams  *prometheus.CounterVec // xmppd_s2s_streams_total{direction,mechanism}
	failures prometheus.Counter
	bounced  prometheus.Counter
	refused  *prometheus.CounterVec // incoming streams or stanzas refused, by stream error
}

func newS2SMetrics(r *prometheus.Registry) *s2sMetrics {
	m := &s2sMetrics{
		streams: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "xmppd_s2s_streams_total",
			Help: "Server-to-server streams authenticated, by direction (in, out) and mechanism (EXTERNAL, dialback)."},
			[]string{"direction", "mechanism"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "xmppd_s2s_connect_failures_total",
			Help: "Outgoing server-to-server connection attempts that failed (resolution, TCP, TLS, authentication)."}),
		bounced: prometheus.NewCounter(prometheus.CounterOpts{Name: "xmppd_s2s_bounced_total",
			Help: "Stanzas to remote domains that were not delivered (bounced, or dropped for presence and errors)."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "xmppd_s2s_refused_total",
			Help: "Incoming server-to-server streams ended with a stream error, by condition."}, []string{"condition"}),
	}
	for _, d := range []string{"in", "out"} {
		for _, mech := range []string{"EXTERNAL", "dialback"} {
			m.streams.WithLabelValues(d, mech)
		}
	}
	r.MustRegister(m.streams, m.failures, m.bounced, m.refused)
	return m
}

// startS2S opens the listener, loads the dialback secret and the trusted roots, and spawns the s2s actor.
func (e *env) startS2S(root *actor.RootContext) (net.Listener, error) {
	cfg := &e.cfg
	var err error
	e.s2sm = newS2SMetrics(e.metrics.registry)
	e.metrics.limits.WithLabelValues(limitS2SQueue)
	e.metrics.limits.WithLabelValues(limitS2SIncoming)
	if e.s2sSecret, err = e.loadDialbackSecret(); err != nil {
		return nil, err
	}
	if e.s2sRoots, err = loadS2SRoots(cfg.S2S.CAFile); err != nil {
		return nil, err
	}
	sock, err := net.Listen("tcp", cfg.S2S.Listen)
	if err != nil {
		return nil, fmt.Errorf("s2s listen %s: %w", cfg.S2S.Listen, err)
	}
	if e.s2s, err = root.SpawnNamed(newS2SProps(e, sock), "s2s"); err != nil {
		_ = sock.Close()
		return nil, err
	}
	e.log.Info().Str("listen", sock.Addr().String()).Msg("s2s listening")
	return sock, nil
}

// loadDialbackSecret is [s2s] dialback_secret, else the one generated at the first start (kept, so that keys
// handed out before a restart still verify after it: XEP-0185 §3 allows either). A single node keeps it in
// data_dir. The nodes of a cluster share one, in the shared storage: a peer's verification connection
// (XEP-0220 §2.3) may reach any node for the domain, which must recognise a key another node handed out.
func (e *env) loadDialbackSecret() ([]byte, error) {
	cfg := &e.cfg
	if cfg.S2S.DialbackSecret != "" {
		return []byte(cfg.S2S.DialbackSecret), nil
	}
	if cfg.Cluster.Enabled {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := e.store.PutKVIfAbsent(ctx, "", dialbackSecretNS, "dialback-secret", newDialbackSecret())
		if err != nil {
			return nil, fmt.Errorf("dialback secret: %w", err)
		}
		return []byte(s), nil
	}
	p := filepath.Join(cfg.DataDir, "s2s-dialback.secret")
	b, err := os.ReadFile(p)
	if err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return []byte(strings.TrimSpace(string(b))), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("dialback secret: %w", err)
	}
	s := newDialbackSecret()
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("dialback secret: %w", err)
	}
	return []byte(s), nil
}

// dialbackSecretNS is the server-wide KV namespace of the cluster's shared dialback secret (owner "": no account).
const dialbackSecretNS = "urn:xmppd:s2s"

// newDialbackSecret is 256 random bits, hex.
func newDialbackSecret() string {
	var r [32]byte
	rand.Read(r[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(r[:])
}

// s2sServerTLS is the c2s TLS configuration asking for the peer's certificate (SASL EXTERNAL, RFC 6120 §13.7.2;
// verified by verifyPeer against the stream's domain, not by crypto/tls) and with the s2s ALPN (XEP-0368).
func (e *env) s2sServerTLS() *tls.Config {
	c := e.tlsConfig.Clone()
	c.ClientAuth = tls.RequestClientCert
	c.NextProtos = []string{"xmpp-server"}
	return c
}

// ---- what it says of itself in /debug/actors (inspect.go) ----

func (a *s2sActor) servedJID() string { return "" }

func (a *s2sActor) describe(_ actor.Context, i *ActorInfo) {
	i.Attrs = map[string]string{"listen": a.sock.Addr().String(), "outgoing": strconv.Itoa(len(a.outs)),
		"incoming": strconv.Itoa(a.ins), "sm_sessions": strconv.Itoa(len(a.smSessions))}
}
