package xmppload

import (
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
)

// oracle is the nearest-rank percentile of a sorted slice.
func oracle(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func TestHistogramBucketsContiguous(t *testing.T) {
	prevHi := int64(-1)
	for i := 0; i < histBuckets; i++ {
		lo, hi := histBounds(i)
		if lo < 0 || hi < lo { // past the last bucket of 63-bit values
			break
		}
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if histIndex(lo) != i || histIndex(hi) != i {
			t.Fatalf("bucket %d [%d,%d] maps back to %d,%d", i, lo, hi, histIndex(lo), histIndex(hi))
		}
		if lo >= histSubCount && float64(hi-lo+1)/float64(lo) > 1.0/64+1e-12 {
			t.Fatalf("bucket %d [%d,%d] wider than 1/64", i, lo, hi)
		}
		prevHi = hi
		if hi == math.MaxInt64 {
			break
		}
	}
	if histIndex(math.MaxInt64) >= histBuckets {
		t.Fatalf("max value index %d out of range", histIndex(math.MaxInt64))
	}
}

func TestHistogramQuantilesMatchSortedOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		gen  func() int64
		n    int
	}{
		{"small-exact", func() int64 { return rng.Int64N(128) }, 1000},
		{"log-uniform-ns", func() int64 { return int64(math.Exp(rng.Float64() * math.Log(1e10))) }, 50000},
		{"latency-like", func() int64 { return 200_000 + int64(rng.ExpFloat64()*2e6) }, 20000},
		{"single", func() int64 { return 123456789 }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			vals := make([]int64, tc.n)
			for i := range vals {
				vals[i] = tc.gen()
				h.Record(vals[i])
			}
			sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
			if h.Count() != int64(tc.n) || h.Min() != vals[0] || h.Max() != vals[len(vals)-1] {
				t.Fatalf("count/min/max = %d/%d/%d, want %d/%d/%d", h.Count(), h.Min(), h.Max(), tc.n, vals[0], vals[len(vals)-1])
			}
			for _, q := range []float64{0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1} {
				got, want := h.Quantile(q), oracle(vals, q)
				tol := float64(want) / 128
				if want < histSubCount {
					tol = 0
				}
				if math.Abs(float64(got-want)) > tol+0.5 {
					t.Errorf("q=%v: got %d, oracle %d (tolerance %.1f)", q, got, want, tol)
				}
			}
		})
	}
}

func TestHistogramEmptyAndNegative(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram should report zeros")
	}
	h.Record(-5)
	if h.Count() != 1 || h.Max() != 0 || h.Min() != 0 {
		t.Fatalf("negative value not clamped: n=%d max=%d min=%d", h.Count(), h.Max(), h.Min())
	}
}

func TestHistogramConcurrentAndMerge(t *testing.T) {
	var a, b Histogram
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(1); i <= 1000; i++ {
				a.Record(i * 1000)
			}
		}()
	}
	wg.Wait()
	if a.Count() != 8000 || a.Max() != 1_000_000 || a.Min() != 1000 {
		t.Fatalf("concurrent: n=%d max=%d min=%d", a.Count(), a.Max(), a.Min())
	}
	b.Record(5)
	b.Record(2_000_000)
	b.Merge(&a)
	if b.Count() != 8002 || b.Min() != 5 || b.Max() != 2_000_000 {
		t.Fatalf("merge: n=%d min=%d max=%d", b.Count(), b.Min(), b.Max())
	}
	if p := b.Quantile(0.5); math.Abs(float64(p-500_000)) > 500_000.0/128+1000 {
		t.Fatalf("merged p50 = %d, want ~500000", p)
	}
	s := b.SummaryMS()
	if s.Max != 2 || s.Count != 8002 {
		t.Fatalf("summary %+v", s)
	}
}
