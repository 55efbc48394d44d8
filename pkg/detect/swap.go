package detect

import (
	"errors"

	"github.com/leakline/leakline/pkg/rules"
)

// ruleKey identifies a rule's detection semantics: a rule keeps its state
// across a pack swap only if both are unchanged.
type ruleKey struct{ id, version string }

// SwapPack replaces the engine's rule pack with p, between two events (the
// caller serialises it with Process, like every other use of the Engine).
//
//   - An enabled rule of p whose (ID, Version) an enabled rule of the
//     running pack has keeps that rule's state: windows, partial sequences,
//     pending absences and open incidents (whose next revisions carry p's
//     title, severity, mode and pack version; finding ids are unchanged).
//   - Any other enabled rule of p starts with no state.
//   - Rules no longer enabled in p with that (ID, Version) — removed,
//     disabled or changed — lose their state; their open incidents are
//     dropped without a final revision.
//
// The watermark, the duplicate-event memory and the counters are kept.
// Processing after the swap is exactly that of p; an event is never
// evaluated partly by one pack and partly by the other.
func (e *Engine) SwapPack(p *rules.Pack) error {
	if p == nil {
		return errors.New("detect: SwapPack: no rule pack")
	}
	old := make(map[ruleKey]*ruleState, len(e.rules))
	for _, rs := range e.rules {
		old[ruleKey{rs.r.ID, rs.r.Version}] = rs
	}
	next := make([]*ruleState, 0, len(p.Rules))
	for _, r := range p.Rules {
		if !r.Enabled {
			continue
		}
		k := ruleKey{r.ID, r.Version}
		rs, ok := old[k]
		if !ok {
			next = append(next, newRuleState(r))
			continue
		}
		delete(old, k)
		rs.r = r
		fresh := newRuleState(r)
		rs.gates, rs.byActor = fresh.gates, fresh.byActor
		for g := range rs.groups.all() {
			if inc := g.inc; inc != nil {
				inc.f.Title, inc.f.Severity, inc.f.Shadow, inc.f.PackVersion = r.Title, r.Severity, r.Shadow, p.Version
			}
		}
		next = append(next, rs)
	}
	// The rules left in old are dropped with their groups and timers.
	e.rules = next
	e.cfg.Pack = p
	return nil
}

// Pack returns the rule pack the engine evaluates.
func (e *Engine) Pack() *rules.Pack { return e.cfg.Pack }
