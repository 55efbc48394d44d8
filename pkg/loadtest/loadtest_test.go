package loadtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/pager"
	"github.com/leakline/leakline/pkg/rules"
	"github.com/leakline/leakline/pkg/scenario"
	"github.com/leakline/leakline/pkg/testenv"
)

// routedRules returns, for each scenario, whether the pager's default
// policy pages a live finding of one of its expected rules (at the rule's
// severity in the default pack): an attack whose every expected rule is
// below the policy's minimum severity is detected but, by policy, not paged.
func routedRules(t *testing.T) func(s ScenarioResult) bool {
	t.Helper()
	pack, err := rules.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	pol, err := pager.DefaultPolicy(false, false, "http://127.0.0.1:1/hook")
	if err != nil {
		t.Fatal(err)
	}
	sev := map[string]string{}
	for _, r := range pack.Rules {
		sev[r.ID] = r.Severity
	}
	return func(s ScenarioResult) bool {
		for _, id := range s.ExpectRules {
			if _, ok := sev[id]; !ok {
				t.Fatalf("scenario %s expects rule %s, which the default pack lacks", s.Name, id)
			}
			f := &finding.Finding{FindingID: "x", RuleID: id, ActorUID: s.Actor, Severity: sev[id]}
			if len(pol.Route(f, nil)) > 0 {
				return true
			}
		}
		return false
	}
}

// checkScores fails the test unless every attack is detected, every attack
// the default policy routes is paged (with the three times to detect), and
// no benign look-alike produced a live finding or a page.
func checkScores(t *testing.T, rep *Report) {
	t.Helper()
	routed := routedRules(t)
	if len(rep.Scenarios) != 7 {
		t.Fatalf("%d scenarios scored, want 7", len(rep.Scenarios))
	}
	for _, s := range rep.Scenarios {
		switch s.Kind {
		case scenario.KindAttack:
			if !s.Detected || s.TimeToDetectS == nil || s.StoredAfterS == nil {
				t.Errorf("attack %s (%s) missed or without times: detected %v; live rules fired for the actor: %v, want one of %v", s.Name, s.Actor, s.Detected, s.RulesFired, s.ExpectRules)
			}
			want := routed(s)
			if s.Paged != want {
				t.Errorf("attack %s: paged %v (rules paged %v), but the default policy routes its expected rules %v: %v", s.Name, s.Paged, s.RulesPaged, s.ExpectRules, want)
			}
			if s.Paged && (s.PagedAfterS == nil || *s.PagedAfterS <= 0) {
				t.Errorf("attack %s paged without a positive time to page: %v", s.Name, s.PagedAfterS)
			}
		case scenario.KindBenign:
			if s.Detected || len(s.RulesFired) > 0 || s.Paged {
				t.Errorf("benign look-alike %s (%s): live findings %v, paged %v", s.Name, s.Actor, s.RulesFired, s.Paged)
			}
		}
	}
	if rep.Pages == 0 {
		t.Error("no page reached the receiver")
	}
	if rep.Events == 0 || rep.ThroughputEPS <= 0 || rep.LatencySamples == 0 || rep.Latency.P50 <= 0 || rep.Latency.P99 < rep.Latency.P50 {
		t.Errorf("measurements missing: events %d, throughput %.1f, latency %+v from %d samples", rep.Events, rep.ThroughputEPS, rep.Latency, rep.LatencySamples)
	}
	if len(rep.Series) == 0 || rep.Memory.ProcessPeakRSSBytes <= 0 || rep.Memory.ClickHousePeakRSSBytes <= 0 || rep.Memory.GoHeapPeakBytes <= 0 {
		t.Errorf("series (%d points) or memory missing: %+v", len(rep.Series), rep.Memory)
	}
	for _, g := range lagGroups {
		if v, ok := rep.FinalLag[g.group]; !ok || v < 0 {
			t.Errorf("final lag of %s unknown: %v", g.group, rep.FinalLag)
		}
	}
	if rep.FinalLag["leakline-pager.webhook"] != 0 {
		t.Errorf("the pager did not catch up: lag %v", rep.FinalLag)
	}
	var table strings.Builder
	PrintReport(&table, rep)
	t.Log(table.String())
}

// TestRateModePagerInTheLoop runs a small organisation in rate mode for a
// few seconds through the real pipeline (embedded broker, private
// ClickHouse) with the pager posting to the webhook receiver, and checks
// the scores: every attack detected and (where the default policy routes
// its rules) paged, no benign look-alike found or paged.
func TestRateModePagerInTheLoop(t *testing.T) {
	testenv.Long(t, "integration test")
	ch := testenv.ClickHouse(t)
	var progress strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A broker retention far below the run's volume (~0.2 MB per
	// partition of each source topic): the broker cuts while the run goes
	// on, and the complete scores below show that nothing was cut before
	// every stage had committed it.
	const retention = 32 << 10
	rep, err := Run(ctx, Options{Employees: 30, Customers: 3000, Days: 3, Seed: 11, Rate: 1500, Duration: 6 * time.Second,
		Retention: retention, CH: ch, Database: "loadtest_rate", Out: &progress, Progress: 2 * time.Second})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	t.Log(progress.String())
	checkScores(t, rep)
	if rep.TargetEPS != 1500 || rep.Events < 9000 {
		t.Errorf("target %v events/s, %d events produced; want 1500 and ≥ 9000", rep.TargetEPS, rep.Events)
	}
	if rep.EmployeeDays <= 0 {
		t.Errorf("employee-days %v", rep.EmployeeDays)
	}
	if rep.Memory.BrokerRetentionBytes != retention || rep.Memory.BrokerPeakBytes <= 0 {
		t.Errorf("broker retention %d, peak %d bytes; want %d and > 0", rep.Memory.BrokerRetentionBytes, rep.Memory.BrokerPeakBytes, retention)
	}
	if rep.CPU.ProcessSeconds <= 0 || rep.CPU.ProcessUSPerEvent <= 0 || rep.CPU.ClickHouseSeconds <= 0 {
		t.Errorf("CPU not measured: %+v", rep.CPU)
	}
	if rep.Memory.BrokerRecordsCut == 0 {
		t.Errorf("retention of %d bytes per partition cut nothing from the source topics", retention)
	}
}

// TestTimeCompressedMode runs a small organisation's three days through
// the same pipeline and pager in the time-compressed mode.
func TestTimeCompressedMode(t *testing.T) {
	testenv.Long(t, "integration test")
	ch := testenv.ClickHouse(t)
	var progress strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Options{Employees: 30, Customers: 3000, Days: 3, Seed: 11, CH: ch, Database: "loadtest_compressed", Out: &progress, Progress: 5 * time.Second})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	checkScores(t, rep)
	if rep.EmployeeDays != 90 {
		t.Errorf("employee-days %v, want 90", rep.EmployeeDays)
	}
}

// TestProcessesMode runs the same small rate-mode load with normalizer,
// detector, chsink and pager as child processes (pkg/fleet builds them
// from services/), and checks the scores and each service's peak memory.
func TestProcessesMode(t *testing.T) {
	testenv.Long(t, "integration test")
	ch := testenv.ClickHouse(t)
	var progress strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Options{Employees: 30, Customers: 3000, Days: 3, Seed: 11, Rate: 1000, Duration: 5 * time.Second, Processes: true,
		CH: ch, Database: "loadtest_processes", Out: &progress, Progress: 2 * time.Second})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	checkScores(t, rep)
	for _, name := range processServices {
		if rep.CPU.ServiceUSPerEvent[name] <= 0 {
			t.Errorf("no CPU per event for %s: %v", name, rep.CPU.ServiceUSPerEvent)
		}
		if rep.Memory.Services[name] <= 0 {
			t.Errorf("no peak RSS for %s: %v", name, rep.Memory.Services)
		}
	}
}
