package xmppload

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// churn: every client logs in, stays for about Hold, closes its stream and
// logs in again, until Duration has passed.
func (r *runner) runChurn(ctx context.Context, rep *Report, srv *serverSampler) error {
	r.phase.Store("churn")
	prof := r.startProfile(r.cfg.Duration)
	sem := make(chan struct{}, r.cfg.LoginConcurrency)
	deadline := time.Now().Add(r.cfg.Duration)
	t0 := time.Now()
	p := &pacer{start: t0, rate: r.cfg.Ramp}
	var wg sync.WaitGroup
	for _, c := range r.clients {
		if p.wait(ctx) != nil || time.Now().After(deadline) {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				sem <- struct{}{}
				ok := r.loginOne(ctx, c)
				<-sem
				if !ok {
					sleepCtx(ctx, 100*time.Millisecond)
					continue
				}
				hold := time.Duration(float64(r.cfg.Hold) * (0.5 + rand.Float64()))
				if rest := time.Until(deadline); hold > rest {
					hold = max(rest, 0)
				}
				t := time.AfterFunc(hold, c.closeStream)
				r.serve(c)
				t.Stop()
				r.stats.logouts.Add(1)
			}
			c.nc = nil
		}()
	}
	wg.Wait()
	rep.DurationSeconds = time.Since(t0).Seconds()
	rep.LoginPhaseSeconds = rep.DurationSeconds
	srv.mark("logged-in")
	srv.mark("settled")
	srv.mark("steady-end")
	r.endProfile(rep, prof)
	return nil
}

// rosterContacts returns the positions (in r.clients) of client i's
// contacts: its RosterSize/2 neighbours on each side, so the relation is
// symmetric and every subscription becomes mutual ("both").
func (r *runner) rosterContacts(i int) []int {
	n := len(r.clients)
	half := r.cfg.RosterSize / 2
	if half < 1 {
		half = 1
	}
	if 2*half > n-1 {
		half = (n - 1) / 2
	}
	out := make([]int, 0, 2*half)
	for k := 1; k <= half; k++ {
		out = append(out, (i+k)%n, (i-k+n)%n)
	}
	return out
}

// rosterOnline reports whether the account at position i logs in for the
// measured phase: RosterOnline of the positions, spread evenly (with 0.5
// every second one), so that any run of consecutive contacts is online in
// about that share.
func (r *runner) rosterOnline(i int) bool {
	f := r.cfg.RosterOnline
	return math.Floor(float64(i+1)*f) > math.Floor(float64(i)*f)
}

// needRosterSetup reports whether a logged-in client lacks a mutual
// subscription with one of its contacts.
func (r *runner) needRosterSetup() bool {
	return r.rosterIncomplete() > 0
}

// rosterIncomplete counts the logged-in clients whose roster (as fetched at
// login) has fewer items with subscription 'both' than they have contacts.
func (r *runner) rosterIncomplete() int {
	n := 0
	for i, c := range r.clients {
		if c.nc != nil && c.jid != "" && c.rosterBoth < len(r.rosterContacts(i)) {
			n++
		}
	}
	return n
}

// setFanouts records, before the ticker starts, how many online contacts
// each client's presence updates should reach (RFC 6121 §4.4.2: the server
// broadcasts to the contacts with a subscription 'from' that have an
// available resource; the offline ones get nothing).
func (r *runner) setFanouts() {
	for i, c := range r.clients {
		c.presFanout = 0
		for _, j := range r.rosterContacts(i) {
			if d := r.clients[j]; d.nc != nil && d.jid != "" {
				c.presFanout++
			}
		}
	}
}

// setupRosters sends subscription requests to every contact not yet
// mutual; onPresence approves the requests it receives. It returns once
// every request was answered (the contact's approval, or the server's
// auto-reply when the subscription exists: RFC 6121 §3.1.3) and
// subscription traffic and roster pushes have been quiet for two seconds,
// after twenty seconds of quiet whatever was answered, or after ten minutes.
func (r *runner) setupRosters(ctx context.Context) {
	subscribed0 := r.subscribed.Load()
	var asked int64
	for i, c := range r.clients {
		if c.nc == nil || c.jid == "" {
			continue
		}
		var parts [][]byte
		for _, j := range r.rosterContacts(i) {
			if jid := r.bare(r.clients[j].idx); !c.mutual[jid] {
				parts = append(parts, []byte("<presence type='subscribe' to='"+jid+"'/>"))
			}
		}
		asked += int64(len(parts))
		c.queueStanzas(parts...)
	}
	last, quietSince := r.subTraffic.Load(), time.Now()
	// Hundreds of accounts × hundreds of contacts is tens of thousands of subscriptions, each a subscribe, a
	// subscribed and roster pushes to both sides: a slow server takes minutes. Whether every subscription became
	// mutual is checked at the next login (rosterIncomplete).
	for end := time.Now().Add(10 * time.Minute); time.Now().Before(end) && ctx.Err() == nil; {
		time.Sleep(250 * time.Millisecond)
		answered := r.subscribed.Load()-subscribed0 >= asked
		if n := r.subTraffic.Load(); n != last {
			last, quietSince = n, time.Now()
		} else if q := time.Since(quietSince); (answered && q > 2*time.Second) || q > 20*time.Second {
			return
		}
	}
}

// presenceTick broadcasts presence updates at Rate per client; each carries
// the same payload as chat messages so its fan-out latency is measured.
func (r *runner) presenceTick(elapsed time.Duration) {
	rate := r.cfg.Rate
	if rate == 0 {
		rate = 0.2
	}
	ts := r.now()
	for i, c := range r.clients {
		var phase float64
		if r.cfg.Stagger {
			phase = r.staggerPhase(i)
		}
		target := uint64(rate*elapsed.Seconds() + phase)
		if c.nc == nil || c.presSent >= target {
			continue
		}
		var parts [][]byte
		for ; c.presSent < target; c.presSent++ {
			seq := r.presSeq.Add(1)
			var b []byte
			b = append(b, "<presence><show>"...)
			if seq%2 == 0 {
				b = append(b, "away"...)
			} else {
				b = append(b, "chat"...)
			}
			b = append(b, "</show><status>xl1 "...)
			b = strconv.AppendUint(b, r.runID, 10)
			b = append(b, ' ')
			b = strconv.AppendInt(b, int64(c.idx), 10)
			b = append(b, ' ')
			b = strconv.AppendUint(b, seq, 10)
			b = append(b, ' ')
			b = strconv.AppendInt(b, ts, 10)
			b = append(b, "</status></presence>"...)
			parts = append(parts, b)
			r.stats.presSent.Add(1)
			r.stats.presExpected.Add(c.presFanout)
		}
		c.queueStanzas(parts...)
	}
}

// onPresence approves subscription requests and accounts broadcasts.
func (r *runner) onPresence(c *client, el []byte) {
	typ := attr(el, "type")
	switch string(typ) {
	case "subscribe":
		r.subTraffic.Add(1)
		from := attr(el, "from")
		if i := bytes.IndexByte(from, '/'); i >= 0 {
			from = from[:i]
		}
		c.queueStanzas([]byte("<presence type='subscribed' to='" + string(from) + "'/>"))
	case "subscribed":
		r.subTraffic.Add(1)
		r.subscribed.Add(1)
	case "unsubscribe", "unsubscribed":
		r.subTraffic.Add(1)
	case "error":
		r.addError("presence-error:" + stanzaErrorCondition(el))
	case "", "unavailable", "probe":
		if c.muc != nil {
			c.mucSelfPresence(el)
			return
		}
		if i := bytes.Index(el, payloadMark); i >= 0 {
			if p, ok := parsePayload(el[i+len(payloadMark):]); ok && p.run == r.runID {
				if p.from == uint64(c.idx) {
					// The copy a server sends to the sender's own resource (RFC 6121 §4.4.2 asks for it):
					// not a delivery to a contact, and not counted as one (nor in server CPU per presence).
					r.stats.presSelf.Add(1)
					return
				}
				r.stats.presDelivered.Add(1)
				r.presLatency.Record(r.now() - p.ts)
			}
		}
		r.stats.presRecv.Add(1)
	}
}

// reconnect (XEP-0198 §5): every session has stream management with
// resumption; during the measured phase each connection is reset after about
// Hold and the client resumes the session on a new one at once.

// startDrops arms every connected client's drop timer.
func (r *runner) startDrops() {
	r.dropping.Store(true)
	for _, c := range r.clients {
		if c.nc != nil && c.sm.on {
			c.armDrop()
		}
	}
}

// stopDrops ends the dropping and waits until every client that lost its
// connection has a session again (or gave up).
func (r *runner) stopDrops(ctx context.Context) {
	r.dropping.Store(false)
	for _, c := range r.clients {
		// A drop that saw dropping still true counted itself under wmu.
		c.wmu.Lock()
		_ = c.sm.down
		c.wmu.Unlock()
	}
	r.phase.Store("resume-wait")
	deadline := time.Now().Add(r.cfg.LoginTimeout + 5*time.Second)
	for r.reconnecting.Load() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

// serveReconnect is a reconnect client's life after its first login: read
// until we drop the connection, resume, and again, until the stream ends.
func (r *runner) serveReconnect(ctx context.Context, c *client) {
	for {
		err := c.readLoop()
		dropped := c.connectionEnded()
		r.stats.connected.Add(-1)
		if !dropped {
			switch {
			case r.stopping.Load():
			case err != nil:
				r.addError(errorKind(err))
			default:
				r.addError("stream-closed")
			}
			c.nc.Close()
			return
		}
		r.stats.drops.Add(1)
		if !r.reconnect(ctx, c) {
			return
		}
	}
}

// reconnect resumes c's session on a new connection; when the server refuses
// (<failed/>) or the attempt fails, it logs in afresh and sends again the
// messages the server had not acknowledged.
func (r *runner) reconnect(ctx context.Context, c *client) bool {
	defer r.reconnecting.Add(-1)
	t0 := time.Now()
	err := c.resume(ctx)
	if err == nil {
		r.resumeLatency.RecordDuration(time.Since(t0))
		r.stats.resumes.Add(1)
		r.connectedUp()
		if r.dropping.Load() {
			c.armDrop()
		}
		return true
	}
	r.stats.resumesFailed.Add(1)
	r.addError(errorKind(err))
	if c.raw != nil {
		c.raw.Close()
	}
	msgs := c.unackedMessages()
	c.wmu.Lock()
	c.sm.reset() // a new session: nothing counts (no <r/>) until it has stream management
	c.sm.relogin = true
	c.sm.down = false
	c.sm.gen++
	c.wmu.Unlock()
	ok := r.loginOne(ctx, c)
	c.wmu.Lock()
	c.sm.relogin = false
	c.wmu.Unlock()
	if !ok {
		return false
	}
	c.queueStanzas(msgs...)
	if r.dropping.Load() {
		c.armDrop()
	}
	return true
}
