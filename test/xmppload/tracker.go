package xmppload

// seqTracker follows one stream of sequence numbers (one sender to one
// receiver), numbered from 1. XMPP promises in-order delivery between two
// entities over one server (RFC 6120 §10.1), so the usual case is strictly
// increasing numbers and costs no allocation; gaps are remembered in a small
// set only while they are open.
//
// Definitions used in the report:
//   - duplicate: a number received a second time;
//   - out of order: a first arrival of a number smaller than the largest seen
//     so far (it was overtaken by a later message);
//   - lost: a number that was sent but never received by the end of the
//     drain period (sent - unique).
type seqTracker struct {
	next    uint64              // every number < next has been received
	maxSeen uint64              // largest number received
	above   map[uint64]struct{} // received numbers in (next, maxSeen]
	unique  uint64
	dups    uint64
	ooo     uint64
}

// result of observe, for callers that count per-message outcomes.
type seqOutcome uint8

const (
	seqInOrder seqOutcome = iota
	seqDuplicate
	seqOutOfOrder
)

func (t *seqTracker) observe(seq uint64) seqOutcome {
	if t.next == 0 {
		t.next = 1
	}
	switch {
	case seq < t.next:
		t.dups++
		return seqDuplicate
	case seq == t.next:
		t.unique++
		late := seq < t.maxSeen
		if seq > t.maxSeen {
			t.maxSeen = seq
		}
		t.next++
		for len(t.above) > 0 {
			if _, ok := t.above[t.next]; !ok {
				break
			}
			delete(t.above, t.next)
			t.next++
		}
		if late {
			t.ooo++
			return seqOutOfOrder
		}
		return seqInOrder
	default: // seq > next: a gap is open below it
		if _, ok := t.above[seq]; ok {
			t.dups++
			return seqDuplicate
		}
		if t.above == nil {
			t.above = make(map[uint64]struct{})
		}
		t.above[seq] = struct{}{}
		t.unique++
		if seq < t.maxSeen {
			t.ooo++
			return seqOutOfOrder
		}
		t.maxSeen = seq
		return seqInOrder
	}
}
