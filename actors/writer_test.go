package actors

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeConn is a net.Conn whose Write is scripted per call: it accepts some of the bytes and then returns, fails at
// once, or blocks until its write deadline passes or it is closed (as a socket whose peer does not read).
type fakeConn struct {
	mu       sync.Mutex
	written  []byte // every byte a Write accepted, in order
	deadline time.Time
	closed   bool
	closes   int
	writes   int
	// script decides each Write: how many bytes of p it accepts, and whether it then fails at once (failNow) or
	// blocks (block) until the deadline or Close. Accepting all of p with neither succeeds.
	script func(call int, p []byte) (accept int, failNow, block bool)
	// inWrite is signalled (non-blocking) when a Write starts blocking.
	inWrite chan struct{}
}

var errReset = errors.New("connection reset by peer")

func newFakeConn(script func(call int, p []byte) (int, bool, bool)) *fakeConn {
	return &fakeConn{script: script, inWrite: make(chan struct{}, 16)}
}

func (f *fakeConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return 0, net.ErrClosed
	}
	call := f.writes
	f.writes++
	f.mu.Unlock()
	accept, failNow, block := len(p), false, false
	if f.script != nil {
		accept, failNow, block = f.script(call, p)
	}
	accept = min(max(accept, 0), len(p))
	f.mu.Lock()
	f.written = append(f.written, p[:accept]...)
	f.mu.Unlock()
	switch {
	case failNow:
		return accept, errReset
	case block:
		select {
		case f.inWrite <- struct{}{}:
		default:
		}
		for {
			f.mu.Lock()
			closed, dl := f.closed, f.deadline
			f.mu.Unlock()
			if closed {
				return accept, net.ErrClosed
			}
			if !dl.IsZero() && !time.Now().Before(dl) {
				return accept, os.ErrDeadlineExceeded
			}
			time.Sleep(200 * time.Microsecond)
		}
	case accept < len(p):
		return accept, errReset
	}
	return accept, nil
}

func (f *fakeConn) Read([]byte) (int, error) { select {} }
func (f *fakeConn) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closes++
	f.closed = true
	return nil
}
func (f *fakeConn) LocalAddr() net.Addr             { return &net.TCPAddr{} }
func (f *fakeConn) RemoteAddr() net.Addr            { return &net.TCPAddr{} }
func (f *fakeConn) SetDeadline(t time.Time) error   { return f.SetWriteDeadline(t) }
func (f *fakeConn) SetReadDeadline(time.Time) error { return nil }
func (f *fakeConn) SetWriteDeadline(t time.Time) error {
	f.mu.Lock()
	f.deadline = t
	f.mu.Unlock()
	return nil
}

func (f *fakeConn) bytes() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.written)
}

func (f *fakeConn) closeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closes
}

// returns collects what the writer hands back: synchronously (takePending, finally) and through ret, and checks
// that fin comes once, after every ret.
type returns struct {
	mu      sync.Mutex
	got     []string
	retDone bool // fin was called
	lateRet bool // a ret came after fin
	fins    int
	finCh   chan struct{}
}

func newReturns() *returns { return &returns{finCh: make(chan struct{})} }

func (r *returns) add(b []byte) {
	if len(b) == 0 {
		return
	}
	r.mu.Lock()
	r.got = append(r.got, string(b))
	r.mu.Unlock()
}

func (r *returns) ret(b []byte) {
	r.mu.Lock()
	if r.retDone {
		r.lateRet = true
	}
	r.mu.Unlock()
	if len(b) == 0 {
		r.mu.Lock()
		r.got = append(r.got, "<empty ret>")
		r.mu.Unlock()
		return
	}
	r.add(b)
}

func (r *returns) fin() {
	r.mu.Lock()
	r.retDone = true
	r.fins++
	if r.fins == 1 {
		close(r.finCh)
	}
	r.mu.Unlock()
}

// finally installs the callbacks as conn.stopWhenWritten does and records what comes back at once.
func (r *returns) finally(w *writer) { r.add(w.finally(r.ret, r.fin)) }

func (r *returns) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.finCh:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer never finished (fin not called)")
	}
	time.Sleep(2 * time.Millisecond) // a duplicate fin or a late ret would show now
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fins != 1 || r.lateRet {
		t.Fatalf("fin called %d times, ret after fin: %v", r.fins, r.lateRet)
	}
}

func (r *returns) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.got, "")
}

func stanzaN(i, size int) string {
	head := fmt.Sprintf("<message id='m%d'><body>", i)
	tail := "</body></message>"
	return head + strings.Repeat("z", max(0, size-len(head)-len(tail))) + tail
}

const (
	header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x' from='localhost' version='1.0'>"
	final  = "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
)

// queued builds a writer whose first flush takes everything written before start is called (the writer starts
// paused, as after STARTTLS <proceed/>, and start resumes it).
func pausedWriter(c net.Conn, limit int, timeout time.Duration, done func()) *writer {
	w := newWriter(c, limit, timeout, done)
	w.paused = true
	return w
}

func mustWrite(t *testing.T, w *writer, s string) {
	t.Helper()
	if !w.write(s) {
		t.Fatalf("write of %d bytes refused", len(s))
	}
}

func waitBlocked(t *testing.T, f *fakeConn) {
	t.Helper()
	select {
	case <-f.inWrite:
	case <-time.After(5 * time.Second):
		t.Fatal("the Write never blocked")
	}
}

// A Write that accepts the first stanza and part of the second, then fails (a reset): the second, cut in the
// middle, and the third come back; the first does not; the stream header never does.
func TestWriterPartialWriteThenError(t *testing.T) {
	a, b, c := stanzaN(1, 100), stanzaN(2, 100), stanzaN(3, 100)
	f := newFakeConn(func(call int, p []byte) (int, bool, bool) { return len(header) + len(a) + 10, true, false })
	var dones atomic.Int32
	w := pausedWriter(f, 1<<20, time.Second, func() { dones.Add(1) })
	r := newReturns()
	mustWrite(t, w, header)
	mustWrite(t, w, a)
	mustWrite(t, w, b)
	mustWrite(t, w, c)
	r.finally(w) // the conn has ended the stream (as finish does), before the Write fails
	w.resume(f)
	r.wait(t)
	if got := r.all(); got != b+c {
		t.Fatalf("returned %q, want the second and third stanza", got)
	}
	if got := f.bytes(); got != header+a+b[:10] {
		t.Fatalf("written %q", got)
	}
	if f.closeCount() != 1 || dones.Load() != 1 {
		t.Fatalf("closed %d times, done %d times", f.closeCount(), dones.Load())
	}
}

// The Write fails before the conn has noticed anything: the unwritten stanzas wait, with those the conn writes
// meanwhile, until the conn takes them (the reader reports the closed socket, the conn ends the stream).
func TestWriterFailureBeforeTheConnNotices(t *testing.T) {
	a, b, c, d := stanzaN(1, 64), stanzaN(2, 64), stanzaN(3, 64), stanzaN(4, 64)
	f := newFakeConn(func(call int, p []byte) (int, bool, bool) { return len(a) + len(b) - 1, true, false })
	w := pausedWriter(f, 1<<20, time.Second, nil)
	mustWrite(t, w, a)
	mustWrite(t, w, b)
	mustWrite(t, w, c)
	w.resume(f)
	for f.closeCount() == 0 {
		time.Sleep(time.Millisecond)
	}
	mustWrite(t, w, d) // routed here before the conn learnt the socket is gone
	r := newReturns()
	w.abort() // onReadEnded
	r.finally(w)
	r.wait(t)
	if got := r.all(); got != b+c+d {
		t.Fatalf("returned %q, want stanzas 2, 3, 4", got)
	}
	if f.closeCount() != 1 {
		t.Fatalf("closed %d times", f.closeCount())
	}
}

// The slow-consumer cut (conn.send): a Write blocked after the first stanza and part of the second; the queue
// behind it comes back at once, the grace deadline passes, and then exactly the part of the blocked Write that
// did not get out comes back. The stream error behind it is not a stanza.
func TestWriterSlowConsumerDeadline(t *testing.T) {
	a, b := stanzaN(1, 200), stanzaN(2, 200)
	c, d := stanzaN(3, 200), stanzaN(4, 200)
	f := newFakeConn(func(call int, p []byte) (int, bool, bool) { return len(a) + 5, false, true })
	w := pausedWriter(f, 600, 50*time.Millisecond, nil)
	mustWrite(t, w, a)
	mustWrite(t, w, b)
	w.resume(f)
	waitBlocked(t, f)
	mustWrite(t, w, c)
	mustWrite(t, w, d)
	e := stanzaN(5, 250)
	if w.write(e) {
		t.Fatal("the queue limit did not trigger")
	}
	r := newReturns()
	r.add(w.takePending())
	if got := r.all(); got != c+d {
		t.Fatalf("taken %q, want stanzas 3 and 4", got)
	}
	w.graceDeadline()
	w.closeAfter(final)
	r.finally(w)
	r.wait(t)
	if got := r.all(); got != c+d+b {
		t.Fatalf("returned %q, want stanzas 3, 4 and then 2", got)
	}
	if got := f.bytes(); got != a+b[:5] {
		t.Fatalf("written %q", got)
	}
}

// A client that reads again within the grace deadline gets the blocked Write and the stream error; nothing of
// that Write comes back.
func TestWriterSlowConsumerReadsInTime(t *testing.T) {
	a, b, c := stanzaN(1, 200), stanzaN(2, 200), stanzaN(3, 200)
	release := make(chan struct{})
	f := newFakeConn(func(call int, p []byte) (int, bool, bool) {
		if call == 0 {
			<-release
		}
		return len(p), false, false
	})
	w := pausedWriter(f, 1<<20, time.Second, nil)
	mustWrite(t, w, a)
	mustWrite(t, w, b)
	w.resume(f)
	for {
		w.mu.Lock()
		taken := len(w.buf) == 0
		w.mu.Unlock()
		if taken {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mustWrite(t, w, c)
	r := newReturns()
	r.add(w.takePending())
	w.graceDeadline()
	w.closeAfter(final)
	r.finally(w)
	close(release)
	r.wait(t)
	if got := r.all(); got != c {
		t.Fatalf("returned %q, want stanza 3 only", got)
	}
	if got := f.bytes(); got != a+b+final {
		t.Fatalf("written %q", got)
	}
}

// The peer goes away (conn.onReadEnded) while a Write is blocked: abort closes the socket, the blocked Write
// returns what it accepted, and every stanza not completely written comes back once.
func TestWriterAbortWhileBlocked(t *testing.T) {
	a, b, c := stanzaN(1, 100), stanzaN(2, 100), stanzaN(3, 100)
	f := newFakeConn(func(call int, p []byte) (int, bool, bool) { return len(a), false, true })
	w := pausedWriter(f, 1<<20, time.Minute, nil)
	mustWrite(t, w, a)
	mustWrite(t, w, b)
	w.resume(f)
	waitBlocked(t, f)
	mustWrite(t, w, c)
	r := newReturns()
	w.abort()
	r.finally(w)
	r.wait(t)
	// c was known lost at once; b when the blocked Write returned (before or after finally).
	if got := r.all(); got != c+b && got != b+c {
		t.Fatalf("returned %q, want stanzas 2 and 3", got)
	}
}

// A clean close with a client that reads: everything is written, the closing bytes last, nothing comes back, and
// fin comes once the socket is closed.
func TestWriterCloseAfterDelivers(t *testing.T) {
	a, b := stanzaN(1, 100), stanzaN(2, 100)
	f := newFakeConn(nil)
	w := newWriter(f, 1<<20, time.Second, nil)
	mustWrite(t, w, header)
	mustWrite(t, w, a)
	mustWrite(t, w, b)
	w.closeAfter("</stream:stream>")
	r := newReturns()
	r.finally(w)
	r.wait(t)
	if got := r.all(); got != "" {
		t.Fatalf("returned %q", got)
	}
	if got := f.bytes(); got != header+a+b+"</stream:stream>" {
		t.Fatalf("written %q", got)
	}
	if f.closeCount() != 1 {
		t.Fatalf("closed %d times", f.closeCount())
	}
}

// A clean close whose final Write times out: the stanzas queued before the closing bytes come back.
func TestWriterCloseAfterTimesOut(t *testing.T) {
	a, b := stanzaN(1, 100), stanzaN(2, 100)
	f := newFakeConn(func(call int, p []byte) (int, bool, bool) { return 0, false, true })
	w := pausedWriter(f, 1<<20, 20*time.Millisecond, nil)
	mustWrite(t, w, a)
	mustWrite(t, w, b)
	w.closeAfter("</stream:stream>") // paused: closes at once; a and b never went out
	r := newReturns()
	r.finally(w)
	r.wait(t)
	if got := r.all(); got != a+b {
		t.Fatalf("returned %q", got)
	}

	f = newFakeConn(func(call int, p []byte) (int, bool, bool) { return 0, false, true })
	w = newWriter(f, 1<<20, 20*time.Millisecond, nil)
	mustWrite(t, w, a)
	mustWrite(t, w, b)
	w.closeAfter("</stream:stream>")
	r = newReturns()
	r.finally(w)
	r.wait(t)
	if got := r.all(); got != a+b {
		t.Fatalf("returned %q", got)
	}
}

// An idle writer holds no buffer and no goroutine.
func TestWriterIdleHoldsNothing(t *testing.T) {
	f := newFakeConn(nil)
	w := newWriter(f, 1<<20, time.Second, nil)
	for i := range 100 {
		mustWrite(t, w, stanzaN(i, 80))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		idle := !w.flushing && w.buf == nil && w.ends == nil && w.lost == nil
		w.mu.Unlock()
		if idle {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer did not go idle")
		}
		time.Sleep(time.Millisecond)
	}
	if n := strings.Count(f.bytes(), "</message>"); n != 100 {
		t.Fatalf("%d stanzas written", n)
	}
}

// A failed <proceed/> releases the reader waiting for it (no goroutine waits forever).
func TestWriterPauseReleasedOnClose(t *testing.T) {
	f := newFakeConn(func(call int, p []byte) (int, bool, bool) { return 0, true, false })
	w := newWriter(f, 1<<20, time.Second, nil)
	flushed := make(chan struct{})
	w.writeThenPause("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", flushed)
	select {
	case <-flushed:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader would wait forever")
	}
}

// Whatever the interleaving of the conn's cut, the flush goroutine and the deadline: every stanza is either
// completely written or handed back, exactly once; what comes back is whole stanzas only, never the header or the
// closing bytes; fin comes once, after every hand-back.
func TestWriterEveryStanzaAccountedFor(t *testing.T) {
	iterations := 400
	if testing.Short() {
		iterations = 50
	}
	for it := range iterations {
		seed := uint64(it)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			accountingRun(t, rand.New(rand.NewPCG(seed, 42)))
		})
	}
}

func accountingRun(t *testing.T, rng *rand.Rand) {
	var total atomic.Int64
	budget := int64(rng.IntN(20000))
	mode := rng.IntN(4) // how a Write that does not take everything ends
	f := newFakeConn(func(call int, p []byte) (int, bool, bool) {
		if d := time.Duration(rand.IntN(300)) * time.Microsecond; d > 0 {
			time.Sleep(d)
		}
		left := budget - total.Load()
		if left >= int64(len(p)) {
			total.Add(int64(len(p)))
			return len(p), false, false
		}
		if left < 0 {
			left = 0
		}
		total.Add(left)
		switch mode {
		case 0:
			return int(left), true, false
		default:
			return int(left), false, true
		}
	})
	limit := 2000 + rng.IntN(6000)
	w := newWriter(f, limit, time.Duration(1+rng.IntN(20))*time.Millisecond, nil)
	r := newReturns()
	var queued []string
	mustWrite(t, w, header)
	n := 20 + rng.IntN(100)
	cutAt := rng.IntN(n + 1)
	cut := rng.IntN(4)
	overflowed := ""
	for i := range n {
		if i == cutAt {
			break
		}
		s := stanzaN(i, 40+rng.IntN(400))
		if !w.write(s) {
			overflowed = s // conn.send: the stanza that overflowed comes back with the queue
			cut = 0
			break
		}
		queued = append(queued, s)
		if rng.IntN(4) == 0 {
			time.Sleep(time.Duration(rng.IntN(200)) * time.Microsecond)
		}
	}
	switch cut {
	case 0: // slow consumer (conn.send)
		r.add(w.takePending())
		if overflowed != "" {
			r.add([]byte(overflowed))
			queued = append(queued, overflowed)
		}
		w.graceDeadline()
		w.closeAfter(final)
	case 1: // peer gone (conn.onReadEnded)
		w.abort()
	case 2: // stream end (conn.finish)
		w.closeAfter(final)
	case 3: // the reader aborts (failed TLS handshake), then the conn ends the stream
		w.abort()
		time.Sleep(time.Duration(rng.IntN(100)) * time.Microsecond)
		w.closeAfter(final)
	}
	if rng.IntN(2) == 0 {
		time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
	}
	r.finally(w)
	r.wait(t)

	written := f.bytes()
	back := r.all()
	if strings.Contains(back, "stream") || strings.Contains(back, "<empty ret>") {
		t.Fatalf("handed back non-stanza bytes: %q", back)
	}
	// What comes back is a sequence of whole queued stanzas.
	byText := make(map[string]int, len(queued))
	for _, s := range queued {
		byText[s]++
	}
	count := map[string]int{}
	for rest := back; rest != ""; {
		end := strings.Index(rest, "</message>")
		if end < 0 || !strings.HasPrefix(rest, "<message ") {
			t.Fatalf("handed back bytes that are not whole stanzas: %q", rest)
		}
		s := rest[:end+len("</message>")]
		if byText[s] == 0 {
			t.Fatalf("handed back something never queued: %q", s)
		}
		count[s]++
		rest = rest[len(s):]
	}
	for _, s := range queued {
		onWire := strings.Count(written, s)
		if onWire+count[s] != 1 {
			t.Fatalf("stanza %.20q: written %d times, handed back %d times", s, onWire, count[s])
		}
	}
	if f.closeCount() != 1 {
		t.Fatalf("socket closed %d times", f.closeCount())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.flushing || !w.closed || len(w.lost) != 0 || w.buf != nil {
		t.Fatalf("writer not finished: flushing %v closed %v lost %d buf %d", w.flushing, w.closed, len(w.lost), len(w.buf))
	}
}

// offer (the session's direct writes) takes an element only while the stream is open and it fits; what it refuses
// the caller hands to the conn actor, so it is never queued behind the end of the stream nor dropped.
func TestWriterOfferRefusesWhatTheConnMustHandle(t *testing.T) {
	a, b, c := stanzaN(1, 100), stanzaN(2, 100), stanzaN(3, 100)
	f := newFakeConn(nil)
	w := newWriter(f, 250, time.Second, nil)
	if !w.offer(a) || !w.offer(b) {
		t.Fatal("an open writer refused an element that fits")
	}
	// Full: a and b may still be queued; c does not fit until they are written.
	waitFor(t, "a and b to be written", func() bool { return f.bytes() == a+b })
	if !w.offer(c) {
		t.Fatal("refused after the queue drained")
	}
	waitFor(t, "c to be written", func() bool { return f.bytes() == a+b+c })
	if w.offer(strings.Repeat("x", 251)) {
		t.Fatal("accepted an element beyond the queue limit")
	}
	w.closeAfter("</stream:stream>")
	if w.offer(a) {
		t.Fatal("accepted an element after the stream's end was queued")
	}
	r := newReturns()
	r.finally(w)
	r.wait(t)
	if got := f.bytes(); got != a+b+c+"</stream:stream>" {
		t.Fatalf("written %q", got)
	}
	if got := r.all(); got != "" {
		t.Fatalf("handed back %q", got)
	}

	// A failed socket the conn has not noticed yet: refused (the conn keeps it as lost and hands it back).
	f = newFakeConn(func(call int, p []byte) (int, bool, bool) { return 0, true, false })
	w = newWriter(f, 1<<20, time.Second, nil)
	mustWrite(t, w, a)
	waitFor(t, "the write to fail", func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.closed })
	if w.offer(b) {
		t.Fatal("accepted an element on a failed socket")
	}
	// During STARTTLS nothing may be queued behind <proceed/>.
	w = newWriter(newFakeConn(func(call int, p []byte) (int, bool, bool) { return 0, false, true }), 1<<20, time.Second, nil)
	w.writeThenPause("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", make(chan struct{}))
	if w.offer(a) {
		t.Fatal("accepted an element behind <proceed/>")
	}
	w.abort()
}

// hold/release: what is queued in between goes out in one Write, even while a flush runs, and a closeAfter under
// a hold still writes everything before the close.
func TestWriterHoldCoalesces(t *testing.T) {
	a, b := stanzaN(1, 100), stanzaN(2, 100)
	for round := 0; round < 200; round++ {
		f := newFakeConn(nil)
		w := newWriter(f, 1<<20, time.Second, nil)
		mustWrite(t, w, a) // starts a flush, which may still be running when the hold begins
		w.hold()
		mustWrite(t, w, header)
		mustWrite(t, w, b)
		w.release()
		w.hold()
		mustWrite(t, w, a)
		w.closeAfter("</stream:stream>")
		w.release()
		r := newReturns()
		r.finally(w)
		r.wait(t)
		if got := f.bytes(); got != a+header+b+a+"</stream:stream>" || r.all() != "" {
			t.Fatalf("written %q, returned %q", got, r.all())
		}
		// a alone, then each held group in one Write (the first group's may have joined a's).
		f.mu.Lock()
		writes := f.writes
		f.mu.Unlock()
		if writes > 3 {
			t.Fatalf("round %d: %d writes, want at most 3", round, writes)
		}
	}
}
