package window

import (
	"testing"
	"time"
)

func TestDistinctSliding(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
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
		{"bounded", time.Hour, 2, []step{
			{add: []uint64{1, 2, 3, 4}, at: 0, want: 2},
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
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
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

func BenchmarkDistinctAdd(b *testing.B) {
	d := NewDistinct(time.Hour, 0)
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		d.Add(uint64(i%5000), now)
		d.Advance(now)
	}
}
