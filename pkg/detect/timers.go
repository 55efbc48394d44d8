package detect

import "time"

// timers schedules each group's next deadline (an absence expiring, an
// incident's cool-down ending, the group going idle) in one-minute slots of
// event time, so a sweep visits only the groups that are due instead of
// every group. A group holds at most one slot entry: it is re-registered
// only when its deadline moves earlier than the slot it sits in, and an
// entry found early is simply registered again at its real deadline.
type timers struct {
	slots map[int64][]timerEntry
	next  int64 // lowest slot not yet swept
}

type timerEntry struct {
	rs *ruleState
	g  *group
}

const slotWidth = int64(time.Minute)

func newTimers() *timers { return &timers{slots: make(map[int64][]timerEntry), next: -1 << 62} }

func slotOf(t time.Time) int64 { return t.UnixNano() / slotWidth }

// schedule registers g to be visited once the watermark reaches at.
func (w *timers) schedule(rs *ruleState, g *group, at time.Time) {
	s := max(slotOf(at), w.next)
	if g.slot != 0 && g.slot <= s {
		return // already due no later than that
	}
	g.slot = s
	w.slots[s] = append(w.slots[s], timerEntry{rs, g})
}

// due calls fn for every entry whose slot the watermark has passed. fn may
// schedule again.
func (w *timers) due(wm time.Time, fn func(rs *ruleState, g *group)) {
	end := slotOf(wm)
	if len(w.slots) == 0 {
		w.next = max(w.next, end)
		return
	}
	if end-w.next > int64(len(w.slots)) {
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
		for _, e := range entries {
			if e.g.slot == w.next {
				e.g.slot = 0
				fn(e.rs, e.g)
			}
		}
	}
}
