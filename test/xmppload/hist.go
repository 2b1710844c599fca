package xmppload

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram is an HDR-style log-linear histogram of non-negative int64 values
// (we record nanoseconds). Values below 128 are counted exactly; above that,
// each power-of-two range is split into 64 equal sub-buckets, so every
// recorded value is known to within 1/64 (1.6 %) of its true value whatever
// its magnitude. That keeps the whole histogram at a fixed ~30 KiB of
// counters, safe to update concurrently with atomic adds from thousands of
// connection goroutines, with no per-sample allocation.
type Histogram struct {
	counts [histBuckets]atomic.Int64
	n      atomic.Int64
	sum    atomic.Int64
	min    atomic.Int64 // valid only when n > 0; stored as value+1 so zero means unset
	max    atomic.Int64
}

const (
	histSubBits  = 7
	histSubCount = 1 << histSubBits // 128
	histHalf     = histSubCount / 2 // 64
	// shift ranges over 1..57 for 63-bit values; index = (shift+1)*64 + sub.
	histBuckets = (64-histSubBits+1)*histHalf + histHalf
)

func histIndex(v int64) int {
	if v < histSubCount {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - histSubBits
	return (shift+1)*histHalf + int(v>>uint(shift)) - histHalf
}

// histBounds returns the inclusive range [lo, hi] of values counted in bucket i.
func histBounds(i int) (lo, hi int64) {
	if i < histSubCount {
		return int64(i), int64(i)
	}
	shift := i/histHalf - 1
	sub := int64(i%histHalf + histHalf)
	lo = sub << uint(shift)
	hi = lo + (int64(1) << uint(shift)) - 1
	return lo, hi
}

// Record adds one value; negative values are clamped to zero (clock skew
// between goroutines cannot make a latency negative in a monotonic clock, but
// a caller's arithmetic might).
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[histIndex(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		cur := h.max.Load()
		if v <= cur || h.max.CompareAndSwap(cur, v) {
			break
		}
	}
	for {
		cur := h.min.Load()
		if (cur != 0 && v+1 >= cur) || h.min.CompareAndSwap(cur, v+1) {
			break
		}
	}
}

// RecordDuration records d in nanoseconds.
func (h *Histogram) RecordDuration(d time.Duration) { h.Record(int64(d)) }

// Count is the number of recorded values.
func (h *Histogram) Count() int64 { return h.n.Load() }

// Max is the largest recorded value (exact), or 0.
func (h *Histogram) Max() int64 { return h.max.Load() }

// Min is the smallest recorded value (exact), or 0.
func (h *Histogram) Min() int64 {
	m := h.min.Load()
	if m == 0 {
		return 0
	}
	return m - 1
}

// Mean is the exact arithmetic mean, or 0.
func (h *Histogram) Mean() float64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return float64(h.sum.Load()) / float64(n)
}

// Quantile returns the value at quantile q in [0,1] using the nearest-rank
// definition (the smallest value v such that at least ceil(q*n) values are
// <= v), reported as the midpoint of its bucket and clamped to the exact
// min/max. Its relative error is at most 1/128 of the true rank value.
func (h *Histogram) Quantile(q float64) int64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, hi := histBounds(i)
			v := lo + (hi-lo)/2
			if mx := h.Max(); v > mx {
				v = mx
			}
			if mn := h.Min(); v < mn {
				v = mn
			}
			return v
		}
	}
	return h.Max()
}

// Merge adds all of o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	if o.n.Load() == 0 {
		return
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	for {
		cur, v := h.max.Load(), o.max.Load()
		if v <= cur || h.max.CompareAndSwap(cur, v) {
			break
		}
	}
	for {
		cur, v := h.min.Load(), o.min.Load()
		if (cur != 0 && v >= cur) || h.min.CompareAndSwap(cur, v) {
			break
		}
	}
}

// Percentiles is the summary printed in reports, in milliseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// SummaryMS summarises a histogram of nanoseconds in milliseconds.
func (h *Histogram) SummaryMS() Percentiles {
	ms := func(ns int64) float64 { return math.Round(float64(ns)/1e3) / 1e3 }
	return Percentiles{
		Count: h.Count(),
		Min:   ms(h.Min()),
		Mean:  math.Round(h.Mean()/1e3) / 1e3,
		P50:   ms(h.Quantile(0.50)),
		P90:   ms(h.Quantile(0.90)),
		P99:   ms(h.Quantile(0.99)),
		P999:  ms(h.Quantile(0.999)),
		Max:   ms(h.Max()),
	}
}
