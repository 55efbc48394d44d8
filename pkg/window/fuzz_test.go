package window

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// The fuzz targets drive each type with a byte-coded stream of operations
// (in-order events, late events, advances) and compare it, after every
// operation, with a brute-force reference that keeps every event and
// recomputes.

// FuzzSum checks Sum against the exact sums over (now-W, now] and
// (now-W-W/64, now]: the documented bound.
func FuzzSum(f *testing.F) {
	f.Add([]byte{0, 1, 5, 0, 1, 5, 3, 0, 0, 2, 10, 7, 3, 0, 0})
	f.Add(slices.Repeat([]byte{0, 3, 1, 2, 40, 2, 3, 0, 0}, 12))
	f.Add(slices.Repeat([]byte{1, 64, 9, 3, 1, 1, 2, 250, 1}, 12))
	f.Add(slices.Repeat([]byte{0, 2, 5, 2, 30, 7, 0, 1, 1, 3, 0, 0}, 15)) // coalesces
	f.Fuzz(checkSum)
}

func checkSum(t *testing.T, data []byte) {
	{
		const w = int64(64 * time.Millisecond)
		const unit = int64(100 * time.Microsecond)
		g := w / SumGrain
		s := NewSum(time.Duration(w))
		type ev struct {
			t int64
			v float64
		}
		var ref []ev
		newest, now := t0.UnixNano(), int64(noTime)
		addEvent := func(at int64, v float64) {
			s.Add(time.Unix(0, at), v)
			if at > cutoff(now, w) { // s ignores what already left the window
				ref = append(ref, ev{at, v})
			}
		}
		for k := 0; k+3 <= len(data); k += 3 {
			op, a, b := data[k]%4, int64(data[k+1]), data[k+2]
			switch op {
			case 0, 1: // event in order
				newest += a * unit
				addEvent(newest, float64(b))
			case 2: // late event, up to W+ late: sometimes already out of the window
				addEvent(newest-a*unit*5/2, float64(b))
			case 3: // advance, to the newest time or (ignored) an older one
				at := newest
				if b&1 == 1 {
					at -= a * unit
				}
				s.Advance(time.Unix(0, at))
				now = max(now, at)
			}
			cut := cutoff(now, w)
			var lo, hi float64
			var nlo, nhi int
			oldest := int64(0)
			for _, e := range ref {
				if e.t > cut {
					lo += e.v
					nlo++
					if nlo == 1 || e.t < oldest {
						oldest = e.t
					}
				}
				if e.t > cutoff(cut, g) {
					hi += e.v
					nhi++
				}
			}
			if v, n := s.Value(), s.Count(); v < lo || v > hi || n < nlo || n > nhi {
				t.Fatalf("op %d: Value %v Count %d, want in [%v, %v] and [%d, %d]", k/3, v, n, lo, hi, nlo, nhi)
			}
			if nhi <= SumExact && (s.Value() != lo || s.Count() != nlo) {
				t.Fatalf("op %d: %d events but inexact: %v/%d, want %v/%d", k/3, nhi, s.Value(), s.Count(), lo, nlo)
			}
			if o, ok := s.Oldest(); nlo > 0 && (!ok || o.UnixNano() > oldest || o.UnixNano() <= cutoff(cut, g)) {
				t.Fatalf("op %d: Oldest %v, %v; want in (%d, %d]", k/3, o.UnixNano(), ok, cutoff(cut, g), oldest)
			}
			if s.Empty() != (s.Count() == 0) {
				t.Fatalf("op %d: Empty %v with Count %d", k/3, s.Empty(), s.Count())
			}
		}
	}
}

// refSequence is the brute-force model of Sequence's documented semantics:
// a plain list of partial matches scanned in full at every step.
type refSequence struct {
	steps, max  int
	within, now int64
	parts       []refPartial
	seq         int
	dropped     uint64
}

type refPartial struct {
	start, last int64
	next, seq   int
	refs        []string
}

func (r *refSequence) step(i int, ts int64, ref string) (bool, int64, []string) {
	if i < 0 || i >= r.steps {
		return false, 0, nil
	}
	if i == 0 {
		if r.steps == 1 {
			return true, ts, []string{ref}
		}
		if ts < cutoff(r.now, r.within) {
			return false, 0, nil
		}
		p := refPartial{start: ts, last: ts, next: 1, seq: r.seq, refs: make([]string, r.steps)}
		r.seq++
		p.refs[0] = ref
		r.parts = append(r.parts, p)
		if len(r.parts) > r.max {
			oldest := 0
			for k, q := range r.parts {
				if q.start < r.parts[oldest].start || (q.start == r.parts[oldest].start && q.seq < r.parts[oldest].seq) {
					oldest = k
				}
			}
			r.parts = slices.Delete(r.parts, oldest, oldest+1)
			r.dropped++
		}
		return false, 0, nil
	}
	best := -1
	for k, p := range r.parts {
		if p.next != i || p.last > ts || ts-p.start > r.within {
			continue
		}
		if best < 0 {
			best = k
			continue
		}
		b := r.parts[best]
		if p.last > b.last || (p.last == b.last && (p.start > b.start || (p.start == b.start && p.seq > b.seq))) {
			best = k
		}
	}
	if best < 0 {
		return false, 0, nil
	}
	chosen := r.parts[best]
	r.parts = slices.DeleteFunc(r.parts, func(p refPartial) bool { return p.next == i && p.last <= ts })
	chosen.refs[i] = ref
	if i == r.steps-1 {
		return true, chosen.start, chosen.refs
	}
	chosen.next++
	chosen.last = ts
	r.parts = append(r.parts, chosen)
	return false, 0, nil
}

func (r *refSequence) dropBefore(ts int64) {
	r.parts = slices.DeleteFunc(r.parts, func(p refPartial) bool { return p.start < ts })
}

// FuzzSequence checks Sequence against refSequence, and every match against
// the rules: steps in time order, span <= T, each ref the event of its step.
func FuzzSequence(f *testing.F) {
	f.Add([]byte{1, 10, 3, 0, 1, 0, 1, 2, 0, 1, 3, 0})
	f.Add([]byte{2, 5, 1, 0, 0, 0, 0, 1, 0, 1, 1, 0, 2, 2, 0, 5, 0, 0, 2, 1, 0})
	f.Add(slices.Repeat([]byte{0, 1, 0, 0, 0, 0, 1, 2, 0, 1, 3, 1, 6, 2, 0, 7, 9, 0}, 6))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 3 {
			return
		}
		const unit = int64(time.Millisecond)
		steps := 1 + int(data[0]%3)
		within := int64(data[1]%16) * unit
		maxPartial := 1 + int(data[2]%5)
		data = data[3:]
		s := NewSequence(steps, time.Duration(within), maxPartial)
		r := &refSequence{steps: steps, max: maxPartial, within: within, now: noTime}
		stepOf := map[string]int{}
		timeOf := map[string]int64{}
		newest := t0.UnixNano()
		for k := 0; k+3 <= len(data); k += 3 {
			op, a, b := data[k], int64(data[k+1]%8), data[k+2]
			at := newest + a*unit
			if b&1 == 1 {
				at = newest - a*unit // late
			}
			newest = max(newest, at)
			switch {
			case op < 200: // a step
				i := int(op) % (steps + 1) // steps itself: out of range
				ref := fmt.Sprintf("e%d", k/3)
				stepOf[ref], timeOf[ref] = i, at
				done, m := s.Step(i, time.Unix(0, at), ref)
				rdone, rstart, rrefs := r.step(i, at, ref)
				if done != rdone || (done && (m.Start.UnixNano() != rstart || m.End.UnixNano() != at || !slices.Equal(m.Refs, rrefs))) {
					t.Fatalf("op %d step(%d, %d): got %v %v, want %v %d %v", k/3, i, at, done, m, rdone, rstart, rrefs)
				}
				if done {
					if len(m.Refs) != steps || m.End.Sub(m.Start) > time.Duration(within) {
						t.Fatalf("op %d: bad match %v", k/3, m)
					}
					for j, ref := range m.Refs {
						if stepOf[ref] != j || (j > 0 && timeOf[ref] < timeOf[m.Refs[j-1]]) {
							t.Fatalf("op %d: match %v breaks step order", k/3, m.Refs)
						}
					}
				}
			case op < 228: // until
				s.Cancel(time.Unix(0, at))
				r.dropBefore(at)
			default:
				wm := newest - int64(b%4)*unit
				s.Advance(time.Unix(0, wm))
				if wm > r.now {
					r.now = wm
					r.dropBefore(cutoff(wm, within))
				}
			}
			if s.Partial() != len(r.parts) || s.Dropped() != r.dropped {
				t.Fatalf("op %d: Partial %d Dropped %d, want %d %d", k/3, s.Partial(), s.Dropped(), len(r.parts), r.dropped)
			}
		}
	})
}

// FuzzAbsence checks Absence against a model that keeps every A and every B,
// driven like the engine: Expired with the watermark after every event.
func FuzzAbsence(f *testing.F) {
	f.Add([]byte{10, 2, 0, 0, 0, 1, 0, 2, 3, 1, 1})
	f.Add(slices.Repeat([]byte{0, 1, 0, 1, 3, 1, 0, 0, 0, 2, 7, 0}, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		const unit = int64(time.Millisecond)
		within := int64(2+data[0]%30) * unit
		lateness := within / 2
		maxPending := 1 + int(data[1]%6)
		data = data[2:]
		a := NewAbsence(time.Duration(within), maxPending)
		type refA struct {
			t   int64
			seq int
			ref string
		}
		var pending []refA
		var bs []int64
		wm, seq := int64(noTime), 0
		var dropped uint64
		newest := t0.UnixNano()
		for k := 0; k+3 <= len(data); k += 3 {
			op, d, late := data[k]%3, int64(data[k+1]%16), data[k+2]%8
			at := newest + d*unit
			if late > 0 {
				at = newest - int64(late)*lateness/8 // within the lateness
			}
			newest = max(newest, at)
			switch op {
			case 0: // A
				ref := fmt.Sprintf("a%d", k/3)
				a.Expect(time.Unix(0, at), ref)
				if at < wm || slices.ContainsFunc(bs, func(b int64) bool { return at <= b && b <= at+within }) {
					break
				}
				pending = append(pending, refA{at, seq, ref})
				seq++
				if len(pending) > maxPending {
					first := 0
					for i, p := range pending {
						if p.t < pending[first].t || (p.t == pending[first].t && p.seq < pending[first].seq) {
							first = i
						}
					}
					pending = slices.Delete(pending, first, first+1)
					dropped++
				}
			case 1: // B
				a.Satisfy(time.Unix(0, at))
				bs = append(bs, at)
				pending = slices.DeleteFunc(pending, func(p refA) bool { return p.t <= at && at <= p.t+within })
			case 2: // nothing but time passing
			}
			w := newest - lateness
			got := a.Expired(time.Unix(0, w))
			wm = max(wm, w)
			var want []refA
			pending = slices.DeleteFunc(pending, func(p refA) bool {
				if p.t+within < wm {
					want = append(want, p)
					return true
				}
				return false
			})
			slices.SortFunc(want, func(x, y refA) int {
				if x.t != y.t {
					return int(x.t - y.t)
				}
				return x.seq - y.seq
			})
			if len(got) != len(want) {
				t.Fatalf("op %d: Expired %v, want %v", k/3, got, want)
			}
			for i := range got {
				if got[i].Ref != want[i].ref || got[i].At.UnixNano() != want[i].t || got[i].Deadline.UnixNano() != want[i].t+within {
					t.Fatalf("op %d: Expired %v, want %v", k/3, got, want)
				}
			}
			if a.Len() != len(pending) || a.Dropped() != dropped {
				t.Fatalf("op %d: Len %d Dropped %d, want %d %d", k/3, a.Len(), a.Dropped(), len(pending), dropped)
			}
		}
	})
}

// FuzzDistinct checks Distinct's exact mode against a map of last-seen times.
func FuzzDistinct(f *testing.F) {
	f.Add([]byte{1, 2, 0, 3, 4, 0, 1, 40, 1, 9, 9, 2})
	f.Add(slices.Repeat([]byte{1, 2, 0, 3, 4, 0, 5, 70, 1, 9, 9, 2, 200, 1, 0}, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		const w = int64(64 * time.Millisecond)
		const unit = int64(time.Millisecond)
		d := NewDistinct(time.Duration(w), 1<<20)
		ref := map[uint64]int64{}
		newest, now := t0.UnixNano(), int64(noTime)
		for k := 0; k+3 <= len(data); k += 3 {
			v, a, b := uint64(data[k]%64), int64(data[k+1]), data[k+2]
			switch b % 3 {
			case 0:
				newest += a % 8 * unit
				at := newest
				d.Add(v, time.Unix(0, at))
				if prev, ok := ref[v]; at > cutoff(now, w) && (!ok || at > prev) {
					ref[v] = at
				}
			case 1:
				at := newest - a*unit/2 // late, sometimes out of the window
				d.Add(v, time.Unix(0, at))
				if prev, ok := ref[v]; at > cutoff(now, w) && (!ok || at > prev) {
					ref[v] = at
				}
			case 2:
				d.Advance(time.Unix(0, newest))
				now = max(now, newest)
			}
			want, oldest := 0, int64(0)
			for _, seen := range ref {
				if seen > cutoff(now, w) {
					if want == 0 || seen < oldest {
						oldest = seen
					}
					want++
				}
			}
			if d.Count() != want {
				t.Fatalf("op %d: Count %d, want %d", k/3, d.Count(), want)
			}
			if o, ok := d.Oldest(); ok != (want > 0) || (ok && o.UnixNano() != oldest) {
				t.Fatalf("op %d: Oldest %v %v, want %d", k/3, o.UnixNano(), ok, oldest)
			}
		}
	})
}
