package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

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

// appendPassSuffix appends the actor suffix of pass n over the baseline
// pool: every pass is a fresh set of employees ("u-10003~p7"), so that
// compressing days of behaviour into seconds does not pile one person's
// weeks into one window.
func appendPassSuffix(dst []byte, pass int64) []byte {
	return strconv.AppendInt(append(dst, "~p"...), pass, 10)
}

// injected is one scenario event placed in a rate-mode run.
type injected struct {
	tpl      template
	at       time.Duration // offset from the start of production
	scenario int
}

// ratePlan is what a rate-mode run produces: the baseline pool replayed at
// the target rate, and the scenarios' events at chosen offsets.
type ratePlan struct {
	rate     float64
	duration time.Duration
	pool     []template
	// inject is sorted by at.
	inject []injected
	// scenarios are the org's, with Start and Exfil moved to the run's
	// offsets (relative to a zero time; shift them by the start).
	scenarios []scenario.Scenario
	// exfilAt is, per scenario, the offset of its first exfiltration event.
	exfilAt []time.Duration
	// poolEmployeeDays is the employee-days the pool stands for.
	poolEmployeeDays int
	// shift is added to produce times to give event times: the run is
	// placed in working hours (workingHoursShift), so that what the
	// time-of-day rules see does not depend on when the run started.
	shift time.Duration
}

// workingHoursShift is the shift that puts a run starting at t0 at the most
// recent 10:00 UTC before it: the rate mode's seconds stand for a working
// morning whatever the wall clock says (the after-hours rule would
// otherwise judge the benign marketing export by the hour of the run).
// Event times stay in the past, never future-dated.
func workingHoursShift(t0 time.Time) time.Duration {
	u := t0.UTC()
	ten := time.Date(u.Year(), u.Month(), u.Day(), 10, 0, 0, 0, time.UTC)
	if ten.After(u) {
		ten = ten.AddDate(0, 0, -1)
	}
	return ten.Sub(u)
}

// Rate-mode scenario placement: scenario i of n starts at
// duration × (injectFrom + injectSpread × i/n) and its events follow each
// other at most maxInjectGap apart, all within duration × injectBudget.
const (
	injectFrom   = 0.1
	injectSpread = 0.3
	injectBudget = 0.5
	maxInjectGap = 50 * time.Millisecond
)

// newRatePlan splits the org's events into the baseline pool and the
// scenarios' events, and places each scenario in the run: its events keep
// their order and are spread evenly over at most half the run (at most
// maxInjectGap apart), so its days are compressed into seconds with event
// time following the wall clock.
func newRatePlan(org *scenario.Org, rate float64, d time.Duration) (*ratePlan, error) {
	if rate <= 0 || d <= 0 {
		return nil, fmt.Errorf("loadtest: rate mode needs a positive rate and duration, got %v events/s for %v", rate, d)
	}
	owner := map[string]int{}
	for i, s := range org.Scenarios {
		for _, id := range s.EventIDs {
			owner[id] = i
		}
	}
	p := &ratePlan{rate: rate, duration: d, poolEmployeeDays: org.EmployeeDays()}
	per := make([][]template, len(org.Scenarios))
	for _, ev := range org.Events {
		t, err := parseTemplate(ev.Kind, ev.Value)
		if err != nil {
			return nil, err
		}
		if i, ok := owner[t.id]; ok {
			per[i] = append(per[i], t)
			continue
		}
		p.pool = append(p.pool, t)
	}
	if len(p.pool) == 0 {
		return nil, errors.New("loadtest: the organisation has no baseline events")
	}
	n := len(org.Scenarios)
	for i, s := range org.Scenarios {
		evs := per[i]
		slices.SortStableFunc(evs, func(a, b template) int { return a.time.Compare(b.time) })
		start := time.Duration(float64(d) * (injectFrom + injectSpread*float64(i)/float64(n)))
		gap := maxInjectGap
		if len(evs) > 1 {
			gap = min(gap, time.Duration(float64(d)*injectBudget)/time.Duration(len(evs)-1))
		}
		s.Start, s.Exfil = time.Time{}, time.Time{}
		exfil := time.Duration(-1)
		for k, t := range evs {
			at := start + time.Duration(k)*gap
			p.inject = append(p.inject, injected{tpl: t, at: at, scenario: i})
			if exfil < 0 && !t.time.Before(org.Scenarios[i].Exfil) {
				exfil = at
			}
		}
		if exfil < 0 {
			exfil = start
		}
		s.Start, s.Exfil = time.Time{}.Add(start), time.Time{}.Add(exfil)
		p.scenarios = append(p.scenarios, s)
		p.exfilAt = append(p.exfilAt, exfil)
	}
	slices.SortStableFunc(p.inject, func(a, b injected) int { return int(a.at - b.at) })
	return p, nil
}

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

// shifted returns the scenarios with times moved to start at t0.
func (p *ratePlan) shifted(t0 time.Time) []scenario.Scenario {
	out := slices.Clone(p.scenarios)
	for i := range out {
		out[i].Start = t0.Add(out[i].Start.Sub(time.Time{}))
		out[i].Exfil = t0.Add(out[i].Exfil.Sub(time.Time{}))
	}
	return out
}
