package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
)

// idleWatch tells an actor that it has been quiet for a while. It replaces protoactor's receive timeout
// (SetReceiveTimeout): that timer's goroutine writes the actor context's timer field while the actor's own
// goroutine reads it (asynkron/protoactor-go#1139, a data race the race detector reports under load). Here the
// actor sends itself idleTick every period, on the normal mailbox path, and is idle at a tick when nothing but
// ticks and inspection questions came since the previous one: after one to two periods of quiet.
type idleWatch struct {
	busy   bool // a message since the last tick
	period time.Duration
	cancel scheduler.CancelFunc
}

// idleTick is the watch's self-message.
type idleTick struct{}

func (idleTick) NotInfluenceReceiveTimeout() {}

func (idleTick) IgnoreDeadLetterLogging() {} // one may be on its way when the actor stops

// start begins ticking every period; stop in Stopping. Each tick schedules the next with SendOnce: protoactor's
// SendRepeatedly reads its state word without atomics in the timer goroutine, so cancelling it races.
func (w *idleWatch) start(ctx actor.Context, period time.Duration) {
	w.period = period
	w.next(ctx)
}

func (w *idleWatch) next(ctx actor.Context) {
	w.cancel = scheduler.NewTimerScheduler(ctx).SendOnce(w.period, ctx.Self(), idleTick{})
}

func (w *idleWatch) stop() {
	if w.cancel != nil {
		w.cancel()
		w.cancel = nil
	}
}

// idle takes every message the actor receives (ctx's): true for a tick after a quiet period.
func (w *idleWatch) idle(ctx actor.Context, msg any) bool {
	switch msg.(type) {
	case idleTick:
		if w.cancel != nil {
			w.next(ctx)
		}
		quiet := !w.busy
		w.busy = false
		return quiet
	case *inspect:
		return false
	}
	w.busy = true
	return false
}
