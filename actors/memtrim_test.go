package actors

import (
	"runtime"
	rtmetrics "runtime/metrics"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// After a burst, a quiet process gets its memory back: 100 MiB that were live at the last collection and then
// became garbage, with no allocation after them (so no collection runs by itself), are collected and released:
// what the heap holds (objects, unused and free spans not yet released) falls below twice the trimmer's slack.
func TestMemTrimmerReturnsBurst(t *testing.T) {
	held := func() uint64 {
		s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/free:bytes"},
			{Name: "/memory/classes/heap/unused:bytes"}}
		rtmetrics.Read(s)
		return s[0].Value.Uint64() + s[1].Value.Uint64() + s[2].Value.Uint64()
	}
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
	stop := make(chan struct{})
	done := make(chan struct{})
	log := zerolog.Nop()
	go func() { defer close(done); memTrimmer(stop, &log) }()
	defer func() { close(stop); <-done }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		h := held()
		if h < 2*trimSlack {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("20 s after the burst the heap still holds %d MiB", h>>20)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
