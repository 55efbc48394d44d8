package window

import (
	"slices"
	"testing"
	"time"
)

// FuzzBaseline drives a Baseline (daily buckets, 5 days of history) with
// adds, late adds, advances and medians, and checks every median against a
// model that keeps every bucket total: the ring, grown only as far as the
// group's days need, must answer as the full-size ring did.
func FuzzBaseline(f *testing.F) {
	f.Add([]byte{0, 1, 5, 1, 2, 3, 0, 9, 1, 2, 4, 0})
	f.Add(slices.Repeat([]byte{0, 30, 2, 2, 1, 0, 1, 20, 1, 2, 0, 0}, 10))
	f.Add([]byte{0, 200, 7, 1, 40, 0, 0, 3, 9, 2, 9, 0, 0, 250, 1, 2, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		const day = int64(24 * time.Hour)
		const hist = 5
		b := NewBaseline(time.Duration(day), time.Duration(day), hist*time.Duration(day))
		d0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
		totals := map[int64]float64{}
		started := false
		var headK, firstK int64
		clock := d0 // newest time seen, in quarter days
		for len(data) >= 3 {
			op, arg, v := data[0]%3, int64(data[1]), float64(data[2])
			data = data[3:]
			switch op {
			case 0: // an event, up to 2 days late or ahead
				at := clock + (arg%17-8)*day/4
				clock = max(clock, at)
				k := floorDiv(at, day)
				b.Add(time.Unix(0, at), v)
				if !started {
					started, headK, firstK = true, k, k
				}
				firstK = min(firstK, k)
				headK = max(headK, k)
				if k > headK-(hist+1) {
					totals[k] += v
				}
			case 1: // time passes
				clock += arg * day / 8
				b.Advance(time.Unix(0, clock))
				if k := floorDiv(clock, day); started && k > headK {
					headK = k
				}
			case 2:
				now := clock + arg%5*day/4
				got, n := b.Median(time.Unix(0, now))
				want, wn := 0.0, 0
				if started {
					cur := floorDiv(now, day)
					var vals []float64
					for k := max(cur-hist, firstK, headK-hist); k < cur; k++ {
						if k <= headK {
							vals = append(vals, totals[k])
						} else {
							vals = append(vals, 0)
						}
					}
					slices.Sort(vals)
					if wn = len(vals); wn%2 == 1 {
						want = vals[wn/2]
					} else if wn > 0 {
						want = (vals[wn/2-1] + vals[wn/2]) / 2
					}
				}
				if got != want || n != wn {
					t.Fatalf("Median = %v over %d buckets, want %v over %d", got, n, want, wn)
				}
			}
			if len(b.ring) > hist+1 {
				t.Fatalf("ring holds %d buckets, more than history+1", len(b.ring))
			}
		}
	})
}
