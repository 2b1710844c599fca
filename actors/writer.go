package actors

import (
	"bytes"
	"net"
	"sync"
	"time"
)

// writer owns the write side of one socket. It is not an actor: the conn actor appends bytes, and a short-lived
// goroutine flushes whatever has accumulated in one Write (one syscall and, over TLS, one record per burst).
//
// Why a mutex here (actors/ rule: a mutex needs a reason): the pending buffer is handed between exactly two
// parties, the conn actor that appends and the flush goroutine that drains. A channel would preallocate a slot
// array per connection even when idle (tens of KiB at 20k connections each) and cost one send per stanza; the
// mutex lets an idle connection hold no buffer and no goroutine at all, and a burst of N stanzas cost one flush.
// The lock is never held across I/O.
type writer struct {
	mu        sync.Mutex
	conn      net.Conn
	buf       []byte // pending bytes, not yet handed to the flush goroutine
	flushing  bool   // a flush goroutine is running
	paused    bool   // STARTTLS: <proceed/> written, waiting for the TLS connection
	pauseNext chan struct{}
	closing   bool // close the socket once buf is flushed
	closed    bool
	limit     int           // max pending bytes; beyond it the peer is a slow consumer
	timeout   time.Duration // per-Write deadline
	done      func()        // called once when the socket is closed (server shutdown accounting)
	drained   func()        // whenDrained: called once when nothing is pending any more
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

func newWriter(c net.Conn, limit int, timeout time.Duration, done func()) *writer {
	return &writer{conn: c, limit: limit, timeout: timeout, done: done}
}

// write queues s. It returns false when the pending bytes would exceed the limit: the caller treats the peer as a
// slow consumer and closes the stream. Writes after close are dropped (the stream is gone).
func (w *writer) write(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.closing {
		return true
	}
	if len(w.buf)+len(s) > w.limit {
		return false
	}
	w.buf = append(w.buf, s...)
	w.kickLocked()
	return true
}

// writeThenPause queues s (the STARTTLS <proceed/>) and stops writing after it until resume: nothing may be
// written in plaintext once <proceed/> is on the wire. flushed is closed when s has been written.
func (w *writer) writeThenPause(s string, flushed chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, s...)
	w.pauseNext = flushed
	w.kickLocked()
}

// resume switches the writer to the TLS connection.
func (w *writer) resume(c net.Conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.conn = c
	w.paused = false
	w.kickLocked()
}

// closeAfter queues the final bytes (a stream error, </stream:stream>) and closes the socket once they are written
// or the write deadline passes.
func (w *writer) closeAfter(final string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.closing {
		return
	}
	w.buf = append(w.buf, final...)
	w.closing = true
	if w.paused {
		w.closeLocked()
		return
	}
	w.kickLocked()
}

// abort closes the socket now, dropping what is pending.
func (w *writer) abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closeLocked()
}

// abortPending closes the socket now and returns what was pending: bytes no flush had handed to the socket yet,
// so certainly not delivered. They are whole top-level elements: write appends whole ones and a flush takes the
// whole buffer.
func (w *writer) abortPending() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := bytes.Clone(w.buf) // a copy: the flush goroutine may reuse the array as its spare buffer
	w.buf = nil
	w.closeLocked()
	return b
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

// takePending removes and returns the pending bytes (as abortPending, without closing).
func (w *writer) takePending() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := bytes.Clone(w.buf) // a copy: the flush goroutine may reuse the array as its spare buffer
	w.buf = nil
	return b
}

func (w *writer) closeLocked() {
	if w.closed {
		return
	}
	w.closed = true
	w.buf = nil
	_ = w.conn.Close()
	if w.done != nil {
		w.done()
	}
}

func (w *writer) kickLocked() {
	if w.flushing || w.paused || w.closed || len(w.buf) == 0 {
		return
	}
	w.flushing = true
	go w.flush()
}

func (w *writer) flush() {
	var spare []byte
	for {
		w.mu.Lock()
		if w.closed {
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
			w.buf = nil
			drained := w.drained
			w.drained = nil
			w.mu.Unlock()
			if drained != nil && !w.closing {
				drained()
			}
			return
		}
		b := w.buf
		w.buf = spare[:0]
		c := w.conn
		w.mu.Unlock()

		_ = c.SetWriteDeadline(time.Now().Add(w.timeout))
		_, err := c.Write(b)
		if err != nil {
			w.mu.Lock()
			w.flushing = false
			w.closeLocked()
			w.mu.Unlock()
			return
		}
		if cap(b) <= 64<<10 {
			spare = b
		} else {
			spare = nil
		}
	}
}
