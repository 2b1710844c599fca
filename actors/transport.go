package actors

import (
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/xmppd/xmppd/protocol/sasl"
)

// The transport abstraction of the conn actor. A conn runs the RFC 6120 stream state machine (header, SASL,
// restart, bind, stream management) over one of:
//
//   - a TCP socket (conn.netConn; reader.go, writer.go): STARTTLS or direct TLS, the XML stream itself;
//   - a WebSocket (RFC 7395, conn_ws.go), or a BOSH session (XEP-0124/0206, conn_bosh.go), both reached through
//     the public HTTP listener (package web): TLS is the HTTP's, so there is no STARTTLS.
//
// The conn sees the same messages whatever the transport (streamHeaderIn, elementIn, streamEndIn, readEnded from
// its read side) and writes the same bytes (the stream header, whole top-level elements, the stream error and
// the closing tag) into the same writer, whose per-element accounting (what was not delivered comes back,
// undelivered.go) therefore holds for every transport. A transport's sink frames those bytes its own way. The
// session, user and router actors never learn which transport a conn uses.

// sink is where a writer's bytes go: a net.Conn, or a transport's framing.
type sink interface {
	Write(b []byte) (int, error)
	SetWriteDeadline(t time.Time) error
	Close() error
}

// segmentSink is a sink that frames each segment itself (a WebSocket message per element). writeSegments
// reports, like Write, how many bytes of b were delivered: the sum of the segments it completed.
type segmentSink interface {
	sink
	writeSegments(b []byte, ends []int32) (int, error)
}

// writeTo writes one flush: b as one Write on a stream, or segment by segment on a framing sink.
func writeTo(s sink, b []byte, ends []int32) (int, error) {
	if ss, ok := s.(segmentSink); ok {
		return ss.writeSegments(b, ends)
	}
	return s.Write(b)
}

// forEachSegment calls f with each segment of b (ends as in writer.ends) and whether it is a top-level element,
// stopping at the first error; it returns the bytes of the segments f completed.
func forEachSegment(b []byte, ends []int32, f func(seg []byte, element bool) error) (int, error) {
	start := 0
	for _, e := range ends {
		end, element := int(e), true
		if end < 0 {
			end, element = ^end, false
		}
		if err := f(b[start:end], element); err != nil {
			return start, err
		}
		start = end
	}
	return start, nil
}

// transport is a conn's non-TCP transport, built by its HTTP handler and handed to the listener, which spawns
// the conn (so the c2s limits, shutdown and the actor tree are the same as for a socket).
type transport struct {
	kind   string // "websocket", "bosh": /debug/actors and the xmppd_http_sessions label
	remote string // the client's address as the HTTP layer believes it (web.Client)
	ip     netip.Addr
	cb     sasl.ChannelBinding // of our TLS connection when the HTTP request came over it directly
	out    sink
	// start is called once from the conn actor's Started with what the read side needs; it returns at once (the
	// read side runs on the HTTP handler's goroutine, or on the BOSH request goroutines).
	start func(root *actor.RootContext, self *actor.PID, limit *atomic.Int64)
	// refused is called instead of start when the listener does not admit the conn (a limit, shutdown).
	refused func(limit string)
	// receive handles the transport's own messages in the conn actor (BOSH requests); nil for none.
	receive func(c *conn, ctx actor.Context, msg any) bool
}

// acceptedTransport asks the listener to spawn a conn for t.
type acceptedTransport struct{ t *transport }

func newTransportConnProps(e *env, id uint64, t *transport) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &conn{env: e, id: id, tr: t, ip: t.ip}
	}, actor.WithSupervisor(stopStrategy), withInspection(e, kindConn))
}

// startTransport is the conn's Started for a non-TCP transport: the stream is secure (the HTTP handler refused
// anything but TLS, loopback and a trusted proxy that says https), so no STARTTLS is offered.
func (c *conn) startTransport(ctx actor.Context) {
	cfg := &c.env.cfg
	c.log = newActorLog(&c.env.log, c.id, "remote", c.tr.remote, "transport", c.tr.kind)
	c.log.Debug().Msg("connection accepted")
	c.secure = true
	c.cb = c.tr.cb
	gauge := c.env.metrics.httpSessions.WithLabelValues(c.tr.kind)
	gauge.Inc()
	c.out = newWriter(c.tr.out, cfg.C2S.WriteQueueBytes, writeTimeout, func() {
		gauge.Dec()
		c.env.connClosed()
	})
	c.limit = new(atomic.Int64)
	c.limit.Store(int64(cfg.C2S.PreAuthStanzaSize))
	c.tr.start(ctx.ActorSystem().Root, ctx.Self(), c.limit)
	c.cancelTO = scheduler.NewTimerScheduler(ctx).SendOnce(cfg.C2S.NegotiationTimeout.Duration, ctx.Self(), &negotiationTimeout{})
	c.env.metrics.connections.Inc()
}

// remoteAddr is the peer's address for logs, the tree and the session.
func (c *conn) remoteAddr() string {
	if c.tr != nil {
		return c.tr.remote
	}
	if c.netConn != nil {
		return c.netConn.RemoteAddr().String()
	}
	return ""
}

// transportName is what /debug/actors shows as the conn's transport.
func (c *conn) transportName() string {
	if c.tr != nil {
		return c.tr.kind
	}
	if c.directTLS {
		return "tcp-direct-tls"
	}
	return "tcp"
}

// spawnTransport is the listener's part: the same admission as a socket's.
func (l *listener) spawnTransport(ctx actor.Context, t *transport) {
	if l.shutdown {
		t.refused("shutdown")
		return
	}
	if limit := l.admit(t.ip); limit != "" {
		l.env.metrics.hit(limit)
		l.env.log.Debug().Str("remote", t.remote).Str("transport", t.kind).Str("limit", limit).Msg("connection refused")
		t.refused(limit)
		return
	}
	l.nextID++
	l.conns++
	l.env.sockets.Add(1)
	pid, err := ctx.SpawnNamed(newTransportConnProps(l.env, l.nextID, t), strconv.FormatUint(l.nextID, 10))
	if err != nil {
		l.conns--
		l.env.sockets.Done()
		t.refused("spawn")
		return
	}
	l.connIP[pid.Id] = t.ip
}
