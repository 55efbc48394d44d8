package pager

import (
	"math"
	"time"

	"github.com/leakline/leakline/pkg/finding"
)

// DefaultRiskHalfLife is the half-life of the actor risk score on pages
// unless the policy's risk_half_life says otherwise.
const DefaultRiskHalfLife = 24 * time.Hour

// riskEvict: an actor whose decayed score fell below this is forgotten.
const riskEvict = 0.01

// riskSweepEvery is how often maintain forgets decayed actors.
const riskSweepEvery = time.Minute

// riskTracker keeps each actor's risk score as Grafana's top_users computes
// it — the sum over the actor's findings of finding.SeverityWeight(severity)
// × 2^(−age/half-life), age = time − window end (never negative), shadow
// findings excluded — incrementally: one decayed score and the time it was
// last updated per actor. Since every term decays at the same rate, the sum
// decayed from its last update equals the sum of the terms decayed. The
// callers add a finding's weight once per incident (when it opens), so new
// revisions of a finding do not count again. Not safe for concurrent use.
type riskTracker struct {
	halfLife time.Duration
	actors   map[string]riskEntry
	swept    time.Time
}

type riskEntry struct {
	score float64
	at    time.Time
}

func newRiskTracker(halfLife time.Duration) *riskTracker {
	if halfLife <= 0 {
		halfLife = DefaultRiskHalfLife
	}
	return &riskTracker{halfLife: halfLife, actors: map[string]riskEntry{}}
}

// decay is 2^(−d/half-life); 1 for d ≤ 0.
func (r *riskTracker) decay(d time.Duration) float64 {
	if d <= 0 {
		return 1
	}
	return math.Exp2(-float64(d) / float64(r.halfLife))
}

// weight is what finding f adds to its actor's score at time t.
func (r *riskTracker) weight(f *finding.Finding, t time.Time) float64 {
	if f.Shadow {
		return 0
	}
	return finding.SeverityWeight(f.Severity) * r.decay(t.Sub(f.WindowEnd))
}

// score is actor's score at time t.
func (r *riskTracker) score(actor string, t time.Time) float64 {
	e, ok := r.actors[actor]
	if !ok {
		return 0
	}
	return e.score * r.decay(t.Sub(e.at))
}

// add adds w to actor's score at time t and returns the new score. An
// actor whose score is below riskEvict is forgotten.
func (r *riskTracker) add(actor string, t time.Time, w float64) float64 {
	s := r.score(actor, t) + w
	if s < riskEvict {
		delete(r.actors, actor)
		return s
	}
	if e, ok := r.actors[actor]; ok && e.at.After(t) {
		t = e.at // out of order: keep the later clock (decay never runs back)
	}
	r.actors[actor] = riskEntry{score: s, at: t}
	return s
}

// sweep forgets the actors whose score decayed below riskEvict by t, at
// most once per riskSweepEvery.
func (r *riskTracker) sweep(t time.Time) {
	if t.Sub(r.swept) < riskSweepEvery {
		return
	}
	r.swept = t
	for a, e := range r.actors {
		if e.score*r.decay(t.Sub(e.at)) < riskEvict {
			delete(r.actors, a)
		}
	}
}

// merge takes o's score of each actor that o rates higher than r (both
// decayed to the later of their times). Taking the higher, not the sum,
// never counts a finding twice when r and o saw the same findings.
func (r *riskTracker) merge(o *riskTracker) {
	if o == nil {
		return
	}
	for a, eo := range o.actors {
		er, ok := r.actors[a]
		if !ok {
			r.actors[a] = eo
			continue
		}
		t := er.at
		if eo.at.After(t) {
			t = eo.at
		}
		so, sr := eo.score*r.decay(t.Sub(eo.at)), er.score*r.decay(t.Sub(er.at))
		r.actors[a] = riskEntry{score: max(so, sr), at: t}
	}
}
