package window

import (
	"math"
	"slices"
	"time"
	"unsafe"
)

// Baseline compares a group's volume in a sliding window with its own
// trailing norm: the median of its per-bucket totals (for instance daily
// totals over 30 days), for rules such as "10× their own 30-day median".
//
// Buckets are aligned on multiples of the bucket width from the Unix epoch
// (daily buckets run from 00:00 to 24:00 UTC). Median(now) looks at the
// completed buckets of the trailing history: the history/bucket buckets
// before the one containing now. A bucket with no activity counts as 0 once
// the group has been seen for it — that is, from the bucket of the group's
// first event on — and buckets before the first event are left out, so a
// new group has a short history rather than a history of zeros. The group's
// first bucket usually covers only part of its activity; it counts as it is.
//
// Memory: one Sum for the window plus up to history/bucket+1 float64 in a
// ring, which grows with the buckets the group has been seen for (one for a
// group seen today only, all of them after a full history).
type Baseline struct {
	cur    Sum
	bucket int64
	ring   []float64 // empty until the first event
	headK  int64     // bucket index of the newest ring slot
	n      int32     // buckets in the history
	// firstOff is how many buckets before headK the first event's bucket
	// lies, capped at n+1: beyond that it makes no difference.
	firstOff int32
}

func (b *Baseline) started() bool { return len(b.ring) > 0 }

// firstK is the first event's bucket index (or n+1 buckets before headK,
// if that is later).
func (b *Baseline) firstK() int64 { return b.headK - int64(b.firstOff) }

func (b *Baseline) setFirstK(k int64) {
	b.firstOff = int32(min(max(b.headK-k, 0), int64(b.n)+1))
}

// NewBaseline returns a baseline with a sliding window of the given width,
// buckets of the given width, and a history of the given length (rounded up
// to whole buckets). It panics if a width is not positive.
func NewBaseline(window, bucket, history time.Duration) *Baseline {
	if bucket <= 0 || history <= 0 {
		panic("window: NewBaseline: bucket and history must be positive")
	}
	b := &Baseline{bucket: int64(bucket), n: int32(min(ceilDiv(int64(history), int64(bucket)), math.MaxInt32-1))}
	b.cur.init(window)
	return b
}

// Add records value v of an event at t, in the window and in its bucket.
// A bucket older than the history is not kept.
func (b *Baseline) Add(t time.Time, v float64) {
	b.cur.Add(t, v)
	k := floorDiv(t.UnixNano(), b.bucket)
	if !b.started() {
		b.ring = make([]float64, 1)
		b.headK, b.firstOff = k, 0
	}
	b.setFirstK(min(b.firstK(), k))
	b.grow(max(k, b.headK))
	if k > b.headK {
		b.roll(k)
	}
	if k <= b.headK-int64(len(b.ring)) {
		return
	}
	b.ring[b.slot(k)] += v
}

// grow makes the ring hold every bucket from the first event's to hi, or
// the history+1 newest of them: the ring always covers the buckets Median
// reads, so it answers as a full-size ring would.
func (b *Baseline) grow(hi int64) {
	need := min(hi-b.firstK()+1, int64(b.n)+1)
	if need <= int64(len(b.ring)) {
		return
	}
	c := int(max(need, min(2*int64(len(b.ring)), int64(b.n)+1)))
	old := b.ring
	b.ring = make([]float64, c)
	for k := b.headK - int64(len(old)) + 1; k <= b.headK; k++ {
		m := k % int64(len(old))
		if m < 0 {
			m += int64(len(old))
		}
		b.ring[b.slot(k)] = old[m]
	}
}

func (b *Baseline) slot(k int64) int {
	m := k % int64(len(b.ring))
	if m < 0 {
		m += int64(len(b.ring))
	}
	return int(m)
}

// roll makes k the newest bucket, zeroing the buckets it passes.
func (b *Baseline) roll(k int64) {
	from := max(b.headK+1, k-int64(len(b.ring))+1)
	for i := from; i <= k; i++ {
		b.ring[b.slot(i)] = 0
	}
	first := b.firstK()
	b.headK = k
	b.setFirstK(first)
}

// Advance moves the sliding window's end and the current bucket to now.
func (b *Baseline) Advance(now time.Time) {
	b.cur.Advance(now)
	if k := floorDiv(now.UnixNano(), b.bucket); b.started() && k > b.headK {
		b.grow(k)
		b.roll(k)
	}
}

// Current is the sum of the values in the sliding window (as of the last
// Advance, plus anything added since).
func (b *Baseline) Current() float64 { return b.cur.Value() }

// Median is the median of the per-bucket totals of the completed buckets of
// the trailing history as of now, and the number of buckets it was taken
// over (each bucket since the group's first event, idle ones as 0). It is
// (0, 0) before the first event or within its first bucket.
func (b *Baseline) Median(now time.Time) (float64, int) {
	if !b.started() {
		return 0, 0
	}
	cur := floorDiv(now.UnixNano(), b.bucket)
	lo := max(cur-int64(b.n), b.firstK(), b.headK-int64(len(b.ring))+1)
	var stack [64]float64
	vals := stack[:0]
	for k := lo; k < cur; k++ {
		v := 0.0
		if k <= b.headK {
			v = b.ring[b.slot(k)]
		}
		vals = append(vals, v)
	}
	n := len(vals)
	if n == 0 {
		return 0, 0
	}
	slices.Sort(vals)
	if n%2 == 1 {
		return vals[n/2], n
	}
	return (vals[n/2-1] + vals[n/2]) / 2, n
}

// Size is the approximate number of bytes the baseline holds.
func (b *Baseline) Size() int {
	return int(unsafe.Sizeof(*b)) + b.cur.sizeEntries() + 8*cap(b.ring)
}
