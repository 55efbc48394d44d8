// Package window owns per-group sliding-window state in event time.
//
// Every type here is pure and deterministic: it never reads the clock, starts
// no goroutine and is not safe for concurrent use (the engine keeps one value
// per (rule, group) and drives it from one goroutine). Times are event times;
// they are kept as Unix nanoseconds, so they must lie between the years 1678
// and 2262.
//
// # Windows and boundaries
//
// A window of width W at time now covers the half-open interval (now-W, now]:
// an event exactly W older than now has left the window, an event at now is in
// it. Advance(now) moves the end of the window; it never moves backwards (an
// older now is ignored). Add never advances the window by itself, so an event
// newer than the last Advance is counted at once and the caller decides when
// time moves (the engine calls Advance with the group's newest event time).
//
// Sequence and Absence measure a span instead of a window, and their span is
// closed: "B within T of A" holds when A.t <= B.t <= A.t+T, the EQL maxspan
// convention.
//
// # Lateness
//
// Events may arrive out of order. An Add whose time is still inside the
// current window (t > now-W) is applied exactly where it belongs and counts
// for the window ending at now; an Add at or before now-W is ignored, since
// that event has already left the window. The engine drops events older than
// its watermark (newest event time minus the allowed lateness) before they
// reach this package, so with lateness <= W every event it passes is applied.
//
// # Memory
//
// Each type is bounded and reports an approximation of the bytes it holds
// with Size, for the engine's memory accounting. The bounds and the errors
// they introduce are documented on each type; every approximation errs in the
// direction that keeps a burst detectable (Sum over-counts by at most W/64 of
// time, never under-counts).
package window

import "math"

// noTime marks "no Advance yet": every cut-off computed from it is the
// smallest int64, so nothing is evicted and nothing is too old.
const noTime = math.MinInt64

// cutoff returns now-w, saturating at the smallest int64.
func cutoff(now, w int64) int64 {
	if now < math.MinInt64+w {
		return math.MinInt64
	}
	return now - w
}

// floorDiv is a/b rounded towards minus infinity, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// ceilDiv is a/b rounded towards plus infinity, for b > 0.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a > 0 {
		q++
	}
	return q
}

// ring is a growable FIFO with insertion in the middle (for late events),
// kept in a circular buffer so that steady-state push/pop never allocates.
// It shrinks when it is mostly empty, so a burst does not pin memory.
type ring[T any] struct {
	buf  []T
	head int32
	n    int32
}

// len is the number of elements; a nil ring is empty.
func (r *ring[T]) len() int {
	if r == nil {
		return 0
	}
	return int(r.n)
}

func (r *ring[T]) idx(i int) int {
	j := int(r.head) + i
	if j >= len(r.buf) {
		j -= len(r.buf)
	}
	return j
}

func (r *ring[T]) at(i int) *T { return &r.buf[r.idx(i)] }

func (r *ring[T]) front() *T { return &r.buf[r.head] }

func (r *ring[T]) back() *T { return r.at(int(r.n) - 1) }

func (r *ring[T]) resize(c int) {
	nb := make([]T, c)
	for i := 0; i < int(r.n); i++ {
		nb[i] = *r.at(i)
	}
	r.buf, r.head = nb, 0
}

// grown is the next capacity: ×1.5 + 2.
func (r *ring[T]) grown() int { return len(r.buf) + len(r.buf)/2 + 2 }

// reserve makes room for one more element, growing to at most limit (or
// just enough) when it is full.
func (r *ring[T]) reserve(limit int) {
	if int(r.n) == len(r.buf) {
		r.resize(max(min(r.grown(), limit), int(r.n)+1))
	}
}

func (r *ring[T]) pushBack(x T) {
	if int(r.n) == len(r.buf) {
		r.resize(r.grown())
	}
	*r.at(int(r.n)) = x
	r.n++
}

// insert puts x at position i (0 <= i <= len), shifting the later elements.
func (r *ring[T]) insert(i int, x T) {
	r.pushBack(x)
	for j := int(r.n) - 1; j > i; j-- {
		*r.at(j) = *r.at(j - 1)
	}
	*r.at(i) = x
}

func (r *ring[T]) popFront() {
	var zero T
	r.buf[r.head] = zero
	r.head++
	if int(r.head) == len(r.buf) {
		r.head = 0
	}
	r.n--
	if r.n == 0 {
		r.head = 0
	}
	if len(r.buf) > 8 && int(r.n) <= len(r.buf)/4 {
		r.resize(int(r.n) * 2)
	}
}

// clear empties the ring and releases its buffer.
func (r *ring[T]) clear() { r.buf, r.head, r.n = nil, 0, 0 }
