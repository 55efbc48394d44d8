package detect_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/event"
)

// TestFutureDatedEventDoesNotBlindThePartition: one event whose clock runs
// hours ahead must not move the watermark, or every correctly dated event
// after it would be late and never reach a window — a way for an insider to
// blind the detector. It is counted as future-dated and counts at its
// ingestion time; a bulk read without a ticket after it still fires, exactly
// as without it, and a replay with a later processing time agrees.
func TestFutureDatedEventDoesNotBlindThePartition(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	crm := func(id, actor string, at, ingested time.Time, records []string) *event.Event {
		c := &event.CRMAccess{SchemaVersion: 1, ClassUID: event.ClassAPIActivity, ActivityID: 2, EventID: id, Time: at,
			Actor: event.Actor{UID: actor}, Action: event.ActionExport, Records: event.Records{IDs: records, Count: len(records)}}
		return &event.Event{Kind: event.KindCRMAccess, EventID: id, Time: at, IngestedAt: ingested, Actor: c.Actor, CRM: c}
	}
	events := func(withFuture bool) []*event.Event {
		var out []*event.Event
		if withFuture {
			out = append(out, crm("skewed", "u-9", t0.Add(6*time.Hour), t0, []string{"C-999999"}))
		}
		for i := range 30 { // 30 exports of 15 new records a minute: 450 records
			ids := make([]string, 15)
			for j := range ids {
				ids[j] = fmt.Sprintf("C-%d", i*15+j+1)
			}
			at := t0.Add(time.Duration(i+1) * time.Minute)
			out = append(out, crm(fmt.Sprintf("e%d", i), "u-1", at, at.Add(2*time.Second), ids))
		}
		return out
	}
	run := func(evs []*event.Event, now time.Time) (map[string]float64, detect.Stats) {
		e, err := detect.New(detect.DefaultConfig(), scanner(t))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, ev := range evs {
			for _, f := range e.Process(ev, now) {
				if f.ActorUID == "u-1" {
					got[f.RuleID] = max(got[f.RuleID], f.Value)
				}
			}
		}
		return got, e.Stats()
	}
	want, clean := run(events(false), t0.Add(time.Hour))
	if want["crm.bulk_read_no_ticket"] < 200 || clean.FutureDated != 0 {
		t.Fatalf("baseline: %v, %d future-dated; want crm.bulk_read_no_ticket ≥ 200 and none", want, clean.FutureDated)
	}
	for _, now := range []time.Time{t0.Add(time.Hour), t0.Add(30 * 24 * time.Hour)} { // live, and a replay a month later
		evs := events(true)
		got, st := run(evs, now)
		if st.FutureDated != 1 || st.LateEvents != 0 {
			t.Errorf("now %v: %d future-dated, %d late; want 1 and 0", now, st.FutureDated, st.LateEvents)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("now %v: findings of u-1 %v, want %v as without the skewed event", now, got, want)
		}
		if !evs[0].Time.Equal(t0) {
			t.Errorf("now %v: the future-dated event counts at %v, want its ingestion time %v", now, evs[0].Time, t0)
		}
	}
}
