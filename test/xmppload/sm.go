package xmppload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"
	"time"
)

// XEP-0198 stream management on the client side (-sm, and the reconnect
// profile). The counters are modulo 2^32 (XEP-0198 §4: h wraps to 0 after
// 2^32-1). The inbound counter belongs to the goroutine that reads the
// connection; everything about what we sent is guarded by the client's wmu,
// because stanzas are queued from several goroutines (chat ticker, reader).

const nsSM = "urn:xmpp:sm:3"

var (
	smRequest = []byte("<r xmlns='urn:xmpp:sm:3'/>")
	delayMark = []byte("urn:xmpp:delay")
)

// smClient is one client's stream management state.
type smClient struct {
	on        bool          // enabled on the current session
	id        string        // resumption id from <enabled/>, "" when not resumable
	in        atomic.Uint32 // stanzas received since <enabled/> (written by the reader goroutine only)
	serverReq int64         // <r/>s of the server answered (reader goroutine only)

	// Under client.wmu:
	out   uint32  // stanzas sent since <enabled/>
	acked uint32  // the server's last h
	since int     // stanzas sent since our last <r/>
	reqs  []smReq // our <r/>s not yet covered by an <a/>
	log   []byte  // the unacknowledged stanzas, back to back (kept only when resuming is possible)
	ends  []int   // end offset in log of each of them
	keep  bool    // keep log (reconnect profile)
	down  bool    // the connection was dropped on purpose; writes are discarded until resumed
	// relogin: a fresh login after a failed resumption is in progress; no
	// chat message is produced until it is done.
	relogin bool
	gen     uint64 // connection generation, so that a late drop timer is harmless
	timer   *time.Timer
}

// smReq is one <r/> we sent: it is covered by an <a/> whose h reaches out.
type smReq struct {
	out uint32
	at  time.Time
}

// reset forgets the session (a fresh login), keeping the buffers.
func (s *smClient) reset() {
	s.on, s.id, s.serverReq = false, "", 0
	s.in.Store(0)
	s.out, s.acked, s.since = 0, 0, 0
	s.reqs = s.reqs[:0]
	s.log = s.log[:0]
	s.ends = s.ends[:0]
}

// isStanza: the three stanza kinds that XEP-0198 counts (§4: "stanzas", not nonzas).
func isStanza(name []byte) bool {
	return bytes.Equal(name, nameMessage) || bytes.Equal(name, namePresence) || bytes.Equal(name, nameIQ)
}

// isSMNonza reports whether el is a stream management element.
func isSMNonza(el []byte) bool {
	return bytes.Equal(attr(el, "xmlns"), []byte(nsSM))
}

// noteStanzaLocked accounts the stanza just appended to c.out at start: it
// counts, is kept for a resend when resumption is possible, and every
// AckEvery stanzas an <r/> follows it. Called with wmu held.
func (c *client) noteStanzaLocked(start int) {
	s := &c.sm
	if !s.on {
		return
	}
	s.out++
	if s.keep {
		s.log = append(s.log, c.out[start:]...)
		s.ends = append(s.ends, len(s.log))
	}
	s.since++
	if n := c.r.cfg.AckEvery; n > 0 && s.since >= n && !s.down {
		s.since = 0
		c.out = append(c.out, smRequest...)
		s.reqs = append(s.reqs, smReq{out: s.out, at: time.Now()})
		c.r.stats.smRequests.Add(1)
	}
}

// queueStanzas appends stanzas (one slice each) and writes them.
func (c *client) queueStanzas(parts ...[]byte) {
	c.wmu.Lock()
	for _, b := range parts {
		start := len(c.out)
		c.out = append(c.out, b...)
		c.noteStanzaLocked(start)
	}
	c.flushLocked()
}

// loginWrite writes during login (the only goroutine on the connection),
// counting stanzas once stream management is on.
func (c *client) loginWrite(b []byte, stanza bool) error {
	c.wmu.Lock()
	c.out = append(c.out[:0], b...)
	if stanza {
		c.noteStanzaLocked(0)
	}
	buf := append([]byte(nil), c.out...)
	c.out = c.out[:0]
	c.wmu.Unlock()
	if _, err := c.nc.Write(buf); err != nil {
		return kindErr("write", err)
	}
	return nil
}

// smAck is our <a/>: every stanza received so far (§4).
func (c *client) smAck() []byte {
	return []byte("<a xmlns='urn:xmpp:sm:3' h='" + strconv.FormatUint(uint64(c.sm.in.Load()), 10) + "'/>")
}

// onSMNonza handles <r/> and <a/> from the server after enabling; the
// answer is written directly during login, queued afterwards.
func (c *client) onSMNonza(el []byte, login bool) {
	switch string(elemName(el)) {
	case "r":
		// §4: answer with the number of stanzas handled (received) so far.
		c.sm.serverReq++
		c.r.stats.smServerRequests.Add(1)
		a := c.smAck()
		if login {
			_ = c.loginWrite(a, false)
		} else {
			c.queue(a)
		}
	case "a":
		h, err := strconv.ParseUint(string(attr(el, "h")), 10, 32)
		if err != nil {
			c.r.addError("sm-bad-ack")
			return
		}
		c.r.stats.smAcks.Add(1)
		c.wmu.Lock()
		c.ackLocked(uint32(h), true)
		c.wmu.Unlock()
	case "enabled", "resumed":
		c.r.addError("sm-unexpected-" + string(elemName(el)))
	case "failed":
		c.r.addError("sm-failed:" + firstChildName(el))
	}
}

// ackLocked applies the server's h: it may not acknowledge more than we sent
// (XEP-0198 §4, handled-count-too-high), nor go backwards. The stanzas it
// covers leave the log; our <r/>s it covers get their latency recorded.
func (c *client) ackLocked(h uint32, measure bool) bool {
	s := &c.sm
	newly, window := h-s.acked, s.out-s.acked
	if newly > window {
		c.r.addError("sm-ack-beyond-sent")
		return false
	}
	if s.keep && newly > 0 {
		cut := s.ends[newly-1]
		s.log = s.log[:copy(s.log, s.log[cut:])]
		n := copy(s.ends, s.ends[newly:])
		s.ends = s.ends[:n]
		for i := range s.ends {
			s.ends[i] -= cut
		}
	}
	s.acked = h
	k := 0
	now := time.Now()
	for k < len(s.reqs) && int32(h-s.reqs[k].out) >= 0 {
		if measure {
			c.r.ackLatency.RecordDuration(now.Sub(s.reqs[k].at))
		}
		k++
	}
	s.reqs = s.reqs[:copy(s.reqs, s.reqs[k:])]
	return true
}

// enableSM asks for stream management after bind (XEP-0198 §3) and waits
// for <enabled/>.
func (c *client) enableSM(f streamFeatures) error {
	if f.SM == nil {
		return kindErr("sm-not-offered", nil)
	}
	if _, err := c.nc.Write([]byte("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")); err != nil {
		return kindErr("write", err)
	}
	for {
		el, err := c.expect("enabled", "failed")
		if err != nil {
			return kindErr("sm-enable", err)
		}
		if !isSMNonza(el) {
			continue
		}
		if string(elemName(el)) == "failed" {
			return kindErr("sm-enable:"+firstChildName(el), nil)
		}
		c.wmu.Lock()
		c.sm.reset()
		c.sm.on = true
		if r := string(attr(el, "resume")); r == "true" || r == "1" {
			c.sm.id = string(attr(el, "id"))
		}
		c.wmu.Unlock()
		return nil
	}
}

// armDrop schedules the loss of the connection after about Hold (uniform
// ±50 %), as a phone losing its signal: the TCP connection is reset, the
// XML stream is not closed.
func (c *client) armDrop() {
	hold := time.Duration(float64(c.r.cfg.Hold) * (0.5 + rand.Float64()))
	c.wmu.Lock()
	gen := c.sm.gen
	if c.sm.timer != nil {
		c.sm.timer.Stop()
	}
	c.sm.timer = time.AfterFunc(hold, func() { c.drop(gen) })
	c.wmu.Unlock()
}

// connectionEnded stops the drop timer and reports whether the connection
// ended because we dropped it. The generation moves on under the lock, so a
// timer that fires now finds it stale and cannot drop (and count) again.
func (c *client) connectionEnded() (dropped bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.sm.timer != nil {
		c.sm.timer.Stop()
		c.sm.timer = nil
	}
	c.sm.gen++
	return c.sm.down
}

// drop resets connection generation gen, if it is still the current one and
// the run is still dropping connections.
func (c *client) drop(gen uint64) {
	c.wmu.Lock()
	if !c.r.dropping.Load() || c.sm.gen != gen || c.sm.down {
		c.wmu.Unlock()
		return
	}
	c.sm.down = true
	c.r.reconnecting.Add(1) // until reconnect is done
	raw := c.raw
	c.wmu.Unlock()
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST, no FIN: nothing tells the server the stream is over
	}
	raw.Close()
}

// resume reconnects (TCP, TLS, SASL as at login) and resumes the session
// (XEP-0198 §5) with what we received; then it sends again whatever the
// server's h says it did not handle. On <failed/> it returns an error of kind
// resume-failed:<condition>.
func (c *client) resume(ctx context.Context) error {
	if c.sm.id == "" {
		return kindErr("resume-failed:not-resumable", nil)
	}
	f, err := c.connectSecure(ctx)
	if err != nil {
		return err
	}
	if f, err = c.authenticate(f); err != nil {
		return err
	}
	if f.SM == nil {
		return kindErr("sm-not-offered", nil)
	}
	if _, err := c.nc.Write([]byte("<resume xmlns='urn:xmpp:sm:3' previd='" + xmlEscape(c.sm.id) +
		"' h='" + strconv.FormatUint(uint64(c.sm.in.Load()), 10) + "'/>")); err != nil {
		return kindErr("write", err)
	}
	var el []byte
	for {
		if el, err = c.expect("resumed", "failed"); err != nil {
			return kindErr("resume", err)
		}
		if isSMNonza(el) {
			break
		}
	}
	if string(elemName(el)) == "failed" {
		return kindErr("resume-failed:"+firstChildName(el), nil)
	}
	h, err := strconv.ParseUint(string(attr(el, "h")), 10, 32)
	if err != nil {
		return kindErr("resume", fmt.Errorf("bad h %q in <resumed/>", attr(el, "h")))
	}
	_ = c.nc.SetDeadline(time.Time{})
	c.wmu.Lock()
	if !c.ackLocked(uint32(h), false) {
		c.wmu.Unlock()
		return kindErr("resume", errors.New("<resumed/> acknowledges more than was sent"))
	}
	// Our <r/>s of the lost connection are answered by <resumed h/>, or
	// never; the next one is due after AckEvery stanzas as before (one that
	// fell due while down goes with the next stanza).
	c.sm.reqs = c.sm.reqs[:0]
	c.sm.down = false
	c.sm.gen++
	c.werr = nil
	// §5: send again what the server did not handle, in order, before
	// anything new (which was discarded while down but is in the log).
	c.out = append(c.out[:0], c.sm.log...)
	c.flushLocked()
	return nil
}

// unackedMessages returns copies of the message stanzas the server has not
// acknowledged, to send again on a new session after a failed resumption.
// The server may have handled some of them, so they are marked as sent again
// with an XEP-0203 delay (the receiver counts a second copy as an XEP-0198
// duplicate, not as an error).
func (c *client) unackedMessages() [][]byte {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	stamp := []byte("<delay xmlns='urn:xmpp:delay' stamp='" + time.Now().UTC().Format("2006-01-02T15:04:05.000Z") + "'>Resent</delay></message>")
	var out [][]byte
	start := 0
	for _, end := range c.sm.ends {
		b := c.sm.log[start:end]
		start = end
		if !bytes.HasPrefix(b, []byte("<message")) || !bytes.HasSuffix(b, []byte("</message>")) {
			continue
		}
		m := append([]byte(nil), b[:len(b)-len("</message>")]...)
		out = append(out, append(m, stamp...))
	}
	return out
}
