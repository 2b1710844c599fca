package actors

import (
	"net"
	"sync"
	"time"

	"github.com/xmppd/xmppd/protocol/stream"
)

// writer owns the write side of one socket. It is not an actor: the conn actor appends bytes, and a short-lived
// goroutine flushes whatever has accumulated in one Write (one syscall and, over TLS, one record per burst).
//
// Why a mutex here (actors/ rule: a mutex needs a reason): the writer's state is shared by three goroutines: the
// conn actor, which appends and ends the stream; the flush goroutine, which drains; and the reader goroutine, which
// only acts during STARTTLS (resume on the TLS connection, abort when the handshake fails). A channel would preallocate a slot array per connection
// even when idle (tens of KiB at 20k connections each) and cost one send per stanza; the mutex lets an idle
// connection hold no buffer and no goroutine at all, and a burst of N stanzas cost one flush. The lock is never
// held across I/O (Write and Close happen after unlocking).
//
// Per-stanza accounting (ARCHITECTURE.md "Durability"). Every write is one segment: a whole top-level element (a
// stanza or a nonza) or, for the stream header and the closing bytes, not an element. The writer records where each
// segment ends, so that when a Write fails (deadline, reset, closed socket) the n bytes it reports as written tell
// exactly which elements were completely handed to the socket; every element not completely written — the one cut
// in the middle included: the client never got a whole element — is lost and handed back exactly once:
//   - to the conn directly, as the return value of takePending and finally (the conn actor's own calls);
//   - after finally, to its ret callback (from the flush goroutine, or the reader's abort), followed by its fin
//     callback once the writer is finished: socket closed, no Write in progress, nothing left to hand back.
//
// Each hand-back is in queue order; only the remainder of a Write still in progress when the conn takes the queue
// behind it (slow consumer, peer gone) comes after that queue. Before finally, lost elements wait in lost (bounded
// by the queue limit) for the conn to take them: a socket that failed under the flush goroutine is closed, so the
// reader ends and the conn ends the stream. Non-element bytes are never handed back. A stream ended without
// finally (the conn actor stopped from outside) drops what is lost.
type writer struct {
	mu   sync.Mutex
	conn sink
	// buf holds the bytes queued and not yet taken by a flush; ends[i] is the offset in buf where the i-th queued
	// segment ends, stored as ^end (negative) when the segment is not a top-level element. Both are nil when idle.
	buf  []byte
	ends []int32
	// lost: whole elements that will never be written, in queue order, not yet handed back.
	lost     []byte
	flushing bool // a flush goroutine is running
	// held > 0: the conn is queueing the parts of one response (hold/release); no flush starts until it is done.
	held      int
	paused    bool // STARTTLS: <proceed/> written, waiting for the TLS connection
	pauseNext chan struct{}
	closing   bool // close the socket once buf is flushed
	closed    bool
	ended     bool          // the conn has ended the stream: nothing more is queued
	toClose   sink          // closed by unlock, outside the lock
	limit     int           // max pending bytes; beyond it the peer is a slow consumer
	timeout   time.Duration // per-Write deadline
	done      func()        // called once when the socket is closed (server shutdown accounting)
	drained   func()        // whenDrained: called once when nothing is pending any more
	// Set by finally: ret gets lost elements (an unshared slice), fin is called once when the writer is finished.
	ret       func([]byte)
	fin       func()
	reporting int // ret calls in progress; fin waits for them
	// pool runs the flushes on kept goroutines (dispatch.go); nil: a goroutine of its own each time (tests).
	pool *workers
	// flushFn is w.flush, made once (a method value given to Schedule would be allocated at every burst); box is
	// the idleBufs entry the queue buffers came from, reused to give them back.
	flushFn func()
	box     *queueBufs
}

// idleBufs keeps the queue buffers of writers that went idle for the next writer that has something to queue:
// a fan-out's copy to an idle connection then allocates no buffer and no segment ends. An idle writer still holds
// neither (and what the pool holds the collector may take).
var idleBufs sync.Pool // of *queueBufs

type queueBufs struct {
	b    []byte
	ends []int32
}

// maxPooledBuf: larger buffers (a burst to one slow reader) are not kept for others.
const maxPooledBuf = 16 << 10

func newWriter(c sink, limit int, timeout time.Duration, done func()) *writer {
	// Segment ends are int32: a queue beyond 1 GiB is no queue limit anyway.
	w := &writer{conn: c, limit: min(limit, 1<<30), timeout: timeout, done: done}
	w.flushFn = w.flush
	return w
}

// isElement: everything we write is a whole top-level element except the stream header (it starts with the XML
// declaration: stream.Header, written by conn.onHeader, onReadEnded and writeClose) and the closing bytes of
// closeAfter (not written through write).
func isElement(s string) bool {
	return len(s) < 2 || s[0] != '<' || s[1] != '?'
}

// appendElements appends to dst the elements among the segments of b (ends as in writer.ends) that do not lie
// completely within b[:n].
func appendElements(dst, b []byte, ends []int32, n int) []byte {
	start := 0
	for _, e := range ends {
		end := int(e)
		if end < 0 {
			start = ^end
			continue
		}
		if end > n {
			dst = append(dst, b[start:end]...)
		}
		start = end
	}
	return dst
}

// whenDrained calls f (from the flush goroutine, or now) once every byte queued so far has been handed to the
// socket. Not called if the socket closes first.
func (w *writer) whenDrained(f func()) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	if len(w.buf) == 0 && !w.flushing {
		w.mu.Unlock()
		f()
		return
	}
	w.drained = f
	w.mu.Unlock()
}

// write queues s, one top-level element (or our stream header). It returns false when the pending bytes would
// exceed the limit: the caller treats the peer as a slow consumer and closes the stream. Writes after the conn ended
// the stream are dropped. A socket that failed before the conn noticed keeps the elements written to it as lost.
func (w *writer) write(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended || w.closing {
		return true
	}
	if w.closed {
		if !isElement(s) {
			return true
		}
		if len(w.lost)+len(s) > w.limit {
			return false
		}
		w.lost = append(w.lost, s...)
		return true
	}
	if len(w.buf)+len(s) > w.limit {
		return false
	}
	w.appendLocked(s, isElement(s))
	w.kickLocked()
	return true
}

// offer queues s, one element the session writes directly (session.toConn), only when the stream is open, not in
// the middle of STARTTLS and s fits in the queue. False leaves s to the conn actor, which handles an ended stream,
// a failed socket and a slow consumer (conn.send).
func (w *writer) offer(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended || w.closing || w.closed || w.paused || w.pauseNext != nil || len(w.buf)+len(s) > w.limit {
		return false
	}
	w.appendLocked(s, true)
	w.kickLocked()
	return true
}

func (w *writer) appendLocked(s string, element bool) {
	if w.buf == nil && w.ends == nil && w.box == nil {
		if q, _ := idleBufs.Get().(*queueBufs); q != nil {
			w.box, w.buf, w.ends = q, q.b[:0], q.ends[:0]
			q.b, q.ends = nil, nil
		}
	}
	w.buf = append(w.buf, s...)
	end := int32(len(w.buf)) // at most the limit, 1 GiB, plus one final segment
	if !element {
		end = ^end
	}
	if w.ends == nil {
		w.ends = make([]int32, 0, 16) // one allocation for a typical burst
	}
	w.ends = append(w.ends, end)
}

// writeThenPause queues s (the STARTTLS <proceed/>) and stops writing after it until resume: nothing may be
// written in plaintext once <proceed/> is on the wire. flushed is closed when s has been written, or when the
// socket closes first (the reader's handshake then fails on the closed socket instead of waiting forever).
func (w *writer) writeThenPause(s string, flushed chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		close(flushed)
		return
	}
	w.appendLocked(s, true)
	w.pauseNext = flushed
	w.kickLocked()
}

// resume switches the writer to the TLS connection.
func (w *writer) resume(c net.Conn) {
	w.mu.Lock()
	w.conn = c
	w.paused = false
	w.kickLocked()
	w.unlock()
}

// endStream closes the stream once what is queued is written: with the stream error cond (text and an
// application-specific condition app optional; counted in xmppd_stream_errors_total) when cond is set, with
// </stream:stream> alone otherwise. Every kind of stream (c2s, s2s both ways, components) ends this way.
func (w *writer) endStream(m *metrics, cond stream.Condition, text, app string) {
	if cond == "" {
		w.closeAfter(stream.Close)
		return
	}
	m.streamErrors.WithLabelValues(string(cond)).Inc()
	w.closeAfter(string(stream.AppendErrorApp(nil, cond, text, app)) + stream.Close)
}

// closeAfter queues the final bytes (a stream error, </stream:stream>; not elements, never handed back) and closes
// the socket once they are written or the write deadline passes. Elements still queued before them are written
// first; those that are not are lost.
func (w *writer) closeAfter(final string) {
	w.mu.Lock()
	if w.closed || w.closing {
		w.unlock()
		return
	}
	w.appendLocked(final, false)
	w.closing = true
	if w.paused || w.pauseNext != nil {
		// STARTTLS under way: nothing more may go out in plaintext.
		w.closeLocked()
	} else {
		w.kickLocked()
	}
	w.unlock()
}

// abort closes the socket now. What is queued is lost (taken back with takePending or finally); the Write in
// progress, if any, fails and its unwritten elements are lost too.
func (w *writer) abort() {
	w.mu.Lock()
	w.closeLocked()
	w.unlock()
}

// graceDeadline restarts the deadline of the write in progress: a slow consumer gets one more write timeout
// from the moment it is cut off to read what is already on its way, and the stream error behind it.
func (w *writer) graceDeadline() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.flushing && !w.closed {
		_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	}
}

// takePending removes and returns, without closing, the elements certainly not delivered: those lost so far and
// those queued that no flush has taken yet. The Write in progress is not touched; its fate is known when it ends
// (see finally). The returned slice is not shared.
func (w *writer) takePending() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := appendElements(w.lost, w.buf, w.ends, 0)
	w.lost, w.buf, w.ends = nil, nil, nil
	return b
}

// finally is called by the conn when it has ended the stream (after closeAfter, abort or takePending). It returns
// the elements lost so far; every element found lost later (the Write in progress fails, or what is queued behind
// it never goes out) is passed to ret, from the goroutine that finds it; and fin is called once the writer is
// finished — the socket closed, no Write in progress, every lost element handed back — possibly right away. ret
// and fin are never called under the lock, and fin only after every ret call has returned.
func (w *writer) finally(ret func([]byte), fin func()) []byte {
	w.mu.Lock()
	w.ended = true
	w.ret, w.fin = ret, fin
	b := w.lost
	w.lost = nil
	w.unlock()
	return b
}

// closeLocked marks the writer closed; unlock closes the socket. Queued elements are lost.
func (w *writer) closeLocked() {
	if w.closed {
		return
	}
	w.closed = true
	w.lost = appendElements(w.lost, w.buf, w.ends, 0)
	w.buf, w.ends = nil, nil
	if w.pauseNext != nil {
		close(w.pauseNext)
		w.pauseNext = nil
	}
	w.toClose = w.conn
}

// unlock releases the lock, then does what must not happen under it: closing the socket, handing lost elements
// to ret and, when the writer is finished, calling fin.
func (w *writer) unlock() {
	c := w.toClose
	w.toClose = nil
	var lost []byte
	ret := w.ret
	if ret != nil && len(w.lost) > 0 {
		lost, w.lost = w.lost, nil
		w.reporting++
	}
	fin := w.finLocked()
	w.mu.Unlock()
	if c != nil {
		_ = c.Close()
		if w.done != nil {
			w.done()
		}
	}
	if lost != nil {
		ret(lost)
		w.mu.Lock()
		w.reporting--
		fin = w.finLocked()
		w.mu.Unlock()
	}
	if fin != nil {
		fin()
	}
}

func (w *writer) finLocked() func() {
	if w.fin == nil || !w.closed || w.flushing || w.reporting > 0 || w.toClose != nil {
		return nil
	}
	f := w.fin
	w.fin = nil
	return f
}

// hold makes what is queued until the matching release go out together: the conn queues the parts of one
// response flight (our stream header and its features; SASL2 <success/> and the features behind it) between the
// two, so that they leave in one Write — over TLS one record, and one write(2) — instead of racing the flush the
// first part would start. A flush already running takes what it finds, as always; release starts the next one.
// The conn calls both in one message, so a hold never outlives it; what the session offers meanwhile waits as
// long.
func (w *writer) hold() {
	w.mu.Lock()
	w.held++
	w.mu.Unlock()
}

// release ends a hold and starts the flush of what was queued under it.
func (w *writer) release() {
	w.mu.Lock()
	w.held--
	w.kickLocked()
	w.unlock()
}

func (w *writer) kickLocked() {
	if w.flushing || w.paused || w.closed || w.held > 0 || len(w.buf) == 0 {
		return
	}
	w.flushing = true
	if w.pool != nil {
		w.pool.Schedule(w.flushFn)
	} else {
		go w.flushFn()
	}
}

// giveBack hands b and ends to idleBufs (under the lock).
func (w *writer) giveBack(b []byte, ends []int32) {
	q := w.box
	w.box = nil
	if cap(b) == 0 || cap(b) > maxPooledBuf || cap(ends) > maxPooledBuf/4 {
		return
	}
	if q == nil {
		q = new(queueBufs)
	}
	q.b, q.ends = b[:0], ends[:0]
	idleBufs.Put(q)
}

func (w *writer) flush() {
	var spare []byte
	var spareEnds []int32
	for {
		w.mu.Lock()
		if w.closed {
			w.flushing = false
			w.unlock()
			return
		}
		if w.held > 0 && len(w.buf) > 0 {
			// The conn is in the middle of a response: release flushes it whole.
			w.flushing = false
			w.mu.Unlock()
			return
		}
		if len(w.buf) == 0 {
			w.flushing = false
			if w.pauseNext != nil {
				w.paused = true
				close(w.pauseNext)
				w.pauseNext = nil
			} else if w.closing {
				w.closeLocked()
			}
			// An idle connection keeps no buffer: at tens of thousands of connections that is most of the memory.
			// The buffers go to the next writer with something to queue (idleBufs).
			if spare == nil {
				spare = w.buf
			}
			if spareEnds == nil {
				spareEnds = w.ends
			}
			w.buf, w.ends = nil, nil
			w.giveBack(spare, spareEnds)
			drained := w.drained
			w.drained = nil
			if w.closing {
				drained = nil
			}
			w.unlock()
			if drained != nil {
				drained()
			}
			return
		}
		b, ends := w.buf, w.ends
		w.buf, w.ends = spare[:0], spareEnds[:0]
		c := w.conn
		w.mu.Unlock()

		_ = c.SetWriteDeadline(time.Now().Add(w.timeout))
		n, err := writeTo(c, b, ends)
		if err != nil || n < len(b) {
			// n bytes reached the socket: the elements not completely among them are lost, and go before anything
			// lost meanwhile (queued after them) and what is queued behind them (closeLocked).
			w.mu.Lock()
			w.lost = append(appendElements(nil, b, ends, n), w.lost...)
			w.closeLocked()
			w.flushing = false
			w.unlock()
			return
		}
		spare, spareEnds = nil, nil
		if cap(b) <= 64<<10 {
			spare = b
		}
		if cap(ends) <= 4<<10 {
			spareEnds = ends
		}
	}
}
