package backtest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/rules"
)

func TestCompare(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	f := func(rule, version, id string, value float64) finding.Finding {
		return finding.Finding{FindingID: id, RuleID: rule, RuleVersion: version, Value: value, Threshold: 1,
			EventCount: uint64(value), WindowStart: t0, WindowEnd: t0.Add(time.Hour), Severity: "high"}
	}
	pack := &rules.Pack{Rules: []*rules.Rule{
		{ID: "a", Version: "va", Enabled: true},
		{ID: "b", Version: "vb2", Enabled: true},
		{ID: "quiet", Version: "vq", Enabled: true},
		{ID: "off", Version: "vo", Enabled: false},
	}}
	lowered := f("a", "va", "a1", 3)
	lowered.Threshold = 2
	morePII := f("a", "va", "a1", 3)
	morePII.PIICounts = map[string]uint32{"EMAIL_ADDRESS": 4}
	shadowed := f("a", "va", "a1", 3)
	shadowed.Shadow, shadowed.Severity = true, "low"
	later := f("a", "va", "a1", 3)
	later.Revision, later.DetectedAt, later.EventIDs = 7, t0.Add(time.Hour), []string{"e1"}

	tests := []struct {
		name       string
		prod, cand []finding.Finding
		want       map[string]Counts // rules with any finding, and every enabled rule
		changed    map[string][]Change
		newIDs     map[string][]string
		goneIDs    map[string][]string
		total      Counts
	}{
		{
			name: "identical",
			prod: []finding.Finding{f("a", "va", "a1", 3), f("a", "va", "a2", 5), f("b", "vb2", "b1", 1)},
			cand: []finding.Finding{f("b", "vb2", "b1", 1), f("a", "va", "a2", 5), f("a", "va", "a1", 3)},
			want: map[string]Counts{
				"a": {Production: 2, Candidate: 2, Unchanged: 2}, "b": {Production: 1, Candidate: 1, Unchanged: 1}, "quiet": {},
			},
			total: Counts{Production: 3, Candidate: 3, Unchanged: 3},
		},
		{
			name:  "revision, detection time and event ids are not outcomes",
			prod:  []finding.Finding{f("a", "va", "a1", 3)},
			cand:  []finding.Finding{later},
			want:  map[string]Counts{"a": {Production: 1, Candidate: 1, Unchanged: 1}, "b": {}, "quiet": {}},
			total: Counts{Production: 1, Candidate: 1, Unchanged: 1},
		},
		{
			name:    "changed value",
			prod:    []finding.Finding{f("a", "va", "a1", 3)},
			cand:    []finding.Finding{f("a", "va", "a1", 4)},
			want:    map[string]Counts{"a": {Production: 1, Candidate: 1, Changed: 1}, "b": {}, "quiet": {}},
			changed: map[string][]Change{"a": {{FindingID: "a1", Fields: []string{"value", "event_count"}}}},
			total:   Counts{Production: 1, Candidate: 1, Changed: 1},
		},
		{
			name:    "changed threshold",
			prod:    []finding.Finding{f("a", "va", "a1", 3)},
			cand:    []finding.Finding{lowered},
			want:    map[string]Counts{"a": {Production: 1, Candidate: 1, Changed: 1}, "b": {}, "quiet": {}},
			changed: map[string][]Change{"a": {{FindingID: "a1", Fields: []string{"threshold"}}}},
			total:   Counts{Production: 1, Candidate: 1, Changed: 1},
		},
		{
			name:    "changed pii counts",
			prod:    []finding.Finding{f("a", "va", "a1", 3)},
			cand:    []finding.Finding{morePII},
			want:    map[string]Counts{"a": {Production: 1, Candidate: 1, Changed: 1}, "b": {}, "quiet": {}},
			changed: map[string][]Change{"a": {{FindingID: "a1", Fields: []string{"pii_counts"}}}},
			total:   Counts{Production: 1, Candidate: 1, Changed: 1},
		},
		{
			name:    "changed severity and mode",
			prod:    []finding.Finding{f("a", "va", "a1", 3)},
			cand:    []finding.Finding{shadowed},
			want:    map[string]Counts{"a": {Production: 1, Candidate: 1, Changed: 1}, "b": {}, "quiet": {}},
			changed: map[string][]Change{"a": {{FindingID: "a1", Fields: []string{"severity", "shadow"}}}},
			total:   Counts{Production: 1, Candidate: 1, Changed: 1},
		},
		{
			name: "removed rule: gone",
			prod: []finding.Finding{f("removed", "vr", "r1", 1), f("removed", "vr", "r2", 1), f("a", "va", "a1", 3)},
			cand: []finding.Finding{f("a", "va", "a1", 3)},
			want: map[string]Counts{
				"removed": {Production: 2, Gone: 2}, "a": {Production: 1, Candidate: 1, Unchanged: 1}, "b": {}, "quiet": {},
			},
			goneIDs: map[string][]string{"removed": {"r1", "r2"}},
			total:   Counts{Production: 3, Candidate: 1, Unchanged: 1, Gone: 2},
		},
		{
			name: "new version: old ids gone, new ids new",
			prod: []finding.Finding{f("b", "vb1", "old", 1)},
			cand: []finding.Finding{f("b", "vb2", "new2", 1), f("b", "vb2", "new1", 1)},
			want: map[string]Counts{
				"a": {}, "b": {Production: 1, Candidate: 2, New: 2, Gone: 1}, "quiet": {},
			},
			newIDs:  map[string][]string{"b": {"new1", "new2"}},
			goneIDs: map[string][]string{"b": {"old"}},
			total:   Counts{Production: 1, Candidate: 2, New: 2, Gone: 1},
		},
		{
			name: "nothing anywhere",
			want: map[string]Counts{"a": {}, "b": {}, "quiet": {}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, total := Compare(pack, tc.prod, tc.cand)
			if total != tc.total {
				t.Errorf("total = %+v, want %+v", total, tc.total)
			}
			if len(got) != len(tc.want) {
				t.Errorf("%d rules reported, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, rr := range got {
				if i > 0 && got[i-1].RuleID >= rr.RuleID {
					t.Errorf("rules not sorted: %s before %s", got[i-1].RuleID, rr.RuleID)
				}
				w, ok := tc.want[rr.RuleID]
				if !ok {
					t.Errorf("unexpected rule %s", rr.RuleID)
					continue
				}
				if rr.Counts != w {
					t.Errorf("%s: counts %+v, want %+v", rr.RuleID, rr.Counts, w)
				}
				if !reflect.DeepEqual(rr.ChangedIDs, tc.changed[rr.RuleID]) {
					t.Errorf("%s: changed %+v, want %+v", rr.RuleID, rr.ChangedIDs, tc.changed[rr.RuleID])
				}
				if !reflect.DeepEqual(rr.NewIDs, tc.newIDs[rr.RuleID]) {
					t.Errorf("%s: new %v, want %v", rr.RuleID, rr.NewIDs, tc.newIDs[rr.RuleID])
				}
				if !reflect.DeepEqual(rr.GoneIDs, tc.goneIDs[rr.RuleID]) {
					t.Errorf("%s: gone %v, want %v", rr.RuleID, rr.GoneIDs, tc.goneIDs[rr.RuleID])
				}
				inPack := rr.RuleID == "a" || rr.RuleID == "b" || rr.RuleID == "quiet"
				if rr.InCandidate != inPack {
					t.Errorf("%s: in candidate %t, want %t", rr.RuleID, rr.InCandidate, inPack)
				}
			}
		})
	}
}

func TestInSpan(t *testing.T) {
	from := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	to := from.Add(24 * time.Hour)
	tests := []struct {
		name       string
		start, end time.Time
		want       bool
	}{
		{"inside", from.Add(time.Hour), from.Add(2 * time.Hour), true},
		{"ends before from", from.Add(-2 * time.Hour), from.Add(-time.Second), false},
		{"ends at from", from.Add(-2 * time.Hour), from, true},
		{"straddles from", from.Add(-time.Hour), from.Add(time.Hour), true},
		{"starts at to", to, to.Add(time.Hour), false},
		{"starts just before to", to.Add(-time.Second), to.Add(time.Hour), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := finding.Finding{WindowStart: tc.start, WindowEnd: tc.end}
			if got := InSpan(&f, from, to); got != tc.want {
				t.Errorf("InSpan = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestReportOutput(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	pack := &rules.Pack{Version: "7", Checksum: strings.Repeat("ab", 32), Rules: []*rules.Rule{{ID: "a", Version: "v2", Enabled: true}}}
	prod := []finding.Finding{
		{FindingID: "old-a", RuleID: "a", RuleVersion: "v1", WindowStart: t0, WindowEnd: t0},
		{FindingID: "gone-x", RuleID: "x", RuleVersion: "vx", WindowStart: t0, WindowEnd: t0},
	}
	cand := []finding.Finding{{FindingID: "new-a", RuleID: "a", RuleVersion: "v2", WindowStart: t0, WindowEnd: t0}}
	rep := NewReport(Config{From: t0, To: t0.Add(time.Hour), Engine: detect.Config{Pack: pack}}, &Replayed{Partitions: 3, Events: 10, Findings: cand}, prod)
	if rep.Identical() {
		t.Fatal("report with new and gone findings is identical")
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"backtest of pack 7 (checksum abababababab)",
		"not in the candidate pack",
		"new rule version: new finding ids",
		"new      a  new-a",
		"gone     a  old-a",
		"gone     x  gone-x",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Rules, rep.Rules) || back.Total != rep.Total || back.Total.Gone != 2 || back.Total.New != 1 {
		t.Errorf("JSON round trip: %+v, want %+v", back, rep)
	}
}
