package detect

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// TestGroupRecKeepsNewestInWindow checks the packed record against the
// plain rule it implements: append, drop the leading events older than the
// cut, keep the newest maxGroupRefs; the key stays as it was.
func TestGroupRecKeepsNewestInWindow(t *testing.T) {
	type ref struct {
		at int64
		id string
	}
	for _, tc := range []struct {
		name   string
		jitter int64 // how far back an event's time may lie (late events)
		span   int64 // the window: cut = newest - span
		idLen  int
	}{
		{"in order, wide window", 0, 1 << 40, 10},
		{"in order, narrow window", 0, 5, 10},
		{"late events", 8, 6, 3},
		{"no cut", 0, 0, 36},
		{"long ids", 3, 20, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(tc.idLen)))
			key := strings.Repeat("k", tc.idLen) + ":US"
			l := newGroupRec(key)
			var want []ref
			var newest int64
			for i := 0; i < 2_000; i++ {
				at := int64(i) - rng.Int64N(tc.jitter+1)
				newest = max(newest, at)
				id := fmt.Sprintf("e-%d-%s", i, strings.Repeat("x", rng.IntN(tc.idLen)))
				cut := int64(noCut)
				if tc.span > 0 {
					cut = newest - tc.span
				}
				l.push(at, id, cut)
				want = append(want, ref{at, id})
				k := 0
				for k < len(want) && cut != noCut && want[k].at < cut {
					k++
				}
				k = max(k, len(want)-maxGroupRefs)
				want = slices.Clone(want[k:])
				var got []ref
				l.each(func(at int64, id []byte) { got = append(got, ref{at, string(id)}) })
				if !slices.Equal(got, want) {
					t.Fatalf("after push %d: got %v, want %v", i, got, want)
				}
				if string(l.key()) != key {
					t.Fatalf("after push %d: key %q, want %q", i, l.key(), key)
				}
				if i%500 == 499 {
					l.clearRefs()
					want = want[:0]
				}
			}
		})
	}
}

// TestGroupRecordIsSmall guards the per-(actor, rule) record's size: it is
// paid once per tracked group (docs/BENCHMARKS.md, engine state).
func TestGroupRecordIsSmall(t *testing.T) {
	if got := unsafe.Sizeof(group{}); got > 64 {
		t.Fatalf("group is %d bytes, more than the 64-byte size class", got)
	}
}
