package detect_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
)

// TestAbsenceIncidentsIndependentOfWatermarkSteps: unanswered exports of one
// actor within the cool-down form one absence incident, whether the
// watermark passes their deadlines one by one (dense traffic of another
// actor) or in one jump (sparse traffic), and whatever their arrival order
// within the allowed lateness.
func TestAbsenceIncidentsIndependentOfWatermarkSteps(t *testing.T) {
	const rule = "crm.read_without_ticket_followup"
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	crm := func(id, actor string, at time.Time, action, ticket string) *event.Event {
		c := &event.CRMAccess{SchemaVersion: 1, ClassUID: event.ClassAPIActivity, ActivityID: 2, EventID: id, Time: at,
			Actor: event.Actor{UID: actor}, Action: action, Records: event.Records{IDs: []string{"C-1"}, Count: 1}, TicketID: ticket}
		return &event.Event{Kind: event.KindCRMAccess, EventID: id, Time: at, Actor: c.Actor, CRM: c}
	}
	exports := []*event.Event{ // unanswered, 84 s apart
		crm("a1", "u-1", t0, event.ActionExport, ""),
		crm("a2", "u-1", t0.Add(84*time.Second), event.ActionExport, ""),
		crm("a3", "u-1", t0.Add(168*time.Second), event.ActionExport, ""),
	}
	dense := func() []*event.Event { // another actor's ticketed views every 30 s for 2 h
		var out []*event.Event
		for i := 1; i <= 240; i++ {
			out = append(out, crm(fmt.Sprintf("v%d", i), "u-2", t0.Add(time.Duration(i)*30*time.Second), "view", "T-1"))
		}
		return out
	}
	jump := []*event.Event{crm("far", "u-2", t0.Add(2*time.Hour), "view", "T-1")}
	for _, tc := range []struct {
		name string
		evs  []*event.Event
	}{
		{"dense, in order", append(append([]*event.Event{}, exports...), dense()...)},
		{"dense, reversed", append([]*event.Event{exports[2], exports[1], exports[0]}, dense()...)},
		{"one jump, in order", append(append([]*event.Event{}, exports...), jump...)},
		{"one jump, reversed", append([]*event.Event{exports[2], exports[1], exports[0]}, jump...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := detect.New(detect.DefaultConfig(), scanner(t))
			if err != nil {
				t.Fatal(err)
			}
			latest := map[string]finding.Finding{}
			for _, ev := range tc.evs {
				for _, f := range e.Process(ev, t0.Add(3*time.Hour)) {
					if f.RuleID == rule {
						latest[f.FindingID] = f
					}
				}
			}
			want := finding.ID(rule, latestVersion(t, latest), "u-1", t0)
			f, ok := latest[want]
			if len(latest) != 1 || !ok || f.Value != 3 || f.EventCount != 3 {
				t.Errorf("absence incidents %v, want one of value 3 starting at %v", latest, t0)
			}
		})
	}
}

// latestVersion is the rule version the findings carry.
func latestVersion(t *testing.T, fs map[string]finding.Finding) string {
	t.Helper()
	for _, f := range fs {
		return f.RuleVersion
	}
	return ""
}
