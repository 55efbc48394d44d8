package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/scenario"
)

// template is a raw event encoded once and re-stamped cheaply: its JSON cut
// around the values of "event_id", the top-level "time" and the actor's
// "uid", so that a new id, event time and actor can be spliced in with a
// few appends instead of an encode.
type template struct {
	kind event.Kind
	// parts: before the id value, between id and time, between time and
	// uid, after the uid value.
	parts [4][]byte
	id    string
	uid   string
	time  time.Time
}

var (
	keyEventID = []byte(`"event_id":"`)
	keyTime    = []byte(`"time":"`)
	keyUID     = []byte(`"uid":"`)
)

// stringValue finds key in b at or after from and returns the bounds of
// its string value, which must be plain (no escapes).
func stringValue(b []byte, key []byte, from int) (start, end int, err error) {
	i := bytes.Index(b[from:], key)
	if i < 0 {
		return 0, 0, fmt.Errorf("no %s", key)
	}
	start = from + i + len(key)
	j := bytes.IndexByte(b[start:], '"')
	if j < 0 {
		return 0, 0, fmt.Errorf("unterminated value of %s", key)
	}
	end = start + j
	if bytes.IndexByte(b[start:end], '\\') >= 0 {
		return 0, 0, fmt.Errorf("escaped value of %s", key)
	}
	return start, end, nil
}

// parseTemplate cuts a raw event produced by pkg/scenario (fields in the
// order event_id, time, actor) into a template.
func parseTemplate(kind event.Kind, raw []byte) (template, error) {
	t := template{kind: kind}
	is, ie, err := stringValue(raw, keyEventID, 0)
	if err != nil {
		return t, fmt.Errorf("loadtest: template: %w", err)
	}
	ts, te, err := stringValue(raw, keyTime, ie)
	if err != nil {
		return t, fmt.Errorf("loadtest: template: %w", err)
	}
	us, ue, err := stringValue(raw, keyUID, te)
	if err != nil {
		return t, fmt.Errorf("loadtest: template: %w", err)
	}
	if t.time, err = time.Parse(time.RFC3339Nano, string(raw[ts:te])); err != nil {
		return t, fmt.Errorf("loadtest: template: time: %w", err)
	}
	if is == ie || us == ue {
		return t, errors.New("loadtest: template: empty event id or actor")
	}
	t.id, t.uid = string(raw[is:ie]), string(raw[us:ue])
	t.parts = [4][]byte{raw[:is:is], raw[ie:ts:ts], raw[te:us:us], raw[ue:]}
	return t, nil
}

// timeLayout is how re-stamped event times are written: UTC, nanoseconds
// (the scenarios' offsets are compared with them exactly).
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// render appends the template's event with the given id, event time and
// actor uid suffix (empty: the template's actor) to dst.
func (t *template) render(dst []byte, id []byte, at time.Time, uidSuffix []byte) []byte {
	dst = append(dst, t.parts[0]...)
	dst = append(dst, id...)
	dst = append(dst, t.parts[1]...)
	dst = at.UTC().AppendFormat(dst, timeLayout)
	dst = append(dst, t.parts[2]...)
	dst = append(dst, t.uid...)
	dst = append(dst, uidSuffix...)
	return append(dst, t.parts[3]...)
}

// size is an upper bound of a rendered event's length.
func (t *template) size(idLen, suffixLen int) int {
	return len(t.parts[0]) + len(t.parts[1]) + len(t.parts[2]) + len(t.parts[3]) + idLen + len(timeLayout) + 8 + len(t.uid) + suffixLen
}

// rateIDPrefix starts the ids of rate-mode baseline events; the rest is
// the event's sequence number, from which its scheduled produce time
// follows (see ratePlan.scheduled).
const rateIDPrefix = "evt-rate-"

// appendRateID appends the id of baseline event seq.
func appendRateID(dst []byte, seq int64) []byte {
	return strconv.AppendInt(append(dst, rateIDPrefix...), seq, 10)
}

// parseRateID returns the sequence number of a rate-mode baseline id.
func parseRateID(id string) (int64, bool) {
	rest, ok := bytes.CutPrefix([]byte(id), []byte(rateIDPrefix))
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(rest), 10, 64)
	return n, err == nil && n >= 0
}

// appendCohortSuffix appends the actor suffix of cohort c > 0 of the
// rate mode's population ("u-10003~c7"); cohort 0 is the org's own
// employees, unsuffixed.
func appendCohortSuffix(dst []byte, c int64) []byte {
	return strconv.AppendInt(append(dst, "~c"...), c, 10)
}

// injected is one scenario event placed in a rate-mode run.
type injected struct {
	tpl template
	// pos: the event is produced just before baseline event pos.
	pos int64
	// at is its event time in the run.
	at       time.Time
	scenario int
}

// ratePlan is what a rate-mode run produces. A fixed population — the
// org's employees (cohort 0) and cohorts−1 copies of them — lives the
// org's days over and over: cycle c replays the baseline pool once per
// cohort, each pool event emitted for every cohort in turn, in event-time
// order, with the event times of the org's days moved by a whole number
// of spans (the org's days) so that cycles follow each other in event
// time and the last one ends where the org's days end (the day before
// yesterday: nothing is future-dated). Event time therefore advances much
// faster than the wall clock — a span per cycle — while the population
// stays the same: every window, baseline and read-set of the detector
// lives out its horizon many times within a run, which is what makes its
// memory a steady state rather than a ramp. The scenarios' events are
// merged into cycle injectCycle at their own event times, so they come
// with the history their actors have in the org (a week of baseline, the
// hours of the day).
type ratePlan struct {
	rate     float64
	duration time.Duration
	// pool holds the org's baseline events in event-time order.
	pool []template
	// cohorts is the number of copies of the org's employees.
	cohorts int64
	// span is the org's days: how far event time moves per cycle.
	span time.Duration
	// cycles is how many cycles the run starts (the last may be partial);
	// injectCycle the one that holds the scenarios.
	cycles, injectCycle int64
	// inject is sorted by pos.
	inject []injected
	// scenarios are the org's, with Start and Exfil in the run's event
	// time; exfilPos is, per scenario, the pos of its first exfiltration
	// event.
	scenarios []scenario.Scenario
	exfilPos  []int64
	// poolEmployeeDays is the employee-days the pool stands for.
	poolEmployeeDays int
	// lateness is the detector's allowed lateness for the run (see
	// rateSkew).
	lateness time.Duration
}

// Rate-mode shape.
const (
	// rateCycles is how many cycles a run aims at when the cohorts are
	// chosen automatically: the default 14-day org then covers ~140 days
	// of event time, several times the longest horizon of the default
	// pack (crm.volume_baseline's 30 days of history).
	rateCycles = 10
	// rateSkew is the wall-clock disorder the detector tolerates in rate
	// mode. Event time runs thousands of times faster than the wall
	// clock, so the default allowed lateness (5 minutes of event time)
	// would be a few milliseconds of wall time: the two source topics and
	// their partitions, read independently, are further apart than that
	// and most events would be late. The run's allowed lateness is this
	// much wall time in event time, and never less than the default.
	rateSkew = 5 * time.Second
)

// newRatePlan splits the org's events into the baseline pool and the
// scenarios' events and lays out the run: cohorts copies of the org
// (0: chosen so that the run makes about rateCycles cycles), the scenarios
// in the middle cycle.
func newRatePlan(org *scenario.Org, rate float64, d time.Duration, cohorts int) (*ratePlan, error) {
	if rate <= 0 || d <= 0 {
		return nil, fmt.Errorf("loadtest: rate mode needs a positive rate and duration, got %v events/s for %v", rate, d)
	}
	if cohorts < 0 {
		return nil, fmt.Errorf("loadtest: rate mode needs a positive number of cohorts (0: automatic), got %d", cohorts)
	}
	owner := map[string]int{}
	for i, s := range org.Scenarios {
		for _, id := range s.EventIDs {
			owner[id] = i
		}
	}
	p := &ratePlan{rate: rate, duration: d, poolEmployeeDays: org.EmployeeDays(), span: time.Duration(org.Opt.Days) * 24 * time.Hour}
	first, end := org.Opt.Start, org.Opt.Start.Add(p.span)
	var scen []injected
	for _, ev := range org.Events {
		t, err := parseTemplate(ev.Kind, ev.Value)
		if err != nil {
			return nil, err
		}
		if t.time.Before(first) || !t.time.Before(end) {
			return nil, fmt.Errorf("loadtest: event %s at %v is outside the org's days [%v, %v)", t.id, t.time, first, end)
		}
		if i, ok := owner[t.id]; ok {
			scen = append(scen, injected{tpl: t, scenario: i})
			continue
		}
		p.pool = append(p.pool, t)
	}
	if len(p.pool) == 0 {
		return nil, errors.New("loadtest: the organisation has no baseline events")
	}
	slices.SortStableFunc(p.pool, func(a, b template) int { return a.time.Compare(b.time) })
	total, pool := p.total(), int64(len(p.pool))
	if total < 2*pool {
		return nil, fmt.Errorf("loadtest: rate mode: the run's %d events (%v events/s for %v) are fewer than two passes over the org's %d baseline events "+
			"(%d employees × %d days): raise the rate or the duration, or lower the employees or days", total, rate, d, pool, len(org.Employees), org.Opt.Days)
	}
	p.cohorts = int64(cohorts)
	if p.cohorts == 0 {
		p.cohorts = max(1, total/pool/rateCycles)
	}
	cycle := p.cohorts * pool
	p.cycles = (total + cycle - 1) / cycle
	p.injectCycle = (p.cycles - 1) / 2
	cycleWall := time.Duration(float64(cycle) / rate * float64(time.Second))
	p.lateness = max(detect.DefaultAllowedLateness, time.Duration(float64(p.span)/float64(cycleWall)*float64(rateSkew)).Round(time.Second))

	// Each scenario event goes just before the first pool event (of the
	// inject cycle) that is later than it.
	shift := p.shift(p.injectCycle)
	for i := range scen {
		in := &scen[i]
		k := sort.Search(len(p.pool), func(j int) bool { return p.pool[j].time.After(in.tpl.time) })
		in.pos = p.injectCycle*cycle + int64(k)*p.cohorts
		in.at = in.tpl.time.Add(shift)
	}
	slices.SortStableFunc(scen, func(a, b injected) int { return a.tpl.time.Compare(b.tpl.time) })
	p.inject = scen
	for i, s := range org.Scenarios {
		// Its first event at or after Exfil; failing that, its first.
		pos := int64(-1)
		for _, in := range scen {
			if in.scenario != i {
				continue
			}
			if pos < 0 {
				pos = in.pos
			}
			if !in.tpl.time.Before(s.Exfil) {
				pos = in.pos
				break
			}
		}
		s.Start, s.Exfil = s.Start.Add(shift), s.Exfil.Add(shift)
		p.scenarios = append(p.scenarios, s)
		p.exfilPos = append(p.exfilPos, max(pos, 0))
	}
	return p, nil
}

// shift is how far the org's event times move in cycle c: the last cycle
// keeps them.
func (p *ratePlan) shift(c int64) time.Duration {
	return time.Duration(c-(p.cycles-1)) * p.span
}

// baseline returns what baseline event seq is: its template, event time
// and cohort.
func (p *ratePlan) baseline(seq int64) (tpl *template, at time.Time, cohort int64) {
	pool := int64(len(p.pool))
	cycle := seq / (p.cohorts * pool)
	r := seq % (p.cohorts * pool)
	tpl = &p.pool[r/p.cohorts]
	return tpl, tpl.time.Add(p.shift(cycle)), r % p.cohorts
}

// population is the number of distinct employees in the run.
func (p *ratePlan) population(orgEmployees int) int64 { return p.cohorts * int64(orgEmployees) }

// eventTimeSpan is the event time the run covers.
func (p *ratePlan) eventTimeSpan() time.Duration { return time.Duration(p.cycles) * p.span }

// total is how many baseline events the run produces.
func (p *ratePlan) total() int64 { return int64(p.rate * p.duration.Seconds()) }

// scheduled is the produce time of baseline event seq, as an offset.
func (p *ratePlan) scheduled(seq int64) time.Duration {
	return time.Duration(float64(seq) / p.rate * float64(time.Second))
}

// employeeDays is the employee-days of behaviour n baseline events stand
// for: passes over the pool × the pool's employee-days.
func (p *ratePlan) employeeDays(n int64) float64 {
	return float64(n) / float64(len(p.pool)) * float64(p.poolEmployeeDays)
}
