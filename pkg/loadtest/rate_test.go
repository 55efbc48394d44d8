package loadtest

import (
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/detect"
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
		}{{"evt-rate-42", "~c3"}, {tpl.id, ""}} {
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
	plan, err := newRatePlan(org, 50000, time.Minute, 0)
	if err != nil {
		b.Fatal(err)
	}
	arena := make([]byte, 0, 1<<20)
	var id, suffix []byte
	var bytes int64
	b.ReportAllocs()
	for seq := int64(0); seq < int64(b.N); seq++ {
		if len(arena) > 1<<20-8192 {
			arena = arena[:0]
		}
		tpl, at, cohort := plan.baseline(seq % plan.total())
		id = appendRateID(id[:0], seq)
		suffix = appendCohortSuffix(suffix[:0], cohort)
		n := len(arena)
		arena = tpl.render(arena, id, at, suffix)
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
	plan, err := newRatePlan(testOrg(t), 1000, 10*time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := time.Date(2026, 11, 28, 19, 0, 0, 0, time.UTC)
	p := plan.production(w)
	if got, ok := p.at("evt-rate-2500"); !ok || !got.Equal(w.Add(2500*time.Millisecond)) {
		t.Errorf("baseline event 2500 produced at %v (%v)", got, ok)
	}
	for _, in := range plan.inject {
		want := w.Add(plan.scheduled(in.pos))
		if got, ok := p.at(in.tpl.id); !ok || !got.Equal(want) {
			t.Errorf("scenario event %s produced at %v (%v), want %v", in.tpl.id, got, ok, want)
		}
	}
	for i, s := range p.scenarios {
		if want := w.Add(plan.scheduled(plan.exfilPos[i])); !p.exfil[s.Name].Equal(want) {
			t.Errorf("scenario %s: exfiltration produced at %v, want %v", s.Name, p.exfil[s.Name], want)
		}
	}
}

// streamEvent is one event of a rate-mode run as the generator orders it.
type streamEvent struct {
	at       time.Time
	uid      string
	scenario int   // -1: baseline
	cycle    int64 // scenario events: the plan's inject cycle
}

// rateStream lists a plan's events in produce order: the scenario events
// placed before baseline event pos, then the baseline event.
func rateStream(p *ratePlan) []streamEvent {
	var out []streamEvent
	inj := 0
	total := p.total()
	cycle := p.cohorts * int64(len(p.pool))
	for seq := int64(0); seq <= total; seq++ {
		for ; inj < len(p.inject) && (p.inject[inj].pos <= seq || seq == total); inj++ {
			in := p.inject[inj]
			out = append(out, streamEvent{at: in.at, uid: in.tpl.uid, scenario: in.scenario, cycle: p.injectCycle})
		}
		if seq == total {
			break
		}
		tpl, at, cohort := p.baseline(seq)
		uid := tpl.uid
		if cohort > 0 {
			uid += string(appendCohortSuffix(nil, cohort))
		}
		out = append(out, streamEvent{at: at, uid: uid, scenario: -1, cycle: seq / cycle})
	}
	return out
}

// TestRatePlan checks the rate mode's layout on a small org: event time
// never goes backwards in produce order (no event is late by
// construction), ends with the org's days (nothing future-dated), the
// population is the org's employees × the cohorts and nobody else, every
// cycle moves event time by the org's span, and the scenarios sit in the
// middle cycle with their own event times.
func TestRatePlan(t *testing.T) {
	org := testOrg(t)
	span := 3 * 24 * time.Hour
	end := org.Opt.Start.Add(span)
	for _, tc := range []struct {
		name        string
		rate        float64
		d           time.Duration
		cohorts     int
		wantCohorts int64
	}{
		{"automatic, one cohort", 1000, 10 * time.Second, 0, 1},
		{"automatic, several cohorts", 1000, 200 * time.Second, 0, -1},
		{"three cohorts", 1000, 40 * time.Second, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newRatePlan(org, tc.rate, tc.d, tc.cohorts)
			if err != nil {
				t.Fatal(err)
			}
			pool := int64(len(p.pool))
			if len(p.inject)+len(p.pool) != len(org.Events) {
				t.Fatalf("%d injected + %d pool events, want %d", len(p.inject), len(p.pool), len(org.Events))
			}
			want := tc.wantCohorts
			if want < 0 {
				want = p.total() / pool / rateCycles
				if want < 2 {
					t.Fatalf("the case should make several cohorts; the pool has %d events", pool)
				}
			}
			if p.cohorts != want {
				t.Errorf("%d cohorts, want %d", p.cohorts, want)
			}
			if p.cycles != (p.total()+p.cohorts*pool-1)/(p.cohorts*pool) || p.injectCycle != (p.cycles-1)/2 {
				t.Errorf("%d cycles, scenarios in cycle %d", p.cycles, p.injectCycle)
			}
			cycle := p.cohorts * pool
			for _, in := range p.inject {
				if in.pos < p.injectCycle*cycle || in.pos > (p.injectCycle+1)*cycle {
					t.Fatalf("scenario %d's event at pos %d, outside cycle %d [%d, %d]", in.scenario, in.pos, p.injectCycle, p.injectCycle*cycle, (p.injectCycle+1)*cycle)
				}
			}
			stream := rateStream(p)
			if int64(len(stream)) != p.total()+int64(len(p.inject)) {
				t.Fatalf("%d events in the stream, want %d", len(stream), p.total()+int64(len(p.inject)))
			}
			uids := map[string]bool{}
			employees := map[string]bool{}
			for _, e := range org.Employees {
				employees[e.Actor.UID] = true
			}
			for i, e := range stream {
				if i > 0 && e.at.Before(stream[i-1].at) {
					t.Fatalf("event %d at %v after one at %v: late by construction", i, e.at, stream[i-1].at)
				}
				if !e.at.Before(end) {
					t.Fatalf("event %d at %v: after the org's days end at %v", i, e.at, end)
				}
				// Cycle c holds the org's days moved by whole spans.
				lo := org.Opt.Start.Add(p.shift(e.cycle))
				if e.at.Before(lo) || !e.at.Before(lo.Add(span)) {
					t.Fatalf("event %d of cycle %d at %v, outside [%v, %v)", i, e.cycle, e.at, lo, lo.Add(span))
				}
				base, _, _ := strings.Cut(e.uid, "~c")
				if !employees[base] {
					t.Fatalf("event %d: actor %s is no employee of the org", i, e.uid)
				}
				uids[e.uid] = true
			}
			if pop := p.population(len(org.Employees)); int64(len(uids)) > pop || int64(len(uids)) < pop*9/10 {
				t.Errorf("%d distinct actors, population %d", len(uids), pop)
			}
			if got := stream[0].at; got.Before(org.Opt.Start.Add(-p.eventTimeSpan() + span)) {
				t.Errorf("first event at %v, before the run's event time starts", got)
			}
			for i, s := range p.scenarios {
				if s.Start.After(s.Exfil) || !s.Start.Equal(org.Scenarios[i].Start.Add(p.shift(p.injectCycle))) {
					t.Errorf("scenario %s: start %v exfil %v", s.Name, s.Start, s.Exfil)
				}
				found := false
				for _, in := range p.inject {
					if in.scenario == i && in.pos == p.exfilPos[i] && !in.at.Before(s.Exfil) {
						found = true
					}
				}
				if !found {
					t.Errorf("scenario %s: no event at or after its exfiltration %v at pos %d", s.Name, s.Exfil, p.exfilPos[i])
				}
			}
			cycleWall := time.Duration(float64(p.cohorts*pool) / tc.rate * float64(time.Second))
			if wantL := max(detect.DefaultAllowedLateness, time.Duration(float64(span)/float64(cycleWall)*float64(rateSkew)).Round(time.Second)); p.lateness != wantL {
				t.Errorf("allowed lateness %v, want %v", p.lateness, wantL)
			}
			// One pass over the pool stands for the org's employee-days.
			if got := p.employeeDays(pool); got != float64(org.EmployeeDays()) {
				t.Errorf("employee-days of one pass %v, want %d", got, org.EmployeeDays())
			}
		})
	}
	for _, bad := range []struct {
		rate    float64
		d       time.Duration
		cohorts int
	}{{0, time.Second, 0}, {1000, 0, 0}, {1000, 10 * time.Second, -1}, {10, time.Second, 0}} {
		if _, err := newRatePlan(org, bad.rate, bad.d, bad.cohorts); err == nil {
			t.Errorf("%v events/s for %v with %d cohorts accepted", bad.rate, bad.d, bad.cohorts)
		}
	}
}
