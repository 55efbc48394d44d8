package detect

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestRecentIDsMatchesFIFO checks the open-addressing dedup set against a
// plain map + FIFO: an id is a repeat exactly when it is among the last n
// distinct ids remembered.
func TestRecentIDsMatchesFIFO(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n, space int
		ops      int
	}{
		{"tiny", 1, 3, 2_000},
		{"small, many repeats", 7, 12, 20_000},
		{"full table churn", 1_000, 1_500, 200_000},
		{"mostly fresh", 1_000, 1_000_000, 100_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecentIDs(tc.n)
			ref := map[string]bool{}
			var fifo []string
			rng := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.space)))
			for i := 0; i < tc.ops; i++ {
				id := fmt.Sprintf("id-%d", rng.IntN(tc.space))
				want := ref[id]
				if !want {
					ref[id] = true
					fifo = append(fifo, id)
					if len(fifo) > tc.n {
						delete(ref, fifo[0])
						fifo = fifo[1:]
					}
				}
				if got := r.seen(id); got != want {
					t.Fatalf("op %d: seen(%q) = %v, want %v", i, id, got, want)
				}
			}
			live := 0
			for _, v := range r.table {
				if v != 0 {
					live++
				}
			}
			if live != len(fifo) {
				t.Fatalf("table holds %d ids, want %d", live, len(fifo))
			}
		})
	}
}
