package xmppload

import (
	"bytes"
	"context"
	"strconv"
	"sync/atomic"
	"time"
)

// The muc profile: Clients are spread over Rooms multi-user chat rooms (XEP-0045) at MUCService, client i in
// room i mod Rooms, and each sends groupchat messages at Rate per second. Every message is delivered to every
// occupant of its room, the sender too (§7.4 reflection), so "sent" counts the copies expected (occupants per
// message) and "received" the copies that arrived; each receiver follows each sender's sequence numbers on its
// own. Delivery latency is per copy, and the server's CPU per message is per delivered copy.

// mucState is a client's part in the muc profile.
type mucState struct {
	room     int
	entered  atomic.Bool
	unlocked atomic.Bool            // the room's first occupant: the instant room was accepted
	seq      uint64                 // messages sent; touched only by the ticker
	track    map[uint64]*seqTracker // by sender index; touched only by the reader
}

func (r *runner) roomJID(k int) string {
	return "xl" + strconv.Itoa(k) + "@" + r.cfg.MUCService
}

// enterRooms makes every logged-in client enter its room: the first of each room creates it and accepts the
// default configuration (§10.1.2 instant room), then the others enter. It returns the occupants per room.
func (r *runner) enterRooms(ctx context.Context) []int {
	occupants := make([]int, r.cfg.Rooms)
	enter := func(c *client) {
		c.queue([]byte("<presence to='" + r.roomJID(c.muc.room) + "/" + c.user + "'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"))
	}
	wait := func(cs []*client, done func(*mucState) bool) {
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end) && ctx.Err() == nil; {
			all := true
			for _, c := range cs {
				if !done(c.muc) {
					all = false
					break
				}
			}
			if all {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var first, rest []*client
	seen := make([]bool, r.cfg.Rooms)
	for _, c := range r.clients {
		if c.nc == nil {
			continue
		}
		if !seen[c.muc.room] {
			seen[c.muc.room] = true
			first = append(first, c)
		} else {
			rest = append(rest, c)
		}
	}
	entered := func(m *mucState) bool { return m.entered.Load() }
	for _, c := range first {
		enter(c)
	}
	wait(first, entered)
	for _, c := range first {
		c.queue([]byte("<iq type='set' id='xlinst' to='" + r.roomJID(c.muc.room) + "'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>"))
	}
	wait(first, func(m *mucState) bool { return m.unlocked.Load() }) // before, others meet item-not-found (§10.1.1)
	for _, c := range rest {
		enter(c)
	}
	wait(rest, entered)
	for _, c := range r.clients {
		if c.muc != nil && c.muc.entered.Load() {
			occupants[c.muc.room]++
		}
	}
	r.mucOccupants = occupants
	return occupants
}

// mucSelfPresence notes a client's own presence in its room (status 110).
func (c *client) mucSelfPresence(el []byte) {
	if c.muc != nil && (bytes.Contains(el, []byte("code='110'")) || bytes.Contains(el, []byte(`code="110"`))) {
		c.muc.entered.Store(true)
	}
}

// mucTick sends each occupant's groupchat messages at Rate per second since the start. The clients' phases are
// spread over one period, so that they do not all send in the same tick (a burst of occupants² copies).
func (r *runner) mucTick(elapsed time.Duration) {
	ts := r.now()
	for k, c := range r.clients {
		target := uint64(r.cfg.Rate*elapsed.Seconds() + float64(k)/float64(len(r.clients)))
		if c.nc == nil || c.muc == nil || !c.muc.entered.Load() || c.muc.seq >= target {
			continue
		}
		n := uint64(r.mucOccupants[c.muc.room])
		var b []byte
		for ; c.muc.seq < target; c.muc.seq++ {
			b = append(b, "<message type='groupchat' to='"...)
			b = append(b, r.roomJID(c.muc.room)...)
			b = append(b, "'><body>xl1 "...)
			b = strconv.AppendUint(b, r.runID, 10)
			b = append(b, ' ')
			b = strconv.AppendInt(b, int64(c.idx), 10)
			b = append(b, ' ')
			b = strconv.AppendUint(b, c.muc.seq+1, 10)
			b = append(b, ' ')
			b = strconv.AppendInt(b, ts, 10)
			b = append(b, r.pad...)
			b = append(b, "</body></message>"...)
			r.stats.sent.Add(n)
		}
		c.queue(b)
	}
}

// onGroupchat accounts one copy of a groupchat message.
func (c *client) onGroupchat(p payload) {
	t := c.muc.track[p.from]
	if t == nil {
		t = &seqTracker{}
		c.muc.track[p.from] = t
	}
	c.r.msgLatency.Record(c.r.now() - p.ts)
	switch t.observe(p.seq) {
	case seqDuplicate:
		c.r.stats.dups.Add(1)
		return
	case seqOutOfOrder:
		c.r.stats.ooo.Add(1)
	}
	c.r.stats.received.Add(1)
}
