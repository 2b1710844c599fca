package actors

import (
	"sync"
	"sync/atomic"
)

// workers runs the actors' mailboxes and the writers' flushes on goroutines that are kept after their work is
// done, instead of one new goroutine each time (protoactor's default dispatcher is `go fn()`).
//
// Why: a new goroutine starts on a small stack, and a mailbox run (a user actor's delivery, a session's hooks, a
// conn's write) or a TLS write is deep enough to grow it, so each message hop paid for copying its stack once or
// twice (runtime.newstack/copystack: 12 % of the server's CPU in BenchmarkPEPFanout, docs/benchmarks.md "Fan-out
// hops"). A kept goroutine keeps its grown stack.
//
// It never makes anything wait: Schedule hands fn to a goroutine already waiting for work if there is one, and
// starts a new goroutine otherwise, so a run that blocks (a storage call, a Write to a slow socket) holds only
// its own goroutine, as before. At most maxIdle goroutines wait at any time; the others end when their work is
// done. close ends the waiting ones and makes every later Schedule start a goroutine of its own (the actor
// system may still run mailboxes while it shuts down).
type workers struct {
	work     chan func() // unbuffered: a send succeeds only when a worker is waiting
	done     chan struct{}
	closing  sync.Once
	idle     atomic.Int32 // goroutines waiting on work, or about to
	maxIdle  int32
	through  int // mailbox throughput before it yields (protoactor's default: 300)
	shutdown atomic.Bool
	started  atomic.Int64 // goroutines started (dispatch_test.go checks that they are reused)
}

// maxIdleWorkers bounds the goroutines kept waiting: enough for the mailbox runs of a burst on two cores (a
// fan-out to 100 recipients makes about 300 runnable at once), few enough that their stacks (8–32 KiB each) do not
// matter beside the connections' memory.
const maxIdleWorkers = 128

func newWorkers(maxIdle int) *workers {
	return &workers{work: make(chan func()), done: make(chan struct{}), maxIdle: int32(maxIdle), through: 300}
}

// Schedule implements actor.Dispatcher.
func (w *workers) Schedule(fn func()) {
	select {
	case w.work <- fn:
	default:
		w.started.Add(1)
		go w.run(fn)
	}
}

// Throughput implements actor.Dispatcher.
func (w *workers) Throughput() int { return w.through }

// run does fn, then waits for more while fewer than maxIdle goroutines wait.
func (w *workers) run(fn func()) {
	for {
		fn()
		fn = nil
		if w.shutdown.Load() {
			return
		}
		if w.idle.Add(1) > w.maxIdle {
			w.idle.Add(-1)
			return
		}
		select {
		case fn = <-w.work:
			w.idle.Add(-1)
		case <-w.done:
			w.idle.Add(-1)
			return
		}
	}
}

// close ends the waiting goroutines.
func (w *workers) close() {
	w.closing.Do(func() {
		w.shutdown.Store(true)
		close(w.done)
	})
}
