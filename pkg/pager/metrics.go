package pager

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/leakline/leakline/pkg/metrics"
)

// Outcomes of deliveries, the "outcome" label of per-receiver counters.
const (
	OutcomeTriggered  = "triggered"  // a new incident paged
	OutcomeUpdated    = "updated"    // a new revision sent to an open incident
	OutcomeResent     = "resent"     // an open incident re-sent (Alertmanager)
	OutcomeResolved   = "resolved"   // an incident resolved
	OutcomeSuppressed = "suppressed" // a new incident folded into a flood summary
	OutcomeSummary    = "summary"    // a flood summary sent or updated
	OutcomeRecorded   = "recorded"   // a shadow finding recorded (webhook)
	OutcomeRejected   = "rejected"   // refused with a 4xx, dead-lettered
	OutcomeRetried    = "retried"    // a failed attempt that was retried
	OutcomeStale      = "stale"      // older than MaxAge, not paged
	OutcomeDuplicate  = "duplicate"  // a revision already sent, skipped
)

// Outcomes lists every outcome, in a stable order.
var Outcomes = []string{
	OutcomeTriggered, OutcomeUpdated, OutcomeResent, OutcomeResolved, OutcomeSuppressed,
	OutcomeSummary, OutcomeRecorded, OutcomeRejected, OutcomeRetried, OutcomeStale, OutcomeDuplicate,
}

// ReceiverCounters counts one receiver's deliveries by outcome.
type ReceiverCounters struct {
	Triggered, Updated, Resent, Resolved, Suppressed, Summary, Recorded,
	Rejected, Retried, Stale, Duplicate atomic.Uint64
	// Open is the number of incidents currently open at the receiver.
	Open atomic.Int64
}

func (c *ReceiverCounters) counter(outcome string) *atomic.Uint64 {
	switch outcome {
	case OutcomeTriggered:
		return &c.Triggered
	case OutcomeUpdated:
		return &c.Updated
	case OutcomeResent:
		return &c.Resent
	case OutcomeResolved:
		return &c.Resolved
	case OutcomeSuppressed:
		return &c.Suppressed
	case OutcomeSummary:
		return &c.Summary
	case OutcomeRecorded:
		return &c.Recorded
	case OutcomeRejected:
		return &c.Rejected
	case OutcomeRetried:
		return &c.Retried
	case OutcomeStale:
		return &c.Stale
	case OutcomeDuplicate:
		return &c.Duplicate
	}
	return nil
}

// Metrics are the pager's counters. Labels are receiver names (from the
// policy) and outcomes (fixed): never a user id, a rule's data or PII.
//
// Each counter of a Pager is also exported through pkg/metrics (a service
// runs one Pager; tests running several see the sums, and the open gauge of
// the last): per receiver and outcome as
// leakline_pages_total{receiver,outcome}, Open as
// leakline_pager_open_incidents{receiver}, DeadLettered as
// leakline_deadletters_total{stage="pager",reason}, Unrouted as
// leakline_pager_unrouted_findings_total; Consumed is
// leakline_messages_consumed_total of the lanes' consumer groups.
type Metrics struct {
	// Consumed counts findings read from Kafka.
	Consumed atomic.Uint64
	// BadFindings counts undecodable findings (dead-lettered).
	BadFindings atomic.Uint64
	// Shadow counts shadow findings no receiver recorded: never paged.
	Shadow atomic.Uint64
	// Unrouted counts findings no route matched.
	Unrouted atomic.Uint64
	// DeadLettered counts messages written to the dead-letter topic.
	DeadLettered atomic.Uint64
	// LastDelivery is the Unix nanosecond time of the last accepted
	// delivery to any receiver.
	LastDelivery atomic.Int64

	names     []string
	receivers map[string]*ReceiverCounters
}

func newMetrics(names []string) *Metrics {
	m := &Metrics{names: slices.Clone(names), receivers: make(map[string]*ReceiverCounters, len(names))}
	for _, n := range names {
		m.receivers[n] = &ReceiverCounters{}
		// Export every series from the start, so that rate() and absent()
		// work before the first page.
		for _, o := range Outcomes {
			metrics.Pages.WithLabelValues(n, o)
		}
		metrics.PagerOpenIncidents.WithLabelValues(n).Set(0)
		metrics.PagerRestoreFailures.WithLabelValues(n)
	}
	for _, r := range []string{ReasonBadFinding, ReasonRejected} {
		metrics.DeadLetters.WithLabelValues(deadLetterStage, r)
	}
	return m
}

// deadLetterStage is the stage label of the pager's dead letters.
const deadLetterStage = "pager"

// Receiver returns the counters of the named receiver, nil if unknown.
func (m *Metrics) Receiver(name string) *ReceiverCounters { return m.receivers[name] }

// Pages returns one receiver's count for one outcome.
func (m *Metrics) Pages(receiver, outcome string) uint64 {
	c := m.receivers[receiver]
	if c == nil {
		return 0
	}
	if ctr := c.counter(outcome); ctr != nil {
		return ctr.Load()
	}
	return 0
}

// Each calls fn for every receiver and outcome, receivers in policy order:
// the pager's share of leakline_pages_total{receiver, outcome}.
func (m *Metrics) Each(fn func(receiver, outcome string, value uint64)) {
	for _, n := range m.names {
		for _, o := range Outcomes {
			fn(n, o, m.Pages(n, o))
		}
	}
}

// add counts one outcome of a receiver.
func (m *Metrics) add(receiver, outcome string) {
	if c := m.receivers[receiver]; c != nil {
		if ctr := c.counter(outcome); ctr != nil {
			ctr.Add(1)
			metrics.Pages.WithLabelValues(receiver, outcome).Inc()
		}
	}
}

// setOpen records how many incidents are open at a receiver.
func (m *Metrics) setOpen(receiver string, n int) {
	if c := m.receivers[receiver]; c != nil {
		c.Open.Store(int64(n))
		metrics.PagerOpenIncidents.WithLabelValues(receiver).Set(float64(n))
	}
}

// unrouted counts a finding no route matched.
func (m *Metrics) unrouted(shadow bool) {
	if shadow {
		m.Shadow.Add(1)
		return
	}
	m.Unrouted.Add(1)
	metrics.PagerUnrouted.Inc()
}

// deadLettered counts a message written to the dead-letter topic.
func (m *Metrics) deadLettered(reason string) {
	m.DeadLettered.Add(1)
	metrics.DeadLetters.WithLabelValues(deadLetterStage, reason).Inc()
}

func (m *Metrics) delivered(now time.Time) { m.LastDelivery.Store(now.UnixNano()) }

// tokenBucket is a rate limiter: capacity tokens, refilled continuously at
// capacity per period.
type tokenBucket struct {
	capacity float64
	rate     float64 // tokens per second
	tokens   float64
	last     time.Time
}

func newTokenBucket(rl *RateLimit, now time.Time) *tokenBucket {
	if rl == nil {
		return nil
	}
	return &tokenBucket{
		capacity: float64(rl.Pages),
		rate:     float64(rl.Pages) / rl.Per.Seconds(),
		tokens:   float64(rl.Pages),
		last:     now,
	}
}

// take takes a token if there is one. A nil bucket always allows.
func (b *tokenBucket) take(now time.Time) bool {
	if b == nil {
		return true
	}
	b.refill(now)
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// full tells whether the bucket is back to capacity.
func (b *tokenBucket) full(now time.Time) bool {
	if b == nil {
		return true
	}
	b.refill(now)
	return b.tokens >= b.capacity
}

func (b *tokenBucket) refill(now time.Time) {
	if now.After(b.last) {
		b.tokens = min(b.capacity, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
}
