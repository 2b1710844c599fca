package actors

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// XEP-0114 external components. The components actor owns the listener (component_listen) and knows which
// component domain has an authenticated connection; the router hands it every Route to a component domain,
// which it passes to that connection (or bounces with <service-unavailable/> while none is connected).
//
//	components            listener; component domain → connection actor
//	└── <n>               one per accepted connection (reader + writer): XEP-0114 §3 handshake, then stanzas

// NSComponent is the content namespace of XEP-0114 streams.
const NSComponent = "jabber:component:accept"

type (
	// componentUp: a connection completed the handshake for domain; answered with componentVerdict.
	componentUp struct {
		domain string
	}
	componentVerdict struct{ ok bool }
)

type componentsActor struct {
	env    *env
	sock   net.Listener
	up     map[string]*actor.PID // domain → authenticated connection
	nextID uint64
	// shutdown: like s2sActor's.
	shutdown bool
	waiter   *actor.PID
}

// isComponent: domain is a configured external component's.
func (e *env) isComponent(domain string) bool { return e.cfg.Component(domain) != nil }

func (e *env) startComponents(root *actor.RootContext) error {
	for _, c := range e.cfg.Components {
		if e.isService(c.Domain) {
			return fmt.Errorf("component %s: the domain is a service's", c.Domain)
		}
	}
	sock, err := net.Listen("tcp", e.cfg.ComponentListen)
	if err != nil {
		return fmt.Errorf("component_listen %s: %w", e.cfg.ComponentListen, err)
	}
	props := actor.PropsFromProducer(func() actor.Actor {
		return &componentsActor{env: e, sock: sock, up: map[string]*actor.PID{}}
	}, actor.WithSupervisor(stopStrategy), withInspection(e, kindComponents))
	if e.components, err = root.SpawnNamed(props, "components"); err != nil {
		_ = sock.Close()
		return err
	}
	e.log.Info().Str("listen", sock.Addr().String()).Msg("component listener")
	return nil
}

func (a *componentsActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		go acceptLoop(ctx.ActorSystem().Root, ctx.Self(), a.sock, false)
	case *accepted:
		if a.shutdown {
			_ = m.conn.Close()
			return
		}
		a.nextID++
		ctx.SpawnNamed(newComponentConnProps(a.env, a.nextID, m.conn), strconv.FormatUint(a.nextID, 10))
	case *acceptEnded:
		if !a.shutdown {
			a.env.log.Error().Err(m.err).Msg("component listener failed")
		}
	case *componentUp:
		if _, taken := a.up[m.domain]; taken || a.shutdown {
			ctx.Respond(&componentVerdict{ok: false})
			return
		}
		a.up[m.domain] = ctx.Sender()
		ctx.Watch(ctx.Sender())
		ctx.Respond(&componentVerdict{ok: true})
	case *Route:
		m.confirmed(ctx)
		if pid := a.up[m.St.To.Domain()]; pid != nil {
			ctx.Send(pid, &Deliver{St: m.St})
			return
		}
		if st := m.St; st.Head.Type != "error" && st.Head.Name != "presence" && !st.From.IsZero() {
			ctx.Send(a.env.router, &Route{St: st.Bounce(stanza.NewError(stanza.ServiceUnavailable))})
		}
	case *actor.Terminated:
		for d, pid := range a.up {
			if pid.Equal(m.Who) {
				delete(a.up, d)
			}
		}
		a.maybeClosed(ctx)
	case *s2sShutdown:
		a.shutdown = true
		a.waiter = ctx.Sender()
		_ = a.sock.Close()
		for _, kid := range slices.Clone(ctx.Children()) {
			ctx.Send(kid, &closeStream{condition: stream.SystemShutdown})
		}
		a.maybeClosed(ctx)
	}
}

func (a *componentsActor) maybeClosed(ctx actor.Context) {
	if a.shutdown && a.waiter != nil && len(ctx.Children()) == 0 {
		ctx.Send(a.waiter, &s2sClosed{})
		a.waiter = nil
	}
}

func (a *componentsActor) servedJID() string { return "" }

func (a *componentsActor) describe(_ actor.Context, i *ActorInfo) {
	i.Attrs = map[string]string{"listen": a.sock.Addr().String(), "connected": strconv.Itoa(len(a.up))}
}

// ---- one component connection ----

type componentConn struct {
	env      *env
	id       uint64
	netConn  net.Conn
	log      zerolog.Logger
	out      *writer
	limit    *atomic.Int64
	streamID string
	domain   string
	authed   bool
	closed   bool
	cancelTO scheduler.CancelFunc
	stanzas  uint64
}

func newComponentConnProps(e *env, id uint64, c net.Conn) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &componentConn{env: e, id: id, netConn: c}
	}, actor.WithSupervisor(stopStrategy), withInspection(e, kindComponent))
}

func (c *componentConn) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		cfg := &c.env.cfg
		c.log = c.env.log.With().Str("component_conn", strconv.FormatUint(c.id, 10)).Logger()
		c.out = newWriter(c.netConn, cfg.C2S.WriteQueueBytes, writeTimeout, func() {})
		c.out.pool = c.env.workers
		c.limit = new(atomic.Int64)
		c.limit.Store(int64(cfg.C2S.PreAuthStanzaSize))
		r := &reader{limit: c.limit, root: ctx.ActorSystem().Root, self: ctx.Self(), conn: c.netConn, out: c.out,
			certs: c.env.certs, deadline: cfg.C2S.NegotiationTimeout.Duration, idle: cfg.C2S.IdleTimeout.Duration}
		r.dec = xmlstream.NewDecoder(c.netConn, cfg.C2S.PreAuthStanzaSize)
		go r.run()
		c.cancelTO = scheduler.NewTimerScheduler(ctx).SendOnce(cfg.C2S.NegotiationTimeout.Duration, ctx.Self(), &s2sNegotiationTimeout{})
	case *streamHeaderIn:
		c.onHeader(ctx, m.hdr)
	case *elementIn:
		c.onElement(ctx, m.el)
	case *startTLSIn:
		close(m.sw.abort) // XEP-0114 streams have no TLS of their own: use a loopback listener
		c.finish(ctx, stream.UnsupportedFeature, "")
	case *componentVerdict:
		if !m.ok {
			c.finish(ctx, stream.Conflict, "another connection serves this component")
			return
		}
		c.authed = true
		c.limit.Store(int64(c.env.cfg.C2S.MaxStanzaSize))
		c.out.write("<handshake/>")
		c.log.Info().Str("component", c.domain).Msg("component connected")
	case *Deliver:
		if !c.closed {
			if !c.out.write(stripRootNS(m.St.Raw)) {
				c.finish(ctx, stream.PolicyViolation, "write queue full")
			}
		}
	case *streamEndIn:
		c.finish(ctx, "", "")
	case *readEnded:
		var xe *xmlstream.Error
		if errors.As(m.err, &xe) {
			c.finish(ctx, stream.Condition(xe.Condition), xe.Msg)
			return
		}
		if !errors.Is(m.err, io.EOF) {
			c.log.Debug().Err(m.err).Msg("component read ended")
		}
		c.closed = true
		c.out.abort()
		ctx.Poison(ctx.Self())
	case *s2sNegotiationTimeout:
		if !c.authed {
			c.finish(ctx, stream.ConnectionTimeout, "")
		}
	case *closeStream:
		c.finish(ctx, m.condition, m.text)
	case *actor.Stopping:
		if c.cancelTO != nil {
			c.cancelTO()
		}
		if !c.closed {
			c.writeClose(stream.InternalServerError, "")
		}
	}
}

// onHeader: XEP-0114 §3: the stream is addressed to the component's domain, in jabber:component:accept.
func (c *componentConn) onHeader(ctx actor.Context, h *xmlstream.Header) {
	if c.streamID != "" {
		c.finish(ctx, stream.BadFormat, "unexpected stream header")
		return
	}
	c.streamID = newStreamID()
	to, err := jid.Parse(h.To)
	if err != nil || !c.env.isComponent(to.Domain()) {
		c.out.write(componentHeader(c.streamID, c.env.cfg.Domains[0])) // RFC 6120 §4.9.1.2: our header first
	} else {
		c.out.write(componentHeader(c.streamID, to.Domain()))
	}
	switch {
	case h.StreamNS != stream.NS || h.Local != "stream":
		c.finish(ctx, stream.InvalidNamespace, "")
	case h.DefaultNS != NSComponent:
		c.finish(ctx, stream.InvalidNamespace, "the content namespace must be "+NSComponent)
	case err != nil || to.Local() != "" || to.Resource() != "" || !c.env.isComponent(to.Domain()):
		c.finish(ctx, stream.HostUnknown, "")
	default:
		c.domain = to.Domain()
	}
}

func componentHeader(id, from string) string {
	b := []byte("<?xml version='1.0'?><stream:stream xmlns='" + NSComponent + "' xmlns:stream='" + stream.NS + "' id='")
	b = xmlstream.AppendEscapedAttr(b, id)
	b = append(b, "' from='"...)
	b = xmlstream.AppendEscapedAttr(b, from)
	return string(append(b, "'>"...))
}

// ComponentHandshake is XEP-0114 §3's handshake value: hex SHA-1 of the stream id followed by the secret.
func ComponentHandshake(streamID, secret string) string {
	h := sha1.Sum([]byte(streamID + secret))
	return hex.EncodeToString(h[:])
}

func (c *componentConn) onElement(ctx actor.Context, el *xmlstream.Element) {
	if el.Name.Space != NSComponent {
		c.finish(ctx, stream.UnsupportedStanzaType, "")
		return
	}
	if !c.authed {
		if el.Name.Local != "handshake" || c.domain == "" {
			c.finish(ctx, stream.NotAuthorized, "")
			return
		}
		n, err := el.Parse()
		if err != nil {
			c.finish(ctx, stream.NotWellFormed, "")
			return
		}
		want := ComponentHandshake(c.streamID, c.env.cfg.Component(c.domain).Secret)
		if subtle.ConstantTimeCompare([]byte(strings.ToLower(strings.TrimSpace(n.TextContent()))), []byte(want)) != 1 {
			c.log.Info().Str("component", c.domain).Msg("component handshake failed")
			c.finish(ctx, stream.NotAuthorized, "")
			return
		}
		ctx.Request(ctx.Parent(), &componentUp{domain: c.domain})
		return
	}
	switch el.Name.Local {
	case "message", "presence", "iq":
	default:
		c.finish(ctx, stream.UnsupportedStanzaType, "")
		return
	}
	// XEP-0114 §3: the component sends from JIDs at its own domain; 'to' is required.
	from, err := jid.Parse(el.From)
	if err != nil || from.Domain() != c.domain {
		c.finish(ctx, stream.InvalidFrom, "")
		return
	}
	to, err := jid.Parse(el.To)
	if err != nil || el.To == "" {
		c.finish(ctx, stream.ImproperAddressing, "")
		return
	}
	if !c.env.routable(to.Domain()) {
		if el.Type != "error" {
			e := stanza.NewError(stanza.RemoteServerNotFound)
			c.out.write(stanza.ErrorReply(stanza.Head{Name: el.Name.Local, ID: el.ID, Type: el.Type, From: el.From, To: el.To}, el.To, e))
		}
		return
	}
	raw := stripRootNS(el.Raw)
	if el.From != from.String() {
		raw = xmlstream.SetHeadAttr(raw, "from", from.String())
	}
	if el.To != to.String() {
		raw = xmlstream.SetHeadAttr(raw, "to", to.String())
	}
	c.stanzas++
	st := stanza.New(stanza.Head{Name: el.Name.Local, ID: el.ID, Type: el.Type, From: from.String(), To: to.String()}, from, to, raw)
	st.Accepted = time.Now()
	ctx.Send(c.env.router, &Route{St: st})
}

func (c *componentConn) finish(ctx actor.Context, cond stream.Condition, text string) {
	if c.closed {
		return
	}
	if cond != "" {
		c.log.Info().Str("error", string(cond)).Str("text", text).Msg("component stream closed")
	}
	c.writeClose(cond, text)
	ctx.Poison(ctx.Self())
}

func (c *componentConn) writeClose(cond stream.Condition, text string) {
	c.closed = true
	if c.streamID == "" {
		c.streamID = newStreamID()
		c.out.write(componentHeader(c.streamID, c.env.cfg.Domains[0]))
	}
	c.out.endStream(c.env.metrics, cond, text, "")
}

func (c *componentConn) servedJID() string { return c.domain }

func (c *componentConn) describe(_ actor.Context, a *ActorInfo) {
	a.Remote = c.netConn.RemoteAddr().String()
	a.State = "handshake"
	if c.authed {
		a.State = "authenticated"
	}
	a.Attrs = map[string]string{"component": c.domain, "stanzas": strconv.FormatUint(c.stanzas, 10)}
}
