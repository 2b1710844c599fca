package actors

import (
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"time"

	"github.com/rs/zerolog"
)

// Returning memory when the server is quiet (issue 17). With the Go runtime's defaults (GOGC=100, no memory
// limit) a process holds about twice its live heap: the next collection is due at twice what the last one kept,
// and the background scavenger returns to the system only what lies above that goal. For a server of mostly
// idle connections that doubles the memory per connection, and after a burst (logins, large stanzas) the heap
// that served it stays resident (with no allocation after it, no collection even runs to find it garbage).
// memTrimmer samples runtime/metrics every half second; when the heap has been quiet for two samples (allocating
// less than 4 MiB/s, i.e. no load worth the name) and holds much more than was live after its last
// trim (half again, at least trimSlack), it runs one collection and returns every free page (debug.FreeOSMemory). The cost is one full
// collection after a burst, only when the process is quiet; no GOGC or memory-limit setting is changed, so under
// load the runtime behaves as by default. A goroutine of its own: it owns only its samples.
//
// A trim right after a burst finds live what the connections still hold for a moment: a reader keeps its
// decoder buffer, grown by a large stanza, until it parks (quietPeriod after its last byte) and only then drops
// it. Those megabytes turn to garbage with nothing allocated after them, so no collection finds them and the
// held-versus-floor rule, whose floor the trim has just raised to include them, never fires again: after a
// 64 KiB message to each of 2,000 connections the heap stayed at 190 KiB per connection (issue 17). Hence one
// follow-up trim, trimFollowUp after each trim, once the process is quiet, whatever it holds.
const (
	trimEvery   = 500 * time.Millisecond
	quietAllocs = 2 << 20  // bytes allocated per trimEvery below which the server is quiet (4 MiB/s)
	trimSlack   = 16 << 20 // held beyond live heap below which trimming is not worth a collection
	trimGap     = 10 * time.Second
	// trimFollowUp: after a trim, when every reader that was active before it has parked (a reader parks at
	// most quietPeriod after its last byte) and one more sample has shown the process quiet.
	trimFollowUp = quietPeriod + trimEvery
)

var trimSamples = []string{"/gc/heap/allocs:bytes", "/gc/heap/live:bytes", "/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes", "/memory/classes/heap/free:bytes"}

func memTrimmer(stop <-chan struct{}, log *zerolog.Logger) {
	s := make([]rtmetrics.Sample, len(trimSamples))
	for i, n := range trimSamples {
		s[i].Name = n
	}
	read := func() (allocs, live, held uint64, ok bool) {
		rtmetrics.Read(s)
		for _, x := range s {
			if x.Value.Kind() != rtmetrics.KindUint64 {
				return 0, 0, 0, false
			}
		}
		return s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64() + s[3].Value.Uint64() + s[4].Value.Uint64(), true
	}
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	var last uint64
	quiet := 0
	var trimmed, gapFrom time.Time // the last trim, the last one not a follow-up
	var floor uint64               // live heap after the last trim
	var followUp bool              // the last trim was not a follow-up: one is due trimFollowUp after it
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		allocs, _, held, ok := read()
		if !ok {
			return // a runtime without these metrics: nothing to decide on
		}
		if last != 0 && allocs-last < quietAllocs {
			quiet++
		} else {
			quiet = 0
		}
		last = allocs
		due := followUp && time.Since(trimmed) >= trimFollowUp
		if quiet < 2 || !due && (held < floor+max(floor/2, trimSlack) || time.Since(gapFrom) < trimGap) {
			continue
		}
		followUp = !due
		start := time.Now()
		debug.FreeOSMemory()
		trimmed = time.Now()
		if !due {
			gapFrom = trimmed // a follow-up does not hold back the next burst's trim
		}
		_, live2, held2, _ := read()
		floor = live2
		log.Debug().Bool("follow_up", due).Uint64("held_before", held).Uint64("live", live2).Uint64("held_after", held2).
			Dur("took", time.Since(start)).Msg("quiet: memory returned to the system")
		quiet = 0
		last = 0
	}
}
