package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/sm"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// The conn's part of XEP-0198 stream management: the session owns the counters and the queue (session_sm.go);
// the conn offers the feature, answers what comes before binding and, for <resume/>, finds the session through
// the user actor and becomes its new transport.

// Messages between the conn, the user actor and the session for stream management.
type (
	// rawOut asks the conn to write one nonza (an SM answer) in order with the stanzas.
	rawOut struct{ s string }
	// connFinished: the conn ends its stream on purpose (a clean close, a stream error); the session does not
	// wait for a resumption. conn tells which conn it was: after a resumption the old one's is stale.
	connFinished struct{ conn *actor.PID }
	// resumeRequest asks the user actor of bare, then the session whose SM id is previd, to resume on conn
	// (§5). Answered with resumeResult to conn.
	resumeRequest struct {
		bare   jid.JID
		previd string
		h      uint32
		conn   *actor.PID
		addr   string
		placed bool // from a conn's stand-in at the home (bindRequest.placed)
	}
	// resumeResult: session nil and raw a <failed/>, or the resumed session and raw its <resumed/>; after is what
	// the session sends again behind it (§4: the stanzas the client did not acknowledge, with their delay, then
	// <r/>), written by the conn with the answer in one write. If the conn has ended meanwhile they stay in the
	// session's queue, unacknowledged, as they are until the client acknowledges them anyway.
	resumeResult struct {
		full    jid.JID
		session *actor.PID
		raw     string
		after   []string
	}
)

// onSMBeforeBind answers SM elements on an authenticated stream that is not bound: <resume/> is what belongs
// here (§5); <enable/> must wait for the bind (§3: unexpected-request), and so must <r/> and <a/>.
func (c *conn) onSMBeforeBind(ctx actor.Context, el *xmlstream.Element) {
	if el.Name.Local != "resume" {
		c.send(ctx, sm.Failed(stanza.UnexpectedRequest, 0, false))
		return
	}
	n, err := el.Parse()
	if err != nil {
		c.finish(ctx, stream.NotWellFormed, "")
		return
	}
	r, err := sm.ParseResume(n)
	if err != nil {
		c.send(ctx, sm.Failed(stanza.BadRequest, 0, false))
		return
	}
	c.state = stateBinding
	c.resuming = true
	c.held = c.held[:0]
	ctx.Send(c.env.router, &resumeRequest{bare: c.user, previd: r.PrevID, h: r.H, conn: ctx.Self(),
		addr: c.remoteAddr()})
}

// onResumeResult completes a <resume/>: on success the stream is bound to the old session, which sends what the
// client did not acknowledge right behind this answer; on failure the stream is authenticated and may bind.
func (c *conn) onResumeResult(ctx actor.Context, m *resumeResult) {
	if c.state != stateBinding || !c.resuming {
		return // the stream ended meanwhile; a session that adopted us sees our end (it watches us)
	}
	if c.s2 != nil {
		c.sasl2ResumeResult(ctx, m) // inline in XEP-0388 (conn_sasl2.go)
		return
	}
	c.resuming = false
	held := c.held
	c.held = nil
	if m.session == nil {
		c.env.metrics.smResumptions.WithLabelValues("failed").Inc()
		c.state = stateAuthed
		c.send(ctx, m.raw)
		for _, el := range held {
			c.onElement(ctx, &elementIn{el: el})
		}
		return
	}
	c.env.metrics.smResumptions.WithLabelValues("resumed").Inc()
	c.out.hold() // <resumed/> and what the session sends again: one write
	defer c.out.release()
	c.bound(ctx, m.full, m.session, "session resumed", m.raw, held)
	c.sendFlight(ctx, m.after...)
}

// sendFlight writes xs, the parts of one response, in one write (writer.hold). The release is deferred: a panic
// in between still lets the stream end (the actor's Stopping writes its close behind them).
func (c *conn) sendFlight(ctx actor.Context, xs ...string) {
	c.out.hold()
	defer c.out.release()
	for _, x := range xs {
		c.send(ctx, x)
	}
}
