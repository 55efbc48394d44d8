package rules

// A reference evaluator: the simplest possible implementation of the window
// semantics docs/RULES.md specifies (quadratic, in memory, no lateness). It
// checks that the default pack's fixtures say what the rules mean, and it is
// an executable specification for the engine in pkg/detect, which must give
// the same incidents.

import (
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
)

type refEntry struct {
	t    time.Time
	v    float64
	strs []string
}

type refPartial struct {
	start time.Time
	next  int
}

type refIncident struct {
	f    finding.Finding
	last time.Time
}

type refState struct {
	entries   []refEntry
	partials  []refPartial
	pending   []time.Time
	firstSeen int64
	seen      bool
}

type refEngine struct {
	t         testing.TB
	pack      *Pack
	env       *Env
	vm        *vm.VM
	company   []string
	states    map[string]*refState
	incidents map[string]*refIncident
	groups    map[string]string // state key → actor of the last event
	out       []finding.Finding
}

func newRefEngine(t testing.TB, p *Pack) *refEngine {
	return &refEngine{t: t, pack: p, env: NewEnv(), vm: NewVM(), company: []string{"corp.example"},
		states: map[string]*refState{}, incidents: map[string]*refIncident{}, groups: map[string]string{}}
}

var (
	refEmailRE = regexp.MustCompile(`[a-z0-9._%+-]+@([a-z0-9-]+\.)+[a-z]{2,}`)
	refCardRE  = regexp.MustCompile(`\b4[0-9]{3}( [0-9]{4}){3}\b`)
	refIBANRE  = regexp.MustCompile(`\bDE[0-9]{2}( [0-9]{4}){4} [0-9]{2}\b`)
)

// pii stands in for pkg/inspect: it counts what the fixture generators
// produce (e-mail addresses outside the company, cards, IBANs).
func (e *refEngine) pii(ob *event.Outbound) {
	texts := []string{ob.Subject, ob.Content.Text}
	for _, a := range ob.Attachments {
		texts = append(texts, a.Text)
	}
	for _, s := range texts {
		for _, m := range refEmailRE.FindAllString(s, -1) {
			if !e.internal(m[strings.LastIndexByte(m, '@')+1:]) {
				e.env.PII.Total++
				e.env.PII.Counts["EMAIL_ADDRESS"]++
			}
		}
		n := len(refCardRE.FindAllString(s, -1))
		e.env.PII.Total += n
		e.env.PII.Counts["CREDIT_CARD"] += n
		n = len(refIBANRE.FindAllString(s, -1))
		e.env.PII.Total += n
		e.env.PII.Counts["IBAN"] += n
	}
}

func (e *refEngine) internal(host string) bool {
	for _, d := range e.company {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

func (e *refEngine) external(ob *event.Outbound) bool {
	switch ob.Channel {
	case event.ChannelUSB:
		return true
	case event.ChannelEmail:
		return slices.ContainsFunc(ob.Destination.Domains, func(d string) bool { return !e.internal(d) })
	}
	return ob.Destination.Host == "" || !e.internal(ob.Destination.Host)
}

func (e *refEngine) run(tc TestCase) []finding.Finding {
	dec, err := event.NewDecoder(event.Limits{})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, re := range tc.Events {
		ev, err := dec.DecodeRaw(re.Kind, re.Raw, event.Source{}, re.At)
		if err != nil {
			e.t.Fatalf("%s: %v", re.Pos, err)
		}
		e.process(ev)
	}
	end := tc.End
	if end.IsZero() {
		end = time.Unix(1<<40, 0)
	}
	e.advance(end)
	return e.out
}

func (e *refEngine) bool(x *Expr) bool {
	ok, err := x.Bool(e.vm, e.env)
	if err != nil {
		e.t.Fatalf("%s: %v", x.Pos, err)
	}
	return ok
}

func (e *refEngine) state(key string) *refState {
	st := e.states[key]
	if st == nil {
		st = &refState{}
		e.states[key] = st
	}
	return st
}

// advance fires the absences whose deadline passed before now.
func (e *refEngine) advance(now time.Time) {
	for _, r := range e.pack.Rules {
		if !r.Enabled || r.Window.Kind != KindAbsence {
			continue
		}
		for key, st := range e.states {
			if !strings.HasPrefix(key, r.ID+"\x00") {
				continue
			}
			keep := st.pending[:0]
			for _, a := range st.pending {
				if deadline := a.Add(r.Window.Over); now.After(deadline) {
					e.fire(r, strings.TrimPrefix(key, r.ID+"\x00"), e.groups[key], a, deadline, 1, 1, true)
				} else {
					keep = append(keep, a)
				}
			}
			st.pending = keep
		}
	}
}

func (e *refEngine) process(ev *event.Event) {
	e.advance(ev.Time)
	e.env.SetEvent(ev)
	if ev.Outbound != nil {
		e.pii(ev.Outbound)
		e.env.Outbound.External = e.external(ev.Outbound)
	}
	t := ev.Time
	for _, r := range e.pack.Rules {
		if !r.Enabled {
			continue
		}
		g, err := r.GroupBy.Text(e.vm, e.env)
		if err != nil {
			e.t.Fatal(err)
		}
		key := r.ID + "\x00" + g
		w := r.Window
		switch w.Kind {
		case KindSequence:
			st := e.state(key)
			if w.Until != nil && e.bool(w.Until) {
				st.partials = nil
				continue
			}
			if !e.bool(r.Match) {
				continue
			}
			e.groups[key] = ev.Actor.UID
			var keep []refPartial
			for _, p := range st.partials {
				switch {
				case t.Sub(p.start) > w.Over:
				case e.bool(w.Steps[p.next].Match):
					p.next++
					if p.next == len(w.Steps) {
						e.fire(r, g, ev.Actor.UID, p.start, t, 1, 1, true)
					} else {
						keep = append(keep, p)
					}
				default:
					keep = append(keep, p)
				}
			}
			if e.bool(w.Steps[0].Match) {
				keep = append(keep, refPartial{start: t, next: 1})
			}
			st.partials = keep
			continue
		case KindAbsence:
			st := e.state(key)
			if e.bool(w.Then) {
				st.pending = nil
			}
			if e.bool(r.Match) {
				e.groups[key] = ev.Actor.UID
				st.pending = append(st.pending, t)
			}
			continue
		}
		if !e.bool(r.Match) {
			continue
		}
		st := e.state(key)
		en := refEntry{t: t, v: 1}
		switch w.Kind {
		case KindSum, KindBaseline:
			if en.v, err = w.Value.Number(e.vm, e.env); err != nil {
				e.t.Fatal(err)
			}
		case KindDistinct:
			if en.strs, err = w.Value.Strings(e.vm, e.env, nil); err != nil {
				e.t.Fatal(err)
			}
		}
		st.entries = append(st.entries, en)
		horizon := w.Over
		if w.Kind == KindBaseline {
			horizon = w.History + max(w.Bucket, w.Over)
		}
		st.entries = slices.DeleteFunc(st.entries, func(x refEntry) bool { return !x.t.After(t.Add(-horizon)) })
		var inWindow []refEntry
		for _, x := range st.entries {
			if x.t.After(t.Add(-w.Over)) {
				inWindow = append(inWindow, x)
			}
		}
		value, threshold := 0.0, w.Threshold
		switch w.Kind {
		case KindCount:
			value = float64(len(inWindow))
		case KindSum:
			for _, x := range inWindow {
				value += x.v
			}
		case KindDistinct:
			set := map[string]bool{}
			for _, x := range inWindow {
				for _, s := range x.strs {
					set[s] = true
				}
			}
			value = float64(len(set))
		case KindBaseline:
			for _, x := range inWindow {
				value += x.v
			}
			b := t.Unix() / int64(w.Bucket/time.Second)
			if !st.seen {
				st.firstSeen, st.seen = b, true
			}
			from := max(st.firstSeen, b-int64(w.History/w.Bucket))
			if int(b-from) < w.MinHistory || b == from {
				continue
			}
			sums := make([]float64, b-from)
			for _, x := range st.entries {
				if xb := x.t.Unix() / int64(w.Bucket/time.Second); xb >= from && xb < b {
					sums[xb-from] += x.v
				}
			}
			slices.Sort(sums)
			median := sums[len(sums)/2]
			if len(sums)%2 == 0 {
				median = (sums[len(sums)/2-1] + sums[len(sums)/2]) / 2
			}
			threshold = math.Max(w.Factor*median, w.MinValue)
		}
		if value >= threshold {
			e.fire(r, g, ev.Actor.UID, inWindow[0].t, t, value, threshold, false)
		}
	}
}

// fire opens or extends the incident of (rule, group) and emits a revision.
// add: the value accumulates (sequence, absence); else it is the measured
// value (the maximum is kept).
func (e *refEngine) fire(r *Rule, group, actor string, start, at time.Time, value, threshold float64, add bool) {
	key := r.ID + "\x00" + group
	inc := e.incidents[key]
	if inc == nil || at.Sub(inc.last) > r.CoolDown {
		inc = &refIncident{f: finding.Finding{
			FindingID: finding.ID(r.ID, r.Version, group, start), RuleID: r.ID, RuleVersion: r.Version,
			PackVersion: e.pack.Version, Title: r.Title, Severity: r.Severity, Shadow: r.Shadow, ActorUID: actor,
			WindowStart: start, Threshold: threshold,
		}}
		e.incidents[key] = inc
	}
	inc.last = at
	inc.f.Revision++
	inc.f.EventCount++
	inc.f.WindowEnd = at
	if add {
		inc.f.Value += value
	} else {
		inc.f.Value = math.Max(inc.f.Value, value)
	}
	e.out = append(e.out, inc.f)
}

// TestDefaultPackFixtures runs every fixture of the default pack through the
// reference evaluator: each rule's positive fixture fires, its negative one
// stays quiet.
func TestDefaultPackFixtures(t *testing.T) {
	p, err := LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	tcs, err := LoadDefaultTests()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CheckTests(tcs); err != nil {
		t.Fatal(err)
	}
	positive := map[string]bool{}
	for _, tc := range tcs {
		t.Run(tc.Name, func(t *testing.T) {
			got := newRefEngine(t, p).run(tc)
			for _, d := range Compare(tc, got) {
				t.Error(d)
			}
		})
		for _, e := range tc.Expect {
			if e.Incidents != 0 {
				positive[e.Rule] = true
			}
		}
	}
	negative := map[string]bool{}
	for _, tc := range tcs {
		for _, id := range tc.Absent {
			negative[id] = true
		}
	}
	for _, r := range p.Rules {
		if !positive[r.ID] {
			t.Errorf("rule %s has no positive fixture", r.ID)
		}
		if !negative[r.ID] {
			t.Errorf("rule %s has no negative fixture", r.ID)
		}
	}
}
