package window

import (
	"time"
	"unsafe"
)

// SumExact is the number of newest events a Sum keeps exactly; older events
// in the window are coalesced into sub-buckets of width W/SumGrain.
const SumExact = 16

// SumGrain is the number of sub-buckets per window width a Sum coalesces
// older events into.
const SumGrain = 64

// Sum is a true sliding count and sum over the event-time window (now-W, now].
//
// It keeps the newest SumExact events exactly. When more events are in the
// window, the oldest ones are coalesced into sub-buckets aligned on multiples
// of g = W/SumGrain (from the Unix epoch); a sub-bucket keeps the time of its
// newest event and leaves the window when that event does. Hence, for
// non-negative values:
//
//	exact(now-W, now]  <=  Value()  <=  exact(now-W-g, now]
//
// and the same for Count: a coalesced event is counted at most g = W/64 too
// long (56.25 s for a 1 h window), never too short, so a burst that really
// happened within W is always seen. While at most SumExact events are in the
// window the figures are exact. Memory is bounded by SumExact exact entries
// plus one sub-bucket per grain of the window (65) plus the late events' own
// grains: 72 bytes idle, at most about 2.7 KiB whatever the event rate.
//
// Values are float64: sums of integers (counts, bytes) are exact below 2^53.
type Sum struct {
	width  int64
	now    int64
	sum    float64
	n      int
	exact  ring[sample]
	coarse *ring[bucket] // nil until events are coalesced (few groups get there)
}

type sample struct {
	t int64
	v float64
}

// bucket is a run of coalesced events of one grain: t is the newest event's
// time, v their sum and n their number.
type bucket struct {
	t int64
	v float64
	n int64
}

// NewSum returns an empty sliding sum over windows of the given width. It
// panics if width is not positive.
func NewSum(width time.Duration) *Sum {
	s := &Sum{}
	s.init(width)
	return s
}

func (s *Sum) init(width time.Duration) {
	if width <= 0 {
		panic("window: NewSum: width must be positive")
	}
	s.width = int64(width)
	s.now = noTime
}

// grain is the width of a coarse sub-bucket, W/SumGrain (computed, not
// stored: a Sum is kept per group and small).
func (s *Sum) grain() int64 { return max(s.width/SumGrain, 1) }

// Add records value v of an event at t. An event at or before the start of
// the current window (t <= now-W) is ignored; a late event inside the window
// counts for it.
func (s *Sum) Add(t time.Time, v float64) {
	ts := t.UnixNano()
	if ts <= cutoff(s.now, s.width) {
		return
	}
	s.sum += v
	s.n++
	// Invariant: every coarse bucket is no newer than every exact sample.
	if s.coarse.len() > 0 {
		if (s.exact.len() > 0 && ts < s.exact.front().t) || (s.exact.len() == 0 && ts < s.coarse.back().t) {
			s.merge(ts, v, 1)
			return
		}
	}
	s.exact.reserve(SumExact + 1) // it never holds more
	i := s.exact.len()
	for i > 0 && s.exact.at(i-1).t > ts {
		i--
	}
	if i == s.exact.len() {
		s.exact.pushBack(sample{ts, v})
	} else {
		s.exact.insert(i, sample{ts, v})
	}
	if s.exact.len() > SumExact {
		old := *s.exact.front()
		s.exact.popFront()
		s.merge(old.t, old.v, 1)
	}
}

// merge adds n events worth v at ts to the coarse bucket of ts's grain.
func (s *Sum) merge(ts int64, v float64, n int64) {
	g := s.grain()
	cell := floorDiv(ts, g)
	// Fast path: the newest bucket (events arrive mostly in order).
	i := s.coarse.len()
	if i > 0 {
		b := s.coarse.back()
		bc := floorDiv(b.t, g)
		if bc == cell {
			b.v += v
			b.n += n
			b.t = max(b.t, ts)
			return
		}
		if bc > cell {
			// Late: binary search the first bucket whose grain is >= cell.
			lo, hi := 0, s.coarse.len()
			for lo < hi {
				m := (lo + hi) / 2
				if floorDiv(s.coarse.at(m).t, g) < cell {
					lo = m + 1
				} else {
					hi = m
				}
			}
			if b := s.coarse.at(lo); floorDiv(b.t, g) == cell {
				b.v += v
				b.n += n
				b.t = max(b.t, ts)
				return
			}
			i = lo
		}
	}
	if s.coarse == nil {
		s.coarse = new(ring[bucket])
	}
	if i == s.coarse.len() {
		s.coarse.pushBack(bucket{ts, v, n})
	} else {
		s.coarse.insert(i, bucket{ts, v, n})
	}
}

// Advance moves the end of the window to now and evicts what left it. An
// older now than the previous one is ignored.
func (s *Sum) Advance(now time.Time) {
	ns := now.UnixNano()
	if ns <= s.now {
		return
	}
	s.now = ns
	cut := cutoff(ns, s.width)
	for s.coarse.len() > 0 && s.coarse.front().t <= cut {
		b := s.coarse.front()
		s.sum -= b.v
		s.n -= int(b.n)
		s.coarse.popFront()
	}
	for s.exact.len() > 0 && s.exact.front().t <= cut {
		s.sum -= s.exact.front().v
		s.n--
		s.exact.popFront()
	}
	if s.n == 0 {
		// No rounding residue survives an empty window, and an idle group
		// holds no buffers.
		s.sum = 0
		s.exact.clear()
		s.coarse = nil
	}
}

// Value is the sum of the values in the window.
func (s *Sum) Value() float64 { return s.sum }

// Count is the number of events in the window.
func (s *Sum) Count() int { return s.n }

// Empty reports whether no event is in the window.
func (s *Sum) Empty() bool { return s.n == 0 }

// Oldest is the time of the earliest event still counted. When that event
// has been coalesced it is the start of its sub-bucket, up to W/64 before the
// event itself.
func (s *Sum) Oldest() (time.Time, bool) {
	switch {
	case s.coarse.len() > 0:
		return time.Unix(0, floorDiv(s.coarse.front().t, s.grain())*s.grain()).UTC(), true
	case s.exact.len() > 0:
		return time.Unix(0, s.exact.front().t).UTC(), true
	}
	return time.Time{}, false
}

// Size is the approximate number of bytes the Sum holds.
func (s *Sum) Size() int {
	return int(unsafe.Sizeof(*s)) + s.sizeEntries()
}

func (s *Sum) sizeEntries() int {
	n := len(s.exact.buf) * int(unsafe.Sizeof(sample{}))
	if s.coarse != nil {
		n += int(unsafe.Sizeof(*s.coarse)) + len(s.coarse.buf)*int(unsafe.Sizeof(bucket{}))
	}
	return n
}
