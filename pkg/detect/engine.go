package detect

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/inspect"
	"github.com/leakline/leakline/pkg/privacy"
	"github.com/leakline/leakline/pkg/window"
)

// Stats counts what the engine saw; the detector exports them as metrics.
type Stats struct {
	Events      uint64
	LateEvents  uint64 // older than the watermark minus allowed lateness: not applied to windows
	FutureDated uint64 // event time ahead of processing time by more than the allowed lateness
	Findings    uint64
	Actors      int
}

// Engine evaluates the configured rules over a stream of normalized events.
// It is not safe for concurrent use: a detector feeds it from one goroutine.
type Engine struct {
	cfg     Config
	scanner *inspect.Scanner
	actors  map[string]*actorState
	// watermarks holds, per input partition, the newest event time seen
	// minus the allowed lateness. Events are ordered per partition only, so
	// lateness is judged per partition.
	watermarks map[int]time.Time
	stats      Stats
	scratch    []inspect.Detection
	lastSweep  time.Time
	pending    []finding.Finding // final revisions of incidents closed as a side effect
}

type actorState struct {
	partition int       // input partition carrying this actor (keyed by actor)
	latest    time.Time // newest event time of this actor
	records   *window.Distinct
	recent    []string // recent contributing read event ids (bounded)
	bulk      *incident
	content   *incident
}

type incident struct {
	f        finding.Finding
	last     time.Time // event time of the last event that kept it open
	nextEmit float64   // value at which the next revision is emitted
	emitted  float64   // value of the last emitted revision
}

// New returns an Engine for cfg. The scanner inspects outbound content.
func New(cfg Config, sc *inspect.Scanner) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sc == nil {
		return nil, errNoScanner
	}
	return &Engine{cfg: cfg, scanner: sc, actors: make(map[string]*actorState), watermarks: make(map[int]time.Time)}, nil
}

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	s := e.stats
	s.Actors = len(e.actors)
	return s
}

// sweepEvery is how much event time passes between sweeps that close ended
// incidents and evict idle state.
const sweepEvery = time.Minute

// Process applies one event read from input partition partition and returns
// the findings it opened or updated. now is the processing time, used only
// for detected_at and future-dating.
func (e *Engine) Process(partition int, ev *event.Event, now time.Time) []finding.Finding {
	e.stats.Events++
	if ev.Time.After(now.Add(e.cfg.AllowedLateness)) {
		e.stats.FutureDated++
	}
	wmark := e.watermarks[partition]
	late := !wmark.IsZero() && ev.Time.Before(wmark)
	if late {
		e.stats.LateEvents++
	} else if wm := ev.Time.Add(-e.cfg.AllowedLateness); wm.After(wmark) {
		e.watermarks[partition] = wm
	}
	st := e.actor(partition, ev)
	var out []finding.Finding
	switch ev.Kind {
	case event.KindCRMAccess:
		if !late && ev.CRM != nil {
			if f, ok := e.bulkRead(st, ev, now); ok {
				out = append(out, f)
			}
		}
	case event.KindOutbound:
		if ev.Outbound != nil {
			if f, ok := e.content(st, ev, now); ok {
				out = append(out, f)
			}
		}
	}
	if wm := e.watermarks[partition]; wm.Sub(e.lastSweep) >= sweepEvery {
		e.lastSweep = wm
		e.evictIdle(now)
	}
	if len(e.pending) > 0 {
		out = append(out, e.pending...)
		e.pending = e.pending[:0]
	}
	e.stats.Findings += uint64(len(out))
	return out
}

func (e *Engine) actor(partition int, ev *event.Event) *actorState {
	st, ok := e.actors[ev.Actor.UID]
	if !ok {
		st = &actorState{records: window.NewDistinct(e.cfg.BulkRead.Window, e.cfg.MaxRecordsPerActor)}
		e.actors[ev.Actor.UID] = st
	}
	st.partition = partition
	if ev.Time.After(st.latest) {
		st.latest = ev.Time
	}
	return st
}

// evictIdle drops actors with nothing left in any window or open incident,
// judged against the watermark of the partition that carries the actor.
func (e *Engine) evictIdle(now time.Time) {
	horizon := e.cfg.BulkRead.Window + e.cfg.BulkRead.CoolDown + e.cfg.Content.CoolDown
	for uid, st := range e.actors {
		wm := e.watermarks[st.partition]
		if st.bulk != nil && wm.Sub(st.bulk.last) > e.cfg.BulkRead.CoolDown {
			if f, ok := e.closeIncident(st.bulk, now); ok {
				e.pending = append(e.pending, f)
			}
			st.bulk = nil
		}
		if st.latest.Add(horizon).Before(wm) {
			delete(e.actors, uid)
		}
	}
}

func (e *Engine) bulkRead(st *actorState, ev *event.Event, now time.Time) (finding.Finding, bool) {
	r := e.cfg.BulkRead
	crm := ev.CRM
	if r.OnlyWithoutTicket && crm.TicketID != "" {
		return finding.Finding{}, false
	}
	for _, id := range crm.Records.IDs {
		st.records.Add(hashString(id), ev.Time)
	}
	st.records.Advance(st.latest)
	st.recent = appendBounded(st.recent, ev.EventID, finding.MaxEventIDs)
	count := float64(st.records.Count())
	inc := st.bulk
	if inc != nil && ev.Time.Sub(inc.last) > r.CoolDown {
		// The incident ended; its final value goes out, a new one may start.
		if f, ok := e.closeIncident(inc, now); ok {
			e.pending = append(e.pending, f)
		}
		inc, st.bulk = nil, nil
	}
	if count < float64(r.Threshold) {
		if inc != nil {
			inc.f.EventCount++
			inc.f.EventIDs = appendBounded(inc.f.EventIDs, ev.EventID, finding.MaxEventIDs)
		}
		return finding.Finding{}, false
	}
	if inc == nil {
		start, _ := st.records.Oldest()
		inc = &incident{f: e.newFinding(r.RuleMeta, ev, start)}
		inc.f.Threshold = float64(r.Threshold)
		inc.f.EventIDs = slices.Clone(st.recent)
		inc.f.EventCount = uint64(len(st.recent))
		st.bulk = inc
	} else {
		inc.f.EventCount++
		inc.f.EventIDs = appendBounded(inc.f.EventIDs, ev.EventID, finding.MaxEventIDs)
	}
	inc.last = ev.Time
	if ev.Time.After(inc.f.WindowEnd) {
		inc.f.WindowEnd = ev.Time
	}
	if count > inc.f.Value {
		inc.f.Value = count
	}
	if count < inc.nextEmit {
		return finding.Finding{}, false
	}
	inc.nextEmit = count * growthStep // report growth in steps, never per event
	return e.emit(inc, now), true
}

func (e *Engine) content(st *actorState, ev *event.Event, now time.Time) (finding.Finding, bool) {
	r := e.cfg.Content
	ob := ev.Outbound
	if !e.external(ob) {
		return finding.Finding{}, false
	}
	counts := map[string]uint32{}
	var evidence []finding.Evidence
	items := 0
	scan := func(text string) {
		ds, _ := e.scanner.ScanString(text, e.scratch[:0])
		e.scratch = ds
		for _, d := range ds {
			if d.Confidence < inspect.Medium {
				continue
			}
			items++
			counts[string(d.Type)]++
			evidence = addEvidence(evidence, finding.Evidence{Type: string(d.Type), Masked: d.Masked, Token: d.Token})
		}
	}
	scan(ob.Subject)
	scan(ob.Content.Text)
	for _, a := range ob.Attachments {
		scan(a.Text)
	}
	if items < r.MinItems {
		return finding.Finding{}, false
	}
	inc := st.content
	if inc == nil || ev.Time.Sub(inc.last) > r.CoolDown || ev.Time.Before(inc.f.WindowStart) {
		inc = &incident{f: e.newFinding(r.RuleMeta, ev, ev.Time)}
		inc.f.Threshold = float64(r.MinItems)
		inc.f.Channel = ob.Channel
		inc.f.Destination = destination(ob)
		inc.f.PIICounts = map[string]uint32{}
		st.content = inc
	}
	inc.last = ev.Time
	if ev.Time.After(inc.f.WindowEnd) {
		inc.f.WindowEnd = ev.Time
	}
	for t, n := range counts {
		inc.f.PIICounts[t] += n
	}
	for _, ev := range evidence {
		inc.f.Evidence = addEvidence(inc.f.Evidence, ev)
	}
	inc.f.Value += float64(items)
	inc.f.EventCount++
	inc.f.EventIDs = appendBounded(inc.f.EventIDs, ev.EventID, finding.MaxEventIDs)
	return e.emit(inc, now), true
}

func (e *Engine) newFinding(m RuleMeta, ev *event.Event, start time.Time) finding.Finding {
	return finding.Finding{
		FindingID:   finding.ID(m.ID, m.Version, ev.Actor.UID, start),
		RuleID:      m.ID,
		RuleVersion: m.Version,
		PackVersion: e.cfg.PackVersion,
		Title:       m.Title,
		Severity:    m.Severity,
		Shadow:      m.Shadow,
		ActorUID:    ev.Actor.UID,
		ActorEmail:  ev.Actor.Email,
		Department:  ev.Actor.Department,
		WindowStart: start,
		WindowEnd:   ev.Time,
	}
}

// growthStep is the factor by which an open incident's value must grow
// before a new revision is emitted; the final value is emitted on close.
const growthStep = 1.25

// closeIncident emits the final revision of an ending incident if its value
// grew since the last emitted one.
func (e *Engine) closeIncident(inc *incident, now time.Time) (finding.Finding, bool) {
	if inc == nil || inc.f.Value <= inc.emitted {
		return finding.Finding{}, false
	}
	return e.emit(inc, now), true
}

// emit returns a copy of the incident's finding as its next revision.
func (e *Engine) emit(inc *incident, now time.Time) finding.Finding {
	inc.emitted = inc.f.Value
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

// external reports whether an outbound event leaves the company.
func (e *Engine) external(ob *event.Outbound) bool {
	switch ob.Channel {
	case event.ChannelUSB:
		return true
	case event.ChannelEmail:
		for _, d := range ob.Destination.Domains {
			if !e.internal(d) {
				return true
			}
		}
		return false
	default:
		host := ob.Destination.Host
		return host == "" || !e.internal(host)
	}
}

func (e *Engine) internal(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, d := range e.cfg.CompanyDomains {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// destination describes where data went without raw personal addresses:
// recipients are masked, domains, devices and hosts are kept.
func destination(ob *event.Outbound) string {
	switch ob.Channel {
	case event.ChannelEmail:
		masked := make([]string, 0, len(ob.Destination.Recipients))
		for _, r := range ob.Destination.Recipients {
			masked = append(masked, privacy.Mask(string(inspect.Email), r))
		}
		return strings.Join(masked, ",")
	case event.ChannelUSB:
		if d := ob.Destination.Device; d != nil {
			return fmt.Sprintf("usb:%s %s", d.Vendor, d.Product)
		}
		return "usb"
	default:
		if ob.Destination.Host != "" {
			return ob.Destination.Host
		}
		return ob.Destination.Application
	}
}

func addEvidence(list []finding.Evidence, ev finding.Evidence) []finding.Evidence {
	if len(list) >= finding.MaxEvidence {
		return list
	}
	for _, x := range list {
		if x.Token == ev.Token {
			return list
		}
	}
	return append(list, ev)
}

func appendBounded(list []string, s string, max int) []string {
	if len(list) >= max {
		return list
	}
	return append(list, s)
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}
