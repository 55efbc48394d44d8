package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/scenario"
	"github.com/leakline/leakline/pkg/testenv"
)

// TestSmallOrgScenarios runs a small organisation (30 employees, 3 days)
// through the real pipeline — embedded broker, private ClickHouse — and
// checks the scoring: every attack scenario is detected by one of its
// expected rules, and no benign look-alike produces a live finding.
func TestSmallOrgScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ch := testenv.ClickHouse(t)
	var progress strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rep, err := Run(ctx, Options{Employees: 30, Customers: 3000, Days: 3, Seed: 11, CH: ch, Out: &progress, Progress: 5 * time.Second})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	var table strings.Builder
	PrintReport(&table, rep)
	t.Log(table.String())

	if len(rep.Scenarios) != 7 {
		t.Fatalf("%d scenarios scored, want 7", len(rep.Scenarios))
	}
	for _, s := range rep.Scenarios {
		switch s.Kind {
		case scenario.KindAttack:
			if !s.Detected {
				t.Errorf("attack %s (%s) missed; live rules fired for the actor: %v, want one of %v", s.Name, s.Actor, s.RulesFired, s.ExpectRules)
			} else if s.TimeToDetectS == nil {
				t.Errorf("attack %s detected without a time to detect", s.Name)
			}
		case scenario.KindBenign:
			if s.Detected || len(s.RulesFired) > 0 {
				t.Errorf("benign look-alike %s (%s) produced live findings: %v", s.Name, s.Actor, s.RulesFired)
			}
		}
		if s.Paged {
			t.Errorf("%s paged, but the pager is not in the loop", s.Name)
		}
	}
	if rep.Events == 0 || rep.ThroughputEPS <= 0 || rep.Latency.P50 <= 0 || rep.Latency.P99 < rep.Latency.P50 {
		t.Errorf("measurements missing: events %d, throughput %.1f, latency %+v", rep.Events, rep.ThroughputEPS, rep.Latency)
	}
	if rep.EmployeeDays != 90 {
		t.Errorf("employee-days %d, want 90", rep.EmployeeDays)
	}
}
