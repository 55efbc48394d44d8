package window

import (
	"time"
	"unsafe"
)

// Pending is an expected event A that was not followed by B in time.
type Pending struct {
	At       time.Time // time of A
	Deadline time.Time // At + T: the last time a B would have satisfied it
	Ref      string    // A's reference (event id)
}

// maxSeen bounds the B times an Absence remembers for late A events.
const maxSeen = 16

// Absence detects "A not followed by B within T" in event time.
//
// Expect records an A; Satisfy records a B at t, which satisfies every
// pending A with A.t <= t <= A.t+T (both ends included). Expired(watermark)
// returns, in time order, and forgets the As whose deadline A.t+T is before
// the watermark: with the engine's watermark (newest event time minus the
// allowed lateness; an event older than it is dropped as late) no B that
// could satisfy them can still arrive. A B at exactly the deadline still
// counts.
//
// Out-of-order arrival is handled both ways: a late B satisfies the pending
// As it covers, and a late A is checked against the B times seen since the
// last watermark (a few are kept: a B between two others less than T apart
// adds nothing and is forgotten). An A older than the last watermark is
// ignored, as the engine would have dropped it.
//
// It holds at most maxPending pending As (maxPending <= 0 means 1024): beyond
// that the one with the earliest time is dropped (the most recent are kept)
// and counted by Dropped.
type Absence struct {
	within  int64
	max     int
	wm      int64
	pending []pend  // ascending time, then arrival
	seen    []int64 // B times >= wm, ascending, without redundant ones
	refLen  int
	dropped uint64
}

type pend struct {
	t   int64
	ref string
}

// NewAbsence returns a detector of A not followed by B within the given span,
// holding at most maxPending pending As. It panics if within < 0.
func NewAbsence(within time.Duration, maxPending int) *Absence {
	if within < 0 {
		panic("window: NewAbsence: within must not be negative")
	}
	if maxPending <= 0 {
		maxPending = 1024
	}
	return &Absence{within: int64(within), max: maxPending, wm: noTime}
}

// Expect records an A at t with reference ref.
func (a *Absence) Expect(t time.Time, ref string) {
	ts := t.UnixNano()
	if ts < a.wm {
		return
	}
	// A B already seen may satisfy it (the A arrived late).
	lo, hi := 0, len(a.seen)
	for lo < hi {
		m := (lo + hi) / 2
		if a.seen[m] < ts {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(a.seen) && a.seen[lo]-ts <= a.within {
		return
	}
	k := len(a.pending)
	for k > 0 && a.pending[k-1].t > ts {
		k--
	}
	if len(a.pending) >= a.max {
		a.dropped++
		if k == 0 {
			return // the new one is the earliest
		}
		a.refLen -= len(a.pending[0].ref)
		copy(a.pending, a.pending[1:])
		a.pending = a.pending[:len(a.pending)-1]
		k--
	}
	a.pending = append(a.pending, pend{})
	copy(a.pending[k+1:], a.pending[k:])
	a.pending[k] = pend{ts, ref}
	a.refLen += len(ref)
}

// Satisfy records a B at t: every pending A with A.t <= t <= A.t+T is
// satisfied and forgotten.
func (a *Absence) Satisfy(t time.Time) {
	ts := t.UnixNano()
	from := cutoff(ts, a.within) // A.t >= t-T
	lo := 0
	for lo < len(a.pending) && a.pending[lo].t < from {
		lo++
	}
	hi := lo
	for hi < len(a.pending) && a.pending[hi].t <= ts {
		a.refLen -= len(a.pending[hi].ref)
		hi++
	}
	if hi > lo {
		n := lo + copy(a.pending[lo:], a.pending[hi:])
		clear(a.pending[n:])
		a.pending = a.pending[:n]
	}
	if ts >= a.wm {
		a.remember(ts)
	}
}

// remember keeps B time ts for late As. Of three B times less than T apart
// the middle one satisfies nothing the other two do not, so it is dropped.
func (a *Absence) remember(ts int64) {
	k := len(a.seen)
	for k > 0 && a.seen[k-1] > ts {
		k--
	}
	if k > 0 && a.seen[k-1] == ts {
		return
	}
	a.seen = append(a.seen, 0)
	copy(a.seen[k+1:], a.seen[k:])
	a.seen[k] = ts
	w := 0
	for _, b := range a.seen {
		for w >= 2 && b-a.seen[w-2] <= a.within {
			w--
		}
		a.seen[w] = b
		w++
	}
	a.seen = a.seen[:w]
	if w > maxSeen {
		n := copy(a.seen, a.seen[w-maxSeen:])
		a.seen = a.seen[:n]
	}
}

// Expired returns, in time order, the pending As whose deadline A.t+T is
// before watermark, and forgets them. It returns nil when there are none.
func (a *Absence) Expired(watermark time.Time) []Pending {
	wm := watermark.UnixNano()
	if wm > a.wm {
		a.wm = wm
		k := 0
		for k < len(a.seen) && a.seen[k] < wm {
			k++
		}
		if k > 0 {
			n := copy(a.seen, a.seen[k:])
			a.seen = a.seen[:n]
		}
	}
	from := cutoff(wm, a.within) // deadline < wm  <=>  A.t < wm-T
	k := 0
	for k < len(a.pending) && a.pending[k].t < from {
		k++
	}
	if k == 0 {
		return nil
	}
	out := make([]Pending, k)
	for i, p := range a.pending[:k] {
		out[i] = Pending{At: time.Unix(0, p.t).UTC(), Deadline: time.Unix(0, p.t+a.within).UTC(), Ref: p.ref}
		a.refLen -= len(p.ref)
	}
	n := copy(a.pending, a.pending[k:])
	clear(a.pending[n:])
	a.pending = a.pending[:n]
	if n == 0 && cap(a.pending) > 8 {
		a.pending = nil
	}
	return out
}

// Len is the number of pending As.
func (a *Absence) Len() int { return len(a.pending) }

// Dropped is the number of pending As dropped because of the bound.
func (a *Absence) Dropped() uint64 { return a.dropped }

// Size is the approximate number of bytes the detector holds, including the
// bytes of the references it keeps.
func (a *Absence) Size() int {
	return int(unsafe.Sizeof(*a)) + cap(a.pending)*int(unsafe.Sizeof(pend{})) + cap(a.seen)*8 + a.refLen
}

// NextDeadline is the earliest deadline of a pending A: Expired returns it
// once the watermark passes it. ok is false when nothing is pending.
func (a *Absence) NextDeadline() (time.Time, bool) {
	if len(a.pending) == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, a.pending[0].t+a.within).UTC(), true
}
