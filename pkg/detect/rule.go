package detect

import (
	"errors"
	"math"
	"slices"
	"time"

	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/rules"
	"github.com/leakline/leakline/pkg/window"
)

// ruleState is one rule's state across its groups.
type ruleState struct {
	r      *rules.Rule
	groups groupTable
	gates  ruleGates
	timers *timers // the groups' next deadlines
	// byActor: the rule groups by actor.uid (prefilter.go, isActorUID).
	byActor bool
}

// ruleGates are the event kinds the rule's conditions require (prefilter.go).
type ruleGates struct {
	match, until, then kindGate
	steps              []kindGate
}

func newRuleState(r *rules.Rule) *ruleState {
	rs := &ruleState{r: r, groups: newGroupTable(), timers: newTimers(), byActor: isActorUID(r.GroupBy)}
	rs.gates.match = gateOf(r.Match)
	rs.gates.until = gateOf(r.Window.Until)
	rs.gates.then = gateOf(r.Window.Then)
	for _, st := range r.Window.Steps {
		rs.gates.steps = append(rs.gates.steps, gateOf(st.Match))
	}
	return rs
}

// group is one rule's state for one group key (by default one actor). It
// is kept small (64 bytes): there is one per tracked actor and rule.
type group struct {
	rec    groupRec // the key, then the contributing events within the window (bounded, newest last)
	latest int64    // newest event time of this group, Unix nanoseconds
	// win is the rule's window: *window.Sum (count, sum), *window.Distinct,
	// *window.Sequence, *absenceState or *window.Baseline.
	win     any
	inc     *incident
	slot    int32  // the timers slot this group is registered in (0: none)
	matches uint32 // completed sequences in the open incident
}

func (g *group) sum() *window.Sum           { return g.win.(*window.Sum) }
func (g *group) distinct() *window.Distinct { return g.win.(*window.Distinct) }
func (g *group) seq() *window.Sequence      { return g.win.(*window.Sequence) }
func (g *group) base() *window.Baseline     { return g.win.(*window.Baseline) }

// absenceState is an absence rule's window and who its pending events
// belong to (a finding fires on a deadline, without an event at hand).
type absenceState struct {
	*window.Absence
	actor *event.Actor
}

// abs is the group's absence state, nil for other kinds.
func (g *group) abs() *absenceState {
	a, _ := g.win.(*absenceState)
	return a
}

// latestTime is the newest event time of the group.
func (g *group) latestTime() time.Time { return time.Unix(0, g.latest).UTC() }

// incident is an open finding that grows until its cool-down passes.
type incident struct {
	f        finding.Finding
	epoch    int64     // incidents never span two epochs (see Engine.epoch)
	last     time.Time // event time of the last event that kept it open
	nextEmit float64   // value at which the next revision is emitted
	emitted  float64   // value of the last emitted revision
	dirty    bool      // details changed since the last emitted revision
}

// growthStep is the factor by which an open incident's value must grow
// before a new revision is emitted; the final value goes out on close.
const growthStep = 1.25

var errGroupBound = errors.New("detect: group bound reached; event not applied")

// maxPartial bounds partial sequence matches and pending absences per group.
const maxPartial = 64

func (rs *ruleState) group(key string, max int) (*group, bool) {
	if g := rs.groups.get(key); g != nil {
		return g, true
	}
	if rs.groups.len() >= max {
		return nil, false
	}
	w := rs.r.Window
	g := &group{rec: newGroupRec(key), latest: math.MinInt64}
	switch w.Kind {
	case rules.KindCount, rules.KindSum:
		g.win = window.NewSum(w.Over)
	case rules.KindDistinct:
		g.win = window.NewDistinct(w.Over, w.ExactUpTo)
	case rules.KindSequence:
		g.win = window.NewSequence(len(w.Steps), w.Over, maxPartial)
	case rules.KindAbsence:
		g.win = &absenceState{Absence: window.NewAbsence(w.Over, maxPartial)}
	case rules.KindBaseline:
		g.win = window.NewBaseline(w.Over, w.Bucket, w.History)
	}
	rs.groups.put(g)
	return g, true
}

// apply evaluates one rule against the current event.
func (e *Engine) apply(rs *ruleState, ev *event.Event, late bool, now time.Time) error {
	r := rs.r
	w := r.Window
	switch w.Kind {
	case rules.KindSequence:
		return e.applySequence(rs, ev, late, now)
	case rules.KindAbsence:
		return e.applyAbsence(rs, ev, late)
	}
	if !rs.gates.match.admits(e.env.Kind) {
		return nil
	}
	ok, err := r.Match.Bool(e.vm, e.env)
	if err != nil || !ok {
		return err
	}
	g, err := e.touch(rs, ev, true)
	if err != nil || late {
		return err // a late event (counted by the caller) never moves a window
	}
	latest := g.latestTime()
	g.rec.push(ev.Time.UnixNano(), ev.EventID, latest.Add(-w.Over).UnixNano())
	var value float64
	var start time.Time
	above := false
	switch w.Kind {
	case rules.KindCount:
		sum := g.sum()
		sum.Add(ev.Time, 1)
		sum.Advance(latest)
		value = sum.Value()
		start, _ = sum.Oldest()
		above = value >= w.Threshold
	case rules.KindSum:
		v, err := w.Value.Number(e.vm, e.env)
		if err != nil {
			return err
		}
		sum := g.sum()
		sum.Add(ev.Time, v)
		sum.Advance(latest)
		value = sum.Value()
		start, _ = sum.Oldest()
		above = value >= w.Threshold
	case rules.KindDistinct:
		vals, err := w.Value.Strings(e.vm, e.env, e.strs[:0])
		if err != nil {
			return err
		}
		e.strs = vals
		d := g.distinct()
		for _, v := range vals {
			d.Add(hashString(v), ev.Time)
		}
		d.Advance(latest)
		value = float64(d.Count())
		start, _ = d.Oldest()
		above = value >= w.Threshold
	case rules.KindBaseline:
		v := 1.0
		if w.Value != nil {
			if v, err = w.Value.Number(e.vm, e.env); err != nil {
				return err
			}
		}
		base := g.base()
		base.Add(ev.Time, v)
		base.Advance(latest)
		value = base.Current()
		median, n := base.Median(latest)
		start = latest.Add(-w.Over)
		threshold := max(w.Factor*median, w.MinValue)
		above = n >= w.MinHistory && value >= threshold
		e.observe(rs, g, ev, value, threshold, start, above, now)
		e.schedule(rs, g)
		return nil
	}
	e.observe(rs, g, ev, value, w.Threshold, start, above, now)
	e.schedule(rs, g)
	return nil
}

// observe runs the incident life cycle of one group after its value changed.
func (e *Engine) observe(rs *ruleState, g *group, ev *event.Event, value, threshold float64, start time.Time, above bool, now time.Time) {
	r := rs.r
	inc := g.inc
	epoch := e.epoch(r, ev.Time)
	if inc != nil && (ev.Time.Sub(inc.last) > r.CoolDown || epoch != inc.epoch) {
		e.close(g, now)
		inc = nil
	}
	if !above {
		if inc != nil {
			inc.addEvent(ev, &e.insp, &e.env.PII)
		}
		return
	}
	if inc == nil {
		if start.IsZero() || start.After(ev.Time) {
			start = ev.Time
		}
		if es := e.epochStart(r, ev.Time); start.Before(es) {
			start = es
		}
		inc = &incident{f: newFinding(r, e.cfg.Pack.Version, string(g.rec.key()), ev, start), epoch: epoch}
		inc.f.Threshold = threshold
		g.rec.each(func(at int64, id []byte) {
			if string(id) != ev.EventID && at >= start.UnixNano() {
				inc.f.EventIDs = appendBounded(inc.f.EventIDs, string(id), finding.MaxEventIDs)
				inc.f.EventCount++
			}
		})
		g.inc = inc
	}
	inc.addEvent(ev, &e.insp, &e.env.PII)
	inc.last = ev.Time
	if value > inc.f.Value {
		inc.f.Value = value
	}
	if inc.f.Revision > 0 && inc.f.Value < inc.nextEmit {
		return
	}
	inc.nextEmit = inc.f.Value * growthStep
	e.pending = append(e.pending, e.emit(inc, now))
}

// addEvent records a contributing event in the incident.
func (inc *incident) addEvent(ev *event.Event, in *inspection, pii *rules.PIIEnv) {
	inc.f.EventCount++
	if !slices.Contains(inc.f.EventIDs, ev.EventID) {
		inc.f.EventIDs = appendBounded(inc.f.EventIDs, ev.EventID, finding.MaxEventIDs)
	}
	if ev.Time.After(inc.f.WindowEnd) {
		inc.f.WindowEnd = ev.Time
	}
	if ob := ev.Outbound; ob != nil {
		if inc.f.Channel == "" {
			inc.f.Channel = ob.Channel
			inc.f.Destination = destination(ob)
		}
		inc.f.EDMCustomers = max(inc.f.EDMCustomers, uint32(pii.EDMCustomers))
		inc.f.EDMReadByActor = max(inc.f.EDMReadByActor, uint32(pii.EDMReadByActor))
		if in.total > 0 {
			if inc.f.PIICounts == nil {
				inc.f.PIICounts = make(map[string]uint32)
			}
			for t, n := range in.counts {
				inc.f.PIICounts[t] += n
			}
			for _, x := range in.evidence {
				inc.f.Evidence = addEvidence(inc.f.Evidence, x)
			}
		}
	}
	inc.dirty = true
}

func newFinding(r *rules.Rule, packVersion, key string, ev *event.Event, start time.Time) finding.Finding {
	return finding.Finding{
		FindingID:   finding.ID(r.ID, r.Version, key, start),
		RuleID:      r.ID,
		RuleVersion: r.Version,
		PackVersion: packVersion,
		Title:       r.Title,
		Severity:    r.Severity,
		Shadow:      r.Shadow,
		ActorUID:    ev.Actor.UID,
		ActorEmail:  ev.Actor.Email,
		Department:  ev.Actor.Department,
		WindowStart: start.UTC(),
		WindowEnd:   ev.Time.UTC(),
	}
}

// emit returns a copy of the incident's finding as its next revision.
func (e *Engine) emit(inc *incident, now time.Time) finding.Finding {
	inc.emitted = inc.f.Value
	inc.dirty = false
	inc.f.Revision++
	f := inc.f
	f.DetectedAt = now.UTC()
	f.EventIDs = slices.Clone(f.EventIDs)
	f.Evidence = slices.Clone(f.Evidence)
	if f.PIICounts != nil {
		m := make(map[string]uint32, len(f.PIICounts))
		for k, v := range f.PIICounts {
			m[k] = v
		}
		f.PIICounts = m
	}
	return f
}

// close ends a group's incident, emitting its final revision if anything
// changed since the last one.
func (e *Engine) close(g *group, now time.Time) {
	inc := g.inc
	g.inc = nil
	if inc != nil && (inc.f.Value > inc.emitted || inc.dirty) {
		e.pending = append(e.pending, e.emit(inc, now))
	}
}

// touch finds (or, with create, makes) the current event's group of rule rs
// and records the event's time as the group's newest when it is. Without
// create, a group that does not exist yet comes back nil.
func (e *Engine) touch(rs *ruleState, ev *event.Event, create bool) (*group, error) {
	key := e.env.Actor.UID
	if !rs.byActor {
		var err error
		if key, err = rs.r.GroupBy.Text(e.vm, e.env); err != nil {
			return nil, err
		}
	}
	if !create && rs.groups.get(key) == nil {
		return nil, nil
	}
	g, ok := rs.group(key, e.cfg.MaxGroupsPerRule)
	if !ok {
		return nil, errGroupBound
	}
	if t := ev.Time.UnixNano(); t > g.latest {
		g.latest = t
	}
	return g, nil
}

// applySequence advances ordered steps; a completed sequence fires. An
// event counts as a step only when the rule's match holds too; until is
// checked first, and an event that cancels is never used as a step.
func (e *Engine) applySequence(rs *ruleState, ev *event.Event, late bool, now time.Time) error {
	r := rs.r
	w := r.Window
	cancel := false
	if w.Until != nil && rs.gates.until.admits(e.env.Kind) {
		ok, err := w.Until.Bool(e.vm, e.env)
		if err != nil {
			return err
		}
		cancel = ok
	}
	var matched []int
	if !cancel && rs.gates.match.admits(e.env.Kind) {
		ok, err := r.Match.Bool(e.vm, e.env)
		if err != nil {
			return err
		}
		if ok {
			for i, st := range w.Steps {
				if !rs.gates.steps[i].admits(e.env.Kind) {
					continue
				}
				hit, err := st.Match.Bool(e.vm, e.env)
				if err != nil {
					return err
				}
				if hit {
					matched = append(matched, i)
				}
			}
		}
	}
	if len(matched) == 0 && !cancel {
		return nil
	}
	g, err := e.touch(rs, ev, true)
	if err != nil || late {
		return err
	}
	seq := g.seq()
	seq.Advance(g.latestTime())
	if cancel {
		seq.Cancel(ev.Time)
		return nil
	}
	// Later steps first, so one event never advances a match twice.
	for k := len(matched) - 1; k >= 0; k-- {
		done, m := seq.Step(matched[k], ev.Time, ev.EventID)
		if !done {
			continue
		}
		g.rec.clearRefs()
		for _, id := range m.Refs {
			g.rec.push(m.Start.UnixNano(), id, noCut)
		}
		if g.inc == nil {
			g.matches = 0
		}
		g.matches++
		e.observe(rs, g, ev, float64(g.matches), 1, m.Start, true, now)
	}
	e.schedule(rs, g)
	return nil
}

// applyAbsence registers expectations (the rule's match) and the events that
// satisfy them (then); expirations fire in the sweep.
func (e *Engine) applyAbsence(rs *ruleState, ev *event.Event, late bool) error {
	r := rs.r
	var isA, isB bool
	var err error
	if rs.gates.match.admits(e.env.Kind) {
		if isA, err = r.Match.Bool(e.vm, e.env); err != nil {
			return err
		}
	}
	if rs.gates.then.admits(e.env.Kind) {
		if isB, err = r.Window.Then.Bool(e.vm, e.env); err != nil {
			return err
		}
	}
	if !isA && !isB {
		return nil
	}
	// Only a B matters only to a group that has As pending (or had them
	// recently): it never creates state.
	g, err := e.touch(rs, ev, isA)
	if err != nil || g == nil || late {
		return err
	}
	abs := g.abs()
	if isB {
		abs.Satisfy(ev.Time)
	}
	if isA {
		a := ev.Actor
		abs.actor = &a
		abs.Expect(ev.Time, ev.EventID)
	}
	e.schedule(rs, g)
	return nil
}

// visit handles a group whose deadline came: it fires expired absences,
// closes the incident whose cool-down passed in event time, evicts the group
// when nothing is left, and otherwise schedules its next deadline.
func (e *Engine) visit(rs *ruleState, g *group, now time.Time) {
	wm := e.watermark
	r := rs.r
	abs := g.abs()
	if abs != nil {
		for _, p := range abs.Expired(wm) {
			e.fireAbsence(rs, g, p, now)
		}
	}
	if g.inc != nil && wm.Sub(g.inc.last) > r.CoolDown {
		e.close(g, now)
	}
	if g.inc == nil && g.idleAt(r).Before(wm) && (abs == nil || abs.Len() == 0) {
		rs.groups.remove(g)
		return
	}
	e.schedule(rs, g)
}

// schedule registers the group's next deadline with the timers.
func (e *Engine) schedule(rs *ruleState, g *group) {
	at := g.idleAt(rs.r)
	if g.inc != nil {
		at = minTime(at, g.inc.last.Add(rs.r.CoolDown+time.Nanosecond))
	}
	if abs := g.abs(); abs != nil {
		if d, ok := abs.NextDeadline(); ok {
			at = minTime(at, d.Add(time.Nanosecond))
		}
	}
	rs.timers.schedule(g, at)
}

// idleAt is when the group holds nothing any more unless new events come.
func (g *group) idleAt(r *rules.Rule) time.Time {
	return g.latestTime().Add(r.Window.Over + r.Window.History + r.CoolDown)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (e *Engine) fireAbsence(rs *ruleState, g *group, p window.Pending, now time.Time) {
	r := rs.r
	inc := g.inc
	epoch := e.epoch(r, p.At)
	// The absence holds from its deadline on: that is the incident's last
	// event time, so that whether two absences share an incident depends on
	// event time alone, not on how far one watermark step moved.
	if inc != nil && (p.Deadline.Sub(inc.last) > r.CoolDown || epoch != inc.epoch) {
		e.close(g, now)
		inc = nil
	}
	if inc == nil {
		actor := g.abs().actor
		inc = &incident{epoch: epoch, f: finding.Finding{
			FindingID: finding.ID(r.ID, r.Version, string(g.rec.key()), p.At), RuleID: r.ID, RuleVersion: r.Version,
			PackVersion: e.cfg.Pack.Version, Title: r.Title, Severity: r.Severity, Shadow: r.Shadow,
			ActorUID: actor.UID, ActorEmail: actor.Email, Department: actor.Department, WindowStart: p.At.UTC(), WindowEnd: p.Deadline.UTC(), Threshold: 1,
		}}
		g.inc = inc
	}
	inc.f.Value++
	inc.f.EventCount++
	inc.f.EventIDs = appendBounded(inc.f.EventIDs, p.Ref, finding.MaxEventIDs)
	inc.last = p.Deadline
	if p.Deadline.After(inc.f.WindowEnd) {
		inc.f.WindowEnd = p.Deadline.UTC()
	}
	if inc.f.Revision > 0 && inc.f.Value < inc.nextEmit {
		inc.dirty = true
		return
	}
	inc.nextEmit = inc.f.Value * growthStep
	e.pending = append(e.pending, e.emit(inc, now))
}

func appendBounded(list []string, s string, max int) []string {
	if len(list) >= max {
		return list
	}
	return append(list, s)
}
