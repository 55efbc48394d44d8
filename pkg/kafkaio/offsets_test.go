package kafkaio_test

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/leakline/leakline/pkg/kafkaio"
)

// op is one step against an OffsetTracker: begin or done of an offset.
type op struct {
	begin  bool
	offset int64
	fails  bool // the call must return an error
}

func beg(o int64) op     { return op{begin: true, offset: o} }
func fin(o int64) op     { return op{offset: o} }
func begFail(o int64) op { return op{begin: true, offset: o, fails: true} }
func finFail(o int64) op { return op{offset: o, fails: true} }

func TestOffsetTracker(t *testing.T) {
	tests := []struct {
		name     string
		ops      []op
		want     int64
		wantOK   bool
		inFlight int
	}{
		{name: "empty", wantOK: false},
		{name: "begun only", ops: []op{beg(0), beg(1)}, wantOK: false, inFlight: 2},
		{name: "in order", ops: []op{beg(0), fin(0), beg(1), fin(1)}, want: 1, wantOK: true},
		{name: "later done first", ops: []op{beg(0), beg(1), beg(2), fin(2), fin(1)}, wantOK: false, inFlight: 1},
		{name: "gap closes", ops: []op{beg(0), beg(1), beg(2), fin(2), fin(1), fin(0)}, want: 2, wantOK: true},
		{name: "prefix only", ops: []op{beg(0), beg(1), beg(2), beg(3), fin(0), fin(1), fin(3)}, want: 1, wantOK: true, inFlight: 1},
		{name: "sparse offsets", ops: []op{beg(10), beg(15), beg(40), fin(15), fin(10)}, want: 15, wantOK: true, inFlight: 1},
		{name: "not starting at zero", ops: []op{beg(1000), fin(1000)}, want: 1000, wantOK: true},
		{name: "begin not increasing", ops: []op{beg(5), begFail(5), begFail(4), fin(5)}, want: 5, wantOK: true},
		{name: "begin below committed", ops: []op{beg(5), fin(5), begFail(3)}, want: 5, wantOK: true},
		{name: "negative begin", ops: []op{begFail(-1)}, wantOK: false},
		{name: "done unknown", ops: []op{beg(1), finFail(2), finFail(0)}, wantOK: false, inFlight: 1},
		{name: "done twice pending", ops: []op{beg(1), beg(2), fin(2), finFail(2)}, wantOK: false, inFlight: 1},
		{name: "done twice committed", ops: []op{beg(1), fin(1), finFail(1)}, want: 1, wantOK: true},
		{name: "done without begin", ops: []op{finFail(0)}, wantOK: false},
		{name: "committable stays", ops: []op{beg(1), fin(1), beg(2), beg(3), fin(3)}, want: 1, wantOK: true, inFlight: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr kafkaio.OffsetTracker
			for i, o := range tt.ops {
				var err error
				if o.begin {
					err = tr.Begin(o.offset)
				} else {
					err = tr.Done(o.offset)
				}
				if (err != nil) != o.fails {
					t.Fatalf("op %d %+v: err %v, want failure %v", i, o, err, o.fails)
				}
			}
			got, ok := tr.Committable()
			if ok != tt.wantOK || (ok && got != tt.want) {
				t.Errorf("Committable() = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
			if n := tr.InFlight(); n != tt.inFlight {
				t.Errorf("InFlight() = %d, want %d", n, tt.inFlight)
			}
		})
	}
}

func TestOffsetTrackerReset(t *testing.T) {
	var tr kafkaio.OffsetTracker
	for o := int64(0); o < 10; o++ {
		if err := tr.Begin(o); err != nil {
			t.Fatal(err)
		}
	}
	_ = tr.Done(0)
	tr.Reset()
	if _, ok := tr.Committable(); ok || tr.InFlight() != 0 {
		t.Fatal("Reset left state behind")
	}
	// A rebalance may redeliver from an earlier offset.
	if err := tr.Begin(3); err != nil {
		t.Fatalf("Begin after Reset: %v", err)
	}
	if err := tr.Done(3); err != nil {
		t.Fatal(err)
	}
	if o, ok := tr.Committable(); !ok || o != 3 {
		t.Fatalf("Committable() = %d, %v", o, ok)
	}
}

// TestOffsetTrackerLong drives the tracker through many offsets finished out
// of order, exercising its internal compaction.
func TestOffsetTrackerLong(t *testing.T) {
	var tr kafkaio.OffsetTracker
	const n, window = 100_000, 37
	next := int64(0)
	var pending []int64
	for next < n || len(pending) > 0 {
		for next < n && len(pending) < window {
			if err := tr.Begin(next); err != nil {
				t.Fatal(err)
			}
			pending = append(pending, next)
			next++
		}
		// Finish the middle one: out of order, never the oldest first.
		i := len(pending) / 2
		if err := tr.Done(pending[i]); err != nil {
			t.Fatal(err)
		}
		pending = slices.Delete(pending, i, i+1)
		if o, ok := tr.Committable(); len(pending) > 0 && ok && o >= pending[0] {
			t.Fatalf("committable %d while %d is pending", o, pending[0])
		}
	}
	if o, ok := tr.Committable(); !ok || o != n-1 {
		t.Fatalf("Committable() = %d, %v; want %d", o, ok, n-1)
	}
}

// refTracker is the obvious model: every begun offset with its state.
type refTracker struct {
	begun []int64
	done  map[int64]bool
}

func (r *refTracker) begin(o int64) bool {
	if o < 0 || (len(r.begun) > 0 && o <= r.begun[len(r.begun)-1]) {
		return false
	}
	r.begun = append(r.begun, o)
	return true
}

func (r *refTracker) finish(o int64) bool {
	if !slices.Contains(r.begun, o) || r.done[o] {
		return false
	}
	r.done[o] = true
	return true
}

func (r *refTracker) committable() (int64, bool) {
	var c int64
	ok := false
	for _, o := range r.begun {
		if !r.done[o] {
			break
		}
		c, ok = o, true
	}
	return c, ok
}

func (r *refTracker) inFlight() int { return len(r.begun) - len(r.done) }

func FuzzOffsetTracker(f *testing.F) {
	f.Add([]byte{0, 1, 1, 1, 0, 2, 1, 2})
	f.Add([]byte{0, 5, 0, 6, 0, 7, 1, 6, 1, 7, 1, 5, 2, 0})
	f.Add([]byte{0, 3, 0, 3, 1, 2, 1, 3, 1, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		var tr kafkaio.OffsetTracker
		ref := &refTracker{done: map[int64]bool{}}
		last := int64(0)
		for len(data) >= 2 {
			kind, arg := data[0]%4, int64(data[1])
			data = data[2:]
			switch kind {
			case 0: // begin a bit above the last begun offset (or anywhere)
				o := last + arg - 8
				errGot := tr.Begin(o)
				okWant := ref.begin(o)
				if (errGot == nil) != okWant {
					t.Fatalf("Begin(%d): err %v, model accepts %v", o, errGot, okWant)
				}
				if okWant {
					last = o
				}
			case 1, 2: // done of a begun offset, or of something else
				var o int64
				if len(ref.begun) > 0 && kind == 1 {
					o = ref.begun[int(arg)%len(ref.begun)]
				} else {
					o = arg
				}
				errGot := tr.Done(o)
				okWant := ref.finish(o)
				if (errGot == nil) != okWant {
					t.Fatalf("Done(%d): err %v, model accepts %v", o, errGot, okWant)
				}
			case 3:
				if arg == 0 {
					tr.Reset()
					ref = &refTracker{done: map[int64]bool{}}
				}
			}
			gotO, gotOK := tr.Committable()
			wantO, wantOK := ref.committable()
			if gotOK != wantOK || (gotOK && gotO != wantO) {
				t.Fatalf("Committable() = %d, %v; model %d, %v", gotO, gotOK, wantO, wantOK)
			}
			if got, want := tr.InFlight(), ref.inFlight(); got != want {
				t.Fatalf("InFlight() = %d; model %d", got, want)
			}
		}
	})
}

// TestOffsetTrackerRandom runs the fuzz model on deterministic pseudo-random
// inputs so that plain `go test` covers more than the seed corpus.
func TestOffsetTrackerRandom(t *testing.T) {
	var state uint64 = 0x9e3779b97f4a7c15
	for iter := 0; iter < 300; iter++ {
		data := make([]byte, 400)
		for i := 0; i < len(data); i += 8 {
			state ^= state << 13
			state ^= state >> 7
			state ^= state << 17
			binary.LittleEndian.PutUint64(data[i:], state)
		}
		// Bias towards begins and dones of begun offsets.
		for i := 0; i+1 < len(data); i += 2 {
			data[i] %= 3
			if data[i] == 0 {
				data[i+1] = 8 + data[i+1]%4
			}
		}
		var tr kafkaio.OffsetTracker
		ref := &refTracker{done: map[int64]bool{}}
		last := int64(0)
		for j := 0; j+1 < len(data); j += 2 {
			kind, arg := data[j], int64(data[j+1])
			if kind == 0 {
				o := last + arg - 8
				if (tr.Begin(o) == nil) != ref.begin(o) {
					t.Fatalf("iter %d: Begin(%d) disagrees with the model", iter, o)
				}
				if len(ref.begun) > 0 {
					last = ref.begun[len(ref.begun)-1]
				}
				continue
			}
			o := arg
			if len(ref.begun) > 0 {
				o = ref.begun[int(arg)%len(ref.begun)]
			}
			if (tr.Done(o) == nil) != ref.finish(o) {
				t.Fatalf("iter %d: Done(%d) disagrees with the model", iter, o)
			}
			gotO, gotOK := tr.Committable()
			wantO, wantOK := ref.committable()
			if gotOK != wantOK || (gotOK && gotO != wantO) {
				t.Fatalf("iter %d: Committable() = %d, %v; model %d, %v", iter, gotO, gotOK, wantO, wantOK)
			}
		}
	}
}
