package detect

import (
	"errors"
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
	groups map[string]*group
}

// group is one rule's state for one group key (by default one actor).
type group struct {
	key      string
	latest   time.Time // newest event time of this group
	sum      *window.Sum
	distinct *window.Distinct
	seq      *window.Sequence
	abs      *window.Absence
	base     *window.Baseline
	refs     []ref        // contributing event ids within the window (bounded, newest last)
	actor    *event.Actor // absence rules only: who the pending events belong to
	matches  float64      // completed sequences / expired absences in the open incident
	inc      *incident
	slot     int64 // the timers slot this group is registered in (0: none)
}

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
	g, ok := rs.groups[key]
	if ok {
		return g, true
	}
	if len(rs.groups) >= max {
		return nil, false
	}
	w := rs.r.Window
	g = &group{key: key}
	switch w.Kind {
	case rules.KindCount, rules.KindSum:
		g.sum = window.NewSum(w.Over)
	case rules.KindDistinct:
		g.distinct = window.NewDistinct(w.Over, w.ExactUpTo)
	case rules.KindSequence:
		g.seq = window.NewSequence(len(w.Steps), w.Over, maxPartial)
	case rules.KindAbsence:
		g.abs = window.NewAbsence(w.Over, maxPartial)
	case rules.KindBaseline:
		g.base = window.NewBaseline(w.Over, w.Bucket, w.History)
	}
	rs.groups[key] = g
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
	ok, err := r.Match.Bool(e.vm, e.env)
	if err != nil || !ok {
		return err
	}
	g, err := e.touch(rs, ev, true)
	if err != nil || late {
		return err // a late event (counted by the caller) never moves a window
	}
	g.refs = pushRef(g.refs, ref{at: ev.Time.UnixNano(), id: ev.EventID}, g.latest.Add(-w.Over))
	var value float64
	var start time.Time
	above := false
	switch w.Kind {
	case rules.KindCount:
		g.sum.Add(ev.Time, 1)
		g.sum.Advance(g.latest)
		value = g.sum.Value()
		start, _ = g.sum.Oldest()
		above = value >= w.Threshold
	case rules.KindSum:
		v, err := w.Value.Number(e.vm, e.env)
		if err != nil {
			return err
		}
		g.sum.Add(ev.Time, v)
		g.sum.Advance(g.latest)
		value = g.sum.Value()
		start, _ = g.sum.Oldest()
		above = value >= w.Threshold
	case rules.KindDistinct:
		vals, err := w.Value.Strings(e.vm, e.env, e.strs[:0])
		if err != nil {
			return err
		}
		e.strs = vals
		for _, v := range vals {
			g.distinct.Add(hashString(v), ev.Time)
		}
		g.distinct.Advance(g.latest)
		value = float64(g.distinct.Count())
		start, _ = g.distinct.Oldest()
		above = value >= w.Threshold
	case rules.KindBaseline:
		v := 1.0
		if w.Value != nil {
			if v, err = w.Value.Number(e.vm, e.env); err != nil {
				return err
			}
		}
		g.base.Add(ev.Time, v)
		g.base.Advance(g.latest)
		value = g.base.Current()
		median, n := g.base.Median(g.latest)
		start = g.latest.Add(-w.Over)
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
		inc = &incident{f: newFinding(r, e.cfg.Pack.Version, g.key, ev, start), epoch: epoch}
		inc.f.Threshold = threshold
		for _, x := range g.refs {
			if x.id != ev.EventID && x.at >= start.UnixNano() {
				inc.f.EventIDs = appendBounded(inc.f.EventIDs, x.id, finding.MaxEventIDs)
				inc.f.EventCount++
			}
		}
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
	key, err := rs.r.GroupBy.Text(e.vm, e.env)
	if err != nil {
		return nil, err
	}
	if _, ok := rs.groups[key]; !ok && !create {
		return nil, nil
	}
	g, ok := rs.group(key, e.cfg.MaxGroupsPerRule)
	if !ok {
		return nil, errGroupBound
	}
	if ev.Time.After(g.latest) {
		g.latest = ev.Time
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
	if w.Until != nil {
		ok, err := w.Until.Bool(e.vm, e.env)
		if err != nil {
			return err
		}
		cancel = ok
	}
	var matched []int
	if !cancel {
		ok, err := r.Match.Bool(e.vm, e.env)
		if err != nil {
			return err
		}
		if ok {
			for i, st := range w.Steps {
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
	g.seq.Advance(g.latest)
	if cancel {
		g.seq.Cancel(ev.Time)
		return nil
	}
	// Later steps first, so one event never advances a match twice.
	for k := len(matched) - 1; k >= 0; k-- {
		done, m := g.seq.Step(matched[k], ev.Time, ev.EventID)
		if !done {
			continue
		}
		g.refs = g.refs[:0]
		for _, id := range m.Refs {
			g.refs = pushRef(g.refs, ref{at: m.Start.UnixNano(), id: id}, time.Time{})
		}
		if g.inc == nil {
			g.matches = 0
		}
		g.matches++
		e.observe(rs, g, ev, g.matches, 1, m.Start, true, now)
	}
	e.schedule(rs, g)
	return nil
}

// applyAbsence registers expectations (the rule's match) and the events that
// satisfy them (then); expirations fire in the sweep.
func (e *Engine) applyAbsence(rs *ruleState, ev *event.Event, late bool) error {
	r := rs.r
	isA, err := r.Match.Bool(e.vm, e.env)
	if err != nil {
		return err
	}
	isB, err := r.Window.Then.Bool(e.vm, e.env)
	if err != nil {
		return err
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
	if isB {
		g.abs.Satisfy(ev.Time)
	}
	if isA {
		a := ev.Actor
		g.actor = &a
		g.abs.Expect(ev.Time, ev.EventID)
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
	if g.abs != nil {
		for _, p := range g.abs.Expired(wm) {
			e.fireAbsence(rs, g, p, now)
		}
	}
	if g.inc != nil && wm.Sub(g.inc.last) > r.CoolDown {
		e.close(g, now)
	}
	if g.inc == nil && g.idleAt(r).Before(wm) && (g.abs == nil || g.abs.Len() == 0) {
		delete(rs.groups, g.key)
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
	if g.abs != nil {
		if d, ok := g.abs.NextDeadline(); ok {
			at = minTime(at, d.Add(time.Nanosecond))
		}
	}
	e.timers.schedule(rs, g, at)
}

// idleAt is when the group holds nothing any more unless new events come.
func (g *group) idleAt(r *rules.Rule) time.Time {
	return g.latest.Add(r.Window.Over + r.Window.History + r.CoolDown)
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
	if inc != nil && (p.At.Sub(inc.last) > r.CoolDown || epoch != inc.epoch) {
		e.close(g, now)
		inc = nil
	}
	if inc == nil {
		inc = &incident{epoch: epoch, f: finding.Finding{
			FindingID: finding.ID(r.ID, r.Version, g.key, p.At), RuleID: r.ID, RuleVersion: r.Version,
			PackVersion: e.cfg.Pack.Version, Title: r.Title, Severity: r.Severity, Shadow: r.Shadow,
			ActorUID: g.actor.UID, ActorEmail: g.actor.Email, Department: g.actor.Department, WindowStart: p.At.UTC(), WindowEnd: p.Deadline.UTC(), Threshold: 1,
		}}
		g.inc = inc
	}
	inc.f.Value++
	inc.f.EventCount++
	inc.f.EventIDs = appendBounded(inc.f.EventIDs, p.Ref, finding.MaxEventIDs)
	inc.last = p.At
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

// ref is a contributing event.
type ref struct {
	at int64 // unix nanoseconds
	id string
}

// maxGroupRefs bounds the contributing event ids a group remembers before
// an incident opens (an open incident lists up to finding.MaxEventIDs).
const maxGroupRefs = 8

// pushRef appends r, drops refs older than cut (when cut is set) and keeps
// at most maxGroupRefs, the newest.
func pushRef(refs []ref, r ref, cut time.Time) []ref {
	refs = append(refs, r)
	i := 0
	for i < len(refs) && !cut.IsZero() && refs[i].at < cut.UnixNano() {
		i++
	}
	if over := len(refs) - i - maxGroupRefs; over > 0 {
		i += over
	}
	if i > 0 {
		refs = append(refs[:0], refs[i:]...)
	}
	return refs
}

func appendBounded(list []string, s string, max int) []string {
	if len(list) >= max {
		return list
	}
	return append(list, s)
}
