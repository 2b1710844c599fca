package actors

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/sasl"
	"github.com/xmppd/xmppd/protocol/sasl2"
	"github.com/xmppd/xmppd/protocol/sm"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Messages the conn actor accepts from other actors.
type (
	// Deliver asks a session (or its conn) to write a stanza to its client: complete XML with 'from' and 'to'
	// already stamped, with its head, so that nobody on the way re-parses what the server already knows. The
	// recipient's conn observes xmppd_routing_latency_seconds from St.Accepted.
	Deliver struct{ St *stanza.Routed }
	// closeStream ends the stream with a stream error condition ("" for a clean close) and an optional
	// application-specific condition element (app).
	closeStream struct {
		condition stream.Condition
		text      string
		app       string
	}
	// bindResult answers a bindRequest.
	bindResult struct {
		full    jid.JID
		session *actor.PID
		err     *stanza.Error
		// bound: the user actor's part of a XEP-0386 <bound/> (feature.Bind2Bound), "" for RFC 6120 binding.
		bound string
	}
	negotiationTimeout struct{}
	// authFailureDue: the per-address delay of a credential failure has passed (see credentialFailure).
	authFailureDue struct{}
)

type connState uint8

const (
	stateHeader  connState = iota // waiting for the initial stream header
	stateNegot                    // header done, before authentication
	stateRestart                  // SASL succeeded, waiting for the restarted header
	stateAuthed                   // authenticated stream, before resource binding
	stateBinding                  // bind request sent to the user's user actor
	stateBound                    // a session actor exists; stanzas go to it
	stateClosed
)

// conn is the actor of one client TCP connection. It owns the socket (through its reader goroutine and writer),
// the stream state machine of RFC 6120 (header → STARTTLS → SASL → restart → bind) and, once bound, forwards
// stanzas to its session actor. Spawned by the listener; supervised with Stop (never restarted: a restart would
// start a second reader on the same socket).
type conn struct {
	env       *env
	id        uint64
	netConn   net.Conn
	tr        *transport // nil for a TCP socket; else a WebSocket or BOSH transport (transport.go)
	directTLS bool
	ip        netip.Addr // source address, the key of the per-address limits (limits.go)
	log       actorLog

	out      *writer
	limit    *atomic.Int64 // the reader's element size limit: pre-auth until SASL succeeds
	state    connState
	streamID string
	domain   string // the served domain this stream is for
	secure   bool
	cb       sasl.ChannelBinding
	cancelTO scheduler.CancelFunc

	// SASL
	mech     sasl.Mechanism
	scram    *sasl.SCRAM
	scramOK  bool // credentials were real (not the anti-enumeration fake ones)
	pendUser jid.JID
	failures int
	// authWait: a credential failure is waiting out its per-address delay; cancelAuth stops that timer.
	authWait   bool
	cancelAuth scheduler.CancelFunc
	preAuthEls int // top-level elements received before authentication (c2s.pre_auth_max_elements)
	authMech   string
	user       jid.JID // authenticated bare JID

	// binding
	full    jid.JID
	session *actor.PID
	held    []*xmlstream.Element // stanzas that arrived while the bind (or resume) request was in flight
	// resuming: the request in flight is an XEP-0198 <resume/> (conn_sm.go), not a bind.
	resuming bool
	closeApp string // the application condition of the stream error being written (closeStream.app)
	// s2 is the XEP-0388 exchange in progress, nil when none (conn_sasl2.go).
	s2 *sasl2Conn
}

func newConnProps(e *env, id uint64, c net.Conn, directTLS bool, ip netip.Addr) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &conn{env: e, id: id, netConn: c, directTLS: directTLS, ip: ip}
	}, actor.WithSupervisor(stopStrategy), withInspection(e, kindConn))
}

func (c *conn) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		c.start(ctx)
	case *streamHeaderIn:
		c.onHeader(ctx, m.hdr)
	case *elementIn:
		c.onElement(ctx, m)
	case *whitespaceIn:
		// RFC 6120 §4.6.1 whitespace keepalive: the reader already extended the idle deadline.
	case *streamEndIn:
		// RFC 6120 §4.4: answer the peer's closing tag with ours and close.
		c.log.Debug().Msg("peer closed the stream")
		c.finish(ctx, "", "")
	case *startTLSIn:
		c.onStartTLS(ctx, m.sw)
	case *tlsReady:
		if c.state == stateClosed {
			return // the stream ended while the handshake ran (the actor stops after its mailbox, see stop)
		}
		c.secure = true
		c.cb = sasl.TLSChannelBinding(&m.state, m.cert.Leaf) // tls-unique only on TLS 1.2 (docs/channel-binding.md)
		c.log.Debug().Str("tls", tls.VersionName(m.state.Version)).Strs("channel_binding", c.cb.Types()).Msg("tls established")
		if c.state != stateHeader {
			c.state = stateHeader // STARTTLS: the client restarts the stream (RFC 6120 §5.4.3.3)
		}
	case *readEnded:
		c.onReadEnded(ctx, m.err)
	case *Deliver:
		if c.state == stateClosed {
			// The stream is over (the client left, or was a slow consumer) but the stanza was routed here before
			// our session learnt it: hand it back instead of dropping it (undelivered.go).
			if m.St.Head.Name == "message" && c.session != nil {
				ctx.Send(c.session, &undelivered{stanzas: []*stanza.Routed{m.St}})
			}
			return
		}
		c.send(ctx, m.St.Raw)
	case *bindResult:
		c.onBindResult(ctx, m)
	case *offlineMore:
		root, self := ctx.ActorSystem().Root, ctx.Self()
		c.out.whenDrained(func() { root.Send(self, &offlineDrained{}) })
	case *offlineDrained:
		if c.state == stateBound {
			ctx.Send(c.session, &offlineNext{})
		}
	case *closeStream:
		c.closeApp = m.app
		c.finish(ctx, m.condition, m.text)
	case *rawOut:
		c.send(ctx, m.s)
	case *resumeResult:
		c.onResumeResult(ctx, m)
	case *bind2Done:
		c.onBind2Done(ctx, m)
	case *negotiationTimeout:
		if c.state < stateBound {
			c.log.Info().Msg("negotiation timeout")
			c.env.metrics.hit(limitNegotiation)
			c.finish(ctx, stream.ConnectionTimeout, "")
		}
	case *authPenalty:
		c.onAuthPenalty(ctx, m.delay)
	case *authFailureDue:
		c.cancelAuth = nil
		c.failureDue(ctx)
	case *actor.Terminated:
		if c.session != nil && m.Who.Equal(c.session) && c.state != stateClosed {
			// The session died under us (a panic in it); RFC 6120 §4.9.3.8.
			c.session = nil
			c.finish(ctx, stream.InternalServerError, "")
		}
	case *actor.Stopping:
		if c.tr != nil && c.tr.receive != nil {
			c.tr.receive(c, ctx, m) // a BOSH session answers the requests it holds
		}
		if c.cancelTO != nil {
			c.cancelTO()
		}
		if c.cancelAuth != nil {
			c.cancelAuth()
		}
		if c.state != stateClosed {
			// Stopped from outside (a panic or the supervisor): the stream still gets a proper end.
			c.writeClose(stream.InternalServerError, "")
		}
	default:
		if c.tr != nil && c.tr.receive != nil {
			c.tr.receive(c, ctx, m) // the transport's own messages (BOSH requests, transport.go)
		}
	}
}

func (c *conn) start(ctx actor.Context) {
	if c.tr != nil {
		c.startTransport(ctx)
		return
	}
	cfg := &c.env.cfg
	c.log = newActorLog(&c.env.log, c.id, "remote", c.netConn.RemoteAddr().String())
	c.log.Debug().Bool("direct_tls", c.directTLS).Msg("connection accepted")
	raw := c.netConn
	var rc net.Conn = raw
	if c.directTLS {
		rc = tls.Server(raw, c.env.tlsConfig)
	}
	c.out = newWriter(rc, cfg.C2S.WriteQueueBytes, writeTimeout, c.env.connClosed)
	c.out.pool = c.env.workers
	c.limit = new(atomic.Int64)
	c.limit.Store(int64(cfg.C2S.PreAuthStanzaSize))
	r := &reader{limit: c.limit,
		root: ctx.ActorSystem().Root, self: ctx.Self(), conn: rc, out: c.out,
		tlsConfig: c.env.tlsConfig, certs: c.env.certs, directTLS: c.directTLS,
		deadline: cfg.C2S.NegotiationTimeout.Duration, idle: cfg.C2S.IdleTimeout.Duration,
	}
	if cfg.C2S.ReadRate > 0 {
		m := c.env.metrics
		r.shape = &shaper{bucket: newTokenBucket(float64(cfg.C2S.ReadRate), float64(cfg.C2S.ReadBurst), time.Now()),
			hit: func() { m.hit(limitReadRate) }}
	}
	r.dec = xmlstream.NewDecoder(r.source(rc), cfg.C2S.PreAuthStanzaSize)
	go r.run()
	c.cancelTO = scheduler.NewTimerScheduler(ctx).SendOnce(cfg.C2S.NegotiationTimeout.Duration, ctx.Self(), &negotiationTimeout{})
	c.env.metrics.connections.Inc()
}

// writeTimeout bounds one Write: a peer that does not read for this long is disconnected.
const writeTimeout = 30 * time.Second

func (c *conn) send(ctx actor.Context, s string) {
	if c.state == stateClosed {
		return
	}
	if !c.out.write(s) {
		// A slow consumer (XEP-0205 §5). What the writer has not yet handed to the socket, and s, are not
		// delivered: they go back to the user actor (offline storage or another resource). What a flush has
		// completely handed to the kernel counts as delivered, as on any TCP stream without XEP-0198. The stream
		// error is queued behind the write in progress: a client that reads again before that write's deadline
		// sees <policy-violation/>, one that never does is cut off at the deadline, and the stanzas of that write
		// it did not get completely come back then (stopWhenWritten).
		c.log.Warn().Msg("client does not read: write queue full")
		c.env.metrics.slowConsumers.Inc()
		c.env.metrics.hit(limitWriteQueue)
		pending := c.out.takePending()
		c.returnUndelivered(ctx, string(pending)+s)
		c.out.graceDeadline()
		c.writeClose(stream.PolicyViolation, "write queue full: the client does not read")
		c.stopWhenWritten(ctx)
	}
}

// stop ends the actor after the messages already in its mailbox: a Deliver among them is handed back to the
// session (see Receive) rather than lost with the mailbox, as it would be with Stop.
func (c *conn) stop(ctx actor.Context) {
	ctx.Poison(ctx.Self())
}

// streamHeader is our response header (RFC 6120 §4.7), answering to 'to'.
func (c *conn) streamHeader(to string) string { return stream.Header(c.streamID, c.domain, to) }

func (c *conn) onHeader(ctx actor.Context, h *xmlstream.Header) {
	switch c.state {
	case stateHeader, stateRestart:
	default:
		// A stream header in the middle of a stream is not a restart we asked for.
		c.finish(ctx, stream.BadFormat, "unexpected stream header")
		return
	}
	c.streamID = newStreamID()
	if c.domain == "" {
		c.domain = c.env.cfg.Domains[0]
	}
	// Our header and what follows it (the features, or a stream error) leave in one write.
	c.out.hold()
	defer c.out.release()
	// RFC 6120 §4.9.1.2: errors during stream set-up still get our opening header first. The §4.7 checks are
	// protocol/stream's; what a restart may not change is the domain of the first header.
	restart := ""
	if c.state == stateRestart {
		restart = c.domain
	}
	domain, cond, text := stream.CheckHeader(h, c.env.cfg.Serves, restart)
	if cond == "" {
		c.domain = domain
	}
	// RFC 6120 §4.7.2: our 'to' echoes the initiating entity's 'from' when it gave a valid one.
	to := stream.ResponseTo(h)
	c.out.write(c.streamHeader(to))
	if cond != "" {
		c.log.Info().Str("error", string(cond)).Str("to", h.To).Msg("stream header refused")
		c.finish(ctx, cond, text)
		return
	}
	if c.state == stateRestart {
		c.state = stateAuthed
	} else {
		c.state = stateNegot
	}
	c.send(ctx, c.features())
}

// features is the <stream:features> of this stream's state: from the table built at start (featureTable), or built
// here when the env has none (tests that make an env by hand).
func (c *conn) features() string {
	if t := c.env.features; t != nil {
		if f, ok := t.lookup(c); ok {
			return f
		}
	}
	return c.buildFeatures()
}

// featureTable holds <stream:features> for every stream a conn offers them on, computed once at start: besides the
// configuration they depend only on the state (before or after authentication), on TLS, and on which of the three
// channel-binding types TLS gave the stream, so there are eighteen. Building them for every stream header cost
// about 10 µs and 2 KiB of garbage per header, two headers per connection.
type featureTable struct {
	negot  [2][8]string // [secure][cbMask]
	authed string
	// bound is what follows SASL2 <success/> on a bound stream (sasl2Bound).
	bound string
}

// cbMask is which channel-binding types the stream has: bit 0 tls-exporter, 1 tls-unique, 2 tls-server-end-point
// (sasl.ChannelBinding.Types); none before TLS.
func cbMask(secure bool, cb sasl.ChannelBinding) int {
	if !secure {
		return 0
	}
	m := 0
	if len(cb.Exporter) > 0 {
		m |= 1
	}
	if len(cb.Unique) > 0 {
		m |= 2
	}
	if len(cb.EndPoint) > 0 {
		m |= 4
	}
	return m
}

// newFeatureTable builds the table with e's configuration and features (immutable once the server runs).
func newFeatureTable(e *env) *featureTable {
	t := &featureTable{}
	one := []byte{1} // Types looks at presence only
	for sec := 0; sec < 2; sec++ {
		for m := 0; m < 8; m++ {
			c := &conn{env: e, state: stateNegot, secure: sec == 1}
			if m&1 != 0 {
				c.cb.Exporter = one
			}
			if m&2 != 0 {
				c.cb.Unique = one
			}
			if m&4 != 0 {
				c.cb.EndPoint = one
			}
			t.negot[sec][m] = c.buildFeatures()
		}
	}
	t.authed = (&conn{env: e, state: stateAuthed}).buildFeatures()
	t.bound = boundFeatures(e)
	return t
}

// boundFeatures are the features of a stream bound by SASL2 (XEP-0388 §2.5.1: no restart, they follow
// <success/>): XEP-0198 to enable, and what the features add.
func boundFeatures(e *env) string {
	feats := e.streamFeatures
	if e.cfg.SM.Enabled {
		feats = sm.Feature + feats
	}
	return stream.Features(feats)
}

func (t *featureTable) lookup(c *conn) (string, bool) {
	switch c.state {
	case stateNegot:
		sec := 0
		if c.secure {
			sec = 1
		}
		return t.negot[sec][cbMask(c.secure, c.cb)], true
	case stateAuthed:
		return t.authed, true
	}
	return "", false
}

func (c *conn) buildFeatures() string {
	var b strings.Builder
	b.Grow(1024) // the features after TLS are ~900 bytes: one allocation instead of a doubling series per header
	switch c.state {
	case stateNegot:
		required := c.env.cfg.C2S.RequireEncryption
		if !c.secure {
			b.WriteString("<starttls xmlns='" + stanza.NSTLS + "'>")
			if required {
				b.WriteString("<required/>")
			}
			b.WriteString("</starttls>")
		}
		// RFC 6120 §5.3.1: while TLS is mandatory-to-negotiate, nothing else is offered.
		if c.secure || !required {
			b.WriteString("<mechanisms xmlns='" + stanza.NSSASL + "'>")
			for _, m := range c.offeredMechanisms() {
				b.WriteString("<mechanism>" + m + "</mechanism>")
			}
			b.WriteString("</mechanisms>")
			b.WriteString(c.channelBindingFeature()) // XEP-0440 (conn_sasl.go)
			b.WriteString(c.sasl2Feature())          // XEP-0388 (conn_sasl2.go)
			if c.env.cfg.Registration.Allow {
				b.WriteString("<register xmlns='" + stanza.NSRegFeat + "'/>")
			}
		}
	case stateAuthed:
		b.WriteString("<bind xmlns='" + stanza.NSBind + "'/>")
		b.WriteString("<session xmlns='" + stanza.NSSession + "'><optional/></session>")
		b.WriteString("<ver xmlns='" + stanza.NSRosterV + "'/>")
		b.WriteString("<sub xmlns='" + stanza.NSPreApp + "'/>")
		if c.env.cfg.SM.Enabled {
			b.WriteString(sm.Feature) // XEP-0198 §3: offered with bind, enabled after it
		}
		b.WriteString(c.env.streamFeatures) // XEP-0115 caps, XEP-0352 csi (host.go)
	}
	return stream.Features(b.String())
}

func (c *conn) onStartTLS(ctx actor.Context, sw *tlsSwitch) {
	if c.state != stateNegot || c.secure {
		// RFC 6120 §5.4.2.2: <failure/> and close.
		c.out.write("<failure xmlns='" + stanza.NSTLS + "'/>")
		close(sw.abort)
		c.finish(ctx, "", "")
		return
	}
	c.out.writeThenPause("<proceed xmlns='"+stanza.NSTLS+"'/>", sw.flushed)
}

func (c *conn) onElement(ctx actor.Context, m *elementIn) {
	el := m.el
	c.env.metrics.countIn(el.Name.Local)
	if c.state <= stateNegot {
		// XEP-0205: an unauthenticated peer gets a small budget of elements as well as of bytes per element.
		c.preAuthEls++
		if max := c.env.cfg.C2S.PreAuthMaxElements; max > 0 && c.preAuthEls > max {
			c.env.metrics.hit(limitPreAuthElements)
			c.finish(ctx, stream.PolicyViolation, "too many elements before authentication")
			return
		}
	}
	if c.authWait && c.state == stateNegot {
		// RFC 6120 §6.4.5: the client waits for our <failure/> before it tries again; one that does not is
		// trying to get around the per-address delay.
		c.env.metrics.hit(limitAuthDelay)
		c.finish(ctx, stream.PolicyViolation, "wait for the authentication result")
		return
	}
	switch c.state {
	case stateBound:
		ctx.Send(c.session, m) // the same immutable message, passed on
		return
	case stateBinding:
		if len(c.held) >= 64 {
			c.finish(ctx, stream.PolicyViolation, "too many stanzas before the resource is bound")
			return
		}
		c.held = append(c.held, el)
		return
	case stateNegot:
		if el.Name.Space == stanza.NSSASL {
			c.onSASL(ctx, el)
			return
		}
		if el.Name.Space == sasl2.NS && c.env.cfg.SASL2.Enabled {
			c.onSASL2(ctx, el)
			return
		}
		if el.Name.Space == stanza.NSClient && el.Name.Local == "iq" {
			c.onPreAuthIQ(ctx, el)
			return
		}
	case stateAuthed:
		if el.Name.Space == stanza.NSClient && el.Name.Local == "iq" {
			c.onAuthedIQ(ctx, el)
			return
		}
		if el.Name.Space == sm.NS && c.env.cfg.SM.Enabled {
			c.onSMBeforeBind(ctx, el) // conn_sm.go
			return
		}
	}
	if el.Name.Space == stanza.NSClient && (el.Name.Local == "message" || el.Name.Local == "presence" || el.Name.Local == "iq") {
		// RFC 6120 §6.4.6 / §7.1: no stanzas before authentication and binding.
		c.finish(ctx, stream.NotAuthorized, "")
		return
	}
	if el.Name.Space != stanza.NSClient && el.Name.Space != stanza.NSSASL && el.Name.Space != stanza.NSTLS && el.Name.Space != sm.NS {
		c.finish(ctx, stream.UnsupportedStanzaType, "")
		return
	}
	c.finish(ctx, stream.NotAuthorized, "")
}

// ---- SASL (RFC 6120 §6) ----

func (c *conn) onAuthedIQ(ctx actor.Context, el *xmlstream.Element) {
	n, err := el.Parse()
	if err != nil {
		c.finish(ctx, stream.NotWellFormed, "")
		return
	}
	head := stanza.Head{Name: "iq", ID: el.ID, Type: el.Type}
	if el.ID == "" {
		c.finish(ctx, stream.InvalidXML, "an iq needs an id")
		return
	}
	payload := n.FirstElement()
	if el.Type != "set" || payload == nil || payload.Name.Space != stanza.NSBind || payload.Name.Local != "bind" {
		// RFC 6120 §7.1: stanzas other than bind before binding are not processed.
		c.finish(ctx, stream.NotAuthorized, "bind a resource first")
		return
	}
	res := ""
	if r := payload.Child(stanza.NSBind, "resource"); r != nil {
		res = strings.TrimSpace(r.TextContent())
	}
	if res == "" {
		res = newResourceID()
	}
	full, err := c.user.WithResource(res)
	if err != nil {
		// RFC 6120 §7.7.2.1: a resource that cannot be processed is bad-request.
		c.send(ctx, stanza.ErrorReply(head, "", stanza.NewError(stanza.BadRequest).WithText("invalid resourcepart")))
		return
	}
	c.state = stateBinding
	c.held = append(c.held[:0], el) // the bind iq itself is answered when the result comes back
	ctx.Request(c.env.router, &bindRequest{full: full, conn: ctx.Self(), addr: c.remoteAddr(), direct: c.tr == nil})
}

func (c *conn) onBindResult(ctx actor.Context, m *bindResult) {
	if c.state != stateBinding {
		if m.session != nil {
			ctx.Stop(m.session)
		}
		return
	}
	if c.s2 != nil {
		c.sasl2BindResult(ctx, m) // XEP-0386 (conn_sasl2.go)
		return
	}
	bindIQ := c.held[0]
	held := c.held[1:]
	c.held = nil
	head := stanza.Head{Name: "iq", ID: bindIQ.ID, Type: "set"}
	if m.err != nil {
		c.state = stateAuthed
		c.send(ctx, stanza.ErrorReply(head, "", *m.err))
		return
	}
	c.bound(ctx, m.full, m.session, "resource bound", stanza.IQResult(head, "", "<bind xmlns='"+stanza.NSBind+"'><jid>"+
		string(xmlstream.AppendEscapedText(nil, m.full.String()))+"</jid></bind>"), nil)
	if c.tr == nil && m.session.Address == ctx.Self().Address {
		// The bind result is queued: from here the session writes its stanzas to our writer itself (session.toConn),
		// from before the stanzas held meanwhile (an XEP-0198 <enable/> right behind the bind: its <enabled/> too).
		// Only a session in this process can share the writer: a bind handed to another process must not carry
		// bindRequest.direct, or its session would wait for a writer that never comes.
		ctx.Send(m.session, &writeDirect{w: c.out})
	}
	for _, el := range held {
		ctx.Send(c.session, &elementIn{el: el})
	}
}

// bound attaches the stream to its session (after a bind, or an XEP-0198 resumption): answer is written first,
// then the stanzas held meanwhile go to the session.
func (c *conn) bound(ctx actor.Context, full jid.JID, session *actor.PID, what, answer string, held []*xmlstream.Element) {
	c.full = full
	c.session = session
	ctx.Watch(session)
	c.state = stateBound
	if c.cancelTO != nil {
		c.cancelTO()
		c.cancelTO = nil
	}
	c.log = newActorLog(&c.env.log, c.id, "jid", full.String())
	c.log.Info().Msg(what)
	c.send(ctx, answer)
	for _, el := range held {
		ctx.Send(c.session, &elementIn{el: el})
	}
}

// ---- end of the stream ----

func (c *conn) onReadEnded(ctx actor.Context, err error) {
	if c.state == stateClosed {
		return // every path that closed the stream has already asked the actor to stop
	}
	var xe *xmlstream.Error
	var ne net.Error
	switch {
	case errors.As(err, &xe):
		c.log.Info().Str("error", xe.Condition).Str("detail", xe.Msg).Msg("bad XML from peer")
		if stream.Condition(xe.Condition) == stream.PolicyViolation {
			if c.state < stateRestart {
				c.env.metrics.hit(limitPreAuthSize)
			} else {
				c.env.metrics.hit(limitStanzaSize)
			}
		}
		if c.streamID == "" {
			// RFC 6120 §4.9.1.2: an error before our header still needs our header first.
			c.streamID = newStreamID()
			if c.domain == "" {
				c.domain = c.env.cfg.Domains[0]
			}
			c.out.write(c.streamHeader(""))
		}
		c.finish(ctx, stream.Condition(xe.Condition), xe.Msg)
	case errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Info().Msg("connection timed out")
		c.env.metrics.hit(limitIdle)
		c.finish(ctx, stream.ConnectionTimeout, "")
	default:
		if !errors.Is(err, io.EOF) {
			c.log.Debug().Err(err).Msg("read ended")
		} else {
			c.log.Debug().Msg("peer closed the connection")
		}
		c.state = stateClosed
		// The peer is gone: what the writer still holds, and what the write in progress does not get out before
		// the socket closes, never reached it (stopWhenWritten hands it back).
		c.out.abort()
		c.stopWhenWritten(ctx)
	}
}

// finish sends an optional stream error and our closing tag, then stops the actor once the writer is finished
// (stopWhenWritten: stanzas still queued are written first, those that are not come back). The writer closes the
// socket once the bytes are out; the reader then ends by itself.
func (c *conn) finish(ctx actor.Context, condition stream.Condition, text string) {
	if c.state == stateClosed {
		return
	}
	if c.session != nil && condition != stream.ConnectionTimeout {
		// XEP-0198: a stream that ends cleanly, or with an error one side chose, ends the session with it; only a
		// connection that was lost (read ended, write failed, timed out) leaves it waiting to be resumed.
		ctx.Send(c.session, &connFinished{conn: ctx.Self()})
	}
	c.writeClose(condition, text)
	c.stopWhenWritten(ctx)
}

func (c *conn) writeClose(condition stream.Condition, text string) {
	if c.state == stateClosed {
		return
	}
	c.state = stateClosed
	switch {
	case condition != "" && c.streamID == "":
		c.out.write(c.streamHeader("")) // RFC 6120 §4.9.1.2: a stream error needs a stream header first
	case condition == "" && c.streamID == "":
		c.out.abort()
		return
	}
	c.out.endStream(c.env.metrics, condition, text, c.closeApp)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func newStreamID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func newResourceID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return "xmppd-" + base64.RawURLEncoding.EncodeToString(b[:])
}

// ---- what it says of itself in /debug/actors (inspect.go) ----

var connStateNames = [...]string{"header", "negotiating", "restart", "authenticated", "binding", "bound", "closed"}

func (s connState) String() string {
	if int(s) < len(connStateNames) {
		return connStateNames[s]
	}
	return "state" + strconv.Itoa(int(s))
}

func (c *conn) servedJID() string {
	if !c.full.IsZero() {
		return c.full.String()
	}
	if !c.user.IsZero() {
		return c.user.String()
	}
	return ""
}

func (c *conn) describe(_ actor.Context, a *ActorInfo) {
	a.Remote = c.remoteAddr()
	a.State = c.state.String()
	secure := c.secure
	a.TLS = &secure
	a.Mechanism = c.authMech
	if !c.full.IsZero() {
		a.BoundJID = c.full.String()
		a.Resource = c.full.Resource()
	}
	a.Attrs = map[string]string{"conn_id": strconv.FormatUint(c.id, 10), "direct_tls": strconv.FormatBool(c.directTLS),
		"transport": c.transportName()}
	if c.session != nil {
		a.Attrs["session"] = c.session.Id
	}
}
