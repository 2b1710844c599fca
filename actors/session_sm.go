package actors

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/sm"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// XEP-0198 stream management in the session actor, which owns the counters and the queue of what the client has
// not acknowledged; the conn is only the transport, and a resumption gives the session another one. While no
// conn is attached (hibernating), the resource stays bound and available, and what is routed to it waits in the
// queue. When the resumption window closes, or the stream ends without one, every message the client did not
// acknowledge goes back to the user actor, which delivers it again by RFC 6121 §8.5 (another resource, or offline
// storage), marked with an XEP-0203 delay: never lost, and duplicated only where XEP-0198 allows (the client may
// have received what it did not acknowledge).

// Messages of the session to itself and to its user actor.
type (
	// connLost: the conn ended; handled after every message the conn sent before it ended (Terminated, a system
	// message, overtakes them), so a connFinished among them is seen first.
	connLost struct{ conn *actor.PID }
	// smTick: request_interval has passed since the first unacknowledged stanza.
	smTick struct{}
	// smExpire: the resumption window of hibernation gen has closed.
	smExpire struct{ gen uint64 }
	// smShutdown: the server is stopping; a hibernating session ends now.
	smShutdown struct{}
	// stanzaHandled: the recipient has handled (delivered, stored offline, archived, bounced) the message the
	// client sent as stanza seq (router.go Route.confirm).
	stanzaHandled struct{ seq uint32 }
	// smAckDue: an <r/> has waited ackWait for confirmations; answer with what is confirmed.
	smAckDue struct{ gen uint64 }
	// smConnection tells the user actor that the session lost its connection and hibernates (connected false), or
	// was resumed on a new one.
	smConnection struct {
		resource  string
		connected bool
		unacked   []*stanza.Routed // the messages the client has not acknowledged, when it hibernates
	}
	// smEnabled tells the user actor the session's resumption id.
	smEnabled struct {
		resource, id string
	}
)

// smQueued is one stanza sent and not acknowledged, with when it was first sent (the XEP-0203 stamp if it has to
// be sent again).
type smQueued struct {
	st *stanza.Routed
	at time.Time
}

// smState is one session's stream management. The counters are modulo 2^32 (protocol/sm).
type smState struct {
	id  string        // resumption id, "" when the session cannot be resumed
	max time.Duration // the resumption window
	in  uint32        // stanzas received from the client
	// unconfirmed: messages among the last ones received that their recipients have not yet confirmed, in the
	// order received. The h we report stops short of the first (handled).
	unconfirmed []unconfirmed
	// owed: <r/>s came when stanzas before them were unconfirmed; the <a/>s wait until they are (or ackWait),
	// for every stanza received up to owedAt. ackGen makes a stale smAckDue harmless.
	owed   int
	owedAt uint32
	ackGen uint64
	// resuming: a resumption waiting for the confirmations, so that the h of <resumed/> is exact and the client
	// does not send again what was handled.
	resuming *resumeRequest
	// sent stanzas to the client; acked is the client's last h; queue holds the sent-acked unacknowledged ones.
	sent, acked uint32
	queue       []smQueued
	asked       bool // an <r/> is outstanding
	sinceAsk    int  // stanzas queued since the last <r/>
	ticking     bool // an smTick is scheduled
	hibernating bool
	finished    bool   // the conn ended on purpose: no resumption
	gen         uint64 // hibernation generation (a stale smExpire is ignored)
}

// unconfirmed is one routed message whose recipient has not yet confirmed it (stanzaHandled).
type unconfirmed struct {
	seq  uint32
	done bool
	at   time.Time
}

// Durability (ARCHITECTURE.md): an <a h/> covers a message only once the recipient's user actor has handled it,
// written to the offline queue with its group commit or archived included, so what the client sees acknowledged
// survives kill -9. The confirmation is normally back within a millisecond; an <r/> waits for it at most
// ackWait, then gets what is confirmed (a lower h is always allowed: the client keeps the rest and sends it
// again if the session is not resumed). A confirmation missing for confirmGiveUp (the recipient's actor failed)
// is given up, so that h can move on.
const (
	ackWait       = 2 * time.Second
	confirmGiveUp = time.Minute
)

// routeMessage routes a message the client sent; with stream management, its h waits for the recipient.
func (s *session) routeMessage(ctx actor.Context, st *stanza.Routed) {
	if s.sm == nil {
		ctx.Send(s.env.router, &Route{St: st})
		return
	}
	s.sm.unconfirmed = append(s.sm.unconfirmed, unconfirmed{seq: s.sm.in, at: st.Accepted})
	ctx.Send(s.env.router, &Route{St: st, confirm: ctx.Self(), seq: s.sm.in})
}

// handled is the h to report: every stanza received before the first unconfirmed message.
func (m *smState) handled() uint32 {
	if len(m.unconfirmed) == 0 {
		return m.in
	}
	return m.unconfirmed[0].seq - 1
}

// handledAt applies a confirmation, and answers an owed <r/> once it is covered.
func (s *session) handledAt(seq uint32) {
	if s.sm == nil {
		return
	}
	u := s.sm.unconfirmed
	for i := range u {
		if u[i].seq == seq {
			u[i].done = true
			break
		}
	}
	s.sm.dropConfirmed()
	if s.sm.owed > 0 && s.sm.covers() {
		s.answerOwed()
	}
	if len(s.sm.unconfirmed) == 0 {
		s.resumeWaiting(s.ctx)
	}
}

// answerOwed acknowledges every owed <r/> with what is handled.
func (s *session) answerOwed() {
	a := sm.Ack(s.sm.handled())
	for ; s.sm.owed > 0; s.sm.owed-- {
		s.raw(a)
	}
}

// dropConfirmed removes the confirmed messages at the head of unconfirmed, and those given up on.
func (m *smState) dropConfirmed() {
	n := 0
	for n < len(m.unconfirmed) && (m.unconfirmed[n].done || time.Since(m.unconfirmed[n].at) > confirmGiveUp) {
		n++
	}
	if n > 0 {
		m.unconfirmed = append(m.unconfirmed[:0], m.unconfirmed[n:]...)
	}
}

// covers: every stanza received up to the owed <r/> is handled.
func (m *smState) covers() bool {
	return len(m.unconfirmed) == 0 || int32(m.unconfirmed[0].seq-uint32(m.owedAt)) > 0
}

// request answers the client's <r/> (§4), now if everything before it is handled.
func (s *session) request(ctx actor.Context) {
	s.sm.dropConfirmed()
	s.sm.owedAt = s.sm.in
	s.sm.owed++
	if s.sm.covers() {
		s.answerOwed()
		return
	}
	if s.sm.owed == 1 {
		s.waitConfirmations(ctx)
	}
}

func (s *session) waitConfirmations(ctx actor.Context) {
	s.sm.ackGen++
	scheduler.NewTimerScheduler(ctx).SendOnce(ackWait, ctx.Self(), &smAckDue{gen: s.sm.ackGen})
}

// ackDue: the confirmations did not come in time; answer with what is confirmed.
func (s *session) ackDue(m *smAckDue) {
	if s.sm == nil || m.gen != s.sm.ackGen {
		return
	}
	s.sm.dropConfirmed()
	s.log.Warn().Int("unconfirmed", len(s.sm.unconfirmed)).Msg("recipients are slow to confirm messages; acknowledging what is confirmed")
	s.answerOwed()
	s.resumeWaiting(s.ctx)
}

// smNonza handles an SM element from the bound client (§3 enable, §4 r and a).
func (s *session) smNonza(ctx actor.Context, el *xmlstream.Element) {
	n, err := el.Parse()
	if err != nil {
		s.closeConn(&closeStream{condition: stream.NotWellFormed})
		return
	}
	cfg := &s.env.cfg.SM
	switch {
	case el.Name.Local == "enable":
		e, err := sm.ParseEnable(n)
		if err != nil && s.sm == nil && cfg.Enabled {
			s.raw(sm.Failed(stanza.BadRequest, 0, false))
			return
		}
		s.raw(s.smEnable(ctx, e))
	case s.sm == nil:
		s.raw(sm.Failed(stanza.UnexpectedRequest, 0, false))
	case sm.IsRequest(n):
		s.request(ctx)
	case el.Name.Local == "a":
		h, err := sm.ParseAck(n)
		if err != nil {
			s.closeConn(&closeStream{condition: stream.InvalidXML, text: "<a/> needs an unsigned 32-bit h"})
			return
		}
		if !s.smAck(h) {
			// §4: acknowledging more than was sent is a stream error with <handled-count-too-high/>.
			s.closeConn(&closeStream{condition: stream.UndefinedCondition, text: "h is higher than the number of stanzas sent",
				app: sm.TooHigh(h, s.sm.sent)})
		}
	default: // <resume/> on a bound stream, <enabled/>, anything else
		s.raw(sm.Failed(stanza.UnexpectedRequest, 0, false))
	}
}

// smEnable enables stream management (§3) and returns the answer: <enabled/>, or <failed/> when it is on
// already. Called for <enable/> on the bound stream and for the one inline in XEP-0386 Bind 2.
func (s *session) smEnable(ctx actor.Context, e sm.Enable) string {
	cfg := &s.env.cfg.SM
	if s.sm != nil || !cfg.Enabled {
		return sm.Failed(stanza.UnexpectedRequest, 0, false) // §3: enabled once per session
	}
	s.sm = &smState{}
	if e.Resume && cfg.ResumeTimeout.Duration > 0 {
		s.sm.id = newSMID()
		s.sm.max = cfg.ResumeTimeout.Duration
		if asked := time.Duration(e.Max) * time.Second; e.Max > 0 && asked < s.sm.max {
			s.sm.max = asked // §3: the server's max may be lower than the client's preference, never higher
		}
		ctx.Request(ctx.Parent(), &smEnabled{resource: s.full.Resource(), id: s.sm.id})
	}
	s.log.Debug().Bool("resume", s.sm.id != "").Msg("stream management enabled")
	return sm.Enabled(s.sm.id, s.sm.id != "", int(s.sm.max/time.Second))
}

// smAck applies the client's h; false if it acknowledges more than was sent.
func (s *session) smAck(h uint32) bool {
	n, ok := sm.Newly(s.sm.acked, h, s.sm.sent)
	if !ok {
		return false
	}
	clear(s.sm.queue[:n])
	s.sm.queue = s.sm.queue[n:]
	s.sm.acked = h
	s.sm.asked = false
	return true
}

// raw writes one nonza to the client.
func (s *session) raw(x string) {
	if s.connGone {
		return
	}
	if s.w != nil {
		if s.w.offer(x) {
			return
		}
		s.w = nil
	}
	s.viaConn = true
	s.ctx.Send(s.conn, &rawOut{s: x})
}

// out writes a stanza to the client: with stream management, through the queue, and only queued while
// hibernating; without, back to the user actor if the conn is gone.
func (s *session) out(st *stanza.Routed) {
	if s.gated {
		s.gatedOut = append(s.gatedOut, st) // session_bind2.go: not before the <success/> that binds us
		return
	}
	ctx := s.ctx
	if s.sm == nil {
		if s.connGone {
			if st.Head.Name == "message" {
				s.returnUndelivered(ctx, []*stanza.Routed{st})
			}
			return
		}
		s.toConn(st)
		return
	}
	s.sm.queue = append(s.sm.queue, smQueued{st: st, at: time.Now()})
	s.sm.sent++
	if len(s.sm.queue) > s.env.cfg.SM.MaxUnacked {
		s.env.metrics.hit(limitSMUnacked)
		s.log.Warn().Int("unacked", len(s.sm.queue)).Msg("the client does not acknowledge what it is sent; ending the session")
		if s.connGone {
			s.smEnd(ctx)
		} else {
			s.sm.finished = true
			s.closeConn(&closeStream{condition: stream.ResourceConstraint, text: "too many unacknowledged stanzas"})
		}
		return
	}
	if s.connGone {
		return // hibernating: kept for the resumption
	}
	s.toConn(st)
	s.sm.sinceAsk++
	if !s.sm.asked && s.sm.sinceAsk >= s.env.cfg.SM.RequestEvery {
		s.askAck()
	} else if !s.sm.ticking {
		s.sm.ticking = true
		scheduler.NewTimerScheduler(ctx).SendOnce(s.env.cfg.SM.RequestInterval.Duration, ctx.Self(), &smTick{})
	}
}

func (s *session) askAck() {
	s.sm.asked = true
	s.sm.sinceAsk = 0
	s.raw(sm.Request)
}

func (s *session) smTick() {
	if s.sm == nil {
		return
	}
	s.sm.ticking = false
	if !s.connGone && !s.sm.asked && len(s.sm.queue) > 0 {
		s.askAck()
	}
}

// connLost decides what the end of the conn means: hibernation when the session can be resumed and the
// stream was not ended on purpose, the end of the session otherwise.
func (s *session) connLost(ctx actor.Context, m *connLost) {
	if s.sm == nil || !m.conn.Equal(s.conn) {
		return // resumed on another conn meanwhile, or already handled
	}
	if s.sm.id == "" || s.sm.finished {
		s.smEnd(ctx)
		return
	}
	s.sm.hibernating = true
	s.sm.gen++
	s.env.metrics.smHibernating.Inc()
	scheduler.NewTimerScheduler(ctx).SendOnce(s.sm.max, ctx.Self(), &smExpire{gen: s.sm.gen})
	s.log.Info().Dur("window", s.sm.max).Int("unacked", len(s.sm.queue)).Msg("connection lost; waiting for the client to resume")
	s.connectionChanged(false)
}

func (s *session) smExpire(ctx actor.Context, m *smExpire) {
	if s.sm != nil && s.sm.hibernating && m.gen == s.sm.gen {
		s.log.Info().Int("unacked", len(s.sm.queue)).Msg("resumption window closed")
		s.smEnd(ctx)
	}
}

// smEnd ends a managed session for good: the unacknowledged messages go back to the user actor (RFC 6121 §8.5),
// then the session is closed as any other whose conn is gone.
func (s *session) smEnd(ctx actor.Context) {
	if s.sm.hibernating {
		s.env.metrics.smHibernating.Dec()
	}
	if m := s.sm.resuming; m != nil {
		ctx.Send(m.conn, &resumeResult{raw: sm.Failed(stanza.ItemNotFound, 0, false)})
	}
	var back []*stanza.Routed
	domain := s.bare.Domain()
	for _, q := range s.sm.queue {
		if q.st.Head.Name == "message" {
			back = append(back, delayed(q, domain))
		}
	}
	s.sm = nil
	s.returnUndelivered(ctx, back)
	ctx.Send(ctx.Parent(), &sessionClosed{resource: s.full.Resource(), pid: ctx.Self()})
}

// delayed is q's stanza marked with when it was first sent (XEP-0198 §5 and RFC 6121 §8.5 redelivery: XEP-0203),
// unless it carries a delay already (an offline message).
func delayed(q smQueued, domain string) *stanza.Routed {
	if q.st.Head.Name != "message" || strings.Contains(q.st.Raw, "urn:xmpp:delay") {
		return q.st
	}
	raw := stanza.InsertChild(q.st.Raw, "message", stanza.Delay(domain, q.at.UTC().Format("2006-01-02T15:04:05.000Z"), "Resent"))
	out := stanza.New(q.st.Head, q.st.From, q.st.To, raw)
	out.Accepted = q.st.Accepted
	return out
}

// resume adopts a new conn (§5): the client's h acknowledges what it got, the rest is sent again behind
// <resumed/>. A session still attached to a conn loses that one (a second resumption ends the older stream).
// While messages the client sent are unconfirmed, the answer waits for them (at most ackWait), so that the h of
// <resumed/> is exact and the client does not send again what was handled.
func (s *session) resume(ctx actor.Context, m *resumeRequest) {
	if s.sm == nil || s.sm.id == "" || s.sm.id != m.previd || s.sm.finished {
		ctx.Send(m.conn, &resumeResult{raw: sm.Failed(stanza.ItemNotFound, 0, false)})
		return
	}
	if s.sm.dropConfirmed(); len(s.sm.unconfirmed) == 0 {
		s.adopt(ctx, m)
		return
	}
	if s.sm.resuming != nil {
		// A newer resumption came while the older one waited.
		ctx.Send(s.sm.resuming.conn, &resumeResult{raw: sm.Failed(stanza.Conflict, 0, false)})
	} else {
		s.waitConfirmations(ctx)
	}
	s.sm.resuming = m
}

// resumeWaiting adopts the conn of the resumption that waited for confirmations.
func (s *session) resumeWaiting(ctx actor.Context) {
	if m := s.sm.resuming; m != nil {
		s.sm.resuming = nil
		s.adopt(ctx, m)
	}
}

func (s *session) adopt(ctx actor.Context, m *resumeRequest) {
	if !s.smAck(m.h) {
		ctx.Send(m.conn, &resumeResult{raw: sm.Failed(stanza.UnexpectedRequest, 0, false)})
		return
	}
	if !s.connGone {
		ctx.Unwatch(s.conn)
		ctx.Send(s.conn, &closeStream{condition: stream.Conflict, text: "the session was resumed on another connection"})
	}
	if s.sm.hibernating {
		s.sm.hibernating = false
		s.env.metrics.smHibernating.Dec()
	}
	s.sm.gen++ // the pending smExpire, if any, is stale now
	s.conn, s.addr, s.connGone = m.conn, m.addr, false
	ctx.Watch(m.conn)
	domain := s.bare.Domain()
	res := &resumeResult{full: s.full, session: ctx.Self(), raw: sm.Resumed(m.previd, s.sm.handled())}
	s.sm.asked, s.sm.sinceAsk = false, 0
	if m.placed {
		// A conn on another node, through its stand-in (cluster_proxy.go), which relays the answer alone: what is
		// sent again follows it as deliveries.
		ctx.Send(m.conn, res)
		for _, q := range s.sm.queue {
			ctx.Send(m.conn, &Deliver{St: delayed(q, domain)})
		}
		if len(s.sm.queue) > 0 {
			s.askAck()
		}
	} else {
		// What the client did not acknowledge goes again right behind <resumed/>, in the same write, and an <r/>
		// after it, as askAck sends it.
		res.after = make([]string, 0, len(s.sm.queue)+1)
		for _, q := range s.sm.queue {
			res.after = append(res.after, delayed(q, domain).Raw)
		}
		if len(s.sm.queue) > 0 {
			s.sm.asked = true
			res.after = append(res.after, sm.Request)
			s.viaConn = true // as askAck's raw sets it
		}
		ctx.Send(m.conn, res)
	}
	// The conn logs the resumption at info with the JID (conn.bound); this line adds what was sent again, which
	// is news only when something was: a log line is a write(2) to the log, per resumption.
	ev := s.log.Debug()
	if len(s.sm.queue) > 0 {
		ev = s.log.Info()
	}
	ev.Int("resent", len(s.sm.queue)).Msg("session resumed")
	s.connectionChanged(true)
}

func (s *session) connectionChanged(resumed bool) {
	m := &smConnection{resource: s.full.Resource(), connected: resumed}
	if !resumed {
		for _, q := range s.sm.queue {
			if q.st.Head.Name == "message" {
				m.unacked = append(m.unacked, q.st)
			}
		}
	}
	s.ctx.Request(s.ctx.Parent(), m) // Request: the user actor checks the sender
	for _, p := range s.parts {
		if r, ok := p.(feature.Resumable); ok {
			r.ConnectionChanged(resumed)
		}
	}
}

// resume (user actor): the session with that resumption id, if the user has one.
func (r *userActor) resume(ctx actor.Context, m *resumeRequest) {
	for _, rs := range r.resources {
		if rs.smID != "" && rs.smID == m.previd {
			ctx.Send(rs.pid, m)
			return
		}
	}
	ctx.Send(m.conn, &resumeResult{raw: sm.Failed(stanza.ItemNotFound, 0, false)})
}

func newSMID() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
