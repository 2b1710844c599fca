package actors

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/xmppd/xmppd/protocol/bosh"
	"github.com/xmppd/xmppd/protocol/sasl"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/web"
)

// XEP-0124 BOSH with XEP-0206 (XMPP over BOSH) as a conn transport (transport.go). A BOSH session is the
// transport of one conn actor, and its state (boshSession: the rid window, the requests held, the responses kept
// for replay, the payloads waiting for a request) lives in that actor: the HTTP handler goroutines parse a
// request, send it to the conn as a boshRequest and wait for the boshReply; they share nothing with it.
//
// The conn's writer hands what it would write to a socket to boshSink, which passes each flush to the actor as
// a boshOut message (in order, from the flush goroutine): elements wait in the session until a request is held
// to carry them. The sid names the conn actor ("<conn id>-<random>"), so a request finds its session without a
// table; a sid that names no live actor comes back as a dead letter: item-not-found.

// BOSHPath is where the BOSH endpoint is mounted (and named in host-meta).
const BOSHPath = "/http-bind"

type (
	// boshRequest: one HTTP request of the session (answered with boshReply to the sender, a future).
	boshRequest struct {
		body   *bosh.Body
		create bool
	}
	boshReply struct{ body []byte }
	// boshOut: one writer flush, split into segments (copies), in order.
	boshOut struct {
		segs     [][]byte
		elements []bool
	}
	boshWaitOver struct{ rid uint64 }
	boshIdle     struct{ gen uint64 }
)

// boshSink is the writer's sink of a BOSH conn.
type boshSink struct {
	root   *actor.RootContext
	self   *actor.PID
	closed atomic.Bool
}

var errBOSHClosed = errors.New("bosh session closed")

func (s *boshSink) SetWriteDeadline(time.Time) error { return nil }
func (s *boshSink) Write(b []byte) (int, error) {
	return s.writeSegments(b, []int32{int32(len(b))})
}
func (s *boshSink) Close() error { s.closed.Store(true); return nil }

// writeSegments hands the flush to the actor: copied, because the writer reuses b.
func (s *boshSink) writeSegments(b []byte, ends []int32) (int, error) {
	if s.closed.Load() {
		return 0, errBOSHClosed
	}
	out := &boshOut{}
	n, _ := forEachSegment(b, ends, func(seg []byte, element bool) error {
		out.segs = append(out.segs, bytes.Clone(seg))
		out.elements = append(out.elements, element)
		return nil
	})
	s.root.Send(s.self, out)
	return n, nil
}

type heldRequest struct {
	rid    uint64
	to     *actor.PID
	cancel scheduler.CancelFunc
}

type earlyRequest struct {
	body *bosh.Body
	to   *actor.PID
}

// boshSession is owned by its conn actor (only Receive touches it, after the HTTP handler handed it over).
type boshSession struct {
	sid                    string
	to, lang, ver          string
	wait, inactivity       time.Duration
	hold, requests         int
	nextRID                uint64
	held                   []heldRequest
	early                  map[uint64]earlyRequest
	replies                map[uint64][]byte
	pending                [][]byte
	pendingBytes, maxBytes int
	created                bool
	streamID               string
	terminated             []byte // the response to every request once the stream has ended
	idleGen                uint64
	cancelIdle             scheduler.CancelFunc
}

func (s *Server) newBOSHSession(b *bosh.Body) *boshSession {
	h := &s.env.cfg.HTTP
	bs := &boshSession{to: b.To, lang: b.Lang, ver: "1.11", early: map[uint64]earlyRequest{}, replies: map[uint64][]byte{},
		wait: h.BOSHMaxWait.Duration, hold: 1, inactivity: h.BOSHMaxInactivity.Duration, maxBytes: s.env.cfg.C2S.WriteQueueBytes}
	// XEP-0124 §7.1: the server may lower wait and hold; requests is hold+1 at least (§11).
	if b.Wait >= 0 && time.Duration(b.Wait)*time.Second < bs.wait {
		bs.wait = max(time.Duration(b.Wait)*time.Second, time.Second)
	}
	if b.Hold >= 0 {
		bs.hold = min(max(b.Hold, 1), h.BOSHMaxHold)
	}
	bs.requests = max(h.BOSHRequests, bs.hold+1)
	if b.Ver != "" && versionLess(b.Ver, bs.ver) {
		bs.ver = b.Ver
	}
	return bs
}

func versionLess(a, b string) bool {
	am, an, _ := strings.Cut(a, ".")
	bm, bn, _ := strings.Cut(b, ".")
	x, _ := strconv.Atoi(am)
	y, _ := strconv.Atoi(bm)
	if x != y {
		return x < y
	}
	p, _ := strconv.Atoi(an)
	q, _ := strconv.Atoi(bn)
	return p < q
}

// receive is the transport hook of the conn actor.
func (s *boshSession) receive(c *conn, ctx actor.Context, msg any) bool {
	switch m := msg.(type) {
	case *boshRequest:
		s.request(c, ctx, m)
	case *boshOut:
		s.out(c, ctx, m)
	case *boshWaitOver:
		for i, h := range s.held {
			if h.rid == m.rid {
				// XEP-0124 §7.1 'wait': the longest a request is held; answered empty.
				s.held = append(s.held[:i], s.held[i+1:]...)
				s.reply(ctx, h, bosh.Response(nil, nil))
				break
			}
		}
		s.idleIfEmpty(ctx)
	case *boshIdle:
		if m.gen == s.idleGen && len(s.held) == 0 && c.state != stateClosed {
			// §7.1 'inactivity': the client is gone. Like a lost TCP connection (a session with XEP-0198 waits
			// to be resumed); what waited for a request goes back to the user actor.
			c.log.Info().Msg("bosh session inactive")
			c.returnUndelivered(ctx, string(bytes.Join(s.pending, nil)))
			s.pending, s.pendingBytes = nil, 0
			c.onReadEnded(ctx, io.EOF)
		}
	case *actor.Stopping:
		if s.terminated == nil {
			s.terminated = bosh.Terminate("", nil)
		}
		for _, h := range s.held {
			s.reply(ctx, h, s.terminated)
		}
		s.held = nil
		for _, e := range s.early {
			ctx.Send(e.to, &boshReply{body: s.terminated})
		}
		if s.cancelIdle != nil {
			s.cancelIdle()
		}
	default:
		return false
	}
	return true
}

func (s *boshSession) request(c *conn, ctx actor.Context, m *boshRequest) {
	b, to := m.body, ctx.Sender()
	if to == nil {
		return
	}
	if !m.create && b.SID != s.sid {
		ctx.Send(to, &boshReply{body: bosh.Terminate("item-not-found", nil)})
		return
	}
	if m.create {
		s.nextRID = b.RID
	}
	switch {
	case s.terminated != nil:
		ctx.Send(to, &boshReply{body: s.terminated})
		return
	case b.RID < s.nextRID:
		// XEP-0124 §14.3: a request the client sent again gets the same response.
		if r, ok := s.replies[b.RID]; ok {
			ctx.Send(to, &boshReply{body: r})
			return
		}
		s.fail(c, ctx, to, "item-not-found", "rid "+strconv.FormatUint(b.RID, 10)+" was already answered")
		return
	case b.RID >= s.nextRID+uint64(s.requests):
		// §14.3: a rid beyond the window ends the session.
		s.fail(c, ctx, to, "item-not-found", "rid outside the window")
		return
	case b.RID > s.nextRID:
		// §14.3: requests are processed in rid order; this one waits for the ones before it.
		s.early[b.RID] = earlyRequest{body: b, to: to}
		return
	}
	s.process(c, ctx, b, to, m.create)
	for {
		e, ok := s.early[s.nextRID]
		if !ok || c.state == stateClosed {
			break
		}
		delete(s.early, s.nextRID)
		s.process(c, ctx, e.body, e.to, false)
	}
}

// fail ends the session with a terminal condition (XEP-0124 §17).
func (s *boshSession) fail(c *conn, ctx actor.Context, to *actor.PID, condition, why string) {
	c.log.Info().Str("condition", condition).Str("why", why).Msg("bosh session terminated")
	s.terminated = bosh.Terminate(condition, nil)
	ctx.Send(to, &boshReply{body: s.terminated})
	for _, h := range s.held {
		s.reply(ctx, h, s.terminated)
	}
	s.held = nil
	c.returnUndelivered(ctx, string(bytes.Join(s.pending, nil)))
	s.pending, s.pendingBytes = nil, 0
	c.finish(ctx, "", "")
}

func (s *boshSession) process(c *conn, ctx actor.Context, b *bosh.Body, to *actor.PID, create bool) {
	s.nextRID = b.RID + 1
	s.idleGen++
	if s.cancelIdle != nil {
		s.cancelIdle()
		s.cancelIdle = nil
	}
	h := heldRequest{rid: b.RID, to: to}
	h.cancel = scheduler.NewTimerScheduler(ctx).SendOnce(s.wait, ctx.Self(), &boshWaitOver{rid: b.RID})
	s.held = append(s.held, h)
	switch {
	case create || b.Restart:
		// XEP-0206 §4 and §5: the session request and a restart request stand for the stream header.
		toDomain := b.To
		if toDomain == "" {
			toDomain = s.to
		}
		version := b.Version
		if !create && version == "" {
			version = "1.0"
		}
		c.onHeader(ctx, &xmlstream.Header{To: toDomain, Lang: b.Lang, Version: version, DefaultNS: stanza.NSClient,
			StreamNS: stream.NS, Local: "stream", Prefix: stream.Prefix})
	default:
		for _, el := range b.Elements {
			if c.state == stateClosed {
				break
			}
			if c.state < stateRestart && len(el.Raw) > c.env.cfg.C2S.PreAuthStanzaSize {
				// c2s.pre_auth_stanza_size, as the TCP reader's decoder applies it (XEP-0205).
				c.env.metrics.hit(limitPreAuthSize)
				c.finish(ctx, stream.PolicyViolation, "element larger than the limit before authentication")
				break
			}
			c.onElement(ctx, &elementIn{el: el})
		}
		if b.Type == "terminate" && c.state != stateClosed {
			c.log.Debug().Msg("bosh session terminated by the client")
			c.finish(ctx, "", "")
		}
	}
	// §7.1 'hold': beyond it, the oldest request is answered at once.
	for len(s.held) > s.hold {
		s.answerOldest(ctx)
	}
	s.flush(ctx)
}

// out takes a flush of the writer: elements wait for a request; the end of the stream terminates the session.
func (s *boshSession) out(c *conn, ctx actor.Context, m *boshOut) {
	for i, seg := range m.segs {
		switch {
		case m.elements[i]:
			if s.terminated != nil {
				c.returnUndelivered(ctx, string(seg))
				continue
			}
			if s.pendingBytes+len(seg) > s.maxBytes && c.state != stateClosed {
				// The client does not fetch what is waiting: a slow consumer, as on TCP (XEP-0205 §5).
				c.env.metrics.slowConsumers.Inc()
				c.env.metrics.hit(limitWriteQueue)
				c.returnUndelivered(ctx, string(bytes.Join(s.pending, nil))+string(seg))
				s.pending, s.pendingBytes = nil, 0
				c.finish(ctx, stream.PolicyViolation, "the BOSH client does not fetch its data")
				continue
			}
			s.pending = append(s.pending, seg)
			s.pendingBytes += len(seg)
		case bosh.IsHeader(seg):
			if s.streamID == "" {
				s.streamID = bosh.StreamID(seg)
			}
		default:
			// XEP-0206 §7: the end of the stream; a stream error is carried with remote-stream-error.
			if s.terminated != nil {
				continue // the session already ended with a condition of its own (fail)
			}
			attrs := append(s.sessionAttrs(), bosh.Attr{Name: "type", Value: "terminate"})
			payload := s.pending
			if e := bosh.StreamEnd(seg); e != nil {
				attrs = append(attrs, bosh.Attr{Name: "condition", Value: "remote-stream-error"})
				payload = append(payload, e)
			}
			s.terminated = bosh.Response(attrs, payload)
			if len(s.held) == 0 {
				c.returnUndelivered(ctx, string(bytes.Join(s.pending, nil)))
			}
			s.pending, s.pendingBytes = nil, 0
		}
	}
	s.flush(ctx)
}

// sessionAttrs: the session creation response's attributes (XEP-0124 §7.1, XEP-0206 §4), on the first response
// only.
func (s *boshSession) sessionAttrs() []bosh.Attr {
	if s.created {
		return nil
	}
	s.created = true
	sec := func(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }
	return []bosh.Attr{
		{Name: "sid", Value: s.sid}, {Name: "wait", Value: sec(s.wait)}, {Name: "requests", Value: strconv.Itoa(s.requests)},
		{Name: "inactivity", Value: sec(s.inactivity)}, {Name: "polling", Value: "2"}, {Name: "hold", Value: strconv.Itoa(s.hold)},
		{Name: "ver", Value: s.ver}, {Name: "from", Value: s.to}, {Name: "authid", Value: s.streamID}, {Name: "secure", Value: "true"},
		{Name: "xmlns:xmpp", Value: bosh.NSXBOSH}, {Name: "xmpp:version", Value: "1.0"}, {Name: "xmpp:restartlogic", Value: "true"},
		{Name: "xmlns:stream", Value: stream.NS},
	}
}

// flush answers held requests while there is something to carry.
func (s *boshSession) flush(ctx actor.Context) {
	for len(s.held) > 0 && (len(s.pending) > 0 || s.terminated != nil) {
		s.answerOldest(ctx)
	}
	s.idleIfEmpty(ctx)
}

func (s *boshSession) answerOldest(ctx actor.Context) {
	h := s.held[0]
	s.held = s.held[1:]
	var body []byte
	switch {
	case s.terminated != nil:
		body = s.terminated
	default:
		body = bosh.Response(s.sessionAttrs(), s.pending)
		s.pending, s.pendingBytes = nil, 0
	}
	s.reply(ctx, h, body)
}

func (s *boshSession) reply(ctx actor.Context, h heldRequest, body []byte) {
	if h.cancel != nil {
		h.cancel()
	}
	s.replies[h.rid] = body
	if h.rid >= uint64(s.requests) {
		delete(s.replies, h.rid-uint64(s.requests)) // §14.3: keep the responses of the last 'requests' rids
	}
	ctx.Send(h.to, &boshReply{body: body})
}

func (s *boshSession) idleIfEmpty(ctx actor.Context) {
	if len(s.held) > 0 || s.cancelIdle != nil || s.terminated != nil {
		return
	}
	s.idleGen++
	s.cancelIdle = scheduler.NewTimerScheduler(ctx).SendOnce(s.inactivity, ctx.Self(), &boshIdle{gen: s.idleGen})
}

// ---- the HTTP side ----

// serveBOSH is the /http-bind handler: CORS, parsing, and one message exchange with the session's conn actor.
func (s *Server) serveBOSH(w http.ResponseWriter, r *http.Request) {
	cfg := &s.env.cfg
	hdr := w.Header()
	if origin := r.Header.Get("Origin"); origin != "" && originAllowed(cfg.HTTP.Origins, origin) {
		hdr.Set("Access-Control-Allow-Origin", origin)
		hdr.Set("Vary", "Origin")
	}
	hdr.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	hdr.Set("Access-Control-Allow-Headers", "Content-Type")
	hdr.Set("Access-Control-Max-Age", "86400")
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusOK) // the CORS preflight
		return
	case http.MethodPost:
	default:
		hdr.Set("Allow", "POST, OPTIONS")
		http.Error(w, "BOSH takes POST (XEP-0124 §4)", http.StatusMethodNotAllowed)
		return
	}
	cl := web.ClientOf(r)
	if !cl.Secure {
		http.Error(w, "BOSH needs TLS here (a trusted proxy must send X-Forwarded-Proto: https)", http.StatusForbidden)
		return
	}
	maxBody := int64(cfg.C2S.MaxStanzaSize) + 64<<10
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return
	}
	write := func(b []byte) {
		hdr.Set("Content-Type", "text/xml; charset=utf-8")
		hdr.Set("Cache-Control", "no-store")
		_, _ = w.Write(b)
	}
	if int64(len(raw)) > maxBody {
		write(bosh.Terminate("policy-violation", nil))
		return
	}
	b, err := bosh.Parse(raw, cfg.C2S.MaxStanzaSize)
	if err != nil {
		// XEP-0124 §17: bad-request, in a 200 response (versions from 1.6 on).
		write(bosh.Terminate("bad-request", nil))
		return
	}
	var pid *actor.PID
	create := b.SID == ""
	if create {
		if pid = s.createBOSH(cl, r, b); pid == nil {
			write(bosh.Terminate("policy-violation", nil))
			return
		}
	} else {
		id, _, ok := strings.Cut(b.SID, "-")
		if _, err := strconv.ParseUint(id, 10, 64); !ok || err != nil { // a conn's id: digits only
			write(bosh.Terminate("item-not-found", nil))
			return
		}
		pid = actor.NewPID(s.sys.Address(), "c2s/"+id)
	}
	if rep := s.askBOSH(pid, &boshRequest{body: b, create: create}); rep != nil {
		write(rep.body)
		return
	}
	write(bosh.Terminate("item-not-found", nil)) // no such session (any more)
}

// askBOSH sends a request to the session's conn and waits for its reply. A sid naming no actor comes back as a
// dead letter at once; a request that reached the mailbox of a conn in the middle of stopping is dropped by the
// actor runtime, so the wait also ends when the conn is no longer registered (checked once a second in the
// runtime's own synchronised process registry; no state of ours is shared).
func (s *Server) askBOSH(pid *actor.PID, req *boshRequest) *boshReply {
	f := actor.NewFuture(s.sys, s.env.cfg.HTTP.BOSHMaxWait.Duration+10*time.Second)
	s.sys.Root.RequestWithCustomSender(pid, req, f.PID())
	done := make(chan *boshReply, 1)
	go func() {
		res, _ := f.Result()
		rep, _ := res.(*boshReply)
		done <- rep
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case rep := <-done:
			return rep
		case <-tick.C:
			if _, ok := s.sys.ProcessRegistry.GetLocal(pid.Id); !ok {
				return nil
			}
		}
	}
}

// createBOSH spawns the conn of a new session (through the listener, like a socket) and returns its PID.
func (s *Server) createBOSH(cl web.Client, r *http.Request, b *bosh.Body) *actor.PID {
	bs := s.newBOSHSession(b)
	sink := &boshSink{}
	ready := make(chan *actor.PID, 1)
	// Channel binding (RFC 5929, RFC 9266) for SCRAM-*-PLUS: a BOSH session is a sequence of HTTP requests over
	// whatever connections the client has open (XEP-0124 §11: several at once, reopened at will), so the bindings
	// of one TLS connection (tls-exporter, tls-unique: the creation request's) do not bind the session's later
	// requests, which carry the SASL exchange. tls-server-end-point is our certificate's, the same on every
	// connection: that one is offered (XEP-0440), and none behind a proxy or over loopback plain HTTP.
	cb := s.channelBinding(cl)
	t := &transport{kind: "bosh", remote: clientRemote(cl, r), ip: cl.Addr, out: sink, cb: sasl.ChannelBinding{EndPoint: cb.EndPoint}}
	t.start = func(root *actor.RootContext, self *actor.PID, _ *atomic.Int64) {
		sink.root, sink.self = root, self
		var rb [12]byte
		_, _ = rand.Read(rb[:])
		bs.sid = strings.TrimPrefix(self.Id, "c2s/") + "-" + base64.RawURLEncoding.EncodeToString(rb[:])
		ready <- self
	}
	t.refused = func(string) { ready <- nil }
	t.receive = bs.receive
	s.sys.Root.Send(s.listener, &acceptedTransport{t: t})
	return <-ready
}

// originAllowed: http.origins as host patterns ("*" for any).
func originAllowed(patterns []string, origin string) bool {
	host := origin
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	}
	for _, p := range patterns {
		if p == "*" || strings.EqualFold(p, host) {
			return true
		}
		if strings.HasPrefix(p, "*.") && strings.HasSuffix(strings.ToLower(host), strings.ToLower(p[1:])) {
			return true
		}
	}
	return false
}
