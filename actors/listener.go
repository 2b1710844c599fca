package actors

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/xmppd/xmppd/config"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/xmppd/xmppd/protocol/stream"
)

// Messages of the listener actor.
type (
	// accepted comes from an accept goroutine.
	accepted struct {
		conn      net.Conn
		directTLS bool
	}
	// acceptEnded: a listening socket failed or was closed.
	acceptEnded struct {
		addr string
		err  error
	}
	// shutdownStreams asks the listener to stop accepting and to end every stream with <system-shutdown/>; it
	// answers shutdownDone once every conn actor has stopped.
	shutdownStreams struct{}
	shutdownDone    struct{}
)

// listener is the c2s supervisor: it owns the listening sockets (through one accept goroutine each) and is the
// parent of one conn actor per accepted socket. It also owns the per-source-address limits (limits.go): open
// connections, connect rate, authentication failures and registrations per address. Connections over a limit
// are closed here, before a conn actor exists and before any TLS work.
type listener struct {
	env       *env
	sockets   []net.Listener
	directTLS []bool
	nextID    uint64
	conns     int
	shutdown  bool
	waiter    *actor.PID // who asked for shutdown

	exempt    config.ExemptSet
	ips       map[netip.Addr]*ipState
	connIP    map[string]netip.Addr // conn actor id → its source address (for exempt ones too: nothing kept)
	cancelGC  scheduler.CancelFunc
	rejectMsg []byte // the canned <policy-violation/> for refused plaintext connections
}

// failureWindow: authentication failures from one address older than this are forgotten.
const failureWindow = time.Minute

func newListenerProps(e *env, socks []net.Listener, directTLS []bool) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &listener{env: e, sockets: socks, directTLS: directTLS}
	}, actor.WithSupervisor(stopStrategy), withInspection(e, kindListener))
}

func (l *listener) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		l.exempt, _ = config.ParseExempt(l.env.cfg.C2S.LimitsExempt) // validated with the config
		l.ips = make(map[netip.Addr]*ipState)
		l.connIP = make(map[string]netip.Addr)
		l.rejectMsg = stream.AppendError([]byte(stream.Header("refused", l.env.cfg.Domains[0], "")), stream.PolicyViolation, "too many connections")
		l.rejectMsg = append(l.rejectMsg, stream.Close...)
		l.cancelGC = scheduler.NewTimerScheduler(ctx).SendOnce(failureWindow, ctx.Self(), &pruneLimits{}) // again at each prune (idle.go: SendRepeatedly races)
		root := ctx.ActorSystem().Root
		self := ctx.Self()
		for i, s := range l.sockets {
			go acceptLoop(root, self, s, l.directTLS[i])
		}
	case *accepted:
		if l.shutdown {
			_ = m.conn.Close()
			return
		}
		ip := sourceAddr(m.conn.RemoteAddr())
		if limit := l.admit(ip); limit != "" {
			l.env.metrics.hit(limit)
			l.env.log.Debug().Str("remote", m.conn.RemoteAddr().String()).Str("limit", limit).Msg("connection refused")
			go refuse(m.conn, m.directTLS, l.rejectMsg)
			return
		}
		l.nextID++
		l.conns++
		l.env.sockets.Add(1)
		name := strconv.FormatUint(l.nextID, 10)
		pid, err := ctx.SpawnNamed(newConnProps(l.env, l.nextID, m.conn, m.directTLS, ip), name)
		if err == nil {
			l.connIP[pid.Id] = ip
		}
	case *acceptedTransport:
		l.spawnTransport(ctx, m.t) // a WebSocket or BOSH session (transport.go)
	case *authFailed:
		ctx.Respond(&authPenalty{delay: l.authPenalty(m.ip)})
	case *registrationAllowed:
		ctx.Respond(&registrationVerdict{ok: l.registrationAllowed(m.ip)})
	case *pruneLimits:
		l.cancelGC = scheduler.NewTimerScheduler(ctx).SendOnce(failureWindow, ctx.Self(), &pruneLimits{})
		now := time.Now()
		for ip, st := range l.ips {
			if st.idle(now, failureWindow) {
				delete(l.ips, ip)
			}
		}
	case *actor.Stopping:
		if l.cancelGC != nil {
			l.cancelGC()
		}
	case *acceptEnded:
		if !l.shutdown {
			l.env.log.Error().Err(m.err).Str("listen", m.addr).Msg("listener failed")
		}
	case *actor.Terminated:
		l.conns--
		if ip, ok := l.connIP[m.Who.Id]; ok {
			delete(l.connIP, m.Who.Id)
			if st := l.ips[ip]; st != nil && st.conns > 0 {
				st.conns--
			}
		}
		l.maybeDone(ctx)
	case *shutdownStreams:
		l.shutdown = true
		l.waiter = ctx.Sender()
		for _, s := range l.sockets {
			_ = s.Close()
		}
		for _, kid := range slices.Clone(ctx.Children()) {
			ctx.Send(kid, &closeStream{condition: "system-shutdown"})
		}
		l.maybeDone(ctx)
	}
}

func (l *listener) maybeDone(ctx actor.Context) {
	if l.shutdown && l.conns == 0 && l.waiter != nil {
		ctx.Send(l.waiter, &shutdownDone{})
		l.waiter = nil
	}
}

// admit applies the connection limits to a new connection from ip and counts it; it returns the limit that
// refuses it, or "".
func (l *listener) admit(ip netip.Addr) string {
	cfg := &l.env.cfg.C2S
	if cfg.MaxConnections > 0 && l.conns >= cfg.MaxConnections {
		return limitConnections
	}
	if l.exempt.Contains(ip) {
		return ""
	}
	st := l.state(ip)
	if cfg.ConnectRatePerIP > 0 && !st.connects.take(1, time.Now()) {
		return limitConnectRate
	}
	if cfg.MaxConnectionsPerIP > 0 && st.conns >= cfg.MaxConnectionsPerIP {
		return limitConnectionsPerIP
	}
	st.conns++
	return ""
}

func (l *listener) state(ip netip.Addr) *ipState {
	st := l.ips[ip]
	if st == nil {
		cfg := &l.env.cfg.C2S
		st = &ipState{connects: newTokenBucket(cfg.ConnectRatePerIP, float64(cfg.ConnectBurstPerIP), time.Now())}
		l.ips[ip] = st
	}
	return st
}

// authPenalty records a credential failure from ip and returns how long the conn waits before answering it: the
// n-th failure from one address within failureWindow of the previous one waits n × auth.failure_delay, at most
// auth.failure_delay_max. Keyed by address and never by account, so nobody can lock a victim out; whether the
// account exists plays no part, so the delay reveals nothing either.
func (l *listener) authPenalty(ip netip.Addr) time.Duration {
	a := &l.env.cfg.Auth
	if a.FailureDelay.Duration <= 0 || l.exempt.Contains(ip) {
		return 0
	}
	st := l.state(ip)
	now := time.Now()
	if now.Sub(st.lastFail) > failureWindow {
		st.failures = 0
	}
	st.failures++
	st.lastFail = now
	return min(time.Duration(st.failures)*a.FailureDelay.Duration, a.FailureDelayMax.Duration)
}

// registrationAllowed takes one in-band registration from ip's budget (registration.max_per_ip per
// registration.period, as a token bucket).
func (l *listener) registrationAllowed(ip netip.Addr) bool {
	r := &l.env.cfg.Registration
	if r.MaxPerIP <= 0 || l.exempt.Contains(ip) {
		return true
	}
	st := l.state(ip)
	now := time.Now()
	if !st.hasRegs {
		st.regs = newTokenBucket(float64(r.MaxPerIP)/r.Period.Seconds(), float64(r.MaxPerIP), now)
		st.hasRegs = true
	}
	return st.regs.take(1, now)
}

// refuse closes a connection over a limit. On the STARTTLS port the client first gets our header and
// <policy-violation/> (RFC 6120 §4.9.1.2 lets the server speak first); it costs one small write into an empty
// socket buffer, bounded by a short deadline. On the direct TLS port saying anything would need a handshake, so
// the socket is just closed.
func refuse(c net.Conn, directTLS bool, msg []byte) {
	if !directTLS {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Write(msg)
	}
	_ = c.Close()
}

func acceptLoop(root *actor.RootContext, self *actor.PID, s net.Listener, directTLS bool) {
	for {
		c, err := s.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			root.Send(self, &acceptEnded{addr: s.Addr().String(), err: err})
			return
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetKeepAlive(true)
		}
		root.Send(self, &accepted{conn: c, directTLS: directTLS})
	}
}

// ---- what it says of itself in /debug/actors (inspect.go) ----

func (l *listener) servedJID() string { return "" }

func (l *listener) describe(_ actor.Context, a *ActorInfo) {
	a.Attrs = map[string]string{"connections": strconv.Itoa(l.conns), "shutdown": strconv.FormatBool(l.shutdown)}
	for i, s := range l.sockets {
		key := "listen"
		if l.directTLS[i] {
			key = "listen_direct_tls"
		}
		a.Attrs[key] = s.Addr().String()
	}
}
