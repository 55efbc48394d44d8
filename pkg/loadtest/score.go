package loadtest

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/scenario"
)

// truth is what the scorer compares the outputs with.
type truth struct {
	Scenarios []scenario.Scenario
	// EmployeeDays is the denominator of the false-positive rates.
	EmployeeDays float64
	// ExfilProduced is, by scenario name, the wall time its first
	// exfiltration event was produced.
	ExfilProduced map[string]time.Time
}

// observed is what came out of the pipeline.
type observed struct {
	// Findings are read back from ClickHouse (FINAL: the latest revision).
	Findings []finding.Finding
	// FirstEnd maps a finding id to the window end of its first revision.
	FirstEnd map[string]time.Time
	// Stored maps a finding id to the wall time it was first seen in
	// ClickHouse.
	Stored map[string]time.Time
	// Pages are the trigger pages the receiver got.
	Pages []ReceivedPage
}

func (t truth) attackers() map[string]bool {
	m := map[string]bool{}
	for _, s := range t.Scenarios {
		if s.Kind == scenario.KindAttack {
			m[s.Actor] = true
		}
	}
	return m
}

// score compares the outputs with the ground truth.
func score(tr truth, ob observed) *Report {
	rep := &Report{EmployeeDays: tr.EmployeeDays, Findings: len(ob.Findings)}
	end := func(f finding.Finding) time.Time {
		if t, ok := ob.FirstEnd[f.FindingID]; ok {
			return t
		}
		return f.WindowEnd
	}
	per1k := func(n int) float64 {
		if tr.EmployeeDays <= 0 {
			return 0
		}
		return float64(n) * 1000 / tr.EmployeeDays
	}
	attackers := tr.attackers()
	fpRules := map[string]bool{}
	for _, f := range ob.Findings {
		if f.Shadow {
			rep.ShadowFindings++
			continue
		}
		if !attackers[f.ActorUID] {
			rep.FalsePositives++
			fpRules[f.RuleID] = true
		}
	}
	rep.FalsePosRules = slices.Sorted(maps.Keys(fpRules))
	rep.FalsePositivesPer1kEmployeeDay = per1k(rep.FalsePositives)

	incidents, fpIncidents := map[string]bool{}, map[string]bool{}
	for _, p := range ob.Pages {
		incidents[p.DedupKey] = true
		if !attackers[p.ActorUID] {
			fpIncidents[p.DedupKey] = true
		}
	}
	rep.Pages, rep.FalsePositivePages = len(incidents), len(fpIncidents)
	rep.FalsePositivePagesPer1kEmpDay = per1k(rep.FalsePositivePages)

	for _, s := range tr.Scenarios {
		res := ScenarioResult{Name: s.Name, Kind: s.Kind, Actor: s.Actor, ExpectRules: s.ExpectRules, Note: s.Note,
			RulesFired: []string{}, RulesPaged: []string{}}
		counts := func(rule string) bool {
			return s.Kind != scenario.KindAttack || slices.Contains(s.ExpectRules, rule)
		}
		// ClickHouse keeps window times in milliseconds.
		from := s.Start.Truncate(time.Millisecond)
		var first, stored time.Time
		for _, f := range ob.Findings {
			if f.Shadow || f.ActorUID != s.Actor || end(f).Before(from) {
				continue
			}
			if !slices.Contains(res.RulesFired, f.RuleID) {
				res.RulesFired = append(res.RulesFired, f.RuleID)
			}
			if !counts(f.RuleID) {
				continue
			}
			res.Detected = true
			if first.IsZero() || end(f).Before(first) {
				first = end(f)
				res.FirstFinding = fmt.Sprintf("%s %s–%s", f.RuleID, f.WindowStart.Format(time.RFC3339), first.Format(time.RFC3339))
			}
			if t, ok := ob.Stored[f.FindingID]; ok && (stored.IsZero() || t.Before(stored)) {
				stored = t
			}
		}
		var paged time.Time
		for _, p := range ob.Pages {
			if p.ActorUID != s.Actor || p.WindowEnd.Before(from) || !counts(p.RuleID) {
				continue
			}
			res.Paged = true
			if !slices.Contains(res.RulesPaged, p.RuleID) {
				res.RulesPaged = append(res.RulesPaged, p.RuleID)
			}
			if paged.IsZero() || p.Received.Before(paged) {
				paged = p.Received
			}
		}
		slices.Sort(res.RulesFired)
		slices.Sort(res.RulesPaged)
		if s.Kind == scenario.KindAttack {
			since := func(t time.Time) *float64 {
				at, ok := tr.ExfilProduced[s.Name]
				if t.IsZero() || !ok {
					return nil
				}
				v := t.Sub(at).Seconds()
				return &v
			}
			if res.Detected {
				ttd := first.Sub(s.Exfil).Seconds()
				res.TimeToDetectS = &ttd
			}
			res.StoredAfterS, res.PagedAfterS = since(stored), since(paged)
		}
		rep.Scenarios = append(rep.Scenarios, res)
	}
	return rep
}

// percentiles returns the p50, p95 and p99 of ms (nearest rank); ms is
// sorted in place.
func percentiles(ms []float64) LatencyMS {
	if len(ms) == 0 {
		return LatencyMS{}
	}
	slices.Sort(ms)
	pct := func(q float64) float64 { return ms[min(len(ms)-1, int(q*float64(len(ms))))] }
	return LatencyMS{P50: pct(0.50), P95: pct(0.95), P99: pct(0.99)}
}

// latencySample is one event's produce time and the time its row was
// written to ClickHouse.
type latencySample struct {
	produced time.Time
	stored   time.Time
}

// latencyReport reduces the samples to the overall percentiles and one
// point per bucket of produce time since t0.
func latencyReport(samples []latencySample, t0 time.Time, bucket time.Duration) (LatencyMS, []LatencyPoint) {
	all := make([]float64, 0, len(samples))
	byBucket := map[int64][]float64{}
	for _, s := range samples {
		ms := float64(s.stored.Sub(s.produced)) / float64(time.Millisecond)
		all = append(all, ms)
		b := int64(s.produced.Sub(t0) / bucket)
		byBucket[b] = append(byBucket[b], ms)
	}
	var series []LatencyPoint
	for _, b := range slices.Sorted(maps.Keys(byBucket)) {
		p := percentiles(byBucket[b])
		series = append(series, LatencyPoint{T: (time.Duration(b) * bucket).Seconds(), P50: p.P50, P99: p.P99, N: len(byBucket[b])})
	}
	return percentiles(all), series
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.SortedFunc(maps.Keys(m), cmp.Compare[string])
}
