package window

import (
	"slices"
	"testing"
	"time"
)

func TestSequence(t *testing.T) {
	type op struct {
		kind string // "step", "cancel", "advance"
		i    int
		at   float64 // minutes after t0
		ref  string
		done bool     // want from Step
		refs []string // want Match.Refs when done
		span [2]float64
	}
	step := func(i int, at float64, ref string) op { return op{kind: "step", i: i, at: at, ref: ref} }
	done := func(i int, at float64, ref string, start float64, refs ...string) op {
		return op{kind: "step", i: i, at: at, ref: ref, done: true, refs: refs, span: [2]float64{start, at}}
	}
	tests := []struct {
		name    string
		steps   int
		within  time.Duration
		max     int
		ops     []op
		partial int // want Partial() at the end
	}{
		{"A then B within T", 2, 10 * time.Minute, 0, []op{
			step(0, 0, "a1"), done(1, 5, "b1", 0, "a1", "b1"),
		}, 0},
		{"span exactly T matches (closed)", 2, 10 * time.Minute, 0, []op{
			step(0, 0, "a1"), done(1, 10, "b1", 0, "a1", "b1"),
		}, 0},
		{"span T+1ns does not match", 2, 10 * time.Minute, 0, []op{
			step(0, 0, "a1"), step(1, 10+1.0/60e9, "b1"),
		}, 1},
		{"B before A does not match", 2, 10 * time.Minute, 0, []op{
			step(1, 0, "b0"), step(0, 1, "a1"),
		}, 1},
		{"steps at the same time match in call order", 2, 10 * time.Minute, 0, []op{
			step(0, 3, "a1"), done(1, 3, "b1", 3, "a1", "b1"),
		}, 0},
		{"B consumes the most recent A; older As are superseded", 2, 10 * time.Minute, 0, []op{
			step(0, 0, "a1"), step(0, 4, "a2"), done(1, 6, "b1", 4, "a2", "b1"), step(1, 7, "b2"),
		}, 0},
		{"the most recent A still within T is used", 2, 10 * time.Minute, 0, []op{
			step(0, 0, "a1"), step(0, 4, "a2"), done(1, 13, "b1", 4, "a2", "b1"),
		}, 0},
		{"a late B advances the A before it, not the newer A", 2, 10 * time.Minute, 0, []op{
			step(0, 2, "a1"), step(0, 8, "a2"), done(1, 5, "b-late", 2, "a1", "b-late"),
		}, 1},
		{"three steps with refs", 3, 30 * time.Minute, 0, []op{
			step(0, 0, "read"), step(2, 1, "mail-too-early"), step(1, 5, "export"),
			done(2, 20, "mail", 0, "read", "export", "mail"),
		}, 0},
		{"until cancels partials started before it", 3, 30 * time.Minute, 0, []op{
			step(0, 0, "a1"), step(1, 2, "b1"), {kind: "cancel", at: 3}, step(2, 4, "c1"),
		}, 0},
		{"until keeps partials started after it", 2, 30 * time.Minute, 0, []op{
			{kind: "cancel", at: 3}, step(0, 3, "a1"), done(1, 4, "b1", 3, "a1", "b1"),
		}, 0},
		{"advance drops partials older than T", 2, 10 * time.Minute, 0, []op{
			step(0, 0, "a1"), step(0, 5, "a2"), {kind: "advance", at: 10}, {kind: "advance", at: 10 + 1.0/60e9},
		}, 1},
		{"a step-0 already too old for the window is ignored", 2, 10 * time.Minute, 0, []op{
			{kind: "advance", at: 30}, step(0, 19, "old"), step(0, 20, "edge"),
		}, 1},
		{"bounded: the most recent partials are kept", 2, 10 * time.Minute, 2, []op{
			step(0, 1, "a1"), step(0, 2, "a2"), step(0, 3, "a3"), step(0, 0, "a0-late"),
			done(1, 2, "b-at-2", 2, "a2", "b-at-2"), // a1 was evicted: a2 matches
		}, 1},
		{"single step completes at once", 1, time.Minute, 0, []op{
			done(0, 1, "x", 1, "x"),
		}, 0},
		{"step out of range is ignored", 2, time.Minute, 0, []op{
			step(0, 0, "a"), step(2, 0, "?"), step(-1, 0, "?"),
		}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSequence(tc.steps, tc.within, tc.max)
			for k, o := range tc.ops {
				switch o.kind {
				case "cancel":
					s.Cancel(mins(o.at))
				case "advance":
					s.Advance(mins(o.at))
				default:
					done, m := s.Step(o.i, mins(o.at), o.ref)
					if done != o.done {
						t.Fatalf("op %d: done = %v, want %v", k, done, o.done)
					}
					if done && (!slices.Equal(m.Refs, o.refs) || !m.Start.Equal(mins(o.span[0])) || !m.End.Equal(mins(o.span[1]))) {
						t.Fatalf("op %d: match %v..%v %v, want %v..%v %v", k, m.Start, m.End, m.Refs, mins(o.span[0]), mins(o.span[1]), o.refs)
					}
				}
			}
			if s.Partial() != tc.partial {
				t.Fatalf("Partial() = %d, want %d", s.Partial(), tc.partial)
			}
		})
	}
}

func TestSequenceBoundAndMemory(t *testing.T) {
	s := NewSequence(3, time.Hour, 100)
	base := s.Size()
	for i := range 10000 {
		s.Step(0, t0.Add(time.Duration(i)*time.Second), "a")
	}
	if s.Partial() != 100 || s.Dropped() != 9900 {
		t.Fatalf("Partial, Dropped = %d, %d; want 100, 9900", s.Partial(), s.Dropped())
	}
	done, m := s.Step(1, t0.Add(10000*time.Second), "b")
	if done || s.Partial() != 1 {
		t.Fatalf("after B: done %v, Partial %d (the others are superseded)", done, s.Partial())
	}
	done, m = s.Step(2, t0.Add(10001*time.Second), "c")
	if !done || !m.Start.Equal(t0.Add(9999*time.Second)) {
		t.Fatalf("C: done %v, start %v", done, m.Start)
	}
	s.Advance(t0.Add(20000 * time.Second))
	if s.Size() != base {
		t.Fatalf("idle Size() = %d, want %d", s.Size(), base)
	}
}
