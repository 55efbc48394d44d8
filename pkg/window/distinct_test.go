package window

import (
	"math"
	"testing"
	"time"
)

func TestDistinctSliding(t *testing.T) {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	type step struct {
		add     []uint64
		at      int // minutes after t0
		advance bool
		want    int
	}
	tests := []struct {
		name  string
		width time.Duration
		max   int
		steps []step
	}{
		{"counts distinct, not repeats", time.Hour, 0, []step{
			{add: []uint64{1, 2, 2, 3, 1}, at: 0, want: 3},
		}},
		{"burst straddling a fixed-bucket boundary is one window", time.Hour, 0, []step{
			{add: []uint64{1, 2, 3}, at: 50, want: 3},
			{add: []uint64{4, 5, 6}, at: 70, advance: true, want: 6},
		}},
		{"old values slide out", time.Hour, 0, []step{
			{add: []uint64{1, 2}, at: 0, want: 2},
			{add: []uint64{3}, at: 61, advance: true, want: 1},
		}},
		{"a value exactly W old has left the window", time.Hour, 0, []step{
			{add: []uint64{1}, at: 0, advance: true, want: 1},
			{add: []uint64{2}, at: 60, advance: true, want: 1},
		}},
		{"a refreshed value stays", time.Hour, 0, []step{
			{add: []uint64{1, 2}, at: 0, want: 2},
			{add: []uint64{1}, at: 30, want: 2},
			{add: nil, at: 75, advance: true, want: 1},
		}},
		{"late sighting does not move last-seen back", time.Hour, 0, []step{
			{add: []uint64{1}, at: 30, want: 1},
			{add: []uint64{1}, at: 0, want: 1},
			{add: nil, at: 80, advance: true, want: 1},
		}},
		{"late new value inside the window counts", time.Hour, 0, []step{
			{add: []uint64{1}, at: 30, advance: true, want: 1},
			{add: []uint64{2}, at: 25, want: 2},
			{add: nil, at: 86, advance: true, want: 1},
		}},
		{"sighting before the window start is ignored", time.Hour, 0, []step{
			{add: []uint64{1}, at: 100, advance: true, want: 1},
			{add: []uint64{2}, at: 40, want: 1},
		}},
		{"beyond the bound it estimates instead of losing values", time.Hour, 2, []step{
			{add: []uint64{1, 2, 3, 4}, at: 0, want: 4},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDistinct(tc.width, tc.max)
			for i, s := range tc.steps {
				for _, v := range s.add {
					d.Add(v, at(s.at))
				}
				if s.advance {
					d.Advance(at(s.at))
				}
				if got := d.Count(); got != s.want {
					t.Fatalf("step %d: Count() = %d, want %d", i, got, s.want)
				}
			}
		})
	}
}

func TestDistinctOldest(t *testing.T) {
	d := NewDistinct(time.Hour, 0)
	if _, ok := d.Oldest(); ok {
		t.Fatal("empty counter has an oldest entry")
	}
	d.Add(1, t0)
	d.Add(2, t0.Add(time.Minute))
	d.Add(1, t0.Add(2*time.Minute)) // refresh 1: oldest is now 2
	got, ok := d.Oldest()
	if !ok || !got.Equal(t0.Add(time.Minute)) {
		t.Fatalf("Oldest() = %v, %v; want %v", got, ok, t0.Add(time.Minute))
	}
}

// TestDistinctExactAgainstMap drives the exact mode through the hash-index
// threshold, refreshes, late sightings and evictions and compares it with a
// map of last-seen times.
func TestDistinctExactAgainstMap(t *testing.T) {
	const w = 10 * time.Minute
	d := NewDistinct(w, 1<<20)
	ref := map[uint64]time.Time{}
	now := t0
	x := uint64(1)
	for i := range 50000 {
		x = x*6364136223846793005 + 1442695040888963407
		phase := (i / 5000) % 3 // vary the number of live values: small, large, small
		mod := uint64(8)
		if phase == 1 {
			mod = 3000
		}
		v := (x >> 33) % mod
		now = now.Add(time.Duration(x>>50) * time.Millisecond)
		at := now.Add(-time.Duration((x>>20)%120) * time.Second) // up to 2 min late
		accepted := d.now == noTime || at.After(d0(d))
		d.Add(v, at)
		if prev, ok := ref[v]; accepted && (!ok || at.After(prev)) {
			ref[v] = at
		}
		d.Advance(now)
		want := 0
		var oldest time.Time
		for k, seen := range ref {
			if !seen.After(now.Add(-w)) {
				delete(ref, k)
				continue
			}
			want++
			if oldest.IsZero() || seen.Before(oldest) {
				oldest = seen
			}
		}
		if got := d.Count(); got != want {
			t.Fatalf("event %d: Count() = %d, want %d", i, got, want)
		}
		if got, ok := d.Oldest(); ok != (want > 0) || (ok && !got.Equal(oldest)) {
			t.Fatalf("event %d: Oldest() = %v, %v; want %v", i, got, ok, oldest)
		}
		if d.Saturated() {
			t.Fatal("exact counter saturated")
		}
	}
	d.Advance(now.Add(w))
	if d.Count() != 0 || d.Size() != NewDistinct(w, 0).Size() {
		t.Fatalf("idle counter: Count %d, Size %d", d.Count(), d.Size())
	}
}

// d0 is the start of d's current window: sightings at or before it are
// ignored.
func d0(d *Distinct) time.Time { return time.Unix(0, cutoff(d.now, d.width)) }

func TestDistinctSwitchesToSketchAndBack(t *testing.T) {
	const w = time.Hour
	d := NewDistinct(w, 1000)
	for i := range 1000 {
		d.Add(uint64(i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	if d.Saturated() {
		t.Fatal("saturated at the bound")
	}
	if n, exact := d.Estimate(); !exact || n != 1000 {
		t.Fatalf("Estimate() = %v, %v; want 1000 exact", n, exact)
	}
	exactSize := d.Size()
	for i := 1000; i < 50000; i++ {
		d.Add(uint64(i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	d.Advance(t0.Add(50 * time.Second))
	if !d.Saturated() {
		t.Fatal("not saturated past the bound")
	}
	n, exact := d.Estimate()
	if exact || math.Abs(n-50000)/50000 > 3*1.04/32 {
		t.Fatalf("Estimate() = %v, %v; want ≈50000 estimated", n, exact)
	}
	if c := d.Count(); c != int(math.Round(n)) {
		t.Fatalf("Count() = %d, want round(%v)", c, n)
	}
	if old, ok := d.Oldest(); !ok || old.Before(t0) || old.After(t0.Add(time.Second)) {
		t.Fatalf("Oldest() = %v, %v; want near %v", old, ok, t0)
	}
	if sz := d.Size(); sz > 64<<10 {
		t.Fatalf("sketch Size() = %d, want <= 64 KiB", sz)
	} else {
		t.Logf("exact Size() at 1000 values: %d B; sketch Size() at 50k: %d B", exactSize, sz)
	}
	// Half the window later, a new burst: only what is in the window counts.
	d.Advance(t0.Add(w + 25*time.Second))
	n, _ = d.Estimate()
	if math.Abs(n-25000)/25000 > 3*1.04/32 {
		t.Fatalf("after sliding: Estimate() = %v, want ≈25000", n)
	}
	// Everything leaves the window: back to exact mode.
	d.Advance(t0.Add(2 * w))
	if d.Saturated() || d.Count() != 0 {
		t.Fatalf("after the window passed: Saturated %v, Count %d", d.Saturated(), d.Count())
	}
	d.Add(7, t0.Add(2*w))
	if n, exact := d.Estimate(); !exact || n != 1 {
		t.Fatalf("back in exact mode: Estimate() = %v, %v", n, exact)
	}
}

func TestDistinctSketchLateAndRepeats(t *testing.T) {
	const w = time.Hour
	d := NewDistinct(w, 16)
	now := t0
	// 20k distinct values, each seen 5 times over 10 min, some late.
	for r := range 5 {
		for i := range 20000 {
			now = now.Add(6 * time.Millisecond)
			at := now
			if i%7 == 0 {
				at = now.Add(-3 * time.Minute)
			}
			d.Add(uint64(i), at)
			d.Advance(now)
		}
		if n, _ := d.Estimate(); math.Abs(n-20000)/20000 > 3*1.04/32 {
			t.Fatalf("round %d: Estimate() = %v, want ≈20000", r, n)
		}
	}
}
