package actors

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/sasl"
	"github.com/xmppd/xmppd/protocol/sasl2"
	"github.com/xmppd/xmppd/protocol/sm"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// XEP-0388 extensible SASL in the conn, with what rides inline: a XEP-0198 <resume/> (through the router and the
// user actor to the hibernating session, as conn_sm.go does), a XEP-0386 Bind 2 request (a bindRequest that
// carries the inline features, which the new session applies before anything else and answers with bind2Done),
// and XEP-0484 FAST (conn_fast.go). The mechanisms, failure counting and delays are conn_sasl.go's: the two
// profiles differ only in the elements on the wire and in what follows success. After <success/> there is no
// stream restart (XEP-0388 §2.5.1): the stream features of the authenticated (or bound) stream follow at once.

// sasl2Conn is one XEP-0388 exchange, from <authenticate/> until <success/> or <failure/> is written.
type sasl2Conn struct {
	req sasl2.Authenticate
	// additional is the mechanism's success data (SCRAM's server-final), nil for none.
	additional []byte
	// extra collects the inline results that go into <success/> (<token/>, a failed resumption's <failed/>).
	extra strings.Builder
	// fastUsed is the FAST token this authentication used, if any (conn_fast.go).
	fastUsed *storage.FastToken
	// Bind 2 in flight: the bindRequest's answer (gotResult) and the new session's bind2Done (bound) may arrive
	// in either order; <success/> is written once both are in.
	binding   bool
	gotResult bool
	gotBound  bool
	full      jid.JID
	session   *actor.PID
	bound     string
	// userBound is the user actor's part of <bound/> (the archive metadata), from bindResult.
	userBound string
}

// bind2Done is the new session's answer to the inline features of a Bind 2 request: what goes into <bound/>.
// bind2Go tells the session that <success/> is written: what it has for its client may follow (session_bind2.go).
type (
	bind2Done struct{ bound string }
	bind2Go   struct{}
)

// bind2Setup is what a bindRequest carries for the new session to apply before it handles anything else (XEP-0386
// §2.2): the inline elements the features claim, and an XEP-0198 <enable/>.
type bind2Setup struct {
	els []*xmlstream.Node
	sm  *sm.Enable
}

// sasl2Feature is the <authentication/> stream feature with Bind 2, inline SM and FAST; "" when SASL2 is off or
// no mechanism is offered (XEP-0388 §2.1: not offered without one).
func (c *conn) sasl2Feature() string {
	cfg := &c.env.cfg
	mechs := c.offeredMechanisms()
	if !cfg.SASL2.Enabled || len(mechs) == 0 {
		return ""
	}
	var in strings.Builder
	vars := slices.Clone(c.env.reg.bind2Vars)
	if cfg.SM.Enabled {
		vars = append(vars, sm.NS)
	}
	in.WriteString(sasl2.BindFeature(vars))
	if cfg.SM.Enabled {
		in.WriteString(sm.Feature) // XEP-0198 resumption inline in <authenticate/>
	}
	if fm := c.fastMechanisms(); len(fm) > 0 {
		in.WriteString(sasl2.FastFeature(fm))
	}
	return sasl2.Feature(mechs, in.String())
}

// onSASL2 handles a XEP-0388 element before authentication.
func (c *conn) onSASL2(ctx actor.Context, el *xmlstream.Element) {
	if !c.secure && c.env.cfg.C2S.RequireEncryption {
		c.s2 = &sasl2Conn{}
		c.saslFailure(ctx, "encryption-required", "")
		return
	}
	n, err := el.Parse()
	if err != nil {
		c.finish(ctx, stream.NotWellFormed, "")
		return
	}
	switch el.Name.Local {
	case "authenticate":
		if c.scram != nil || c.s2 != nil {
			c.s2 = &sasl2Conn{}
			c.saslFailure(ctx, "malformed-request", "an exchange is already in progress")
			return
		}
		a, err := sasl2.ParseAuthenticate(n)
		c.s2 = &sasl2Conn{req: a}
		if err != nil {
			c.mech = sasl.Mechanism{Name: "unknown"}
			c.saslFailure(ctx, saslCondition(err, "malformed-request"), "")
			return
		}
		if ht, ok := sasl.LookupHT(a.Mechanism); ok && contains(c.fastMechanisms(), a.Mechanism) {
			c.fastAuth(ctx, ht)
			return
		}
		c.saslStart(ctx, a.Mechanism, a.Initial)
	case "response":
		if c.s2 == nil || c.scram == nil {
			c.s2 = &sasl2Conn{}
			c.saslFailure(ctx, "malformed-request", "no exchange in progress")
			return
		}
		data, err := sasl2.ParseResponse(n)
		if err != nil {
			c.saslFailure(ctx, saslCondition(err, "malformed-request"), "")
			return
		}
		c.saslResponse(ctx, data)
	case "abort":
		if c.s2 == nil {
			c.s2 = &sasl2Conn{}
		}
		c.saslFailure(ctx, "aborted", "")
	default:
		c.s2 = &sasl2Conn{}
		c.saslFailure(ctx, "malformed-request", "")
	}
}

// sasl2Failure ends the exchange with <failure/> (XEP-0388 §2.5.2); the stream stays as it was.
func (c *conn) sasl2Failure(ctx actor.Context, condition, text string) {
	c.s2 = nil
	c.scram = nil
	c.pendUser = jid.JID{}
	c.send(ctx, sasl2.Failure(condition, text))
}

// sasl2Authenticated runs after the credentials were accepted (authSuccess): a FAST token if one is asked for or
// due, then the inline resumption, then the bind, and <success/> once they are done.
func (c *conn) sasl2Authenticated(ctx actor.Context, additional []byte) {
	s := c.s2
	s.additional = additional
	c.state = stateAuthed
	c.fastIssue(ctx)
	if s.req.Resume != nil && c.env.cfg.SM.Enabled {
		// XEP-0386 §2.2 note: the resumption first; only if it fails does the bind happen.
		c.state = stateBinding
		c.resuming = true
		ctx.Send(c.env.router, &resumeRequest{bare: c.user, previd: s.req.Resume.PrevID, h: s.req.Resume.H,
			conn: ctx.Self(), addr: c.netConn.RemoteAddr().String()})
		return
	}
	c.sasl2Bind(ctx)
}

// sasl2Bind binds a resource for the Bind 2 request, or completes an authentication without one.
func (c *conn) sasl2Bind(ctx actor.Context) {
	s := c.s2
	if s.req.Bind == nil {
		c.sasl2Unbound(ctx)
		return
	}
	full := c.bind2Resource(s.req.Bind.Tag)
	setup := &bind2Setup{}
	for _, el := range s.req.Bind.Inline {
		if _, ok := c.env.reg.bind2[el.Name]; ok {
			setup.els = append(setup.els, el)
		}
	}
	if c.env.cfg.SM.Enabled {
		setup.sm = s.req.Bind.SM
	}
	c.state = stateBinding
	s.binding = true
	ctx.Request(c.env.router, &bindRequest{full: full, conn: ctx.Self(), addr: c.netConn.RemoteAddr().String(), inline: setup})
}

// bind2Resource is the XEP-0386 §2.3 resource: the client's tag, '/', a part of the server's. With a user-agent id
// the server's part is stable for that client and tag within this server process (an HMAC under the process
// secret, which does not reveal the id, as §2.3 requires), so a client that binds again replaces its older
// session (RFC 6120 §7.7.2.2: the newer one wins); without one it is random.
func (c *conn) bind2Resource(tag string) jid.JID {
	var gen string
	if id := c.s2.req.UserAgent.ID; id != "" {
		m := hmac.New(sha256.New, c.env.secret)
		m.Write([]byte("bind2\x00" + c.user.String() + "\x00" + id + "\x00" + tag))
		gen = base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:9])
	} else {
		var b [9]byte
		_, _ = rand.Read(b[:])
		gen = base64.RawURLEncoding.EncodeToString(b[:])
	}
	if full, err := c.user.WithResource(sasl2.Resource(tag, gen)); err == nil {
		return full
	}
	full, _ := c.user.WithResource(gen) // a tag that is no valid resourcepart is left out
	return full
}

// sasl2BindResult is the bindRequest's answer on a Bind 2 stream.
func (c *conn) sasl2BindResult(ctx actor.Context, m *bindResult) {
	s := c.s2
	if m.err != nil {
		// Authenticated but not bound (too many sessions): success with the bare JID; the client may bind later.
		c.log.Info().Str("error", string(m.err.Condition)).Msg("bind 2 failed")
		s.binding = false
		c.sasl2Unbound(ctx)
		return
	}
	s.gotResult, s.full, s.session, s.userBound = true, m.full, m.session, m.bound
	c.sasl2MaybeBound(ctx)
}

func (c *conn) onBind2Done(ctx actor.Context, m *bind2Done) {
	if c.s2 == nil || !c.s2.binding || c.state != stateBinding {
		return // the stream ended meanwhile; the session sees our end (it watches us)
	}
	c.s2.gotBound, c.s2.bound = true, m.bound
	c.sasl2MaybeBound(ctx)
}

func (c *conn) sasl2MaybeBound(ctx actor.Context) {
	s := c.s2
	if !s.gotResult || !s.gotBound {
		return
	}
	s.extra.WriteString(sasl2.Bound(s.userBound + s.bound))
	// <success/> is written before this message ends, so whatever the session sends on bind2Go comes after it.
	ctx.Send(s.session, &bind2Go{})
	c.sasl2Bound(ctx, s.full, s.session, "resource bound (XEP-0386)")
}

// sasl2ResumeResult is the answer to an inline <resume/>.
func (c *conn) sasl2ResumeResult(ctx actor.Context, m *resumeResult) {
	c.resuming = false
	s := c.s2
	if m.session == nil {
		// XEP-0386 §2.2 note: the XEP-0198 failure goes into <success/>, then the bind happens.
		c.env.metrics.smResumptions.WithLabelValues("failed").Inc()
		s.extra.WriteString(m.raw)
		c.state = stateAuthed
		c.sasl2Bind(ctx)
		return
	}
	c.env.metrics.smResumptions.WithLabelValues("resumed").Inc()
	s.extra.WriteString(m.raw)
	c.out.hold() // <success/>, the features and what the session sends again: one write
	defer c.out.release()
	c.sasl2Bound(ctx, m.full, m.session, "session resumed (XEP-0388 inline)")
	c.sendFlight(ctx, m.after...)
}

// sasl2Bound writes <success/> with the full JID and the inline results, then the features of a bound stream.
// What a resumed session sends again rides in its resumeResult and follows (sasl2ResumeResult); what a new
// session has for its client waits in the session until bind2Go.
func (c *conn) sasl2Bound(ctx actor.Context, full jid.JID, session *actor.PID, what string) {
	s := c.s2
	c.s2 = nil
	held := c.held
	c.held = nil
	var feats string
	if c.env.features != nil {
		feats = c.env.features.bound
	} else {
		feats = boundFeatures(c.env)
	}
	c.bound(ctx, full, session, what, sasl2.Success(s.additional, full.String(), s.extra.String())+feats, held)
}

// sasl2Unbound writes <success/> with the bare JID and the features of an authenticated stream (bind).
func (c *conn) sasl2Unbound(ctx actor.Context) {
	s := c.s2
	c.s2 = nil
	c.state = stateAuthed
	c.sendFlight(ctx, sasl2.Success(s.additional, c.user.String(), s.extra.String()), c.features()) // one write
	held := c.held
	c.held = nil
	for _, el := range held {
		c.onElement(ctx, &elementIn{el: el})
	}
}
