package window

import (
	"testing"
	"time"
)

func TestBaselineMedian(t *testing.T) {
	day := 24 * time.Hour
	d0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	at := func(d int, h float64) time.Time {
		return d0.Add(time.Duration(d)*day + time.Duration(h*float64(time.Hour)))
	}
	tests := []struct {
		name    string
		history time.Duration
		adds    map[int]float64 // day -> volume (added at 10:00)
		now     time.Time
		median  float64
		n       int
	}{
		{"no history yet", 30 * day, nil, at(3, 0), 0, 0},
		{"first day is not complete", 30 * day, map[int]float64{0: 5}, at(0, 23), 0, 0},
		{"one complete day", 30 * day, map[int]float64{0: 5}, at(1, 0), 5, 1},
		{"idle days after the first event count as zero", 30 * day, map[int]float64{0: 10, 4: 10}, at(5, 12), 0, 5},
		{"days before the first event are left out", 30 * day, map[int]float64{10: 1, 11: 3, 12: 2}, at(13, 1), 2, 3},
		{"even count averages the middle two", 30 * day, map[int]float64{0: 1, 1: 2, 2: 10, 3: 20}, at(4, 0), 6, 4},
		{"only the trailing history counts", 3 * day, map[int]float64{0: 100, 1: 100, 2: 1, 3: 2, 4: 3}, at(5, 6), 2, 3},
		{"long gap: all of the history is zeros", 3 * day, map[int]float64{0: 100}, at(40, 0), 0, 3},
		{"the current day is not in the median", 30 * day, map[int]float64{0: 1, 1: 1, 2: 1000}, at(2, 23), 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBaseline(time.Hour, day, tc.history)
			for d := 0; d <= 40; d++ {
				if v, ok := tc.adds[d]; ok {
					b.Add(at(d, 10), v)
					b.Advance(at(d, 10))
				}
			}
			b.Advance(tc.now)
			m, n := b.Median(tc.now)
			if m != tc.median || n != tc.n {
				t.Fatalf("Median() = %v, %d; want %v, %d", m, n, tc.median, tc.n)
			}
		})
	}
}

func TestBaselineCurrentAndLate(t *testing.T) {
	day := 24 * time.Hour
	b := NewBaseline(time.Hour, day, 30*day)
	d0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	for d := range 30 {
		b.Add(d0.Add(time.Duration(d)*day+12*time.Hour), 100)
	}
	now := d0.Add(30*day + 12*time.Hour)
	b.Add(now, 700)
	b.Add(now.Add(-50*time.Minute), 300)    // late, in the window
	b.Add(d0.Add(29*day+23*time.Hour), 100) // late, into yesterday's bucket
	b.Advance(now)
	if c := b.Current(); c != 1000 {
		t.Fatalf("Current() = %v, want 1000", c)
	}
	m, n := b.Median(now)
	if m != 100 || n != 30 {
		t.Fatalf("Median() = %v, %d; want 100, 30", m, n)
	}
	b.Advance(d0.Add(31 * day))
	if m, n := b.Median(d0.Add(31 * day)); m != 100 || n != 30 {
		t.Fatalf("Median() a day later = %v, %d; want 100, 30 (yesterday 200)", m, n)
	}
	if b.Current() != 0 {
		t.Fatalf("Current() = %v after the window passed", b.Current())
	}
	if sz := b.Size(); sz > 600 {
		t.Fatalf("Size() = %d, want about 31 floats", sz)
	}
}
