package detect

import "testing"

// TestReadSetBound: a read-set at its bound forgets the least recently read
// eighth and keeps the rest; a re-read refreshes a read so it survives.
func TestReadSetBound(t *testing.T) {
	const max = 800
	var s readSet
	for i := range max {
		s.add(uint64(i), int64(i), max)
	}
	s.add(0, 10_000, max) // read 0 again: now the most recent
	if len(s.last) != max {
		t.Fatalf("%d reads at the bound, want %d", len(s.last), max)
	}
	s.add(max, 10_001, max) // a new read at the bound evicts reads 1..100
	if len(s.last) != max-max/8+1 {
		t.Fatalf("%d reads after the eviction, want %d", len(s.last), max-max/8+1)
	}
	for _, c := range []struct {
		fp   uint64
		want bool
	}{{0, true}, {1, false}, {100, false}, {101, true}, {max - 1, true}, {max, true}} {
		if s.has(c.fp, 0) != c.want {
			t.Errorf("read %d kept = %v, want %v", c.fp, !c.want, c.want)
		}
	}
	for i := range 10_000 { // never above the bound
		s.add(uint64(10_000+i), int64(20_000+i), max)
		if len(s.last) > max {
			t.Fatalf("%d reads, above the bound %d", len(s.last), max)
		}
	}
}
