package pager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/metrics"
)

// This file holds a lane's partition workers and the rebuild of its open
// incidents from the findings topic when it is assigned partitions.
//
// Nothing but the findings topic and the lane's committed offsets survives
// a restart, so the rebuild replays the lane's decisions over the findings
// it had committed, in time order, with each message's timestamp (its
// produce time) standing for the time the pager handled it:
//
//   - only findings produced within the longest resolve_after (plus a
//     little slack) before the partition's last committed finding — or
//     before now, if that is earlier — can belong to incidents still open,
//     so only those are read;
//   - the rate limit is replayed too, on the messages' clock, so that an
//     incident folded into a flood summary is restored as folded (never
//     re-sent on its own) and the summary itself is restored. This is
//     exact when the pager kept up with the topic; after a backlog, with a
//     receiver slower than its rate limit, or across a rebalance, the
//     clocks differ and an incident may be restored as paged though it was
//     folded, or the reverse. Where the log cannot tell (an incident opened
//     before the range read), it is restored as paged;
//   - an incident whose resolve time had passed more than the slack before
//     its partition's last committed finding was resolved by the pager that
//     committed it (it was alive then and resolves overdue incidents before
//     it consumes, and every tick after): it is not restored. Any other
//     incident past its resolve time is restored and resolved at once —
//     possibly a second time, which receivers treat as a no-op.
//
// Nothing is sent while restoring. After it, the lane resolves what is
// overdue and re-sends what its receiver forgets (Alertmanager), then the
// partitions are consumed from their committed offsets.

// partitionWorker feeds one partition's findings to its lane.
type partitionWorker struct {
	l *lane
	a kafkaio.Assignment
}

// Handle delivers a batch of the partition's findings; a nil return lets
// the group consumer commit it.
func (w *partitionWorker) Handle(ctx context.Context, batch []kafka.Message) error {
	for _, m := range batch {
		if err := w.l.handleOne(ctx, m, w.a.Generation); err != nil {
			return err
		}
	}
	return nil
}

// Close forgets the partition's incidents: it was revoked (its next owner
// rebuilds them) or the pager is stopping.
func (w *partitionWorker) Close() error {
	w.l.forget(w.a.Partition, w.a.Generation)
	return nil
}

// forget drops the incidents of a partition handled or restored up to
// generation gen.
func (l *lane) forget(partition int, gen int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, inc := range l.open {
		if inc.partition == partition && inc.generation <= gen {
			delete(l.open, id)
		}
	}
	l.setOpen()
}

// newWorker is the lane's kafkaio.WorkerFactory: it makes sure the open
// incidents of the assignment's generation are rebuilt, then returns the
// partition's worker.
func (l *lane) newWorker(ctx context.Context, a kafkaio.Assignment) (kafkaio.PartitionWorker, error) {
	l.restore(ctx, a)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &partitionWorker{l: l, a: a}, nil
}

// restore rebuilds the open incidents of every partition of a's generation
// assigned to this member, once per generation: the first of the
// generation's workers does it, the others wait for it. A partition that
// cannot be read is logged and counted (its incidents are not restored),
// never fatal: paging new findings matters more. Then overdue incidents
// are resolved and forgotten ones re-sent, before anything is consumed.
func (l *lane) restore(ctx context.Context, a kafkaio.Assignment) {
	l.restoreMu.Lock()
	defer l.restoreMu.Unlock()
	if l.restores > 0 && l.restoredGen == a.Generation {
		return
	}
	same := func(x kafkaio.Assignment) bool { return x.Topic == a.Topic && x.Partition == a.Partition }
	var parts []kafkaio.Assignment
	if l.gc != nil {
		for _, x := range l.gc.Assigned() {
			if x.Generation == a.Generation {
				parts = append(parts, x)
			}
		}
	}
	if !slices.ContainsFunc(parts, same) {
		parts = append(parts, a)
	}
	began := time.Now()
	now := l.pg.cfg.now()
	recs, cutoffs, read, err := l.replay(ctx, parts, now)
	if ctx.Err() != nil {
		return // revoked or stopping: the next generation rebuilds
	}
	if err != nil {
		metrics.PagerRestoreFailures.WithLabelValues(l.spec.Name).Inc()
		l.log.Error("could not rebuild every open incident from the findings topic: incidents of the partitions named, paged before this start, will not be re-sent or resolved by this process", "err", err)
	}
	st := rebuild(recs, rebuildInput{
		receiver:  l.spec.Name,
		rateLimit: l.spec.RateLimit,
		maxAge:    l.pg.cfg.MaxAge,
		grafana:   l.pg.grafana,
		cutoffs:   cutoffs,
		halfLife:  l.risk.halfLife,
	})
	l.mu.Lock()
	open, folded := l.adopt(st, a.Generation)
	l.mu.Unlock()
	l.restores++
	l.restoredGen = a.Generation
	l.log.Info("open incidents rebuilt from the findings topic", "generation", a.Generation, "partitions", len(parts),
		"findings_read", read, "open", open, "summarised", folded, "flood_summary", st.flood != nil,
		"took", time.Since(began).Round(time.Millisecond))
	l.maintain(ctx)
}

// replayed is one finding the lane delivered before, as read back.
type replayed struct {
	at        time.Time // the message's timestamp: when it was produced
	partition int
	offset    int64
	f         *finding.Finding
	tags      []string
	route     *Route // the route that sent it to the lane's receiver
}

// restoreSlack is how late after an incident's resolve time the pager that
// had it may have resolved it: two ticks.
func (l *lane) restoreSlack() time.Duration { return 2 * l.tick }

// replay reads back, for each partition, the committed findings routed to
// the lane's receiver that may belong to incidents still open: those
// produced from maxResolve + restoreSlack before the partition's last
// committed finding (or before now, if that is earlier) up to the committed
// offset. It returns them, the cutoff of each partition for rebuild, the
// number of messages read, and the errors of the partitions it could not
// read (their findings are left out). A partition without a committed
// offset has nothing to replay: whatever it delivered is delivered again.
func (l *lane) replay(ctx context.Context, parts []kafkaio.Assignment, now time.Time) (recs []replayed, cutoffs map[int]time.Time, read int, errs error) {
	cfg, pol := l.pg.cfg.Kafka, l.pg.cfg.Policy
	cutoffs = map[int]time.Time{}
	for _, a := range parts {
		if a.Committed <= 0 {
			continue
		}
		base := now
		switch last, err := kafkaio.MessageAt(ctx, cfg, a.Topic, a.Partition, a.Committed-1); {
		case err == nil:
			if !last.Time.IsZero() && last.Time.Before(now) {
				base = last.Time
			}
		case errors.Is(err, kafkaio.ErrNoMessage):
			// Deleted by retention: older than anything that can be open.
		default:
			errs = multierror.Append(errs, fmt.Errorf("partition %d: %w", a.Partition, err))
			continue
		}
		cutoffs[a.Partition] = base.Add(-l.restoreSlack())
		from := base.Add(-l.maxResolve - l.restoreSlack())
		n := len(recs)
		err := kafkaio.ReplayRange(ctx, cfg, a.Topic, a.Partition, from, a.Committed, func(m kafka.Message) error {
			read++
			f, tags, err := decodeFinding(m.Value)
			if err != nil || f.Shadow {
				return nil // dead-lettered or recorded: nothing open
			}
			for _, d := range pol.Route(f, tags) {
				if d.Receiver == l.spec.Name {
					recs = append(recs, replayed{at: m.Time, partition: m.Partition, offset: m.Offset, f: f, tags: tags, route: d.Route})
					break
				}
			}
			return nil
		})
		if err != nil {
			recs = recs[:n] // all of a partition or nothing
			delete(cutoffs, a.Partition)
			errs = multierror.Append(errs, fmt.Errorf("partition %d: %w", a.Partition, err))
		}
	}
	return recs, cutoffs, read, errs
}

// rebuildInput is what rebuild needs besides the findings.
type rebuildInput struct {
	receiver  string
	rateLimit *RateLimit
	maxAge    time.Duration
	grafana   string
	// cutoffs holds, per partition, the time before which an incident's
	// resolve time must lie for it to count as resolved by the pager that
	// committed it.
	cutoffs map[int]time.Time
	// halfLife is the risk score's half-life.
	halfLife time.Duration
}

// rebuilt is the state rebuild derives.
type rebuilt struct {
	open map[string]*incident
	// flood is the flood summary that may still be open, if any.
	flood *flood
	// bucket is the rate limiter as of the last finding; nil when there
	// is no rate limit or no finding.
	bucket *tokenBucket
	// risk holds the actors' risk scores as of the last finding.
	risk *riskTracker
}

// rebuild replays a lane's decisions (handleOne's, and maintain's
// resolutions) over findings it delivered before, in time order with their
// timestamps as the clock, and returns what may still be open.
func rebuild(recs []replayed, in rebuildInput) rebuilt {
	out := rebuilt{open: map[string]*incident{}, risk: newRiskTracker(in.halfLife)}
	if len(recs) == 0 {
		return out
	}
	slices.SortStableFunc(recs, func(a, b replayed) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.partition, b.partition), cmp.Compare(a.offset, b.offset))
	})
	bucket := newTokenBucket(in.rateLimit, recs[0].at)
	var fl *flood
	seen := map[string]bool{}
	for _, r := range recs {
		t, f := r.at, r.f
		if fl != nil && bucket.full(t) {
			fl = nil // resolved once the limit had recovered
		}
		if in.maxAge > 0 && t.Sub(detectedAt(f)) > in.maxAge {
			continue // stale: not paged
		}
		id := f.FindingID
		inc := out.open[id]
		if inc != nil && t.Sub(inc.lastSeen) >= inc.route.ResolveAfter {
			delete(out.open, id) // resolved before this revision
			inc = nil
		}
		if inc != nil && f.Revision <= inc.page.Revision {
			continue // a repeat
		}
		// An incident whose first revision in the range is not its first
		// was opened before the range; assume it was paged.
		openedBefore := !seen[id] && f.Revision > 1
		seen[id] = true
		page := NewPage(f, r.tags, in.grafana, r.route.RunbookURL)
		// As handleOne: the weight counts once, when the incident opens.
		var weight float64
		if inc == nil {
			weight = out.risk.weight(f, t)
		}
		page.setRisk(out.risk.score(f.ActorUID, t)+weight, out.risk.halfLife)
		if inc == nil {
			out.risk.add(f.ActorUID, t, weight)
		}
		switch {
		case inc != nil && (!inc.summarized || fl != nil): // an update
			inc.page, inc.route, inc.lastSeen, inc.partition = page, r.route, t, r.partition
			if !inc.summarized {
				inc.lastSent = t
			}
		case openedBefore || bucket.take(t): // paged
			out.open[id] = &incident{page: page, route: r.route, started: t, lastSeen: t, lastSent: t, partition: r.partition}
		default: // folded into the flood summary
			if fl == nil {
				fl = &flood{key: floodKey(in.receiver), since: t, severity: f.Severity}
			}
			fl.suppressed++
			if severityRank(f.Severity) > severityRank(fl.severity) {
				fl.severity = f.Severity
			}
			fl.lastSent = t
			out.open[id] = &incident{page: page, route: r.route, lastSeen: t, summarized: true, partition: r.partition}
		}
	}
	var latest time.Time
	for id, inc := range out.open {
		c, ok := in.cutoffs[inc.partition]
		if ok && inc.lastSeen.Add(inc.route.ResolveAfter).Before(c) {
			delete(out.open, id) // resolved by the pager that committed it
		}
	}
	for _, c := range in.cutoffs {
		if c.After(latest) {
			latest = c
		}
	}
	if fl != nil && !latest.IsZero() && bucket.full(latest) {
		fl = nil
	}
	out.flood, out.bucket = fl, bucket
	return out
}

// adopt installs rebuilt state for generation gen and returns how many
// incidents it restored as paged and as folded into a flood summary. A
// flood summary and the rate limiter are taken only if the lane has none
// of its own yet. l.mu must be held.
func (l *lane) adopt(st rebuilt, gen int32) (open, folded int) {
	for id, inc := range st.open {
		inc.generation = gen
		l.open[id] = inc
		if inc.summarized {
			folded++
		} else {
			open++
		}
	}
	if l.flood == nil {
		l.flood = st.flood
	}
	if l.restores == 0 && st.bucket != nil {
		l.bucket = st.bucket
	}
	l.risk.merge(st.risk)
	l.setOpen()
	return open, folded
}
