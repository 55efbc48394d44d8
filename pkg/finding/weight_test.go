package finding_test

import (
	"testing"

	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/finding"
)

// TestSeverityWeight checks the risk weights and that they are the ones of
// Grafana's top_users risk score (chstore.SeverityWeights).
func TestSeverityWeight(t *testing.T) {
	for _, tt := range []struct {
		sev  string
		want float64
	}{
		{finding.SeverityLow, 1},
		{finding.SeverityMedium, 3},
		{finding.SeverityHigh, 10},
		{finding.SeverityCritical, 25},
		{"", 0},
		{"CRITICAL", 0},
		{"info", 0},
	} {
		if got := finding.SeverityWeight(tt.sev); got != tt.want {
			t.Errorf("SeverityWeight(%q) = %v, want %v", tt.sev, got, tt.want)
		}
	}
	if len(chstore.SeverityWeights) != 4 {
		t.Fatalf("chstore has %d severity weights, the pager 4", len(chstore.SeverityWeights))
	}
	for _, w := range chstore.SeverityWeights {
		if got := finding.SeverityWeight(w.Severity); got != w.Weight {
			t.Errorf("severity %s: pager weight %v, Grafana (chstore) weight %v", w.Severity, got, w.Weight)
		}
	}
}
