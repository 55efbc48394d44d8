package detect

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/expr-lang/expr/vm"

	"github.com/leakline/leakline/pkg/edm"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/inspect"
	"github.com/leakline/leakline/pkg/privacy"
	"github.com/leakline/leakline/pkg/rules"
)

// Config configures an Engine.
type Config struct {
	// Pack is the compiled rule pack to evaluate.
	Pack *rules.Pack
	// CompanyDomains are the company's own mail domains and hosts:
	// destinations there are internal (outbound.external is false).
	CompanyDomains []string
	// AllowedLateness is how far behind the partition's newest event time an
	// event may arrive and still be applied to windows.
	AllowedLateness time.Duration
	// MaxGroupsPerRule bounds the groups (e.g. actors) one rule tracks.
	MaxGroupsPerRule int
	// EDM, when set, is the exact-data-match index of customer records: the
	// engine fills pii.edm_customers (customers recognised in outbound
	// content) and pii.edm_read_by_actor (those the actor read in CRM
	// access events within EDMLookback).
	EDM              *edm.Index
	EDMLookback      time.Duration
	MaxReadsPerActor int
	// IncidentEpoch bounds incidents in time (default IncidentEpoch).
	IncidentEpoch time.Duration
	// DedupSize is how many recent event ids the engine remembers to drop
	// redelivered or duplicated events.
	DedupSize int
}

// DefaultConfig evaluates the embedded default rule pack. It panics only if
// the embedded pack does not compile, which the package's tests rule out.
func DefaultConfig() Config {
	p, err := rules.LoadDefault()
	if err != nil {
		panic(fmt.Sprintf("detect: the embedded default rule pack is invalid: %v", err))
	}
	return Config{Pack: p, CompanyDomains: []string{"corp.example"}, AllowedLateness: DefaultAllowedLateness}
}

// Defaults.
const (
	DefaultAllowedLateness  = 5 * time.Minute
	DefaultMaxGroupsPerRule = 1_000_000
	DefaultDedupSize        = 100_000
)

func (c Config) withDefaults() Config {
	if c.AllowedLateness == 0 {
		c.AllowedLateness = DefaultAllowedLateness
	}
	if c.MaxGroupsPerRule <= 0 {
		c.MaxGroupsPerRule = DefaultMaxGroupsPerRule
	}
	if c.IncidentEpoch <= 0 {
		c.IncidentEpoch = IncidentEpoch
	}
	if c.EDMLookback <= 0 {
		c.EDMLookback = DefaultEDMLookback
	}
	if c.MaxReadsPerActor <= 0 {
		c.MaxReadsPerActor = DefaultMaxReadsPerActor
	}
	if c.DedupSize <= 0 {
		c.DedupSize = DefaultDedupSize
	}
	return c
}

// Validate reports every configuration error at once.
func (c Config) Validate() error {
	var errs []error
	if c.Pack == nil {
		errs = append(errs, errors.New("no rule pack"))
	}
	if c.AllowedLateness < 0 {
		errs = append(errs, errors.New("allowed lateness must not be negative"))
	}
	for _, d := range c.CompanyDomains {
		if d == "" || strings.ContainsAny(d, " @/") {
			errs = append(errs, fmt.Errorf("company domain %q is not a domain", d))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("detect: invalid config: %w", err)
	}
	return nil
}

// Stats counts what an engine saw; the detector exports them as metrics.
type Stats struct {
	Events      uint64
	Duplicates  uint64 // repeats of a recent event id: ignored
	LateEvents  uint64 // behind the watermark: not applied to windows
	FutureDated uint64 // ahead of processing time by more than the allowed lateness
	EvalErrors  uint64 // expression evaluation failures (rule skipped for that event)
	Findings    uint64
	Groups      int
}

// Add sums two snapshots.
func (s Stats) Add(o Stats) Stats {
	return Stats{
		Events: s.Events + o.Events, Duplicates: s.Duplicates + o.Duplicates,
		LateEvents: s.LateEvents + o.LateEvents, FutureDated: s.FutureDated + o.FutureDated,
		EvalErrors: s.EvalErrors + o.EvalErrors, Findings: s.Findings + o.Findings,
		Groups: s.Groups + o.Groups,
	}
}

// Engine evaluates a rule pack over the events of ONE input partition (all
// events of one actor land on one partition, so all of an actor's state is
// here). It works in event time: the watermark is the newest event time
// seen minus the allowed lateness. It is not safe for concurrent use.
type Engine struct {
	cfg       Config
	scanner   *inspect.Scanner
	vm        *vm.VM
	env       *rules.Env
	rules     []*ruleState
	watermark time.Time
	edm       *edmState // nil without an EDM index
	stats     Stats
	seen      *recentIDs
	scratch   []inspect.Detection
	strs      []string
	pending   []finding.Finding
	insp      inspection
	last      *event.Event // the event the last Process applied (EventMeta)
}

// New returns an Engine for cfg; the scanner inspects outbound content.
func New(cfg Config, sc *inspect.Scanner) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sc == nil {
		return nil, errors.New("detect: a content scanner is required")
	}
	cfg = cfg.withDefaults()
	e := &Engine{cfg: cfg, scanner: sc, seen: newRecentIDs(cfg.DedupSize), vm: rules.NewVM(), env: rules.NewEnv()}
	if cfg.EDM != nil {
		s, err := newEDMState(cfg)
		if err != nil {
			return nil, fmt.Errorf("detect: %w", err)
		}
		e.edm = s
	}
	for _, r := range cfg.Pack.Rules {
		if r.Enabled {
			e.rules = append(e.rules, newRuleState(r))
		}
	}
	return e, nil
}

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	s := e.stats
	for _, rs := range e.rules {
		s.Groups += rs.groups.len()
	}
	return s
}

// Watermark is the engine's event-time watermark.
func (e *Engine) Watermark() time.Time { return e.watermark }

// Process applies one event and returns the findings it opened or updated
// (and final revisions of incidents it closed). now is the processing time,
// used for detected_at (and for future-dating events without IngestedAt):
// the result depends on the events alone, so replaying the same events
// rebuilds the same state. An event dated more than the allowed lateness
// after its IngestedAt is counted as future-dated and its Time set to
// IngestedAt.
func (e *Engine) Process(ev *event.Event, now time.Time) []finding.Finding {
	e.last = nil
	if e.seen.seen(ev.EventID) {
		e.stats.Duplicates++
		return nil
	}
	e.last = ev
	e.stats.Events++
	ingested := ev.IngestedAt // persisted by the normalizer: replays agree
	if ingested.IsZero() {
		ingested = now
	}
	if ev.Time.After(ingested.Add(e.cfg.AllowedLateness)) {
		// A clock running ahead must not move the partition's watermark:
		// every correctly dated event after it would be late and blind the
		// windows (an insider could do that on purpose). The event counts
		// at the time it was ingested.
		e.stats.FutureDated++
		ev.Time = ingested
	}
	late := !e.watermark.IsZero() && ev.Time.Before(e.watermark)
	if late {
		e.stats.LateEvents++
	} else if wm := ev.Time.Add(-e.cfg.AllowedLateness); wm.After(e.watermark) {
		e.watermark = wm
	}
	e.env.SetEvent(ev)
	e.insp.reset()
	if ev.Kind == event.KindOutbound && ev.Outbound != nil {
		e.inspect(ev)
	}
	if e.edm != nil && ev.Kind == event.KindCRMAccess && ev.CRM != nil && !late {
		e.edm.recordReads(ev)
		e.edm.gc(e.watermark)
	}
	for _, rs := range e.rules {
		if err := e.apply(rs, ev, late, now); err != nil {
			e.stats.EvalErrors++
		}
	}
	e.sweep(e.watermark, now)
	var out []finding.Finding
	if len(e.pending) > 0 {
		out = append(out, e.pending...)
		e.pending = e.pending[:0]
	}
	e.stats.Findings += uint64(len(out))
	return out
}

// sweep visits every group whose deadline slot the watermark wm passed.
func (e *Engine) sweep(wm, now time.Time) {
	for _, rs := range e.rules {
		rs.timers.due(wm, func(g *group) { e.visit(rs, g, now) })
	}
}

// IncidentEpoch is the default length of an incident epoch: an incident
// never spans two epochs (aligned to the Unix epoch, UTC), so the state at
// any point depends only on the events since the start of its epoch minus
// the window — which bounds what a state rebuild must re-read. A rule whose
// window is longer uses its window as epoch. The price: an exfiltration
// running across midnight UTC is two incidents.
const IncidentEpoch = 24 * time.Hour

func (e *Engine) epochLen(r *rules.Rule) time.Duration {
	return max(e.cfg.IncidentEpoch, r.Window.Over)
}

func (e *Engine) epoch(r *rules.Rule, t time.Time) int64 {
	return t.UnixNano() / int64(e.epochLen(r))
}

func (e *Engine) epochStart(r *rules.Rule, t time.Time) time.Time {
	return time.Unix(0, e.epoch(r, t)*int64(e.epochLen(r))).UTC()
}

// Horizon is how much event time before the newest event of a partition its
// state depends on: rebuilding state re-reads this much.
func (c Config) Horizon() time.Duration {
	c = c.withDefaults()
	var h time.Duration
	if c.Pack != nil {
		for _, r := range c.Pack.Rules {
			if r.Enabled {
				h = max(h, max(c.IncidentEpoch, r.Window.Over)+r.Horizon())
			}
		}
	}
	if c.EDM != nil {
		h = max(h, c.EDMLookback)
	}
	return h + c.AllowedLateness
}

// inspection is what content inspection found in the current event.
type inspection struct {
	counts   map[string]uint32
	evidence []finding.Evidence
	total    int
}

func (in *inspection) reset() {
	clear(in.counts)
	in.evidence = in.evidence[:0]
	in.total = 0
}

func (e *Engine) inspect(ev *event.Event) {
	ob := ev.Outbound
	if e.edm != nil {
		e.edm.startEvent()
	}
	if e.insp.counts == nil {
		e.insp.counts = make(map[string]uint32)
	}
	// Inspect reads each content by its format: plain text, CSV/TSV (a
	// column headed email/phone/… raises its cells' confidence), or a MIME
	// message (quoted-printable and base64 parts decoded); binary content is
	// not scanned as text. Exact data match runs on every text scanned.
	opts := inspect.InspectOptions{}
	if e.edm != nil {
		opts.OnText = func(_ string, text []byte, ds []inspect.Detection) { e.edm.matchText(text, ds) }
	}
	scan := func(text, mimeType, fileName string) {
		if text == "" {
			return
		}
		opts.MimeType, opts.FileName = mimeType, fileName
		res := e.scanner.Inspect(unsafe.Slice(unsafe.StringData(text), len(text)), opts, e.scratch[:0])
		ds := res.Detections
		e.scratch = ds
		if res.Truncated {
			e.env.PII.Truncated = true
		}
		for _, d := range ds {
			if d.Confidence < inspect.Medium {
				continue
			}
			e.insp.total++
			e.insp.counts[string(d.Type)]++
			e.insp.evidence = addEvidence(e.insp.evidence, finding.Evidence{Type: string(d.Type), Masked: d.Masked, Token: d.Token})
		}
	}
	scan(ob.Subject, "text/plain", "")
	scan(ob.Content.Text, ob.Content.MimeType, ob.Content.FileName)
	for _, a := range ob.Attachments {
		scan(a.Text, a.MimeType, a.FileName)
	}
	e.env.PII.Total = e.insp.total
	for t, n := range e.insp.counts {
		e.env.PII.Counts[t] = int(n)
	}
	e.env.Outbound.External = e.external(ob)
	if e.edm != nil {
		e.env.PII.EDMCustomers, e.env.PII.EDMReadByActor = e.edm.counts(ev.Actor.UID, ev.Time)
	}
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

// destination describes where data went without raw personal addresses.
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
			return strings.TrimSpace(fmt.Sprintf("usb:%s %s", d.Vendor, d.Product))
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

// hashString is 64-bit FNV-1a, inline so it never allocates.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// recentIDs remembers the last n event ids (FIFO) as 64-bit hashes, in an
// open-addressing table (linear probing, at most 4/5 full, deletion by
// backward shift) beside the FIFO ring: two flat arrays of uint64, 8 bytes
// per remembered id in the ring and 10–20 in the table, no per-entry
// allocation and no tombstones.
type recentIDs struct {
	table []uint64 // 0: empty slot
	mask  uint64
	shift uint // 64 - log2(len(table))
	ring  []uint64
	next  int
	full  bool
}

func newRecentIDs(n int) *recentIDs {
	size, bits := 1, uint(0)
	for size*4 < 5*n {
		size <<= 1
		bits++
	}
	return &recentIDs{table: make([]uint64, size), mask: uint64(size - 1), shift: 64 - bits, ring: make([]uint64, n)}
}

// home is the slot where h's probe starts: Fibonacci hashing, the top bits
// of h times 2^64/φ (FNV's low bits alone probe poorly).
func (r *recentIDs) home(h uint64) uint64 {
	if r.shift == 64 {
		return 0
	}
	return (h * 0x9e3779b97f4a7c15) >> r.shift
}

// seen reports whether id was seen recently, and remembers it.
func (r *recentIDs) seen(id string) bool {
	h := hashString(id)
	if h == 0 {
		h = 1 // 0 marks an empty slot
	}
	for i := r.home(h); r.table[i] != 0; i = (i + 1) & r.mask {
		if r.table[i] == h {
			return true
		}
	}
	if r.full {
		r.remove(r.ring[r.next])
	}
	r.insert(h)
	r.ring[r.next] = h
	if r.next++; r.next == len(r.ring) {
		r.next, r.full = 0, true
	}
	return false
}

func (r *recentIDs) insert(h uint64) {
	i := r.home(h)
	for r.table[i] != 0 {
		i = (i + 1) & r.mask
	}
	r.table[i] = h
}

// remove deletes h, shifting later entries of its probe chain back so that
// every entry stays reachable from its home slot.
func (r *recentIDs) remove(h uint64) {
	i := r.home(h)
	for r.table[i] != h {
		if r.table[i] == 0 {
			return
		}
		i = (i + 1) & r.mask
	}
	for {
		r.table[i] = 0
		j := i
		for {
			j = (j + 1) & r.mask
			if r.table[j] == 0 {
				return
			}
			home := r.home(r.table[j])
			// The entry at j may move to i unless its home lies
			// cyclically in (i, j].
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				r.table[i] = r.table[j]
				i = j
				break
			}
		}
	}
}

// Advance moves the watermark to to (if later) without an event, firing
// expired absences and closing incidents whose cool-down passed. The rule
// test runner uses it to reach a test's end; a live detector never needs
// it, because events move the watermark.
func (e *Engine) Advance(to, now time.Time) []finding.Finding {
	if to.After(e.watermark) {
		e.watermark = to
	}
	e.sweep(e.watermark.Add(time.Minute), now)
	out := append([]finding.Finding(nil), e.pending...)
	e.pending = e.pending[:0]
	e.stats.Findings += uint64(len(out))
	return out
}
