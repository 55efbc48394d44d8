// Package window owns per-group sliding-window state in event time.
package window

import (
	"container/heap"
	"time"
)

// Distinct counts the distinct values seen in a true sliding event-time
// window [t-Width, t]. A value seen again refreshes its last-seen time. It
// holds at most Max values: beyond that the oldest are evicted early, so the
// count is a lower bound (the caller reports Saturated).
type Distinct struct {
	width time.Duration
	max   int
	last  map[uint64]int64 // value hash -> last seen (unix nanos)
	queue expiryHeap       // (time, value) entries, lazily invalidated
}

// NewDistinct returns an empty counter for a window of width w holding at
// most max values (max <= 0 means 1<<20).
func NewDistinct(w time.Duration, max int) *Distinct {
	if max <= 0 {
		max = 1 << 20
	}
	return &Distinct{width: w, max: max, last: make(map[uint64]int64)}
}

// Add records value v seen at t.
func (d *Distinct) Add(v uint64, t time.Time) {
	ns := t.UnixNano()
	if prev, ok := d.last[v]; ok && prev >= ns {
		return // an older (late) sighting never moves last-seen back
	}
	d.last[v] = ns
	heap.Push(&d.queue, entry{at: ns, v: v})
	for len(d.last) > d.max {
		d.popOldest()
	}
}

// Advance evicts every value whose last sighting is before now-Width.
func (d *Distinct) Advance(now time.Time) {
	cut := now.Add(-d.width).UnixNano()
	for len(d.queue) > 0 && d.queue[0].at < cut {
		d.popOldest()
	}
}

func (d *Distinct) popOldest() {
	e := heap.Pop(&d.queue).(entry)
	if d.last[e.v] == e.at {
		delete(d.last, e.v)
	}
}

// Count is the number of distinct values in the window.
func (d *Distinct) Count() int { return len(d.last) }

// Oldest is the earliest last-seen time still in the window.
func (d *Distinct) Oldest() (time.Time, bool) {
	for len(d.queue) > 0 {
		e := d.queue[0]
		if d.last[e.v] == e.at {
			return time.Unix(0, e.at).UTC(), true
		}
		heap.Pop(&d.queue) // stale entry: the value was refreshed later
	}
	return time.Time{}, false
}

// Saturated reports whether the counter is at its bound.
func (d *Distinct) Saturated() bool { return len(d.last) >= d.max }

type entry struct {
	at int64
	v  uint64
}

type expiryHeap []entry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
