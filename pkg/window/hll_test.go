package window

import (
	"math"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/testenv"
)

// TestSlidingHLLError checks the sketch's relative error against the
// theoretical standard error 1.04/sqrt(m) over windows of 100k to 1M distinct
// values, on a stream that slides (values enter and leave the window), and
// asserts every estimate is within 3σ.
func TestSlidingHLLError(t *testing.T) {
	testenv.Long(t, "1.3M sketch updates")
	const w = time.Hour
	sigma := 1.04 / math.Sqrt(1<<DefaultPrecision)
	for _, perWindow := range []int{100_000, 300_000, 1_000_000} {
		d := NewDistinct(w, 1) // sketch from the second value on
		step := w / time.Duration(perWindow)
		total := perWindow + perWindow/3 // slide a third of a window further
		var sumSq float64
		checks := 0
		for i := range total {
			at := t0.Add(time.Duration(i) * step)
			d.Add(uint64(i)*0x9e3779b97f4a7c15, at) // distinct hashes
			d.Advance(at)
			if i >= perWindow-1 && (i-perWindow+1)%(perWindow/30) == 0 {
				truth := float64(perWindow - 1) // values in (at-W, at]
				if i < perWindow {
					truth = float64(i + 1)
				}
				est, exact := d.Estimate()
				if exact {
					t.Fatal("estimate claims to be exact")
				}
				rel := (est - truth) / truth
				sumSq += rel * rel
				checks++
				if math.Abs(rel) > 3*sigma {
					t.Fatalf("%d per window, value %d: estimate %.0f, truth %.0f, error %.2f%% > 3σ = %.2f%%",
						perWindow, i, est, truth, 100*rel, 300*sigma)
				}
			}
		}
		t.Logf("%d distinct per window: RMS relative error %.2f%% over %d checks (σ = %.2f%%), sketch %d B",
			perWindow, 100*math.Sqrt(sumSq/float64(checks)), checks, 100*sigma, d.Size())
	}
}

// TestSlidingHLLErrorSpread measures the spread of independent sketches
// (different hash seeds) of 100k values: the RMS relative error must be
// within 20% of σ = 1.04/sqrt(m), the mean error (bias) within 3 standard
// errors of 0, and at most 2% of the sketches beyond 3σ (0.27% expected).
func TestSlidingHLLErrorSpread(t *testing.T) {
	testenv.Long(t, "10M sketch updates")
	const n, runs = 100_000, 100
	sigma := 1.04 / math.Sqrt(1<<DefaultPrecision)
	var sum, sumSq float64
	beyond := 0
	for r := range runs {
		s := newSlidingHLL(DefaultPrecision, int64(time.Hour), t0.UnixNano()-int64(time.Hour))
		seed := uint64(r+1) * 0xbf58476d1ce4e5b9
		for i := range n {
			s.add(mix(uint64(i)^seed), t0.UnixNano()+int64(i))
		}
		rel := (s.estimate() - n) / n
		sum += rel
		sumSq += rel * rel
		if math.Abs(rel) > 3*sigma {
			beyond++
		}
	}
	mean, rms := sum/runs, math.Sqrt(sumSq/runs)
	t.Logf("%d sketches of %d values: bias %+.2f%%, RMS relative error %.2f%% (σ = %.2f%%), %d beyond 3σ",
		runs, n, 100*mean, 100*rms, 100*sigma, beyond)
	if rms < 0.8*sigma || rms > 1.2*sigma || math.Abs(mean) > 3*sigma/math.Sqrt(runs) || beyond > runs/50 {
		t.Fatalf("error distribution off: bias %.2f%%, RMS %.2f%%, %d beyond 3σ", 100*mean, 100*rms, beyond)
	}
}

// TestSlidingHLLSmallRange: the estimator is also good for a handful of
// values (no bias tables needed).
func TestSlidingHLLSmallRange(t *testing.T) {
	for _, n := range []int{1, 2, 10, 100, 1000, 5000} {
		s := newSlidingHLL(DefaultPrecision, int64(time.Hour), 0)
		for i := range n {
			s.add(uint64(i), int64(time.Second)+int64(i))
		}
		est := s.estimate()
		if math.Abs(est-float64(n)) > math.Max(1, 3*1.04/32*float64(n)) {
			t.Errorf("n = %d: estimate %.2f", n, est)
		}
	}
}

// TestSlidingHLLFrontier checks each register's list of possible future
// maxima after random late insertions: ticks strictly ascending, ranks
// strictly descending, heap and histogram consistent.
func TestSlidingHLLFrontier(t *testing.T) {
	s := newSlidingHLL(4, int64(time.Hour), 0)
	x := uint64(7)
	now := int64(time.Hour)
	for i := range 200000 {
		x = x*6364136223846793005 + 1442695040888963407
		now += int64(x>>54) * int64(time.Millisecond)
		s.add(x>>7, now-int64((x>>20)%300)*int64(time.Second))
		if i%100 == 0 {
			s.advance(now - int64(time.Hour))
		}
		if i%1000 == 0 {
			checkHLL(t, s)
		}
	}
	// Force a rebase far ahead without advancing.
	s.add(12345, now+int64(2000*time.Hour))
	checkHLL(t, s)
	s.advance(now + int64(3000*time.Hour))
	if !s.empty() {
		t.Fatal("sketch not empty after everything left the window")
	}
	checkHLL(t, s)
}

func checkHLL(t *testing.T, s *slidingHLL) {
	t.Helper()
	var hist [64]int32
	inHeap := 0
	for j, n := range s.lens {
		seg := s.pairs[j*s.stride : j*s.stride+int(n)]
		for k := 1; k < len(seg); k++ {
			if tickOf(seg[k]) <= tickOf(seg[k-1]) || rankOf(seg[k]) >= rankOf(seg[k-1]) {
				t.Fatalf("register %d: not a frontier: %v", j, seg)
			}
		}
		if n > 0 {
			hist[rankOf(seg[0])]++
		} else {
			hist[0]++
		}
		if n > 0 {
			inHeap++
			if s.pos[j] == 0 || int(s.heap[s.pos[j]-1]) != j {
				t.Fatalf("register %d missing from the heap", j)
			}
		} else if s.pos[j] != 0 {
			t.Fatalf("empty register %d in the heap", j)
		}
	}
	if hist != s.hist || inHeap != len(s.heap) {
		t.Fatalf("histogram or heap out of sync")
	}
	for i := 1; i < len(s.heap); i++ {
		if s.key(s.heap[(i-1)/2]) > s.key(s.heap[i]) {
			t.Fatalf("heap order broken at %d", i)
		}
	}
}
