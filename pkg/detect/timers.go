package detect

import (
	"math"
	"time"
)

// timers schedules each group's next deadline (an absence expiring, an
// incident's cool-down ending, the group going idle) in one-minute slots of
// event time, so a sweep visits only the groups that are due instead of
// every group. A group holds at most one slot entry: it is re-registered
// only when its deadline moves earlier than the slot it sits in, and an
// entry found early is simply registered again at its real deadline.
//
// Each rule has its own timers, so an entry is just the group (8 bytes).
type timers struct {
	slots map[int32][]*group
	next  int32 // lowest slot not yet swept
}

const slotWidth = int64(time.Minute)

func newTimers() *timers {
	return &timers{slots: make(map[int32][]*group), next: math.MinInt32 + 1}
}

// slotOf is the minute of t since the Unix epoch, clamped to int32 (which
// covers the years 0 to 6053; slot 0, 1970-01-01 00:00, means "none").
func slotOf(t time.Time) int32 {
	return int32(max(min(t.UnixNano()/slotWidth, math.MaxInt32), math.MinInt32+1))
}

// schedule registers g to be visited once the watermark reaches at.
func (w *timers) schedule(g *group, at time.Time) {
	s := max(slotOf(at), w.next)
	if g.slot != 0 && g.slot <= s {
		return // already due no later than that
	}
	g.slot = s
	w.slots[s] = append(w.slots[s], g)
}

// due calls fn for every entry whose slot the watermark has passed. fn may
// schedule again.
func (w *timers) due(wm time.Time, fn func(g *group)) {
	end := slotOf(wm)
	if len(w.slots) == 0 {
		w.next = max(w.next, end)
		return
	}
	if int64(end)-int64(w.next) > int64(len(w.slots)) {
		// A jump (the first event, a replay, a quiet partition): start at
		// the lowest occupied slot instead of walking empty minutes.
		low := end
		for s := range w.slots {
			low = min(low, s)
		}
		w.next = max(w.next, low)
	}
	for ; w.next < end; w.next++ {
		entries, ok := w.slots[w.next]
		if !ok {
			continue
		}
		delete(w.slots, w.next)
		for _, g := range entries {
			if g.slot == w.next {
				g.slot = 0
				fn(g)
			}
		}
	}
}
