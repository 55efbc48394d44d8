package detect

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestGroupTableExactUnderCollisions drives the hashed group table with a
// deliberately weak hash (many keys per hash) and checks every lookup
// against a plain map: colliding keys never share a group.
func TestGroupTableExactUnderCollisions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hashes uint64 // distinct hash values the weak hash yields (0: the real hash)
	}{
		{"real hash", 0},
		{"one hash for all", 1},
		{"seven hashes", 7},
		{"many hashes", 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := newGroupTable()
			if tc.hashes > 0 {
				tab.weak = func(k string) uint64 { return hashString(k) % tc.hashes }
			}
			ref := map[string]*group{}
			rng := rand.New(rand.NewPCG(3, tc.hashes))
			for i := 0; i < 20_000; i++ {
				key := fmt.Sprintf("u-%d", rng.IntN(300))
				switch g := tab.get(key); {
				case g != ref[key]:
					t.Fatalf("op %d: get(%q) = %p, want %p", i, key, g, ref[key])
				case g == nil:
					g = &group{rec: newGroupRec(key)}
					tab.put(g)
					ref[key] = g
				case rng.IntN(2) == 0:
					tab.remove(g)
					delete(ref, key)
				}
				if tab.len() != len(ref) {
					t.Fatalf("op %d: %d groups, want %d", i, tab.len(), len(ref))
				}
			}
			n := 0
			for g := range tab.all() {
				if k := string(g.rec.key()); ref[k] != g {
					t.Fatalf("all() yields %q, which is not live", k)
				}
				n++
			}
			if n != len(ref) {
				t.Fatalf("all() yields %d groups, want %d", n, len(ref))
			}
		})
	}
}
