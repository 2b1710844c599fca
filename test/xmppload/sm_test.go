package xmppload

import (
	"bytes"
	"math"
	"strconv"
	"testing"
)

// smTestClient is a client with stream management on and no connection:
// what it would write accumulates in out.
func smTestClient(ackEvery int, keep bool) *client {
	r := &runner{cfg: Config{AckEvery: ackEvery, SM: true}}
	c := &client{r: r}
	c.sm.on, c.sm.keep = true, keep
	return c
}

func (c *client) testSend(n int) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for i := 0; i < n; i++ {
		start := len(c.out)
		c.out = append(c.out, "<message to='x'><body>"+strconv.Itoa(i)+"</body></message>"...)
		c.noteStanzaLocked(start)
	}
}

func TestSMRequestsEveryAckEveryStanzas(t *testing.T) {
	c := smTestClient(3, false)
	c.testSend(7)
	if got := bytes.Count(c.out, smRequest); got != 2 {
		t.Errorf("%d <r/> after 7 stanzas with -ack-every 3, want 2: %s", got, c.out)
	}
	if c.sm.out != 7 || len(c.sm.reqs) != 2 || c.sm.reqs[0].out != 3 || c.sm.reqs[1].out != 6 {
		t.Errorf("out %d, requests %+v", c.sm.out, c.sm.reqs)
	}
	if c.r.stats.smRequests.Load() != 2 {
		t.Errorf("smRequests %d", c.r.stats.smRequests.Load())
	}
	// While the connection is down no <r/> is written (it would never arrive).
	c.out = c.out[:0]
	c.sm.down = true
	c.testSend(5)
	if bytes.Contains(c.out, smRequest) {
		t.Errorf("<r/> written while down: %s", c.out)
	}
}

func TestSMAckTrimsLogAndCoversRequests(t *testing.T) {
	c := smTestClient(2, true)
	c.testSend(5) // <r/> after 2 and 4
	c.wmu.Lock()
	ok := c.ackLocked(3, true)
	c.wmu.Unlock()
	if !ok {
		t.Fatal("h=3 of 5 refused")
	}
	// The request at 2 is covered, the one at 4 is not.
	if len(c.sm.reqs) != 1 || c.sm.reqs[0].out != 4 || c.r.ackLatency.Count() != 1 {
		t.Errorf("requests left %+v, latencies %d", c.sm.reqs, c.r.ackLatency.Count())
	}
	want := "<message to='x'><body>3</body></message><message to='x'><body>4</body></message>"
	if string(c.sm.log) != want || len(c.sm.ends) != 2 || c.sm.ends[1] != len(want) {
		t.Errorf("log %q ends %v, want the two unacknowledged stanzas", c.sm.log, c.sm.ends)
	}
	if msgs := c.unackedMessages(); len(msgs) != 2 || !bytes.Contains(msgs[0], []byte("<delay xmlns='urn:xmpp:delay'")) ||
		!bytes.HasSuffix(msgs[0], []byte("</delay></message>")) {
		t.Errorf("unacked messages to send again %q", msgs)
	}
}

func TestSMAckWrapsAndRejectsTooHigh(t *testing.T) {
	// XEP-0198 §4: h counts modulo 2^32.
	c := smTestClient(0, true)
	c.sm.out, c.sm.acked = math.MaxUint32-1, math.MaxUint32-1
	c.testSend(4) // out: 2^32-1, 0, 1, 2
	if c.sm.out != 2 {
		t.Fatalf("out %d after wrapping", c.sm.out)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.ackLocked(0, true) || c.sm.acked != 0 || len(c.sm.ends) != 2 {
		t.Errorf("h=0 across the wrap: acked %d, %d left", c.sm.acked, len(c.sm.ends))
	}
	if c.ackLocked(3, true) {
		t.Error("h=3 accepted with 2 sent")
	}
	if c.ackLocked(math.MaxUint32, true) {
		t.Error("h going back accepted")
	}
	if c.r.errs["sm-ack-beyond-sent"] != 2 {
		t.Errorf("errors %v", c.r.errs)
	}
	if !c.ackLocked(2, true) || len(c.sm.log) != 0 || len(c.sm.ends) != 0 {
		t.Errorf("h=2: log %q", c.sm.log)
	}
}
