package detect_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/rules"
)

// swapRule is a count rule over CRM reads: id, title, window, threshold.
func swapRule(id, title, over string, threshold int) string {
	return fmt.Sprintf(`  - id: %s
    title: %s
    description: test rule
    severity: high
    match: kind == "crm_access"
    window: {kind: count, over: %s, threshold: %d}
`, id, title, over, threshold)
}

func swapPack(t *testing.T, version string, rs ...string) *rules.Pack {
	t.Helper()
	p, err := rules.Parse(map[string][]byte{
		"pack.yaml":  []byte(fmt.Sprintf("version: %q\n", version)),
		"rules.yaml": []byte("rules:\n" + strings.Join(rs, "")),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var swapBase = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

// feed processes n CRM reads of actor u-1, one minute apart from minute
// *at on, and returns the findings.
func feed(t *testing.T, e *detect.Engine, at *int, n int) []finding.Finding {
	t.Helper()
	var out []finding.Finding
	for range n {
		ts := swapBase.Add(time.Duration(*at) * time.Minute)
		ev := &event.Event{Kind: event.KindCRMAccess, EventID: fmt.Sprintf("e-%d", *at), Time: ts,
			Actor: event.Actor{UID: "u-1"}, CRM: &event.CRMAccess{Action: "read", Time: ts, Records: event.Records{IDs: []string{"c1"}, Count: 1}}}
		out = append(out, e.Process(ev, ts)...)
		*at++
	}
	return out
}

func byRule(fs []finding.Finding) map[string][]finding.Finding {
	m := map[string][]finding.Finding{}
	for _, f := range fs {
		m[f.RuleID] = append(m[f.RuleID], f)
	}
	return m
}

func TestSwapPack(t *testing.T) {
	keep := swapRule("t.keep", "Keep", "1h", 3)
	for _, c := range []struct {
		name   string
		before int      // events before the swap
		after  []string // rules of the new pack
		afterN int      // events after the swap
		want   map[string]int
		check  func(t *testing.T, before, after map[string][]finding.Finding)
	}{{
		name: "unchanged rule keeps its window", before: 2,
		after: []string{swapRule("t.keep", "Kept and retitled", "1h", 3)}, afterN: 1,
		want: map[string]int{"t.keep": 1},
		check: func(t *testing.T, _, after map[string][]finding.Finding) {
			f := after["t.keep"][0]
			if f.Title != "Kept and retitled" || f.PackVersion != "2" || f.Value != 3 {
				t.Errorf("finding %+v", f)
			}
		},
	}, {
		name: "changed rule starts fresh", before: 2,
		after: []string{swapRule("t.keep", "Keep", "2h", 3)}, afterN: 2,
		want: map[string]int{},
	}, {
		name: "changed rule fires on its own events", before: 2,
		after: []string{swapRule("t.keep", "Keep", "2h", 3)}, afterN: 3,
		want: map[string]int{"t.keep": 1},
	}, {
		name: "added rule starts fresh", before: 2,
		after: []string{keep, swapRule("t.new", "New", "1h", 2)}, afterN: 1,
		want: map[string]int{"t.keep": 1},
	}, {
		name: "added rule fires after the swap", before: 2,
		after: []string{keep, swapRule("t.new", "New", "1h", 2)}, afterN: 2,
		want: map[string]int{"t.keep": 1, "t.new": 1},
	}, {
		name: "open incident is kept with its id", before: 3,
		after: []string{swapRule("t.keep", "Retitled", "1h", 3)}, afterN: 2,
		check: func(t *testing.T, before, after map[string][]finding.Finding) {
			b, a := before["t.keep"], after["t.keep"]
			if len(b) != 1 || len(a) == 0 {
				t.Fatalf("before %d, after %d revisions", len(b), len(a))
			}
			last := a[len(a)-1]
			if last.FindingID != b[0].FindingID || last.Revision <= b[0].Revision || last.Title != "Retitled" || last.PackVersion != "2" {
				t.Errorf("before %+v\nafter %+v", b[0], last)
			}
		},
	}, {
		name: "removed rule's open incident is dropped", before: 3,
		after: []string{swapRule("t.new", "New", "1h", 100)}, afterN: 5,
		want: map[string]int{},
	}} {
		t.Run(c.name, func(t *testing.T) {
			e, err := detect.New(detect.Config{Pack: swapPack(t, "1", keep)}, scanner(t))
			if err != nil {
				t.Fatal(err)
			}
			at := 0
			before := byRule(feed(t, e, &at, c.before))
			if err := e.SwapPack(swapPack(t, "2", c.after...)); err != nil {
				t.Fatal(err)
			}
			if e.Pack().Version != "2" {
				t.Fatalf("Pack().Version = %s", e.Pack().Version)
			}
			fs := feed(t, e, &at, c.afterN)
			// Closing every incident: a dropped rule emits nothing more.
			fs = append(fs, e.Advance(swapBase.Add(48*time.Hour), swapBase.Add(48*time.Hour))...)
			after := byRule(fs)
			if c.want != nil {
				got := map[string]int{}
				for id, l := range after {
					ids := map[string]bool{}
					for _, f := range l {
						ids[f.FindingID] = true
					}
					got[id] = len(ids)
				}
				if fmt.Sprint(got) != fmt.Sprint(c.want) {
					t.Errorf("incidents after the swap by rule = %v, want %v", got, c.want)
				}
			}
			if c.check != nil {
				c.check(t, before, after)
			}
		})
	}
	t.Run("nil pack", func(t *testing.T) {
		e, err := detect.New(detect.Config{Pack: swapPack(t, "1", keep)}, scanner(t))
		if err != nil {
			t.Fatal(err)
		}
		if e.SwapPack(nil) == nil {
			t.Fatal("SwapPack(nil) succeeded")
		}
	})
}
