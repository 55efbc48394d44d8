package finding

import (
	"testing"
	"time"
)

func TestIDDeterministicAndDistinct(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	base := ID("r", "1", "u-1", t0)
	if len(base) != 32 {
		t.Fatalf("id %q is not 32 hex chars", base)
	}
	if again := ID("r", "1", "u-1", t0.In(time.FixedZone("X", 3600))); again != base {
		t.Errorf("same instant in another zone gives %q, want %q", again, base)
	}
	for name, other := range map[string]string{
		"rule":    ID("r2", "1", "u-1", t0),
		"version": ID("r", "2", "u-1", t0),
		"group":   ID("r", "1", "u-2", t0),
		"start":   ID("r", "1", "u-1", t0.Add(time.Nanosecond)),
		"joined":  ID("r1", "", "u-1", t0), // field boundaries are unambiguous
	} {
		if other == base {
			t.Errorf("changing the %s does not change the id", name)
		}
	}
}
