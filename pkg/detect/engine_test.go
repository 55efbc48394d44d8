package detect_test

import (
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/inspect"
	"github.com/leakline/leakline/pkg/privacy"
	"github.com/leakline/leakline/pkg/rules"
	"github.com/leakline/leakline/pkg/scenario"
)

var testKey = []byte("0123456789abcdef0123456789abcdef-test-only-key")

func scanner(t testing.TB) *inspect.Scanner {
	t.Helper()
	tok, err := privacy.NewTokenizer(testKey)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := inspect.New(inspect.Config{}, tok)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestDefaultPackFixtures runs every fixture of the default rule pack
// (positives and negatives) through the engine.
func TestDefaultPackFixtures(t *testing.T) {
	cases, err := rules.LoadDefaultTests()
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("the default pack has no fixtures")
	}
	res, err := detect.RunTests(detect.DefaultConfig(), scanner(t), cases)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		t.Run(r.Case.Name, func(t *testing.T) {
			if len(r.Diffs) > 0 {
				t.Errorf("%d finding revision(s) emitted; differences:\n%s", len(r.Findings), strings.Join(r.Diffs, "\n"))
			}
		})
	}
}

// runDay decodes a scenario day as the normalizer would and feeds it to a
// fresh engine, returning the latest revision of every finding.
func runDay(t testing.TB, day scenario.Day) map[string]finding.Finding {
	t.Helper()
	dec, err := event.NewDecoder(event.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := detect.New(detect.DefaultConfig(), scanner(t))
	if err != nil {
		t.Fatal(err)
	}
	latest := map[string]finding.Finding{}
	now := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	for i, r := range day.Events {
		ev, err := dec.DecodeRaw(r.Kind, r.Value, event.Source{Topic: string(r.Kind), Offset: int64(i)}, now)
		if err != nil {
			continue // the malformed event
		}
		for _, f := range e.Process(ev, now) {
			if old, ok := latest[f.FindingID]; ok && old.Revision >= f.Revision {
				t.Fatalf("finding %s: revision %d after %d", f.FindingID, f.Revision, old.Revision)
			}
			latest[f.FindingID] = f
		}
	}
	return latest
}

func TestDemoDayFindsTheInsiderOnly(t *testing.T) {
	day := scenario.DemoDay(7, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	got := runDay(t, day)
	perRule := map[string]int{}
	for _, f := range got {
		if f.ActorUID != day.Insider && !f.Shadow {
			t.Errorf("false positive %s for %s", f.RuleID, f.ActorUID)
		}
		perRule[f.RuleID]++
	}
	for _, r := range day.ExpectedRules {
		if perRule[r] != 1 {
			t.Errorf("rule %s: %d incidents, want 1", r, perRule[r])
		}
	}
}
