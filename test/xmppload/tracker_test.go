package xmppload

import "testing"

func TestSeqTracker(t *testing.T) {
	for _, tc := range []struct {
		name            string
		sent            uint64
		recv            []uint64
		unique, dup, oo uint64
	}{
		{"in order", 5, []uint64{1, 2, 3, 4, 5}, 5, 0, 0},
		{"nothing", 3, nil, 0, 0, 0},
		{"tail lost", 5, []uint64{1, 2, 3}, 3, 0, 0},
		{"gap lost", 5, []uint64{1, 2, 4, 5}, 4, 0, 0},
		{"duplicate in prefix", 3, []uint64{1, 2, 2, 3, 1}, 3, 2, 0},
		{"swap", 3, []uint64{2, 1, 3}, 3, 0, 1},
		{"late fill", 5, []uint64{1, 4, 5, 2, 3}, 5, 0, 2},
		{"duplicate above gap", 5, []uint64{1, 3, 3, 5}, 3, 1, 0},
		{"duplicate of late", 4, []uint64{3, 1, 1, 2, 4}, 4, 1, 2},
		{"reverse", 4, []uint64{4, 3, 2, 1}, 4, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr seqTracker
			for _, s := range tc.recv {
				tr.observe(s)
			}
			if tr.unique != tc.unique || tr.dups != tc.dup || tr.ooo != tc.oo {
				t.Fatalf("unique/dups/ooo = %d/%d/%d, want %d/%d/%d", tr.unique, tr.dups, tr.ooo, tc.unique, tc.dup, tc.oo)
			}
			if lost := tc.sent - tr.unique; lost != tc.sent-tc.unique {
				t.Fatalf("lost %d", lost)
			}
			if tr.unique == tc.sent && len(tr.above) != 0 {
				t.Fatalf("gap set not emptied: %v", tr.above)
			}
		})
	}
}

func TestSeqTrackerOutcomes(t *testing.T) {
	var tr seqTracker
	want := []seqOutcome{seqInOrder, seqInOrder, seqOutOfOrder, seqDuplicate, seqDuplicate}
	for i, s := range []uint64{1, 3, 2, 3, 1} {
		if got := tr.observe(s); got != want[i] {
			t.Fatalf("observe #%d (%d) = %d, want %d", i, s, got, want[i])
		}
	}
}

func TestSeqTrackerInOrderDoesNotAllocate(t *testing.T) {
	var tr seqTracker
	seq := uint64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		tr.observe(seq)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per in-order message", allocs)
	}
}
