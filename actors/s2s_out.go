package actors

import (
	"context"
	"errors"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/protocol/sm"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// The outgoing actor of one remote domain, s2s/<domain>. It owns one stream per local domain that sends there
// (a stream authenticates one 'from' domain: XEP-0220 §2.1, RFC 6120 §6), each with its state and the bounded
// queue of stanzas waiting for it. Connecting and negotiating run on a goroutine (s2s_dial.go) that hands over
// the authenticated socket; from then the actor writes through a writer and a reader goroutine watches the
// peer's side of the stream (errors, the close, keepalives).
//
// Delivery: a stanza is written at once on an authenticated stream; otherwise it waits in order in the queue,
// which is flushed when the stream is authenticated. A failed attempt is retried with backoff (0.5 s doubling to
// 30 s, or a third of connect_timeout when that is less) while stanzas wait; each stanza that has waited [s2s] connect_timeout is bounced, exactly once, with
// <remote-server-timeout/> (<remote-server-not-found/> at once when the domain does not resolve).

type (
	// s2sOutReady: the dialer goroutine authenticated the stream.
	s2sOutReady struct {
		local string
		gen   uint64
		s     *s2sStream
	}
	// s2sOutFailed: the attempt failed.
	s2sOutFailed struct {
		local string
		gen   uint64
		err   error
	}
	// s2sOutEnded: the reader of an established stream ended (the peer closed it, or the socket failed).
	s2sOutEnded struct {
		local string
		gen   uint64
		err   error
	}
	s2sRetry struct {
		local string
		gen   uint64
	}
	s2sTick struct{}
	// s2sOutAck: the peer acknowledged h stanzas (XEP-0198 <a/>); s2sOutAckReq: it asked for our count (<r/>).
	s2sOutAck struct {
		local string
		gen   uint64
		h     uint32
	}
	s2sOutAckReq struct {
		local string
		gen   uint64
	}
)

type linkState uint8

const (
	linkIdle linkState = iota
	linkConnecting
	linkAuthed
	linkWaiting // the last attempt failed; a retry is scheduled
)

var linkStateNames = [...]string{"idle", "connecting", "authenticated", "waiting"}

type queued struct {
	st *stanza.Routed
	at time.Time
}

// outLink is one outgoing stream: our local domain → the actor's remote domain.
type outLink struct {
	local    string
	state    linkState
	gen      uint64 // the attempt or stream the goroutines' messages are about; older ones are ignored
	queue    []queued
	w        *writer
	conn     net.Conn
	mech     string
	tls      bool
	verified bool
	backoff  time.Duration
	lastErr  error
	lastOut  time.Time // last write (keepalive)
	lastUse  time.Time // last stanza either way (idle close)
	cancel   context.CancelFunc
	// XEP-0198 on the current stream (s2s_sm.go): written stanzas wait in unacked, in order, until an <a h/>
	// covers them; smSent and smAcked count modulo 2^32; smReq: an <r/> is unanswered. prev is the session of the
	// previous, broken stream, whose unacked stanzas head the queue.
	smOn    bool
	smID    string
	smSent  uint32
	smAcked uint32
	smReq   bool
	unacked []queued
	prev    *prevSM
}

type s2sOut struct {
	env    *env
	remote string
	links  map[string]*outLink
	log    zerolog.Logger
	tick   scheduler.CancelFunc
	gen    uint64
	sent   uint64
}

func newS2SOutProps(e *env, remote string) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &s2sOut{env: e, remote: remote, links: map[string]*outLink{}}
	}, actor.WithSupervisor(stopStrategy), withInspection(e, kindS2SOut))
}

func (o *s2sOut) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		o.log = o.env.log.With().Str("s2s_out", o.remote).Logger()
		o.tick = scheduler.NewTimerScheduler(ctx).SendOnce(time.Second, ctx.Self(), &s2sTick{}) // again at each tick (idle.go: SendRepeatedly races)
	case *Route:
		o.route(ctx, m.St)
	case *s2sOutReady:
		l := o.links[m.local]
		if l == nil || l.gen != m.gen || l.state != linkConnecting {
			_ = m.s.conn.Close()
			return
		}
		o.established(ctx, l, m.s)
	case *s2sOutFailed:
		l := o.links[m.local]
		if l == nil || l.gen != m.gen {
			return
		}
		o.failed(ctx, l, m.err)
	case *s2sOutEnded:
		l := o.links[m.local]
		if l == nil || l.gen != m.gen || l.state != linkAuthed {
			return
		}
		o.log.Info().Str("local", l.local).AnErr("reason", m.err).Msg("s2s stream ended")
		l.state = linkIdle
		if l.w != nil {
			l.w.abort()
			l.w = nil
		}
		o.requeueUnacked(l)
		if len(l.queue) > 0 {
			o.connect(ctx, l)
		}
	case *s2sOutAck:
		if l := o.links[m.local]; l != nil && l.gen == m.gen && l.state == linkAuthed && l.smOn {
			o.onAck(ctx, l, m.h)
		}
	case *s2sOutAckReq:
		if l := o.links[m.local]; l != nil && l.gen == m.gen && l.state == linkAuthed && l.smOn {
			l.w.write(sm.Ack(0)) // the peer sends us no stanzas on this stream
		}
	case *s2sRetry:
		if l := o.links[m.local]; l != nil && l.gen == m.gen && l.state == linkWaiting {
			if len(l.queue) > 0 {
				o.connect(ctx, l)
			} else {
				l.state, l.backoff = linkIdle, 0 // nothing waits: the next stanza tries at once, afresh
			}
		}
	case *s2sTick:
		o.tick = scheduler.NewTimerScheduler(ctx).SendOnce(time.Second, ctx.Self(), &s2sTick{})
		o.onTick(ctx, time.Now())
	case *closeStream:
		for _, l := range o.links {
			o.closeLink(l, m.condition)
		}
		ctx.Stop(ctx.Self())
	case *actor.Stopping:
		if o.tick != nil {
			o.tick()
		}
		for _, l := range o.links {
			o.closeLink(l, stream.SystemShutdown)
		}
	}
}

func (o *s2sOut) link(local string) *outLink {
	l := o.links[local]
	if l == nil {
		l = &outLink{local: local}
		o.links[local] = l
	}
	return l
}

func (o *s2sOut) route(ctx actor.Context, st *stanza.Routed) {
	local := st.From.Domain()
	if !o.env.isLocal(local) {
		return // only what our domains send leaves this server
	}
	o.sent++
	if !o.env.cfg.FederatesWith(o.remote) {
		// [s2s] allow/deny: this domain is not federated with.
		o.bounce(ctx, st, stanza.NewError(stanza.RemoteServerNotFound))
		return
	}
	l := o.link(local)
	now := time.Now()
	if l.state == linkAuthed {
		o.write(ctx, l, queued{st: st, at: now}, now)
		return
	}
	if len(l.queue) >= o.env.cfg.S2S.MaxQueue {
		o.env.metrics.hit(limitS2SQueue)
		o.bounce(ctx, st, stanza.NewError(stanza.ResourceConstraint).WithText("too many stanzas wait for this server"))
		return
	}
	if l.lastErr != nil && errors.Is(l.lastErr, errNotFound) && l.state == linkWaiting {
		o.bounce(ctx, st, stanza.NewError(stanza.RemoteServerNotFound))
		return
	}
	l.queue = append(l.queue, queued{st: st, at: now})
	if l.state == linkIdle {
		o.connect(ctx, l)
	}
}

// write puts a stanza on the stream. A client may have written xmlns='jabber:client' on the stanza itself;
// without it the stanza and its unqualified children take the stream's content namespace, jabber:server
// (RFC 6120 §4.8.3), which is what the peer must see.
func (o *s2sOut) write(ctx actor.Context, l *outLink, it queued, now time.Time) {
	raw := stripRootNS(it.st.Raw)
	l.lastOut, l.lastUse = now, now
	if !l.w.write(raw) {
		o.log.Warn().Str("local", l.local).Msg("s2s peer does not read: write queue full")
		o.env.metrics.hit(limitWriteQueue)
		l.queue = append([]queued{it}, l.queue...)
		o.broken(ctx, l, stream.PolicyViolation)
		return
	}
	if l.smOn {
		o.writeSM(ctx, l, it)
	}
}

// broken closes a stream we give up on (cond) with what it did not get acknowledged requeued; the queue
// waits for the next attempt (onTick starts it).
func (o *s2sOut) broken(_ actor.Context, l *outLink, cond stream.Condition) {
	o.closeLink(l, cond)
	o.requeueUnacked(l)
}

// connect starts an attempt on a goroutine of its own (s2s_dial.go).
func (o *s2sOut) connect(ctx actor.Context, l *outLink) {
	o.gen++
	l.gen = o.gen
	l.state = linkConnecting
	e, local, remote, gen := o.env, l.local, o.remote, l.gen
	previd := ""
	if l.prev != nil {
		previd = l.prev.id
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	deadline := time.Now().Add(e.cfg.S2S.ConnectTimeout.Duration)
	cctx, cancel := context.WithDeadline(context.Background(), deadline)
	l.cancel = cancel
	o.log.Debug().Str("local", local).Msg("s2s connecting")
	go func() {
		defer cancel()
		s, err := e.openS2S(cctx, local, remote, deadline)
		if err == nil {
			if err = e.authenticate(s); err == nil {
				err = e.streamManagement(s, previd)
			}
			if err != nil {
				_ = s.conn.Close()
			}
		}
		if err != nil {
			root.Send(self, &s2sOutFailed{local: local, gen: gen, err: err})
			return
		}
		_ = s.conn.SetDeadline(time.Time{})
		root.Send(self, &s2sOutReady{local: local, gen: gen, s: s})
	}()
}

func (o *s2sOut) established(ctx actor.Context, l *outLink, s *s2sStream) {
	l.state = linkAuthed
	l.conn, l.mech, l.tls, l.verified = s.conn, s.mech, s.tls, s.verified
	l.backoff, l.lastErr = 0, nil
	l.smOn, l.smID, l.smSent, l.smAcked, l.smReq, l.unacked = s.smOn, s.smID, 0, 0, false, nil
	if s.resumed {
		o.resumed(l, s.resumedH)
	}
	l.prev = nil
	l.w = newWriter(s.conn, o.env.cfg.C2S.WriteQueueBytes, writeTimeout, func() {})
	l.w.pool = o.env.workers
	o.env.s2sm.streams.WithLabelValues("out", s.mech).Inc()
	o.log.Info().Str("local", l.local).Str("mechanism", s.mech).Bool("tls", s.tls).Bool("verified", s.verified).
		Bool("sm", s.smOn).Bool("resumed", s.resumed).Int("queued", len(l.queue)).Msg("s2s stream authenticated")
	root, self, local, gen := ctx.ActorSystem().Root, ctx.Self(), l.local, l.gen
	go func() {
		// The peer's side of our stream carries nothing for us but keepalives, errors and its close.
		for {
			k, err := s.dec.Next()
			if err != nil {
				root.Send(self, &s2sOutEnded{local: local, gen: gen, err: err})
				return
			}
			if k == xmlstream.KindElement {
				el := s.dec.Element()
				if el.Name.Space == stream.NS && el.Name.Local == "error" {
					err = errors.New("stream error from the peer: " + el.Raw)
					root.Send(self, &s2sOutEnded{local: local, gen: gen, err: err})
					return
				}
				if el.Name.Space == sm.NS {
					n, perr := el.Parse()
					switch {
					case perr != nil:
					case n.Name.Local == "a":
						if h, err := sm.ParseAck(n); err == nil {
							root.Send(self, &s2sOutAck{local: local, gen: gen, h: h})
						}
					case n.Name.Local == "r":
						root.Send(self, &s2sOutAckReq{local: local, gen: gen})
					}
				}
			}
			if k == xmlstream.KindStreamEnd {
				root.Send(self, &s2sOutEnded{local: local, gen: gen, err: errors.New("closed by the peer")})
				return
			}
		}
	}()
	now := time.Now()
	q := l.queue
	l.queue = nil
	for _, it := range q {
		if l.state != linkAuthed {
			l.queue = append(l.queue, it)
			continue
		}
		o.write(ctx, l, it, now)
	}
}

func (o *s2sOut) failed(ctx actor.Context, l *outLink, err error) {
	l.lastErr = err
	l.state = linkWaiting
	o.log.Info().Str("local", l.local).Err(err).Int("queued", len(l.queue)).Msg("s2s connection failed")
	o.env.s2sm.failures.Inc()
	if errors.Is(err, errNotFound) {
		o.bounceAll(ctx, l, stanza.RemoteServerNotFound)
	}
	// Retries come at least twice within connect_timeout, so a peer back before it gets what waits.
	if l.backoff == 0 {
		l.backoff = 500 * time.Millisecond
	} else {
		l.backoff = min(2*l.backoff, 30*time.Second, max(o.env.cfg.S2S.ConnectTimeout.Duration/3, time.Second))
	}
	scheduler.NewTimerScheduler(ctx).SendOnce(l.backoff, ctx.Self(), &s2sRetry{local: l.local, gen: l.gen})
}

func (o *s2sOut) onTick(ctx actor.Context, now time.Time) {
	cfg := &o.env.cfg.S2S
	for _, l := range o.links {
		// Bounce what has waited connect_timeout, oldest first (the queue is in arrival order).
		n := 0
		for n < len(l.queue) && now.Sub(l.queue[n].at) >= cfg.ConnectTimeout.Duration {
			n++
		}
		if n > 0 {
			cond := stanza.RemoteServerTimeout
			if errors.Is(l.lastErr, errNotFound) {
				cond = stanza.RemoteServerNotFound
			}
			old := l.queue[:n]
			l.queue = append([]queued(nil), l.queue[n:]...)
			l.bouncedHead(n)
			for _, it := range old {
				o.bounce(ctx, it.st, stanza.NewError(cond))
			}
		}
		if l.state == linkIdle && len(l.queue) > 0 {
			o.connect(ctx, l) // requeued by a stream we gave up on
			continue
		}
		if l.state != linkAuthed {
			continue
		}
		if l.smOn && len(l.unacked) > 0 && !l.smReq {
			o.requestAck(l)
		}
		if now.Sub(l.lastUse) >= cfg.IdleTimeout.Duration && len(l.unacked) == 0 {
			o.log.Debug().Str("local", l.local).Msg("s2s stream idle: closing")
			o.closeLink(l, "")
			continue
		}
		if now.Sub(l.lastOut) >= cfg.Keepalive.Duration {
			l.lastOut = now
			l.w.write(" ") // RFC 6120 §4.6.1 whitespace keepalive
		}
	}
}

func (o *s2sOut) bounceAll(ctx actor.Context, l *outLink, cond stanza.Condition) {
	q := l.queue
	l.queue, l.prev = nil, nil
	for _, it := range q {
		o.bounce(ctx, it.st, stanza.NewError(cond))
	}
}

// bounce answers the sender of a stanza that will not be delivered (RFC 6120 §8.3.1: never an error to an error).
func (o *s2sOut) bounce(ctx actor.Context, st *stanza.Routed, e stanza.Error) {
	o.env.s2sm.bounced.Inc()
	if st.Head.Type == "error" || st.From.IsZero() {
		return
	}
	if st.Head.Name == "presence" && st.Head.Type != "subscribe" {
		return // presence is state; RFC 6121 §4.6.2 lets a server drop what cannot be delivered
	}
	ctx.Send(o.env.router, &Route{St: st.Bounce(e)})
}

func (o *s2sOut) closeLink(l *outLink, cond stream.Condition) {
	if l.cancel != nil {
		l.cancel()
	}
	if l.state == linkAuthed && l.w != nil {
		l.w.endStream(o.env.metrics, cond, "", "")
	}
	l.w = nil
	l.state = linkIdle
}

// ---- what it says of itself in /debug/actors (inspect.go) ----

func (o *s2sOut) servedJID() string { return o.remote }

func (o *s2sOut) describe(_ actor.Context, a *ActorInfo) {
	locals := make([]string, 0, len(o.links))
	for d := range o.links {
		locals = append(locals, d)
	}
	sort.Strings(locals)
	a.Attrs = map[string]string{"remote": o.remote, "routed": strconv.FormatUint(o.sent, 10)}
	var states []string
	queue := 0
	for _, d := range locals {
		l := o.links[d]
		states = append(states, d+":"+linkStateNames[l.state])
		queue += len(l.queue)
		a.Attrs["queue:"+d] = strconv.Itoa(len(l.queue))
		if l.state == linkAuthed {
			a.Attrs["mechanism:"+d] = l.mech
			a.Attrs["verified:"+d] = strconv.FormatBool(l.verified)
		}
		if l.lastErr != nil {
			a.Attrs["last_error:"+d] = l.lastErr.Error()
		}
	}
	a.State = strings.Join(states, ",")
	a.Attrs["queue"] = strconv.Itoa(queue)
}

// stripRootNS removes a default namespace declaration (xmlns='…') from the root start tag of raw, a complete
// top-level element, so that the element takes the content namespace of the stream it is written to
// (jabber:client and jabber:server are the same stanzas, RFC 6120 §4.8.3). Prefixed declarations stay.
func stripRootNS(raw string) string {
	var quote byte
	for i := 1; i < len(raw); i++ {
		ch := raw[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '"' || ch == '\'':
			quote = ch
		case ch == '>':
			return raw
		case (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') && strings.HasPrefix(raw[i+1:], "xmlns"):
			j := i + 1 + len("xmlns")
			for j < len(raw) && (raw[j] == ' ' || raw[j] == '\t' || raw[j] == '\n' || raw[j] == '\r') {
				j++
			}
			if j >= len(raw) || raw[j] != '=' {
				continue // xmlns:prefix
			}
			j++
			for j < len(raw) && (raw[j] == ' ' || raw[j] == '\t' || raw[j] == '\n' || raw[j] == '\r') {
				j++
			}
			if j >= len(raw) || (raw[j] != '"' && raw[j] != '\'') {
				return raw
			}
			end := strings.IndexByte(raw[j+1:], raw[j])
			if end < 0 {
				return raw
			}
			return raw[:i] + raw[j+1+end+1:]
		}
	}
	return raw
}
