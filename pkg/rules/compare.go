package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/leakline/leakline/pkg/finding"
)

// Incidents collapses findings to incidents: the highest revision of each
// finding id, ordered by rule, actor and window start.
func Incidents(got []finding.Finding) []finding.Finding {
	best := map[string]int{}
	var out []finding.Finding
	for _, f := range got {
		if i, ok := best[f.FindingID]; ok {
			if f.Revision >= out[i].Revision {
				out[i] = f
			}
			continue
		}
		best[f.FindingID] = len(out)
		out = append(out, f)
	}
	slices.SortStableFunc(out, func(a, b finding.Finding) int {
		return cmp.Or(strings.Compare(a.RuleID, b.RuleID), strings.Compare(a.ActorUID, b.ActorUID),
			a.WindowStart.Compare(b.WindowStart))
	})
	return out
}

// Compare checks the findings the engine produced for a test case against
// its expectations and returns one readable line per difference, each
// prefixed with the position of the expectation (empty: the test passes).
// Findings are first collapsed to incidents (see Incidents).
func Compare(tc TestCase, got []finding.Finding) []string {
	incs := Incidents(got)
	var diffs []string
	add := func(p Pos, format string, a ...any) {
		diffs = append(diffs, fmt.Sprintf("%s: %s: ", p, strconv.Quote(tc.Name))+fmt.Sprintf(format, a...))
	}
	mentioned := map[string]bool{}
	for _, e := range tc.Expect {
		mentioned[e.Rule] = true
		var sel []finding.Finding
		for _, f := range incs {
			if f.RuleID == e.Rule && (e.Group == "" || f.ActorUID == e.Group) {
				sel = append(sel, f)
			}
		}
		who := e.Rule
		if e.Group != "" {
			who += " group " + e.Group
		}
		switch {
		case e.Incidents >= 0 && len(sel) != e.Incidents:
			add(e.Pos, "%s: expected %s, got %d%s", who, plural(e.Incidents, "incident"), len(sel), describeAll(sel, incs, e.Rule))
		case e.Incidents < 0 && len(sel) == 0:
			add(e.Pos, "%s: expected at least one incident, got none%s", who, describeAll(sel, incs, e.Rule))
		}
		for _, f := range sel {
			if e.MinValue != nil && f.Value < *e.MinValue {
				add(e.Pos, "%s: value %s is below min_value %s: %s", who, num(f.Value), num(*e.MinValue), describe(f))
			}
			if e.MaxValue != nil && f.Value > *e.MaxValue {
				add(e.Pos, "%s: value %s is above max_value %s: %s", who, num(f.Value), num(*e.MaxValue), describe(f))
			}
			if e.Severity != "" && f.Severity != e.Severity {
				add(e.Pos, "%s: severity %s, expected %s: %s", who, f.Severity, e.Severity, describe(f))
			}
			if e.Shadow != nil && f.Shadow != *e.Shadow {
				add(e.Pos, "%s: shadow %t, expected %t: %s", who, f.Shadow, *e.Shadow, describe(f))
			}
		}
	}
	for i, id := range tc.Absent {
		p := tc.Pos
		if i < len(tc.AbsentPos) {
			p = tc.AbsentPos[i]
		}
		for _, f := range incs {
			if f.RuleID == id {
				add(p, "%s: expected no finding, got %s", id, describe(f))
			}
		}
	}
	if tc.Exhaustive {
		for _, f := range incs {
			if !mentioned[f.RuleID] && !slices.Contains(tc.Absent, f.RuleID) {
				add(tc.Pos, "unexpected finding (exhaustive test): %s", describe(f))
			}
		}
	}
	return diffs
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

func num(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// describeAll lists the selected incidents, or when none was selected the
// incidents of the same rule (for another group), as "\n    got: …" lines.
func describeAll(sel, all []finding.Finding, rule string) string {
	list := sel
	label := "got"
	if len(sel) == 0 {
		for _, f := range all {
			if f.RuleID == rule {
				list = append(list, f)
			}
		}
		label = "other groups"
	}
	var b strings.Builder
	for _, f := range list {
		b.WriteString("\n    " + label + ": " + describe(f))
	}
	return b.String()
}

// describe renders an incident on one line.
func describe(f finding.Finding) string {
	return fmt.Sprintf("{rule: %s, group: %s, value: %s, threshold: %s, severity: %s, shadow: %t, window: %s..%s, events: %d, revision: %d}",
		f.RuleID, f.ActorUID, num(f.Value), num(f.Threshold), f.Severity, f.Shadow,
		f.WindowStart.UTC().Format(time.RFC3339), f.WindowEnd.UTC().Format(time.RFC3339), f.EventCount, f.Revision)
}
