package ruledeploy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/leakline/leakline/pkg/rules"
)

// Change is one field of a rule or of the pack that differs.
type Change struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// RuleDiff lists the changed fields of one rule present in both packs.
type RuleDiff struct {
	ID      string   `json:"id"`
	Changes []Change `json:"changes"`
	// Restart is true when the rule's version changed: its windows and
	// open incidents start afresh on deploy.
	Restart bool `json:"restart"`
}

// PackDiff is what deploying a pack changes against a deployed one.
type PackDiff struct {
	Pack     []Change   `json:"pack,omitempty"`     // version, description, lists
	Added    []string   `json:"added,omitempty"`    // rule ids
	Removed  []string   `json:"removed,omitempty"`  // rule ids
	Modified []RuleDiff `json:"modified,omitempty"` // by rule id
}

// Empty reports whether the packs are equivalent.
func (d PackDiff) Empty() bool {
	return len(d.Pack) == 0 && len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Modified) == 0
}

// Summary is a one-line count of the changes, e.g. "+1 -0 ~2".
func (d PackDiff) Summary() string {
	return fmt.Sprintf("+%d -%d ~%d", len(d.Added), len(d.Removed), len(d.Modified))
}

// Diff compares a deployed pack (old, nil for none) with a candidate.
func Diff(old, cand *rules.Pack) PackDiff {
	var d PackDiff
	if old == nil {
		old = &rules.Pack{}
	}
	add := func(list *[]Change, field, o, n string) {
		if o != n {
			*list = append(*list, Change{Field: field, Old: o, New: n})
		}
	}
	add(&d.Pack, "version", old.Version, cand.Version)
	add(&d.Pack, "description", old.Description, cand.Description)
	names := map[string]bool{}
	for n := range old.Lists {
		names[n] = true
	}
	for n := range cand.Lists {
		names[n] = true
	}
	for _, n := range sortedKeys(names) {
		add(&d.Pack, "lists."+n, strings.Join(old.Lists[n], ","), strings.Join(cand.Lists[n], ","))
	}
	for _, r := range cand.Rules {
		o := old.Rule(r.ID)
		if o == nil {
			d.Added = append(d.Added, r.ID)
			continue
		}
		var rd RuleDiff
		of, nf := ruleFields(o), ruleFields(r)
		for i := range of {
			add(&rd.Changes, of[i][0], of[i][1], nf[i][1])
		}
		if len(rd.Changes) > 0 {
			rd.ID, rd.Restart = r.ID, o.Version != r.Version
			d.Modified = append(d.Modified, rd)
		}
	}
	for _, r := range old.Rules {
		if cand.Rule(r.ID) == nil {
			d.Removed = append(d.Removed, r.ID)
		}
	}
	slices.Sort(d.Added)
	slices.Sort(d.Removed)
	slices.SortFunc(d.Modified, func(a, b RuleDiff) int { return strings.Compare(a.ID, b.ID) })
	return d
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func expr(x *rules.Expr) string {
	if x == nil {
		return ""
	}
	return x.Canonical
}

func num(f float64) string {
	if f == 0 {
		return ""
	}
	return fmt.Sprint(f)
}

func dur[T ~int64](d T) string {
	if d == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

// ruleFields lists a rule's fields as (name, value) in a fixed order;
// empty values are fields not set.
func ruleFields(r *rules.Rule) [][2]string {
	w := r.Window
	mode := rules.ModeLive
	if r.Shadow {
		mode = rules.ModeShadow
	}
	var steps []string
	for _, s := range w.Steps {
		steps = append(steps, s.Name+": "+expr(s.Match))
	}
	return [][2]string{
		{"version", r.Version},
		{"title", r.Title},
		{"description", r.Description},
		{"severity", r.Severity},
		{"tags", strings.Join(r.Tags, ",")},
		{"runbook", r.Runbook},
		{"enabled", fmt.Sprint(r.Enabled)},
		{"mode", mode},
		{"match", expr(r.Match)},
		{"group_by", expr(r.GroupBy)},
		{"cooldown", dur(r.CoolDown)},
		{"window.kind", w.Kind},
		{"window.over", dur(w.Over)},
		{"window.threshold", num(w.Threshold)},
		{"window.value", expr(w.Value)},
		{"window.exact_up_to", num(float64(w.ExactUpTo))},
		{"window.steps", strings.Join(steps, "; ")},
		{"window.until", expr(w.Until)},
		{"window.then", expr(w.Then)},
		{"window.bucket", dur(w.Bucket)},
		{"window.history", dur(w.History)},
		{"window.factor", num(w.Factor)},
		{"window.min_value", num(w.MinValue)},
		{"window.min_history", num(float64(w.MinHistory))},
	}
}
