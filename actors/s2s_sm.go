package actors

import (
	"errors"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/xmppd/xmppd/protocol/sm"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// XEP-0198 stream management on server-to-server streams: nothing handed to a stream that breaks is lost.
//
// The receiving side (s2s_in.go) offers <sm xmlns='urn:xmpp:sm:3'/> in the features of the stream restarted after
// SASL EXTERNAL (§2: never before authentication; a dialback stream is authenticated within its only feature list,
// so it goes without), counts the stanzas it accepted (h) and answers <r/> with <a h/> (§4). Asked for resumption
// (<enable resume='true'/>, §3), it registers the session with the s2s actor, which keeps h of a broken stream
// for s2sSMRetention; a new stream of the same pair of domains resumes it with <resume previd h/> and learns in
// <resumed h/> exactly which stanzas arrived (§5).
//
// The initiating side (s2s_out.go, s2s_dial.go) enables SM when the peer offers it, asking for resumption; every
// stanza written stays in the link's unacked list until an <a h/> covers it (an <r/> every s2sSMAckEvery stanzas
// and at each tick while some wait). When the stream breaks, the unacked stanzas go back to the head of the
// queue, in order, and the next stream resumes the old session when it can: those the peer had handled are
// dropped, the rest are resent. Without resumption (the peer does not offer it, or has forgotten the session),
// all unacked stanzas are resent: §4 makes the sender responsible for a stanza until it is acknowledged, so a
// stanza the peer handled but had not acknowledged yet arrives twice rather than never.
//
// The parent s2s actor owns the resumable sessions of incoming streams (a broken stream's actor has stopped by
// the time the peer comes back): id → the domain pair, the live stream's actor or the h it ended with.

// s2sSMRetention is how long the h of a broken incoming stream waits for the peer to resume it.
const s2sSMRetention = 5 * time.Minute

// s2sSMAckEvery: the initiating side asks for an acknowledgement once this many stanzas wait for one.
const s2sSMAckEvery = 16

// Messages between incoming streams and the s2s actor about resumable sessions.
type (
	// s2sSMRegister: an incoming stream (pid) enabled a resumable session.
	s2sSMRegister struct {
		id   string
		pair domainPair
		pid  *actor.PID
	}
	// s2sSMDetached: the stream of the session ended having handled h stanzas; it routes nothing more.
	s2sSMDetached struct {
		id  string
		h   uint32
		pid *actor.PID
	}
	// s2sSMResume: a new stream of pair asks for session id (a Request: answered with s2sSMResumeAnswer).
	s2sSMResume struct {
		id   string
		pair domainPair
	}
	s2sSMResumeAnswer struct {
		id string
		h  uint32
		ok bool
	}
	// s2sSMTakeover: the session of this (still open) stream is resumed on another: stop routing, detach.
	s2sSMTakeover struct{}
	// s2sSMGone: an incoming stream's actor has stopped (sent by the s2s actor to itself on Terminated).
	s2sSMGone   struct{ who *actor.PID }
	s2sSMExpire struct {
		id  string
		gen uint64
	}
)

// smSession is a resumable incoming session as the s2s actor knows it.
type smSession struct {
	pair   domainPair
	pid    *actor.PID // the stream now carrying it; nil once detached
	h      uint32     // when detached: what the last stream handled
	waiter *actor.PID // a new stream waiting for the live one to detach
	gen    uint64     // expiry timers of older detachments are ignored
}

// receiveSM handles the session messages of the s2s actor; false if m is not one.
func (a *s2sActor) receiveSM(ctx actor.Context, m interface{}) bool {
	switch m := m.(type) {
	case *s2sSMRegister:
		a.nextID++
		a.smSessions[m.id] = &smSession{pair: m.pair, pid: m.pid, gen: a.nextID}
	case *s2sSMDetached:
		s := a.smSessions[m.id]
		if s == nil || s.pid == nil || !s.pid.Equal(m.pid) {
			return true
		}
		s.pid, s.h = nil, m.h
		a.nextID++
		s.gen = a.nextID
		if s.waiter != nil {
			s.pid, s.waiter = s.waiter, nil
			ctx.Send(s.pid, &s2sSMResumeAnswer{id: m.id, h: s.h, ok: true})
			return true
		}
		scheduler.NewTimerScheduler(ctx).SendOnce(s2sSMRetention, ctx.Self(), &s2sSMExpire{id: m.id, gen: s.gen})
	case *s2sSMResume:
		s := a.smSessions[m.id]
		switch {
		case s == nil || s.pair != m.pair || s.waiter != nil || a.shutdown:
			ctx.Respond(&s2sSMResumeAnswer{id: m.id})
		case s.pid == nil:
			s.pid = ctx.Sender()
			a.nextID++
			s.gen = a.nextID
			ctx.Respond(&s2sSMResumeAnswer{id: m.id, h: s.h, ok: true})
		default:
			// The old stream has not noticed that it is gone (half-open TCP): it stops routing and reports its h;
			// the answer waits for that, so that what it handled and what the new stream handles do not overlap.
			s.waiter = ctx.Sender()
			ctx.Send(s.pid, &s2sSMTakeover{})
		}
	case *s2sSMGone:
		// A stream that stopped without detaching (it got its resumption answer too late): its h is unknown, so the
		// session cannot be resumed; whoever waits for it starts afresh.
		for id, s := range a.smSessions {
			if s.waiter != nil && s.waiter.Equal(m.who) {
				s.waiter = nil
			}
			if s.pid != nil && s.pid.Equal(m.who) {
				if s.waiter != nil {
					ctx.Send(s.waiter, &s2sSMResumeAnswer{id: id})
				}
				delete(a.smSessions, id)
			}
		}
	case *s2sSMExpire:
		if s := a.smSessions[m.id]; s != nil && s.pid == nil && s.gen == m.gen {
			delete(a.smSessions, m.id)
		}
	default:
		return false
	}
	return true
}

// ---- the receiving side (s2s_in.go) ----

// onSM handles a stream management element of an incoming stream (§3–§5).
func (c *s2sIn) onSM(ctx actor.Context, el *xmlstream.Element) {
	n, err := el.Parse()
	if err != nil {
		c.finish(ctx, stream.NotWellFormed, "")
		return
	}
	offered := c.state == inAuthed && c.env.cfg.S2S.StreamManagement
	switch el.Name.Local {
	case "enable":
		if !offered || c.smOn || c.smResuming {
			c.out.write(sm.Failed(stanza.UnexpectedRequest, 0, false))
			return
		}
		e, err := sm.ParseEnable(n)
		if err != nil {
			c.out.write(sm.Failed(stanza.BadRequest, 0, false))
			return
		}
		c.smOn, c.smH = true, 0
		if e.Resume {
			c.smID = newStreamID()
			ctx.Send(ctx.Parent(), &s2sSMRegister{id: c.smID, pair: domainPair{remote: c.from, local: c.local}, pid: ctx.Self()})
		}
		c.out.write(sm.Enabled(c.smID, e.Resume, int(s2sSMRetention/time.Second)))
		c.log.Debug().Bool("resume", e.Resume).Msg("s2s stream management enabled")
	case "resume":
		if !offered || c.smOn || c.smResuming {
			c.out.write(sm.Failed(stanza.UnexpectedRequest, 0, false))
			return
		}
		r, err := sm.ParseResume(n)
		if err != nil {
			c.out.write(sm.Failed(stanza.BadRequest, 0, false))
			return
		}
		c.smResuming = true
		ctx.Request(ctx.Parent(), &s2sSMResume{id: r.PrevID, pair: domainPair{remote: c.from, local: c.local}})
	case "r":
		if c.smOn {
			c.out.write(sm.Ack(c.smH))
		}
	case "a":
		// We send no stanzas on an incoming stream: h is 0 and nothing waits for it.
	default:
		c.finish(ctx, stream.UnsupportedStanzaType, "")
	}
}

func (c *s2sIn) onResumeAnswer(m *s2sSMResumeAnswer) {
	c.smResuming = false
	if c.state == inClosed {
		if m.ok {
			c.smOn, c.smID, c.smH = true, m.id, m.h
		}
		return // detachSM (Stopping) hands the session back
	}
	if !m.ok {
		c.out.write(sm.Failed(stanza.ItemNotFound, 0, false))
		return
	}
	c.smOn, c.smID, c.smH = true, m.id, m.h
	// §5: h is what we handled of the peer's stanzas; the peer resends what came after.
	c.out.write(sm.Resumed(m.id, m.h))
	c.log.Info().Str("previd", m.id).Uint32("h", m.h).Msg("s2s stream resumed")
}

// detachSM hands a resumable session back to the s2s actor with the h it ended with; from then on this stream
// routes nothing (onElement ignores everything once closed).
func (c *s2sIn) detachSM(ctx actor.Context) {
	if c.smID == "" {
		return
	}
	ctx.Send(ctx.Parent(), &s2sSMDetached{id: c.smID, h: c.smH, pid: ctx.Self()})
	c.smID = ""
}

// ---- the initiating side (s2s_dial.go, s2s_out.go) ----

// streamManagement enables XEP-0198 on an authenticated outgoing stream whose peer offers it (§2), resuming
// session previd when there is one (§5). It runs on the dialer's goroutine, before the actor takes the stream.
func (e *env) streamManagement(s *s2sStream, previd string) error {
	if !e.cfg.S2S.StreamManagement || s.mech != "EXTERNAL" || s.features.Child(sm.NS, "sm") == nil {
		return nil
	}
	if previd != "" {
		// h: we handled no stanzas from the peer, which sends none on our stream.
		if _, err := s.conn.Write([]byte("<resume xmlns='" + sm.NS + "' previd='" + string(xmlstream.AppendEscapedAttr(nil, previd)) + "' h='0'/>")); err != nil {
			return err
		}
		n, err := s.next()
		if err != nil {
			return err
		}
		switch {
		case n.Name.Space == sm.NS && n.Name.Local == "resumed":
			h, err := strconv.ParseUint(n.Attr("h"), 10, 32)
			if err != nil || n.Attr("previd") != previd {
				return errors.New("malformed <resumed/> from the peer")
			}
			s.smOn, s.smID, s.resumed, s.resumedH = true, previd, true, uint32(h)
			return nil
		case n.Name.Space == sm.NS && n.Name.Local == "failed":
			// §5: the session is gone (the peer restarted, or it expired); a new one starts below.
		default:
			return errors.New("unexpected <" + n.Name.Local + "/> in answer to <resume/>")
		}
	}
	if _, err := s.conn.Write([]byte("<enable xmlns='" + sm.NS + "' resume='true'/>")); err != nil {
		return err
	}
	n, err := s.next()
	if err != nil {
		return err
	}
	switch {
	case n.Name.Space == sm.NS && n.Name.Local == "enabled":
		s.smOn = true
		if r := n.Attr("resume"); (r == "true" || r == "1") && n.Attr("id") != "" {
			s.smID = n.Attr("id")
		}
	case n.Name.Space == sm.NS && n.Name.Local == "failed":
	default:
		return errors.New("unexpected <" + n.Name.Local + "/> in answer to <enable/>")
	}
	return nil
}

// prevSM is the SM session of a broken outgoing stream, kept for resumption: the first n stanzas of the queue
// were sent on it after the acked-th.
type prevSM struct {
	id    string
	acked uint32
	n     int
}

// writeSM counts a stanza written on an SM stream and asks for an acknowledgement when enough wait for one.
// A peer that lets max_queue stanzas wait for an acknowledgement is treated as a broken stream (closed with
// <resource-constraint/>, everything requeued, the session resumed by the next stream), so that unacked stays
// bounded like the queue.
func (o *s2sOut) writeSM(ctx actor.Context, l *outLink, it queued) {
	l.unacked = append(l.unacked, it)
	l.smSent++
	if len(l.unacked) >= o.env.cfg.S2S.MaxQueue {
		o.log.Warn().Str("local", l.local).Int("unacked", len(l.unacked)).Msg("s2s peer does not acknowledge: closing the stream")
		o.broken(ctx, l, stream.ResourceConstraint)
		return
	}
	if !l.smReq && len(l.unacked) >= s2sSMAckEvery {
		o.requestAck(l)
	}
}

func (o *s2sOut) requestAck(l *outLink) {
	l.smReq = true
	l.w.write(sm.Request)
}

// onAck: the peer handled h stanzas of this stream (§4).
func (o *s2sOut) onAck(ctx actor.Context, l *outLink, h uint32) {
	n, ok := sm.Newly(l.smAcked, h, l.smSent)
	if !ok {
		o.log.Warn().Str("local", l.local).Uint32("h", h).Uint32("sent", l.smSent).Msg("s2s peer acknowledged more than was sent")
		o.broken(ctx, l, stream.UndefinedCondition)
		return
	}
	l.smAcked, l.smReq = h, false
	l.unacked = append(l.unacked[:0:0], l.unacked[n:]...)
	if len(l.unacked) >= s2sSMAckEvery {
		o.requestAck(l)
	}
}

// requeueUnacked puts what the broken stream did not get acknowledged back at the head of the queue, in order,
// and keeps its session for resumption.
func (o *s2sOut) requeueUnacked(l *outLink) {
	l.prev = nil
	if l.smOn && l.smID != "" {
		l.prev = &prevSM{id: l.smID, acked: l.smAcked, n: len(l.unacked)}
	}
	if len(l.unacked) > 0 {
		o.log.Info().Str("local", l.local).Int("unacked", len(l.unacked)).Bool("resumable", l.prev != nil).Msg("s2s stream broke: requeueing what was not acknowledged")
		l.queue = append(l.unacked, l.queue...)
	}
	l.unacked, l.smOn, l.smID, l.smReq, l.smSent, l.smAcked = nil, false, "", false, 0, 0
}

// resumed: the peer handled h stanzas of the previous stream; those of them at the head of the queue go.
func (o *s2sOut) resumed(l *outLink, h uint32) {
	if p := l.prev; p != nil {
		done := int(int32(h - p.acked))
		done = max(0, min(done, p.n))
		l.queue = append(l.queue[:0:0], l.queue[done:]...)
		o.log.Info().Str("local", l.local).Int("handled", done).Int("resent", p.n-done).Msg("s2s stream resumed")
	}
	l.smSent, l.smAcked = h, h
}

// bouncedHead: n stanzas at the head of the queue were bounced; those of the previous stream among them
// count as settled for resumption.
func (l *outLink) bouncedHead(n int) {
	if p := l.prev; p != nil {
		k := min(n, p.n)
		p.n -= k
		p.acked += uint32(k)
	}
}
