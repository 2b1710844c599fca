package actors

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWorkersRunEverythingOnce: every scheduled function runs exactly once, from many schedulers at once, and
// blocked runs do not keep others from running (a run that waits holds only its own goroutine).
func TestWorkersRunEverythingOnce(t *testing.T) {
	w := newWorkers(4)
	defer w.close()
	const n = 2000
	var ran [n]atomic.Int32
	var all sync.WaitGroup
	all.Add(n)
	// Eight runs block until the rest have all run: with only a pool of waiting goroutines that would deadlock.
	release := make(chan struct{})
	var rest sync.WaitGroup
	rest.Add(n - 8)
	for i := range 8 {
		w.Schedule(func() { <-release; ran[i].Add(1); all.Done() })
	}
	var schedulers sync.WaitGroup
	for s := range 4 {
		schedulers.Add(1)
		go func() {
			defer schedulers.Done()
			for i := 8 + s; i < n; i += 4 {
				w.Schedule(func() { ran[i].Add(1); rest.Done(); all.Done() })
			}
		}()
	}
	schedulers.Wait()
	rest.Wait()
	close(release)
	all.Wait()
	for i := range ran {
		if got := ran[i].Load(); got != 1 {
			t.Fatalf("function %d ran %d times", i, got)
		}
	}
	// Afterwards at most maxIdle goroutines wait.
	waitFor(t, "the extra goroutines to end", func() bool { return w.idle.Load() <= 4 })
	if got := w.idle.Load(); got < 1 {
		t.Fatalf("%d goroutines kept after a burst, want some (up to 4)", got)
	}
}

// TestWorkersReuse: a goroutine that finished its work waits and takes the next one, and close ends it; after
// close, work still runs (on a goroutine of its own).
func TestWorkersReuse(t *testing.T) {
	w := newWorkers(2)
	const runs = 100
	for range runs {
		done := make(chan struct{})
		w.Schedule(func() { close(done) })
		<-done
		waitFor(t, "a goroutine to wait for work", func() bool { return w.idle.Load() >= 1 })
	}
	// Each run found the goroutine of the one before waiting, but for the rare one scheduled in the instant
	// between its announcing itself idle and its waiting.
	if got := w.started.Load(); got > runs/2 {
		t.Fatalf("%d goroutines started for %d runs one after the other", got, runs)
	}
	w.close()
	waitFor(t, "close to end the waiting goroutines", func() bool { return w.idle.Load() == 0 })
	after := make(chan struct{})
	w.Schedule(func() { close(after) })
	select {
	case <-after:
	case <-time.After(5 * time.Second):
		t.Fatal("work scheduled after close did not run")
	}
	waitFor(t, "nothing to wait after close", func() bool { return w.idle.Load() == 0 })
	w.close() // twice is harmless
}
