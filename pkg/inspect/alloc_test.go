//go:build !race

// Allocation counts are not meaningful under the race detector (sync.Pool
// drops items on purpose there), so this file is left out of -race builds
// rather than skipping.

package inspect

import (
	"strings"
	"testing"
)

// TestAllocations: a scan of text without PII allocates nothing; with PII,
// at most once per detection.
func TestAllocations(t *testing.T) {
	s := newTestScanner(t, Config{})
	noPII := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog at 10:30 on day 12 of 2024. ", 200))
	dst := make([]Detection, 0, 64)
	if a := testing.AllocsPerRun(20, func() { dst, _ = s.Scan(noPII, dst[:0]) }); a != 0 {
		t.Errorf("scan without PII allocates %.1f times", a)
	}
	withPII := []byte(strings.Repeat("mail a@example.com card 4111 1111 1111 1111 filler text here. ", 10))
	ds, _ := s.Scan(withPII, dst[:0])
	n := float64(len(ds))
	if a := testing.AllocsPerRun(20, func() { dst, _ = s.Scan(withPII, dst[:0]) }); a > n {
		t.Errorf("scan with %v detections allocates %.1f times", n, a)
	}
}
