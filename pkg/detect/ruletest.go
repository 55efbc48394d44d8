package detect

import (
	"fmt"
	"time"

	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/inspect"
	"github.com/leakline/leakline/pkg/rules"
)

// TestResult is the outcome of one rule test case.
type TestResult struct {
	Case     rules.TestCase
	Findings []finding.Finding // every revision emitted
	Diffs    []string          // empty: passed
}

// RunTests feeds each test case's events, in order, through a fresh engine
// for cfg's pack (as one partition would see them) and compares the
// findings with the case's expectations. An event the decoder rejects is an
// error of the fixture, reported with its position.
func RunTests(cfg Config, sc *inspect.Scanner, cases []rules.TestCase) ([]TestResult, error) {
	if err := cfg.Pack.CheckTests(cases); err != nil {
		return nil, err
	}
	dec, err := event.NewDecoder(event.Limits{})
	if err != nil {
		return nil, err
	}
	out := make([]TestResult, 0, len(cases))
	for _, tc := range cases {
		e, err := New(cfg, sc)
		if err != nil {
			return nil, err
		}
		res := TestResult{Case: tc}
		now := tc.Start
		for i, re := range tc.Events {
			ev, err := dec.DecodeRaw(re.Kind, re.Raw, event.Source{Topic: "test", Offset: int64(i)}, re.At)
			if err != nil {
				return nil, fmt.Errorf("%s: %q: event %d is invalid: %w", re.Pos, tc.Name, i+1, err)
			}
			if ev.Time.After(now) {
				now = ev.Time
			}
			res.Findings = append(res.Findings, e.Process(ev, now)...)
		}
		end := tc.End
		if end.IsZero() {
			end = now.Add(cfg.Horizon() + 24*time.Hour) // past every window and cool-down
		}
		res.Findings = append(res.Findings, e.Advance(end, end)...)
		res.Diffs = rules.Compare(tc, res.Findings)
		out = append(out, res)
	}
	return out, nil
}
