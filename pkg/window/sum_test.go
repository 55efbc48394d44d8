package window

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func mins(m float64) time.Time { return t0.Add(time.Duration(m * float64(time.Minute))) }

func TestSumSliding(t *testing.T) {
	type op struct {
		at      float64 // minutes after t0
		add     float64 // value to add at `at`, if non-zero
		advance bool    // Advance(at) after the add
		value   float64 // want Value()
		count   int     // want Count()
	}
	tests := []struct {
		name string
		ops  []op
	}{
		{"event exactly W old has left the window (now-W, now]", []op{
			{at: 0, add: 5, advance: true, value: 5, count: 1},
			{at: 60 - 1.0/60e9, advance: true, value: 5, count: 1}, // W-1ns: still in
			{at: 60, advance: true, value: 0, count: 0},            // exactly W: out
		}},
		{"event at now is in the window", []op{
			{at: 10, add: 1, advance: true, value: 1, count: 1},
		}},
		{"burst straddling any fixed bucket boundary is one window", []op{
			{at: 50, add: 100, advance: true, value: 100, count: 1},
			{at: 55, add: 100, advance: true, value: 200, count: 2},
			{at: 65, add: 100, advance: true, value: 300, count: 3},
			{at: 70, add: 100, advance: true, value: 400, count: 4},
			{at: 111, advance: true, value: 300, count: 3}, // (51, 111]
			{at: 116, advance: true, value: 200, count: 2}, // (56, 116]
		}},
		{"late event inside the window counts for the window ending at newest", []op{
			{at: 30, add: 1, advance: true, value: 1, count: 1},
			{at: 25, add: 2, value: 3, count: 2}, // 5 min late
			{at: 30, advance: true, value: 3, count: 2},
			{at: 85, advance: true, value: 1, count: 1}, // the late one (25) left first
			{at: 90, advance: true, value: 0, count: 0},
		}},
		{"event already out of the window is ignored", []op{
			{at: 100, add: 1, advance: true, value: 1, count: 1},
			{at: 40, add: 7, value: 1, count: 1}, // exactly now-W
			{at: 39, add: 7, value: 1, count: 1},
		}},
		{"an older Advance is ignored", []op{
			{at: 0, add: 1, advance: true, value: 1, count: 1},
			{at: 61, advance: true, value: 0, count: 0},
			{at: 1, add: 1, value: 0, count: 0}, // exactly now-W: ignored
			{at: 10, advance: true, value: 0, count: 0},
			{at: 2, add: 1, value: 1, count: 1}, // the window still ends at 61
		}},
		{"Add does not advance the window", []op{
			{at: 0, add: 1, advance: true, value: 1, count: 1},
			{at: 90, add: 1, value: 2, count: 2},
			{at: 90, advance: true, value: 1, count: 1},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSum(time.Hour)
			for i, o := range tc.ops {
				if o.add != 0 {
					s.Add(mins(o.at), o.add)
				}
				if o.advance {
					s.Advance(mins(o.at))
				}
				if s.Value() != o.value || s.Count() != o.count || s.Empty() != (o.count == 0) {
					t.Fatalf("op %d: Value, Count, Empty = %v, %d, %v; want %v, %d", i, s.Value(), s.Count(), s.Empty(), o.value, o.count)
				}
			}
		})
	}
}

func TestSumOldest(t *testing.T) {
	s := NewSum(time.Hour)
	if _, ok := s.Oldest(); ok {
		t.Fatal("empty sum has an oldest event")
	}
	s.Add(mins(10), 1)
	s.Add(mins(5), 1) // late
	if got, ok := s.Oldest(); !ok || !got.Equal(mins(5)) {
		t.Fatalf("Oldest() = %v, %v; want %v", got, ok, mins(5))
	}
	// Coalesced: the oldest is reported as the start of its sub-bucket.
	for i := range 100 {
		s.Add(mins(20+float64(i)/10), 1)
	}
	got, _ := s.Oldest()
	g := time.Hour / SumGrain
	if got.After(mins(5)) || mins(5).Sub(got) >= g {
		t.Fatalf("coalesced Oldest() = %v, want within %v before %v", got, g, mins(5))
	}
}

// TestSumCoalescedError checks the documented bound on a dense stream: the
// value lies between the exact sums over (now-W, now] and (now-W-W/64, now],
// and it is exact while at most SumExact events are in the window.
func TestSumCoalescedError(t *testing.T) {
	const w = time.Hour
	g := w / SumGrain
	s := NewSum(w)
	type ev struct {
		t time.Time
		v float64
	}
	var all []ev
	exact := func(from, to time.Time) (float64, int) {
		var sum float64
		n := 0
		for _, e := range all {
			if e.t.After(from) && !e.t.After(to) {
				sum += e.v
				n++
			}
		}
		return sum, n
	}
	now := t0
	for i := range 20000 {
		now = now.Add(time.Duration(1+i%7) * time.Second)
		v := float64(1 + i%13)
		at := now
		if i%10 == 3 {
			at = now.Add(-4 * time.Minute) // late
		}
		s.Add(at, v)
		all = append(all, ev{at, v})
		s.Advance(now)
		lo, nlo := exact(now.Add(-w), now)
		hi, nhi := exact(now.Add(-w-g), now)
		if s.Value() < lo || s.Value() > hi || s.Count() < nlo || s.Count() > nhi {
			t.Fatalf("event %d: Value %v Count %d, want in [%v, %v] and [%d, %d]", i, s.Value(), s.Count(), lo, hi, nlo, nhi)
		}
		if nhi <= SumExact && (s.Value() != lo || s.Count() != nlo) {
			t.Fatalf("event %d: few events but inexact: %v/%d vs %v/%d", i, s.Value(), s.Count(), lo, nlo)
		}
		for len(all) > 0 && all[0].t.Before(now.Add(-2*w)) {
			all = all[1:] // keep the reference small: only the last hour matters
		}
	}
	if sz := s.Size(); sz > 3000 {
		t.Fatalf("Size() = %d bytes for a dense stream, want bounded (<= 3000)", sz)
	}
}

func TestSumMemoryIsBoundedAndReleased(t *testing.T) {
	s := NewSum(time.Hour)
	for i := range 1_000_000 {
		at := t0.Add(time.Duration(i) * 3 * time.Millisecond)
		s.Add(at, 1)
		s.Advance(at)
	}
	// 1M events 3 ms apart span 50 min: all are in the 1 h window.
	if s.Count() != 1_000_000 || s.Value() != 1_000_000 {
		t.Fatalf("Count, Value = %d, %v; want 1e6", s.Count(), s.Value())
	}
	if sz := s.Size(); sz > 3000 {
		t.Fatalf("Size() = %d bytes, want <= 3000", sz)
	}
	s.Advance(t0.Add(5 * time.Hour))
	if !s.Empty() || s.Value() != 0 {
		t.Fatalf("not empty after the window passed: %d, %v", s.Count(), s.Value())
	}
	if sz, base := s.Size(), NewSum(time.Hour).Size(); sz != base {
		t.Fatalf("idle Size() = %d, want %d (buffers released)", sz, base)
	}
}

func TestSumPanicsOnBadWidth(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewSum(0) did not panic")
		}
	}()
	NewSum(0)
}
