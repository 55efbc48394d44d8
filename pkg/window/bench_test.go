package window

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// Per-operation cost. Each benchmark runs in steady state: the window is
// full and events enter and leave it at the same rate.

// BenchmarkSumAddAdvance: 10 events/s into a 1 h window (36k events in it,
// coalesced), one in ten 2 min late.
func BenchmarkSumAddAdvance(b *testing.B) {
	s := NewSum(time.Hour)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		at := now
		if i%10 == 0 {
			at = now.Add(-2 * time.Minute)
		}
		s.Add(at, 1500)
		s.Advance(now)
	}
}

// BenchmarkSumAddAdvanceSparse: one event every 5 min, all kept exactly.
func BenchmarkSumAddAdvanceSparse(b *testing.B) {
	s := NewSum(time.Hour)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i) * 5 * time.Minute)
		s.Add(now, 1500)
		s.Advance(now)
	}
}

// BenchmarkDistinctAdd: exact mode with a hash index, ~3600 live values
// (5000 values cycling at 1/s through a 1 h window).
func BenchmarkDistinctAdd(b *testing.B) {
	d := NewDistinct(time.Hour, 1<<20)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		d.Add(uint64(i%5000), now)
		d.Advance(now)
	}
}

// BenchmarkDistinctAddSmall: exact mode without index (12 live values).
func BenchmarkDistinctAddSmall(b *testing.B) {
	d := NewDistinct(time.Hour, 0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i) * 5 * time.Minute)
		d.Add(uint64(i%20)*0x9e3779b97f4a7c15, now)
		d.Advance(now)
	}
}

// BenchmarkDistinctAddSketch: sketch mode, 100 distinct values/s through a
// 1 h window (360k distinct values in it), Count after every event as the
// engine does.
func BenchmarkDistinctAddSketch(b *testing.B) {
	d := NewDistinct(time.Hour, 1000)
	for i := range 400_000 {
		now := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		d.Add(uint64(i), now)
		d.Advance(now)
	}
	b.ReportAllocs()
	for i := 400_000; b.Loop(); i++ {
		now := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		d.Add(uint64(i), now)
		d.Advance(now)
		_ = d.Count()
	}
}

// BenchmarkSequenceStep: a 3-step sequence within 10 min over a stream of
// step-0, step-1 and step-2 events, one every 10 s (a match every third).
func BenchmarkSequenceStep(b *testing.B) {
	s := NewSequence(3, 10*time.Minute, 64)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i) * 10 * time.Second)
		s.Step(i%3, now, "evt")
		s.Advance(now)
	}
}

// BenchmarkSequenceStepNoMatch: step-0 events only (partials pile up to the
// bound, the worst case of the scan).
func BenchmarkSequenceStepNoMatch(b *testing.B) {
	s := NewSequence(2, 10*time.Minute, 64)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		s.Step(0, now, "evt")
		s.Step(1, now.Add(-time.Hour), "old") // scans all partials, matches none
		s.Advance(now)
	}
}

// BenchmarkAbsence: an A every 10 s, a B for four As in five, Expired with
// the watermark after every event.
func BenchmarkAbsence(b *testing.B) {
	a := NewAbsence(time.Minute, 256)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i) * 10 * time.Second)
		if i%2 == 0 {
			a.Expect(now, "evt")
		} else if i%10 != 1 {
			a.Satisfy(now)
		}
		_ = a.Expired(now.Add(-5 * time.Minute))
	}
}

// BenchmarkBaselineAddAdvance: Add+Advance of a 1 h window with daily
// buckets over 30 days, one event a minute.
func BenchmarkBaselineAddAdvance(b *testing.B) {
	bl := NewBaseline(time.Hour, 24*time.Hour, 30*24*time.Hour)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i) * time.Minute)
		bl.Add(now, 1500)
		bl.Advance(now)
	}
}

// BenchmarkBaselineMedian: the median of 30 daily buckets.
func BenchmarkBaselineMedian(b *testing.B) {
	bl := NewBaseline(time.Hour, 24*time.Hour, 30*24*time.Hour)
	for i := range 60 * 24 * 40 {
		now := t0.Add(time.Duration(i) * time.Minute)
		bl.Add(now, float64(i%97))
		bl.Advance(now)
	}
	now := t0.Add(40 * 24 * time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		bl.Median(now)
	}
}

// BenchmarkStatePerActor simulates a day of 100k actors whose activity is
// Zipf-distributed (s = 1.1: the busiest actor makes ~13% of the events, most
// make a handful) with one Sum (1 h) and one Distinct (1 h, default bound)
// per actor, driven as the engine drives them (Add at the event time, one
// event in ten up to 5 min late, Advance to the actor's newest event time).
// It reports the state held at the end of the day per actor and rule, from
// Size (the figure the engine accounts) and from the Go heap.
func BenchmarkStatePerActor(b *testing.B) {
	const actors = 100_000
	const events = 2_000_000
	const day = 24 * time.Hour
	type state struct {
		sum    *Sum
		dist   *Distinct
		latest time.Time
	}
	var sizeSum, sizeDist, heap, biggest float64
	var active, sketches int
	b.ReportAllocs()
	for b.Loop() {
		r := rand.New(rand.NewPCG(1, 2))
		z := rand.NewZipf(r, 1.1, 1, actors-1)
		states := make([]*state, actors)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range events {
			a := z.Uint64()
			at := t0.Add(time.Duration(i) * (day / events))
			if r.IntN(10) == 0 {
				at = at.Add(-time.Duration(r.Int64N(int64(5 * time.Minute))))
			}
			st := states[a]
			if st == nil {
				st = &state{sum: NewSum(time.Hour), dist: NewDistinct(time.Hour, 0)}
				states[a] = st
			}
			if at.After(st.latest) {
				st.latest = at
			}
			st.sum.Add(at, float64(1+r.IntN(100_000)))
			st.sum.Advance(st.latest)
			st.dist.Add(mix(r.Uint64N(1_000_000)), at) // customer record ids
			st.dist.Advance(st.latest)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		sizeSum, sizeDist, biggest, active, sketches = 0, 0, 0, 0, 0
		for _, st := range states {
			if st == nil {
				continue
			}
			active++
			ss, sd := float64(st.sum.Size()), float64(st.dist.Size())
			sizeSum += ss
			sizeDist += sd
			biggest = max(biggest, ss+sd)
			if st.dist.Saturated() {
				sketches++
			}
		}
		// The heap figure excludes the per-actor wrapper (state) itself.
		heap = float64(after.HeapAlloc) - float64(before.HeapAlloc) - float64(active)*float64(sizeofState)
		runtime.KeepAlive(states)
	}
	n := float64(active)
	b.ReportMetric((sizeSum+sizeDist)/(2*n), "B/actor/rule")
	b.ReportMetric(sizeSum/n, "sum-B/actor")
	b.ReportMetric(sizeDist/n, "distinct-B/actor")
	b.ReportMetric(heap/(2*n), "heap-B/actor/rule")
	b.ReportMetric(biggest, "max-B/actor")
	b.ReportMetric(n, "actors")
	b.ReportMetric(float64(sketches), "sketches")
}

// sizeofState is the allocation size of BenchmarkStatePerActor's wrapper:
// two pointers and a time.Time (40 bytes, a 48-byte size class).
const sizeofState = 48
