package testenv

import (
	"fmt"
	"sort"

	"github.com/leakline/leakline/pkg/finding"
)

// DiffFindings lists, sorted, how got differs from want (both keyed by
// finding id): missing and unexpected findings, and findings whose
// revision, value or event count differ. Detection time is processing time
// and is not compared. An empty result means equal.
func DiffFindings(want, got map[string]finding.Finding) []string {
	var d []string
	for id, w := range want {
		g, ok := got[id]
		switch {
		case !ok:
			d = append(d, fmt.Sprintf("missing %.8s %s %s rev %d value %g", id, w.RuleID, w.ActorUID, w.Revision, w.Value))
		case g.Revision != w.Revision || g.Value != w.Value || g.EventCount != w.EventCount:
			d = append(d, fmt.Sprintf("%.8s %s %s: got rev %d value %g events %d, want rev %d value %g events %d",
				id, w.RuleID, w.ActorUID, g.Revision, g.Value, g.EventCount, w.Revision, w.Value, w.EventCount))
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			d = append(d, fmt.Sprintf("unexpected %.8s %s %s rev %d value %g", id, g.RuleID, g.ActorUID, g.Revision, g.Value))
		}
	}
	sort.Strings(d)
	return d
}
