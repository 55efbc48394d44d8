package loadtest

import (
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/scenario"
)

func testOrg(t *testing.T) *scenario.Org {
	t.Helper()
	org, err := scenario.NewOrg(scenario.OrgOptions{Seed: 3, Employees: 30, Customers: 3000, Days: 3, Start: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return org
}

// TestTemplatesRender re-stamps every event of an organisation (baseline
// and scenarios) and decodes it with the pipeline's strict decoder: the
// new id, event time and actor are what the decoder reads, and everything
// else is the original event's.
func TestTemplatesRender(t *testing.T) {
	org := testOrg(t)
	dec, err := event.NewDecoder(event.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 28, 19, 4, 5, 678901234, time.UTC)
	now := at.Add(time.Second)
	for i, ev := range org.Events {
		tpl, err := parseTemplate(ev.Kind, ev.Value)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		orig, err := dec.DecodeRaw(ev.Kind, ev.Value, event.Source{}, now)
		if err != nil {
			t.Fatalf("event %d (original): %v", i, err)
		}
		for _, c := range []struct {
			id, suffix string
		}{{"evt-rate-42", "~p3"}, {tpl.id, ""}} {
			raw := tpl.render(nil, []byte(c.id), at, []byte(c.suffix))
			got, err := dec.DecodeRaw(ev.Kind, raw, event.Source{}, now)
			if err != nil {
				t.Fatalf("event %d rendered as %s: %v\n%s", i, c.id, err, raw)
			}
			if got.EventID != c.id || !got.Time.Equal(at) || got.Actor.UID != orig.Actor.UID+c.suffix || got.Actor.Email != orig.Actor.Email {
				t.Fatalf("event %d rendered as %s: id %q time %v actor %+v", i, c.id, got.EventID, got.Time, got.Actor)
			}
			if got.Kind != orig.Kind {
				t.Fatalf("event %d: kind %v, want %v", i, got.Kind, orig.Kind)
			}
		}
	}
}

// BenchmarkRenderBaseline is the rate-mode generator's cost per event:
// id, actor suffix and event time spliced into a pre-encoded template.
func BenchmarkRenderBaseline(b *testing.B) {
	org, err := scenario.NewOrg(scenario.OrgOptions{Seed: 1, Employees: 200, Customers: 20000, Days: 2, Start: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		b.Fatal(err)
	}
	plan, err := newRatePlan(org, 50000, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	pool := int64(len(plan.pool))
	arena := make([]byte, 0, 1<<20)
	var id, suffix []byte
	var bytes int64
	b.ReportAllocs()
	for seq := int64(0); seq < int64(b.N); seq++ {
		if len(arena) > 1<<20-8192 {
			arena = arena[:0]
		}
		tpl := &plan.pool[seq%pool]
		id = appendRateID(id[:0], seq)
		suffix = appendPassSuffix(suffix[:0], seq/pool)
		n := len(arena)
		arena = tpl.render(arena, id, t0.Add(plan.scheduled(seq)), suffix)
		bytes += int64(len(arena) - n)
	}
	b.ReportMetric(float64(bytes)/float64(b.N), "B/event")
}

func TestCompressedProduction(t *testing.T) {
	day := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	raw := func(id string, h int) scenario.Raw {
		return scenario.Raw{Key: []byte(id), Time: day.Add(time.Duration(h) * time.Hour)}
	}
	org := &scenario.Org{
		Events: []scenario.Raw{raw("e1", 0), raw("s1", 1), raw("e2", 2), raw("s2", 3), raw("s3", 4)},
		// Exfiltration at 03:00: s2 is the first event at or after it.
		Scenarios: []scenario.Scenario{{Name: "a", EventIDs: []string{"s1", "s2", "s3"}, Start: day.Add(time.Hour), Exfil: day.Add(3 * time.Hour)}},
	}
	w := time.Date(2026, 11, 28, 19, 0, 0, 0, time.UTC)
	// Slices: [e1 s1] from w, [e2 s2] from w+1s, [s3] from w+2s.
	steps := []replayStep{{end: 2, at: w}, {end: 4, at: w.Add(time.Second)}, {end: 5, at: w.Add(2 * time.Second)}}
	p := compressedProduction(org, steps)
	if got := p.exfil["a"]; !got.Equal(w.Add(time.Second)) {
		t.Errorf("exfiltration produced at %v, want %v", got, w.Add(time.Second))
	}
	for id, want := range map[string]time.Time{"e1": w, "s1": w, "e2": w.Add(time.Second), "s3": w.Add(2 * time.Second)} {
		if got, ok := p.at(id); !ok || !got.Equal(want) {
			t.Errorf("%s produced at %v (%v), want %v", id, got, ok, want)
		}
	}
	if _, ok := p.at("nope"); ok {
		t.Error("an unknown event has a produce time")
	}
}

func TestRateProduction(t *testing.T) {
	plan, err := newRatePlan(testOrg(t), 1000, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w := time.Date(2026, 11, 28, 19, 0, 0, 0, time.UTC)
	p := plan.production(w)
	if got, ok := p.at("evt-rate-2500"); !ok || !got.Equal(w.Add(2500*time.Millisecond)) {
		t.Errorf("baseline event 2500 produced at %v (%v)", got, ok)
	}
	in := plan.inject[0]
	if got, ok := p.at(in.tpl.id); !ok || !got.Equal(w.Add(in.at)) {
		t.Errorf("scenario event %s produced at %v (%v), want %v", in.tpl.id, got, ok, w.Add(in.at))
	}
	for i, s := range p.scenarios {
		if !p.exfil[s.Name].Equal(s.Exfil) || !s.Exfil.Equal(w.Add(plan.exfilAt[i])) {
			t.Errorf("scenario %s: exfil %v, produced %v", s.Name, s.Exfil, p.exfil[s.Name])
		}
	}
}

func TestWorkingHoursShift(t *testing.T) {
	for _, tc := range []struct {
		now, want string // the run's start; where its event times start
	}{
		{"2026-11-28T20:07:30Z", "2026-11-28T10:00:00Z"},
		{"2026-11-28T10:00:00Z", "2026-11-28T10:00:00Z"},
		{"2026-11-28T09:59:59Z", "2026-11-27T10:00:00Z"},
		{"2026-11-28T03:00:00+05:00", "2026-11-27T10:00:00Z"}, // 22:00 UTC the day before
		{"2026-12-01T00:00:01Z", "2026-11-30T10:00:00Z"},
	} {
		now, err := time.Parse(time.RFC3339, tc.now)
		if err != nil {
			t.Fatal(err)
		}
		got := now.Add(workingHoursShift(now)).UTC().Format(time.RFC3339)
		if got != tc.want {
			t.Errorf("run at %s: event times start at %s, want %s", tc.now, got, tc.want)
		}
		if workingHoursShift(now) > 0 {
			t.Errorf("run at %s: positive shift would future-date every event", tc.now)
		}
	}
}
