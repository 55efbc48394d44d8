package main

import (
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/scenario"
)

func TestScore(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	org := &scenario.Org{
		Opt:       scenario.OrgOptions{Days: 10},
		Employees: make([]scenario.Employee, 100),
		Scenarios: []scenario.Scenario{
			{Name: "a", Kind: scenario.KindAttack, Actor: "u-a", Start: t0, Exfil: t0.Add(time.Hour), ExpectRules: []string{"r1"}},
			{Name: "missed", Kind: scenario.KindAttack, Actor: "u-m", Start: t0, Exfil: t0, ExpectRules: []string{"r1"}},
			{Name: "b", Kind: scenario.KindBenign, Actor: "u-b", Start: t0},
			{Name: "quiet", Kind: scenario.KindBenign, Actor: "u-q", Start: t0},
		},
	}
	fs := []finding.Finding{
		// u-a: the expected rule, whose first revision ended 2 h after exfil
		// (the latest revision ends later), and an unexpected rule.
		{FindingID: "f1", RuleID: "r1", ActorUID: "u-a", WindowEnd: t0.Add(9 * time.Hour)},
		{FindingID: "f2", RuleID: "r9", ActorUID: "u-a", WindowEnd: t0.Add(30 * time.Minute)},
		// u-m: only a shadow finding of the expected rule, and one before its start.
		{FindingID: "f3", RuleID: "r1", ActorUID: "u-m", Shadow: true, WindowEnd: t0.Add(time.Hour)},
		{FindingID: "f4", RuleID: "r1", ActorUID: "u-m", WindowEnd: t0.Add(-time.Hour)},
		// u-b: a live finding (a false alarm), u-x: an ordinary employee's.
		{FindingID: "f5", RuleID: "r2", ActorUID: "u-b", WindowEnd: t0.Add(time.Hour)},
		{FindingID: "f6", RuleID: "r3", ActorUID: "u-x", WindowEnd: t0},
		{FindingID: "f7", RuleID: "r3", ActorUID: "u-q", Shadow: true, WindowEnd: t0.Add(time.Hour)},
	}
	first := map[string]time.Time{"f1": t0.Add(3 * time.Hour)}
	rep := score(org, fs, first)
	got := map[string]ScenarioResult{}
	for _, s := range rep.Scenarios {
		got[s.Name] = s
	}
	if a := got["a"]; !a.Detected || a.TimeToDetectS == nil || *a.TimeToDetectS != 7200 || len(a.RulesFired) != 2 {
		t.Errorf("a: %+v", a)
	}
	if m := got["missed"]; m.Detected || m.TimeToDetectS != nil {
		t.Errorf("missed: %+v", m)
	}
	if b := got["b"]; !b.Detected || b.TimeToDetectS != nil || b.Paged {
		t.Errorf("b: %+v", b)
	}
	if q := got["quiet"]; q.Detected || len(q.RulesFired) != 0 {
		t.Errorf("quiet: %+v", q)
	}
	// False positives: f5 (benign actor), f6 (nobody's scenario); f4 is an
	// attack actor's, f3 and f7 are shadow.
	if rep.FalsePositives != 2 || rep.FalsePositivesPer1kEmployeeDay != 2 || rep.ShadowFindings != 2 {
		t.Errorf("false positives %d (%.2f per 1k employee-days), shadow %d", rep.FalsePositives, rep.FalsePositivesPer1kEmployeeDay, rep.ShadowFindings)
	}
}

func TestLatency(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	// Two slices of 2 and 3 events produced at 0 and 100 ms; the counter
	// reaches 2 at 10 ms, 4 at 120 ms and 5 at 150 ms.
	steps := []step{{end: 2, at: ms(0)}, {end: 5, at: ms(100)}}
	samples := []sample{{at: ms(10), n: 2}, {at: ms(120), n: 4}, {at: ms(150), n: 5}}
	got := latency(steps, samples)
	// Latencies 10, 10, 20, 20, 50.
	if got.P50 != 20 || got.P95 != 50 || got.P99 != 50 {
		t.Errorf("latency %+v", got)
	}
	if (latency(nil, nil) != LatencyMS{}) {
		t.Error("no samples: want zero")
	}
}
