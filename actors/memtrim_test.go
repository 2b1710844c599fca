package actors

import (
	"runtime"
	rtmetrics "runtime/metrics"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// heapHeld is what the heap holds: objects, unused and free spans not yet released.
func heapHeld() uint64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64() + s[2].Value.Uint64()
}

// startTrimmer runs a memTrimmer until the returned func stops it.
func startTrimmer() (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	log := zerolog.Nop()
	go func() { defer close(done); memTrimmer(quit, &log) }()
	return func() { close(quit); <-done }
}

// After a burst, a quiet process gets its memory back: 100 MiB that were live at the last collection and then
// became garbage, with no allocation after them (so no collection runs by itself), are collected and released:
// what the heap holds (objects, unused and free spans not yet released) falls below twice the trimmer's slack.
func TestMemTrimmerReturnsBurst(t *testing.T) {
	keep := make([][]byte, 0, 1600)
	for range 1600 { // 100 MiB, then dropped
		keep = append(keep, make([]byte, 64<<10))
	}
	for i := range keep {
		keep[i][0] = byte(i)
	}
	runtime.GC() // the burst is live at this collection
	runtime.KeepAlive(keep)
	keep = nil
	defer startTrimmer()()
	deadline := time.Now().Add(20 * time.Second)
	for {
		h := heapHeld()
		if h < 2*trimSlack {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("20 s after the burst the heap still holds %d MiB", h>>20)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Memory that turns to garbage just after a trim, with nothing allocated after it, is returned too: the
// trimmer's first collection finds 100 MiB live (a burst's decoder buffers, held until their readers park),
// the buffers are dropped after it, and without a follow-up trim no collection would ever find them garbage
// (the held-versus-floor rule compares with the floor that first trim just raised).
func TestMemTrimmerFollowUpReturnsLateGarbage(t *testing.T) {
	forced := func() uint64 {
		s := []rtmetrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
		rtmetrics.Read(s)
		return s[0].Value.Uint64()
	}
	keep := make([][]byte, 0, 1600)
	for range 1600 { // 100 MiB, live through the first trim
		keep = append(keep, make([]byte, 64<<10))
	}
	for i := range keep {
		keep[i][0] = byte(i)
	}
	before := forced()
	defer startTrimmer()()
	deadline := time.Now().Add(20 * time.Second)
	for forced() == before { // the first trim
		if time.Now().After(deadline) {
			t.Fatal("no trim within 20 s of a quiet process holding 100 MiB")
		}
		time.Sleep(50 * time.Millisecond)
	}
	runtime.KeepAlive(keep)
	keep = nil
	// Within the follow-up delay and a few samples, well before trimGap would let the ordinary rule try again.
	deadline = time.Now().Add(trimFollowUp + 3*time.Second)
	for {
		h := heapHeld()
		if h < 2*trimSlack {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after the trim the heap still holds %d MiB that turned to garbage after it", trimFollowUp+3*time.Second, h>>20)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
