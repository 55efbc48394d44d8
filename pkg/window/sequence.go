package window

import (
	"time"
	"unsafe"
)

// Match is one completed sequence: the time of its first and last step and
// the reference (event id) of each step, in step order.
type Match struct {
	Start, End time.Time
	Refs       []string
}

// Sequence matches ordered steps within a maximum span T, like an EQL
// `sequence with maxspan=T ... until ...` over one group's events.
//
// Semantics (EQL's, on event times):
//   - Step 0 starts a partial match at its time (unless that is before
//     now-T for the last Advance: it could not complete any more).
//   - A step-i event at t (i > 0) advances the partial match that waits for
//     step i, whose previous step is at or before t and which started at or
//     after t-T (the span is closed: end-start <= T), choosing the one with
//     the most recent previous step (then the most recent start, then the
//     last to arrive). Every other partial match waiting for step i whose
//     previous step is at or before t is superseded and dropped, as EQL trims
//     older in-flight sequences of a stage when one of them advances. An
//     event advances at most one partial match.
//   - The last step completes the match and consumes its partial match; Step
//     then returns it.
//   - Cancel(t) is the `until` step: it drops every partial match that
//     started before t.
//   - Advance(now) drops partial matches that can no longer complete,
//     those that started before now-T. Pass the watermark (newest event time
//     minus the allowed lateness) to keep late steps matchable, or the newest
//     event time to free state at once.
//
// Matching follows the order of the calls: a late step that arrives after a
// later step has been matched does not undo that match, and a step that
// arrives before its predecessor is not kept for it (feed events in
// event-time order, as Flink CEP does by buffering to the watermark, when
// that matters). Event times are still checked, so a match's steps are
// always in non-decreasing time order and within T.
//
// It holds at most maxPartial partial matches: a new one beyond the bound
// evicts the one that started first (the most recent are kept) and is
// counted by Dropped.
type Sequence struct {
	steps   int
	within  int64
	max     int
	now     int64
	parts   []partial // ascending start, then arrival
	refs    []string  // slot*steps .. slot*steps+steps-1: refs of a partial match
	free    []int32   // free slots of refs
	refLen  int       // bytes of the refs held
	dropped uint64
}

type partial struct {
	start, last int64
	next        int32 // the step it waits for
	slot        int32
}

// NewSequence returns a matcher of steps ordered steps within the given span,
// holding at most maxPartial partial matches (maxPartial <= 0 means 1024). It
// panics if steps < 1 or within < 0.
func NewSequence(steps int, within time.Duration, maxPartial int) *Sequence {
	if steps < 1 {
		panic("window: NewSequence: steps must be at least 1")
	}
	if within < 0 {
		panic("window: NewSequence: within must not be negative")
	}
	if maxPartial <= 0 {
		maxPartial = 1024
	}
	return &Sequence{steps: steps, within: int64(within), max: maxPartial, now: noTime}
}

// Step records an event matching step i (0-based) at t with reference ref.
// It reports whether the event completed a match, and the match. An i out of
// range is ignored. Match.Refs is a new slice owned by the caller.
func (s *Sequence) Step(i int, t time.Time, ref string) (bool, Match) {
	if i < 0 || i >= s.steps {
		return false, Match{}
	}
	ts := t.UnixNano()
	if i == 0 {
		if s.steps == 1 {
			return true, Match{Start: t, End: t, Refs: []string{ref}}
		}
		s.begin(ts, ref)
		return false, Match{}
	}
	best := -1
	for k := range s.parts {
		p := &s.parts[k]
		if int(p.next) != i || p.last > ts || ts-p.start > s.within {
			continue
		}
		if best < 0 || p.last > s.parts[best].last || (p.last == s.parts[best].last && p.start >= s.parts[best].start) {
			best = k
		}
	}
	if best < 0 {
		return false, Match{}
	}
	// Supersede the other partial matches of the same stage.
	keep := s.parts[best]
	w := 0
	for k := range s.parts {
		p := s.parts[k]
		if k != best && int(p.next) == i && p.last <= ts {
			s.release(p.slot)
			continue
		}
		s.parts[w] = p
		w++
	}
	clear(s.parts[w:])
	s.parts = s.parts[:w]
	s.setRef(keep.slot, i, ref)
	if i == s.steps-1 {
		base := int(keep.slot) * s.steps
		m := Match{Start: time.Unix(0, keep.start).UTC(), End: t, Refs: make([]string, s.steps)}
		copy(m.Refs, s.refs[base:base+s.steps])
		s.remove(keep)
		return true, m
	}
	for k := range s.parts {
		if s.parts[k] == keep {
			s.parts[k].next++
			s.parts[k].last = ts
			break
		}
	}
	return false, Match{}
}

// begin starts a partial match at ts.
func (s *Sequence) begin(ts int64, ref string) {
	if ts < cutoff(s.now, s.within) {
		return // it could not complete any more
	}
	if len(s.parts) >= s.max {
		s.dropped++
		if ts < s.parts[0].start {
			return // the new one is the least recent
		}
		s.release(s.parts[0].slot)
		copy(s.parts, s.parts[1:])
		s.parts = s.parts[:len(s.parts)-1]
	}
	var slot int32
	if n := len(s.free); n > 0 {
		slot = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		slot = int32(len(s.refs) / s.steps)
		for range s.steps {
			s.refs = append(s.refs, "")
		}
	}
	s.setRef(slot, 0, ref)
	p := partial{start: ts, last: ts, next: 1, slot: slot}
	k := len(s.parts)
	for k > 0 && s.parts[k-1].start > ts {
		k--
	}
	s.parts = append(s.parts, partial{})
	copy(s.parts[k+1:], s.parts[k:])
	s.parts[k] = p
}

func (s *Sequence) setRef(slot int32, i int, ref string) {
	r := &s.refs[int(slot)*s.steps+i]
	s.refLen += len(ref) - len(*r)
	*r = ref
}

// release frees a partial match's slot.
func (s *Sequence) release(slot int32) {
	base := int(slot) * s.steps
	for k := base; k < base+s.steps; k++ {
		s.refLen -= len(s.refs[k])
		s.refs[k] = ""
	}
	s.free = append(s.free, slot)
}

func (s *Sequence) remove(p partial) {
	for k := range s.parts {
		if s.parts[k] == p {
			s.release(p.slot)
			copy(s.parts[k:], s.parts[k+1:])
			s.parts[len(s.parts)-1] = partial{}
			s.parts = s.parts[:len(s.parts)-1]
			return
		}
	}
}

// dropBefore drops the partial matches that started before ts.
func (s *Sequence) dropBefore(ts int64) {
	k := 0
	for k < len(s.parts) && s.parts[k].start < ts {
		s.release(s.parts[k].slot)
		k++
	}
	if k == 0 {
		return
	}
	n := copy(s.parts, s.parts[k:])
	clear(s.parts[n:])
	s.parts = s.parts[:n]
}

// compact releases the slot arena once no partial match is left.
func (s *Sequence) compact() {
	if cap(s.parts) > 8 {
		s.parts = nil
	}
	if len(s.refs) > 8*s.steps {
		s.refs, s.free = nil, nil
	}
}

// Cancel is the `until` step at t: it drops every partial match that started
// before t.
func (s *Sequence) Cancel(t time.Time) {
	s.dropBefore(t.UnixNano())
	if len(s.parts) == 0 {
		s.compact()
	}
}

// Advance drops the partial matches that can no longer complete by now:
// those that started before now-T. An older now than the previous one is
// ignored.
func (s *Sequence) Advance(now time.Time) {
	ns := now.UnixNano()
	if ns <= s.now {
		return
	}
	s.now = ns
	s.dropBefore(cutoff(ns, s.within))
	if len(s.parts) == 0 {
		s.compact()
	}
}

// Partial is the number of partial matches held.
func (s *Sequence) Partial() int { return len(s.parts) }

// Dropped is the number of partial matches dropped because of the bound
// (superseded ones are not counted: that is the matching semantics).
func (s *Sequence) Dropped() uint64 { return s.dropped }

// Size is the approximate number of bytes the matcher holds, including the
// bytes of the references it keeps.
func (s *Sequence) Size() int {
	return int(unsafe.Sizeof(*s)) + cap(s.parts)*int(unsafe.Sizeof(partial{})) +
		cap(s.refs)*int(unsafe.Sizeof("")) + cap(s.free)*4 + s.refLen
}
