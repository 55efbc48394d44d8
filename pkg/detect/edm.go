package detect

import (
	"slices"
	"time"

	"github.com/leakline/leakline/pkg/edm"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/inspect"
)

// DefaultEDMLookback is how long a customer record an actor read counts as
// "read by this actor" when the same customer shows up in outbound content.
const DefaultEDMLookback = 7 * 24 * time.Hour

// DefaultMaxReadsPerActor bounds the read-set of one actor.
const DefaultMaxReadsPerActor = 100_000

// readSet is the set of customer fingerprints one actor read, each with the
// time it was last read, bounded in size: at the bound the least recently
// read eighth goes at once (evictOldest).
type readSet struct {
	last map[uint64]int64
}

func (s *readSet) add(fp uint64, t int64, max int) {
	if s.last == nil {
		s.last = make(map[uint64]int64)
	}
	prev, ok := s.last[fp]
	if ok && prev >= t {
		return
	}
	if !ok && len(s.last) >= max {
		s.evictOldest()
	}
	s.last[fp] = t
}

// evictOldest drops the least recently read eighth of the set (at least one
// read; ties with the cut go too). Evicting one read per new read would scan
// the whole set for each read of an actor at the bound — the heaviest
// reader, such as an insider pulling the CRM — and slow their partition to a
// crawl; an eighth at a time makes it amortised O(log n) per read.
func (s *readSet) evictOldest() {
	ts := make([]int64, 0, len(s.last))
	for _, v := range s.last {
		ts = append(ts, v)
	}
	slices.Sort(ts)
	cut := ts[max(1, len(ts)/8)-1]
	for fp, v := range s.last {
		if v <= cut {
			delete(s.last, fp)
		}
	}
}

// expire drops reads older than cut.
func (s *readSet) expire(cut int64) {
	for k, v := range s.last {
		if v < cut {
			delete(s.last, k)
		}
	}
}

// has reports whether fp was read at or after cut.
func (s *readSet) has(fp uint64, cut int64) bool {
	t, ok := s.last[fp]
	return ok && t >= cut
}

// edmState is the engine's exact-data-match state: the matcher over the
// index and, per actor, the customers they read recently.
type edmState struct {
	idx      *edm.Index
	matcher  *edm.Matcher
	match    edm.Match
	rows     map[uint32]struct{} // distinct rows matched in the current event
	reads    map[string]*readSet
	lookback time.Duration
	max      int
	lastGC   int64
}

func newEDMState(cfg Config) (*edmState, error) {
	m, err := edm.NewMatcher(cfg.EDM, edm.MatcherOptions{})
	if err != nil {
		return nil, err
	}
	return &edmState{
		idx: cfg.EDM, matcher: m, rows: make(map[uint32]struct{}),
		reads: make(map[string]*readSet), lookback: cfg.EDMLookback, max: cfg.MaxReadsPerActor,
	}, nil
}

// recordReads remembers the customers a CRM event read.
func (s *edmState) recordReads(ev *event.Event) {
	rs := s.reads[ev.Actor.UID]
	if rs == nil {
		rs = &readSet{}
		s.reads[ev.Actor.UID] = rs
	}
	t := ev.Time.UnixNano()
	for _, id := range ev.CRM.Records.IDs {
		rs.add(s.idx.FingerprintID(id), t, s.max)
	}
}

// startEvent resets the per-event match.
func (s *edmState) startEvent() { clear(s.rows) }

// matchText adds the customers found in text (with its detections).
func (s *edmState) matchText(text []byte, ds []inspect.Detection) {
	s.matcher.Match(text, ds, &s.match)
	for _, r := range s.match.Rows {
		s.rows[r] = struct{}{}
	}
}

// counts returns the distinct customers matched in the current event and
// how many of them the actor read within the look-back before t.
func (s *edmState) counts(actor string, t time.Time) (customers, readByActor int) {
	customers = len(s.rows)
	rs := s.reads[actor]
	if rs == nil || customers == 0 {
		return customers, 0
	}
	cut := t.Add(-s.lookback).UnixNano()
	for r := range s.rows {
		if rs.has(s.idx.CustomerFingerprint(r), cut) {
			readByActor++
		}
	}
	return customers, readByActor
}

// gc drops read-sets past the look-back, at most once per hour of event time.
func (s *edmState) gc(wm time.Time) {
	now := wm.UnixNano()
	if now-s.lastGC < int64(time.Hour) {
		return
	}
	s.lastGC = now
	cut := wm.Add(-s.lookback).UnixNano()
	for a, rs := range s.reads {
		rs.expire(cut)
		if len(rs.last) == 0 {
			delete(s.reads, a)
		}
	}
}
