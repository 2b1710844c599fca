package actors

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/protocol/dialback"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/sm"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// The actor of one incoming server-to-server connection, s2s/in-<n>: the receiving side of RFC 6120 (header,
// STARTTLS, SASL EXTERNAL) and XEP-0220 (db:result verified against the authoritative server on a connection
// of its own; db:verify answered for keys we handed out). It reuses the c2s reader goroutine and writer
// (reader.go, writer.go). Once a (remote, local) pair of domains is authenticated, every stanza must come from
// the remote domain to a domain served here, and is routed through the router as a session's would be.

type (
	// s2sVerified: the authoritative server answered our db:verify (or could not be asked: err).
	s2sVerified struct {
		remote, local string
		valid         bool
		err           error
	}
)

type inState uint8

const (
	inHeader inState = iota
	inNegot
	inRestart // SASL EXTERNAL succeeded; the peer restarts the stream
	inAuthed  // a restarted stream after SASL (dialback authenticates within inNegot)
	inClosed
)

var inStateNames = [...]string{"header", "negotiating", "restart", "authenticated", "closed"}

type domainPair struct{ remote, local string }

type s2sIn struct {
	env      *env
	id       uint64
	netConn  net.Conn
	log      zerolog.Logger
	out      *writer
	limit    *atomic.Int64
	state    inState
	streamID string
	local    string // the 'to' of the stream header: our domain
	from     string // the 'from' of the stream header: the domain the peer says it is
	secure   bool
	peer     []*x509.Certificate
	authed   map[domainPair]string // → mechanism
	pending  map[domainPair]bool   // dialback verifications in flight
	cancelTO scheduler.CancelFunc
	stanzas  uint64
	// XEP-0198 (s2s_sm.go): enabled, the resumable session's id (registered with the s2s actor), the stanzas
	// handled, and a <resume/> waiting for the s2s actor's answer.
	smOn       bool
	smID       string
	smH        uint32
	smResuming bool
}

func newS2SInProps(e *env, id uint64, c net.Conn) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &s2sIn{env: e, id: id, netConn: c, authed: map[domainPair]string{}, pending: map[domainPair]bool{}}
	}, actor.WithSupervisor(stopStrategy), withInspection(e, kindS2SIn))
}

type s2sNegotiationTimeout struct{}

func (c *s2sIn) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		c.start(ctx)
	case *streamHeaderIn:
		c.onHeader(ctx, m.hdr)
	case *elementIn:
		if c.state == inClosed {
			return // queued behind the end of the stream: not handled (XEP-0198 counts on it)
		}
		c.onElement(ctx, m.el)
	case *s2sSMResumeAnswer:
		c.onResumeAnswer(m)
	case *s2sSMTakeover:
		c.log.Info().Msg("s2s stream management session resumed on a new stream")
		c.finish(ctx, stream.Conflict, "resumed on another stream")
	case *whitespaceIn:
	case *streamEndIn:
		c.finish(ctx, "", "")
	case *startTLSIn:
		if c.state != inNegot || c.secure {
			c.out.write("<failure xmlns='" + stanza.NSTLS + "'/>")
			close(m.sw.abort)
			c.finish(ctx, "", "")
			return
		}
		c.out.writeThenPause("<proceed xmlns='"+stanza.NSTLS+"'/>", m.sw.flushed)
	case *tlsReady:
		if c.state == inClosed {
			return
		}
		c.secure = true
		c.peer = m.state.PeerCertificates
		c.state = inHeader // RFC 6120 §5.4.3.3: the peer restarts the stream
	case *readEnded:
		c.onReadEnded(ctx, m.err)
	case *s2sVerified:
		c.onVerified(ctx, m)
	case *s2sNegotiationTimeout:
		if len(c.authed) == 0 && len(c.pending) == 0 {
			c.finish(ctx, stream.ConnectionTimeout, "")
		}
	case *closeStream:
		c.finish(ctx, m.condition, m.text)
	case *actor.Stopping:
		if c.cancelTO != nil {
			c.cancelTO()
		}
		if c.state != inClosed {
			c.writeClose(stream.InternalServerError, "")
		}
		c.detachSM(ctx)
	}
}

func (c *s2sIn) start(ctx actor.Context) {
	cfg := &c.env.cfg
	c.log = c.env.log.With().Str("s2s_in", strconv.FormatUint(c.id, 10)).Str("remote", c.netConn.RemoteAddr().String()).Logger()
	c.out = newWriter(c.netConn, cfg.C2S.WriteQueueBytes, writeTimeout, func() {})
	c.out.pool = c.env.workers
	c.limit = new(atomic.Int64)
	c.limit.Store(int64(cfg.C2S.PreAuthStanzaSize))
	r := &reader{limit: c.limit, root: ctx.ActorSystem().Root, self: ctx.Self(), conn: c.netConn, out: c.out,
		tlsConfig: c.env.s2sServerTLS(), certs: c.env.certs,
		deadline: cfg.C2S.NegotiationTimeout.Duration, idle: cfg.S2S.IdleTimeout.Duration}
	r.dec = xmlstream.NewDecoder(c.netConn, cfg.C2S.PreAuthStanzaSize)
	go r.run()
	c.cancelTO = scheduler.NewTimerScheduler(ctx).SendOnce(cfg.C2S.NegotiationTimeout.Duration, ctx.Self(), &s2sNegotiationTimeout{})
}

func (c *s2sIn) onHeader(ctx actor.Context, h *xmlstream.Header) {
	if c.state != inHeader && c.state != inRestart {
		c.finish(ctx, stream.BadFormat, "unexpected stream header")
		return
	}
	c.streamID = newStreamID()
	local, from, cond, text := stream.CheckServerHeader(h, c.env.isLocal)
	if c.local == "" {
		c.local = c.env.cfg.Domains[0]
	}
	if cond == "" && from != "" && !c.env.cfg.FederatesWith(from) {
		cond, text = stream.PolicyViolation, "this server does not federate with "+from // [s2s] allow/deny
	}
	if cond == "" && c.state == inRestart && (local != c.local || from != c.from) {
		cond, text = stream.HostUnknown, "the domains changed at the stream restart"
	}
	if cond == "" {
		c.local = local
	}
	c.out.write(stream.ServerHeader(c.streamID, c.local, from))
	if cond != "" {
		c.log.Info().Str("error", string(cond)).Str("to", h.To).Str("from", h.From).Msg("s2s stream header refused")
		c.finish(ctx, cond, text)
		return
	}
	if c.state == inRestart {
		c.state = inAuthed
		if c.env.cfg.S2S.StreamManagement {
			c.out.write(stream.Features(sm.Feature)) // XEP-0198 §2: once authenticated
		} else {
			c.out.write(stream.Features())
		}
		return
	}
	c.from = from
	c.state = inNegot
	var b strings.Builder
	if !c.secure {
		b.WriteString("<starttls xmlns='" + stanza.NSTLS + "'>")
		if c.env.cfg.S2S.RequireEncryption {
			b.WriteString("<required/>")
		}
		b.WriteString("</starttls>")
	}
	if c.secure || !c.env.cfg.S2S.RequireEncryption {
		// RFC 6120 §6.4 / §13.7.2: EXTERNAL only for a certificate valid for the domain the peer names.
		if c.secure && c.from != "" && c.env.verifyPeer(c.peer, c.from) {
			b.WriteString("<mechanisms xmlns='" + stanza.NSSASL + "'><mechanism>EXTERNAL</mechanism></mechanisms>")
		}
		if c.env.cfg.S2S.AllowDialback {
			b.WriteString(dialback.Feature)
		}
	}
	c.out.write(stream.Features(b.String()))
}

func (c *s2sIn) onElement(ctx actor.Context, el *xmlstream.Element) {
	switch el.Name.Space {
	case stanza.NSSASL:
		if c.state == inNegot && el.Name.Local == "auth" {
			c.onAuth(ctx, el)
			return
		}
	case dialback.NS:
		if c.state == inNegot || c.state == inAuthed {
			switch el.Name.Local {
			case "result":
				c.onResult(ctx, el)
				return
			case "verify":
				c.onVerify(ctx, el)
				return
			}
		}
	case stream.NS:
		if el.Name.Local == "error" {
			c.log.Info().Str("error", el.Raw).Msg("s2s peer sent a stream error")
			c.finish(ctx, "", "")
			return
		}
	case sm.NS:
		if len(c.authed) > 0 {
			c.onSM(ctx, el)
			return
		}
	case stream.NSServer:
		switch el.Name.Local {
		case "message", "presence", "iq":
			c.onStanza(ctx, el)
			return
		}
	}
	if len(c.authed) == 0 {
		c.finish(ctx, stream.NotAuthorized, "")
		return
	}
	c.finish(ctx, stream.UnsupportedStanzaType, "")
}

// onAuth: SASL EXTERNAL (RFC 6120 §6, §13.7.2; XEP-0178): the authorization identity, if any, must be the
// stream's 'from', and the certificate must be valid for it.
func (c *s2sIn) onAuth(ctx actor.Context, el *xmlstream.Element) {
	n, err := el.Parse()
	if err != nil {
		c.finish(ctx, stream.NotWellFormed, "")
		return
	}
	fail := func(cond string) {
		c.out.write("<failure xmlns='" + stanza.NSSASL + "'><" + cond + "/></failure>")
	}
	if n.Attr("mechanism") != "EXTERNAL" {
		fail("invalid-mechanism")
		return
	}
	authz := c.from
	if t := strings.TrimSpace(n.TextContent()); t != "" && t != "=" {
		b, err := base64.StdEncoding.DecodeString(t)
		if err != nil {
			fail("incorrect-encoding")
			return
		}
		authz = string(b)
	}
	if authz == "" || authz != c.from || !c.secure || !c.env.verifyPeer(c.peer, authz) {
		fail("not-authorized")
		return
	}
	c.out.write("<success xmlns='" + stanza.NSSASL + "'/>")
	c.authenticated(domainPair{remote: authz, local: c.local}, "EXTERNAL")
	c.state = inRestart
}

func (c *s2sIn) authenticated(p domainPair, mech string) {
	c.authed[p] = mech
	c.limit.Store(int64(c.env.cfg.C2S.MaxStanzaSize))
	c.env.s2sm.streams.WithLabelValues("in", mech).Inc()
	c.log = c.log.With().Str("peer", p.remote).Logger()
	c.log.Info().Str("local", p.local).Str("mechanism", mech).Bool("tls", c.secure).Msg("s2s peer authenticated")
}

// onResult: the originating server's key (XEP-0220 §2.1.1). We ask its authoritative server (§2.1.2) on a
// connection of our own and answer with the verdict (§2.1.3).
func (c *s2sIn) onResult(ctx actor.Context, el *xmlstream.Element) {
	n, err := el.Parse()
	if err != nil {
		c.finish(ctx, stream.NotWellFormed, "")
		return
	}
	if n.Attr("type") != "" {
		return // answers belong to outgoing streams
	}
	from, err1 := jid.Parse(n.Attr("from"))
	to, err2 := jid.Parse(n.Attr("to"))
	if err1 != nil || from.Local() != "" || from.Resource() != "" {
		c.finish(ctx, stream.InvalidFrom, "")
		return
	}
	if err2 != nil || !c.env.isLocal(to.Domain()) || to.Local() != "" || to.Resource() != "" {
		c.finish(ctx, stream.HostUnknown, "")
		return
	}
	p := domainPair{remote: from.Domain(), local: to.Domain()}
	switch {
	case !c.env.cfg.FederatesWith(p.remote):
		c.finish(ctx, stream.PolicyViolation, "this server does not federate with "+p.remote)
		return
	case !c.env.cfg.S2S.AllowDialback:
		c.out.write(dialback.ResultError(p.local, p.remote, "not-allowed"))
		return
	case c.env.cfg.S2S.RequireEncryption && !c.secure:
		c.finish(ctx, stream.PolicyViolation, "encryption is required")
		return
	case c.env.cfg.S2S.SecureAuth && !c.env.verifyPeer(c.peer, p.remote):
		// secure_auth: dialback counts only over TLS whose certificate is valid for the claimed domain.
		c.log.Info().Str("peer", p.remote).Msg("s2s dialback refused: certificate not valid (secure_auth)")
		c.out.write(dialback.ResultType(p.local, p.remote, "invalid"))
		c.finish(ctx, stream.NotAuthorized, "the certificate is not valid for "+p.remote)
		return
	}
	if _, ok := c.authed[p]; ok || c.pending[p] {
		return
	}
	c.pending[p] = true
	e, id, key := c.env, c.streamID, strings.TrimSpace(n.TextContent())
	root, self := ctx.ActorSystem().Root, ctx.Self()
	deadline := time.Now().Add(e.cfg.S2S.ConnectTimeout.Duration)
	go func() {
		cctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		ok, err := e.verifyDialback(cctx, p.local, p.remote, id, key, deadline)
		root.Send(self, &s2sVerified{remote: p.remote, local: p.local, valid: ok, err: err})
	}()
}

func (c *s2sIn) onVerified(ctx actor.Context, m *s2sVerified) {
	p := domainPair{remote: m.remote, local: m.local}
	delete(c.pending, p)
	if c.state == inClosed {
		return
	}
	switch {
	case m.err != nil:
		c.log.Info().Err(m.err).Str("peer", m.remote).Msg("s2s dialback: authoritative server not reached")
		c.out.write(dialback.ResultError(m.local, m.remote, "remote-server-not-found"))
	case m.valid:
		c.out.write(dialback.ResultType(m.local, m.remote, "valid"))
		c.authenticated(p, "dialback")
	default:
		c.log.Info().Str("peer", m.remote).Msg("s2s dialback key invalid")
		c.out.write(dialback.ResultType(m.local, m.remote, "invalid"))
		c.finish(ctx, stream.NotAuthorized, "")
	}
}

// onVerify: a receiving server asks whether a key we (the authoritative server) generated is right (XEP-0220
// §2.1.2): from is the receiving server, to is us, id the stream id it gave our originating stream.
func (c *s2sIn) onVerify(ctx actor.Context, el *xmlstream.Element) {
	n, err := el.Parse()
	if err != nil {
		c.finish(ctx, stream.NotWellFormed, "")
		return
	}
	from, to, id := n.Attr("from"), n.Attr("to"), n.Attr("id")
	if !c.env.isLocal(to) {
		c.finish(ctx, stream.HostUnknown, "")
		return
	}
	typ := "invalid"
	if dialback.Valid(c.env.s2sSecret, from, to, id, n.TextContent()) {
		typ = "valid"
	}
	c.out.write(dialback.VerifyType(to, from, id, typ))
}

// onStanza accepts a stanza only from an authenticated domain to one of ours (RFC 6120 §13.7, §4.9.3.9).
func (c *s2sIn) onStanza(ctx actor.Context, el *xmlstream.Element) {
	if len(c.authed) == 0 {
		c.finish(ctx, stream.NotAuthorized, "")
		return
	}
	if el.From == "" || el.To == "" {
		c.finish(ctx, stream.ImproperAddressing, "stanzas between servers need 'from' and 'to'") // §4.9.3.7
		return
	}
	from, err := jid.Parse(el.From)
	if err != nil {
		c.finish(ctx, stream.InvalidFrom, "")
		return
	}
	to, err := jid.Parse(el.To)
	if err != nil || !c.env.isLocal(to.Domain()) {
		c.finish(ctx, stream.HostUnknown, "")
		return
	}
	if _, ok := c.authed[domainPair{remote: from.Domain(), local: to.Domain()}]; !ok {
		c.log.Info().Str("from", el.From).Str("to", el.To).Msg("s2s stanza from outside the authenticated domain")
		c.finish(ctx, stream.InvalidFrom, "'from' is not a domain this stream authenticated")
		return
	}
	// An explicit xmlns='jabber:server' on the stanza goes: routed on, it takes each recipient stream's content
	// namespace (RFC 6120 §4.8.3).
	raw := stripRootNS(el.Raw)
	if el.From != from.String() {
		raw = xmlstream.SetHeadAttr(raw, "from", from.String())
	}
	if el.To != to.String() {
		raw = xmlstream.SetHeadAttr(raw, "to", to.String())
	}
	c.stanzas++
	c.smH++ // XEP-0198 §4: handled, i.e. routed on (counted whether or not SM is on; wraps at 2^32)
	c.env.metrics.countIn(el.Name.Local)
	if el.Name.Local == "iq" && to.Local() == "" && to.Resource() == "" && c.env.cfg.Serves(to.Domain()) {
		c.serverIQ(ctx, el, from, to)
		return
	}
	st := stanza.New(stanza.Head{Name: el.Name.Local, ID: el.ID, Type: el.Type, From: from.String(), To: to.String()}, from, to, raw)
	st.Accepted = time.Now()
	ctx.Send(c.env.router, &Route{St: st})
}

// serverIQ answers an IQ from a remote entity to one of our domains (a c2s session answers its own client's):
// XEP-0199 ping and XEP-0030 disco#info of the server; anything else is <service-unavailable/> (RFC 6120 §8.4).
func (c *s2sIn) serverIQ(ctx actor.Context, el *xmlstream.Element, from, to jid.JID) {
	if el.Type != "get" && el.Type != "set" {
		return // answers to requests we never make
	}
	h := stanza.Head{Name: "iq", ID: el.ID, Type: el.Type, From: from.String(), To: to.String()}
	n, err := el.Parse()
	var payload *xmlstream.Node
	if err == nil {
		payload = n.FirstElement()
	}
	raw, typ := "", "result"
	switch {
	case payload != nil && el.Type == "get" && payload.Name.Space == stanza.NSPing && payload.Name.Local == "ping":
		raw = stanza.IQResult(h, to.String(), "")
	case payload != nil && el.Type == "get" && payload.Name.Space == stanza.NSDiscoInf && payload.Name.Local == "query" &&
		payload.Attr("node") == "":
		raw = stanza.IQResult(h, to.String(), c.env.srv.DiscoInfo(""))
	default:
		raw, typ = stanza.ErrorReply(h, to.String(), stanza.NewError(stanza.ServiceUnavailable)), "error"
	}
	rh := stanza.Head{Name: "iq", ID: el.ID, Type: typ, From: to.String(), To: from.String()}
	ctx.Send(c.env.router, &Route{St: stanza.New(rh, to, from, raw)})
}

func (c *s2sIn) onReadEnded(ctx actor.Context, err error) {
	if c.state == inClosed {
		return
	}
	var xe *xmlstream.Error
	var ne net.Error
	switch {
	case errors.As(err, &xe):
		c.log.Info().Str("error", xe.Condition).Str("detail", xe.Msg).Msg("bad XML from s2s peer")
		c.finish(ctx, stream.Condition(xe.Condition), xe.Msg)
	case errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded):
		c.finish(ctx, stream.ConnectionTimeout, "")
	default:
		if !errors.Is(err, io.EOF) {
			c.log.Debug().Err(err).Msg("s2s read ended")
		}
		c.state = inClosed
		c.out.abort()
		c.detachSM(ctx)
		ctx.Poison(ctx.Self())
	}
}

func (c *s2sIn) finish(ctx actor.Context, cond stream.Condition, text string) {
	if c.state == inClosed {
		return
	}
	if cond != "" && cond != stream.SystemShutdown {
		c.env.s2sm.refused.WithLabelValues(string(cond)).Inc()
		c.log.Info().Str("error", string(cond)).Str("text", text).Msg("s2s stream refused")
	}
	c.writeClose(cond, text)
	c.detachSM(ctx)
	ctx.Poison(ctx.Self())
}

func (c *s2sIn) writeClose(cond stream.Condition, text string) {
	c.state = inClosed
	if c.streamID == "" {
		c.streamID = newStreamID()
		c.out.write(stream.ServerHeader(c.streamID, c.env.cfg.Domains[0], ""))
	}
	c.out.endStream(c.env.metrics, cond, text, "")
}

// ---- what it says of itself in /debug/actors (inspect.go) ----

func (c *s2sIn) servedJID() string { return c.from }

func (c *s2sIn) describe(_ actor.Context, a *ActorInfo) {
	a.Remote = c.netConn.RemoteAddr().String()
	a.State = inStateNames[c.state]
	secure := c.secure
	a.TLS = &secure
	a.Attrs = map[string]string{"from": c.from, "to": c.local, "stanzas": strconv.FormatUint(c.stanzas, 10)}
	for p, mech := range c.authed {
		a.Attrs["authenticated:"+p.remote+"→"+p.local] = mech
		a.Mechanism = mech
	}
}
