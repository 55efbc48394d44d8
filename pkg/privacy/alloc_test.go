//go:build !race

// Allocation counts are not meaningful under the race detector (sync.Pool
// drops items on purpose there), so this file is left out of -race builds
// rather than skipping.

package privacy

import (
	"testing"
)

func TestAppendTokenNoAlloc(t *testing.T) {
	tok, _ := NewTokenizer(testKey)
	buf := make([]byte, 0, 64)
	v := []byte("4111111111111111")
	tok.AppendToken(buf, "CREDIT_CARD", v) // warm the pool
	allocs := testing.AllocsPerRun(200, func() {
		buf = tok.AppendToken(buf[:0], "CREDIT_CARD", v)
	})
	if allocs > 0 {
		t.Fatalf("AppendToken allocates %.1f times", allocs)
	}
}
