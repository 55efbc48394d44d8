package backtest

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/rules"
)

// Report is the outcome of a backtest: per rule, the candidate's findings
// against production's over the same span.
type Report struct {
	From         time.Time    `json:"from"`
	To           time.Time    `json:"to"`
	WarmFrom     time.Time    `json:"warm_from"`
	StopAfter    time.Time    `json:"stop_after"`
	PackVersion  string       `json:"pack_version"`
	PackChecksum string       `json:"pack_checksum"`
	Partitions   int          `json:"partitions"`
	Events       int          `json:"events"`
	Rules        []RuleReport `json:"rules"`
	Total        Counts       `json:"total"`
}

// Counts are the finding counts of one rule (or of all).
type Counts struct {
	Production int `json:"production"`
	Candidate  int `json:"candidate"`
	Unchanged  int `json:"unchanged"`
	Changed    int `json:"changed"`
	New        int `json:"new"`
	Gone       int `json:"gone"`
}

// RuleReport compares one rule's findings. A finding is matched by id
// (rule, rule version, group, incident start): unchanged when both sides
// have it with the same outcome, changed when both have it but its value,
// threshold, event count, PII counts, exact-data-match counts, severity or
// shadow flag differ, new when only the candidate has it, gone when only
// production has it. A rule whose detection changed gets a new version
// (rules.Rule.Version), so all its findings have new ids: its old ones are
// gone and its new ones new.
type RuleReport struct {
	RuleID string `json:"rule_id"`
	// InCandidate: the candidate pack has the rule, enabled.
	InCandidate bool `json:"in_candidate"`
	// CandidateVersion is the rule's version in the candidate pack;
	// ProductionVersions the versions of its production findings.
	CandidateVersion   string   `json:"candidate_version,omitempty"`
	ProductionVersions []string `json:"production_versions,omitempty"`
	Counts
	// Finding ids (sorted) by outcome; unchanged ones are only counted.
	NewIDs     []string `json:"new_ids,omitempty"`
	GoneIDs    []string `json:"gone_ids,omitempty"`
	ChangedIDs []Change `json:"changed_ids,omitempty"`
}

// Change is one finding both sides have with a different outcome.
type Change struct {
	FindingID string   `json:"finding_id"`
	Fields    []string `json:"fields"`
}

// VersionChanged tells whether the rule's production findings came from
// another version than the candidate's.
func (r *RuleReport) VersionChanged() bool {
	for _, v := range r.ProductionVersions {
		if v != r.CandidateVersion {
			return true
		}
	}
	return false
}

// Compare matches the candidate's findings with production's, rule by rule.
// Every enabled rule of pack is listed (with zero counts if neither side
// found anything), and every rule production has findings of; rules are
// sorted by id.
func Compare(pack *rules.Pack, prod, cand []finding.Finding) ([]RuleReport, Counts) {
	byRule := map[string]*RuleReport{}
	get := func(id string) *RuleReport {
		r := byRule[id]
		if r == nil {
			r = &RuleReport{RuleID: id}
			byRule[id] = r
		}
		return r
	}
	if pack != nil {
		for _, r := range pack.Rules {
			if r.Enabled {
				rr := get(r.ID)
				rr.InCandidate, rr.CandidateVersion = true, r.Version
			}
		}
	}
	prodByID := make(map[string]*finding.Finding, len(prod))
	for i := range prod {
		f := &prod[i]
		prodByID[f.FindingID] = f
		rr := get(f.RuleID)
		rr.Production++
		if !slices.Contains(rr.ProductionVersions, f.RuleVersion) {
			rr.ProductionVersions = append(rr.ProductionVersions, f.RuleVersion)
		}
	}
	seen := make(map[string]bool, len(cand))
	for i := range cand {
		f := &cand[i]
		rr := get(f.RuleID)
		rr.Candidate++
		seen[f.FindingID] = true
		p, ok := prodByID[f.FindingID]
		switch {
		case !ok:
			rr.New++
			rr.NewIDs = append(rr.NewIDs, f.FindingID)
		default:
			if fields := differences(p, f); len(fields) > 0 {
				rr.Changed++
				rr.ChangedIDs = append(rr.ChangedIDs, Change{FindingID: f.FindingID, Fields: fields})
			} else {
				rr.Unchanged++
			}
		}
	}
	for i := range prod {
		f := &prod[i]
		if !seen[f.FindingID] {
			rr := get(f.RuleID)
			rr.Gone++
			rr.GoneIDs = append(rr.GoneIDs, f.FindingID)
		}
	}
	var total Counts
	out := make([]RuleReport, 0, len(byRule))
	for _, id := range slices.Sorted(maps.Keys(byRule)) {
		rr := byRule[id]
		slices.Sort(rr.NewIDs)
		slices.Sort(rr.GoneIDs)
		slices.Sort(rr.ProductionVersions)
		slices.SortFunc(rr.ChangedIDs, func(a, b Change) int {
			switch {
			case a.FindingID < b.FindingID:
				return -1
			case a.FindingID > b.FindingID:
				return 1
			}
			return 0
		})
		total.Production += rr.Production
		total.Candidate += rr.Candidate
		total.Unchanged += rr.Unchanged
		total.Changed += rr.Changed
		total.New += rr.New
		total.Gone += rr.Gone
		out = append(out, *rr)
	}
	return out, total
}

// differences names the outcome fields in which two revisions of the same
// finding differ. Revision, detected_at, evidence and event ids are not
// compared: they record how and when the finding was reached, not what it
// found.
func differences(a, b *finding.Finding) []string {
	var d []string
	if a.Value != b.Value {
		d = append(d, "value")
	}
	if a.Threshold != b.Threshold {
		d = append(d, "threshold")
	}
	if a.EventCount != b.EventCount {
		d = append(d, "event_count")
	}
	if !maps.Equal(a.PIICounts, b.PIICounts) {
		d = append(d, "pii_counts")
	}
	if a.EDMCustomers != b.EDMCustomers || a.EDMReadByActor != b.EDMReadByActor {
		d = append(d, "edm")
	}
	if !a.WindowEnd.Equal(b.WindowEnd) {
		d = append(d, "window_end")
	}
	if a.Severity != b.Severity {
		d = append(d, "severity")
	}
	if a.Shadow != b.Shadow {
		d = append(d, "shadow")
	}
	return d
}

// NewReport compares a replay with production's findings.
func NewReport(cfg Config, r *Replayed, prod []finding.Finding) *Report {
	rep := &Report{From: cfg.From.UTC(), To: cfg.To.UTC(), WarmFrom: r.WarmFrom.UTC(), StopAfter: r.StopAfter.UTC(),
		Partitions: r.Partitions, Events: r.Events}
	if p := cfg.Engine.Pack; p != nil {
		rep.PackVersion, rep.PackChecksum = p.Version, p.Checksum
	}
	rep.Rules, rep.Total = Compare(cfg.Engine.Pack, prod, r.Findings)
	return rep
}

// Identical tells whether the candidate found exactly what production
// found: nothing new, gone or changed.
func (r *Report) Identical() bool {
	return r.Total.New == 0 && r.Total.Gone == 0 && r.Total.Changed == 0
}

// WriteTable prints the report for people: one line per rule, then the ids
// of the findings that differ.
func (r *Report) WriteTable(w io.Writer) error {
	ew := &errWriter{w: w}
	sum := r.PackChecksum
	if len(sum) > 12 {
		sum = sum[:12]
	}
	fmt.Fprintf(ew, "backtest of pack %s (checksum %s) over [%s, %s)\n", r.PackVersion, sum,
		r.From.Format(time.RFC3339), r.To.Format(time.RFC3339))
	fmt.Fprintf(ew, "replayed %d events of %d partitions from %s (warm-up: the pack's horizon) to %s at most; nothing was written or committed\n\n",
		r.Events, r.Partitions, r.WarmFrom.Format(time.RFC3339), r.StopAfter.Format(time.RFC3339))
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tPRODUCTION\tCANDIDATE\tUNCHANGED\tCHANGED\tNEW\tGONE\tNOTE")
	line := func(id string, c Counts, note string) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", id, c.Production, c.Candidate, c.Unchanged, c.Changed, c.New, c.Gone, note)
	}
	for i := range r.Rules {
		rr := &r.Rules[i]
		note := ""
		switch {
		case !rr.InCandidate:
			note = "not in the candidate pack"
		case rr.Production > 0 && rr.VersionChanged():
			note = "new rule version: new finding ids"
		}
		line(rr.RuleID, rr.Counts, note)
	}
	line("total", r.Total, "")
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Identical() {
		fmt.Fprintln(ew, "\nidentical: the candidate finds exactly what production found")
		return ew.err
	}
	fmt.Fprintln(ew)
	for i := range r.Rules {
		rr := &r.Rules[i]
		for _, id := range rr.NewIDs {
			fmt.Fprintf(ew, "new      %s  %s\n", rr.RuleID, id)
		}
		for _, id := range rr.GoneIDs {
			fmt.Fprintf(ew, "gone     %s  %s\n", rr.RuleID, id)
		}
		for _, c := range rr.ChangedIDs {
			fmt.Fprintf(ew, "changed  %s  %s  %v\n", rr.RuleID, c.FindingID, c.Fields)
		}
	}
	return ew.err
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
