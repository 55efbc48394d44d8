// Package normalizer owns the first stage of the pipeline: raw CRM-access and
// outbound events are validated against the event contract, normalized,
// deduplicated by event id and re-keyed by actor onto dlp.events. Anything
// invalid goes to dlp.deadletter with its reason; nothing is dropped.
package normalizer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/metrics"
)

// Config configures a Normalizer.
type Config struct {
	Kafka   kafkaio.Config
	Topics  kafkaio.Topics
	GroupID string
	Limits  event.Limits
	// DedupSize is how many recent event ids are remembered.
	DedupSize int
}

// Stats counts what the normalizer did.
type Stats struct {
	Consumed, Normalized, Duplicates, DeadLettered uint64
}

// Normalizer runs the stage.
type Normalizer struct {
	cfg     Config
	log     *slog.Logger
	dec     *event.Decoder
	events  *kafkaio.Writer
	dead    *kafkaio.Writer
	seen    *seenSet
	stats   struct{ consumed, normalized, duplicates, deadLettered atomic.Uint64 }
	nowFunc func() time.Time
}

// New builds a Normalizer; Run starts it.
func New(cfg Config, log *slog.Logger) (*Normalizer, error) {
	if cfg.GroupID == "" {
		cfg.GroupID = "leakline-normalizer"
	}
	if cfg.DedupSize == 0 {
		cfg.DedupSize = 200_000
	}
	if err := cfg.Kafka.Validate(); err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	dec, err := event.NewDecoder(cfg.Limits)
	if err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	return &Normalizer{
		cfg:     cfg,
		log:     log,
		dec:     dec,
		seen:    newSeenSet(cfg.DedupSize),
		nowFunc: time.Now,
	}, nil
}

// Run consumes the raw topics until ctx ends. Offsets are committed only
// after the normalized events and dead letters of a batch were acknowledged.
func (n *Normalizer) Run(ctx context.Context) error {
	cons, err := kafkaio.NewConsumer(kafkaio.ConsumerConfig{
		Config:   n.cfg.Kafka,
		GroupID:  n.cfg.GroupID,
		Topics:   []string{n.cfg.Topics.CRMAccess, n.cfg.Topics.Outbound},
		MaxBatch: batchSize,
	})
	if err != nil {
		return fmt.Errorf("normalizer: %w", err)
	}
	n.events = kafkaio.NewWriter(n.cfg.Kafka, n.cfg.Topics.Events)
	n.dead = kafkaio.NewWriter(n.cfg.Kafka, n.cfg.Topics.DeadLetter)
	defer func() {
		_ = cons.Close()
		_ = n.events.Close()
		_ = n.dead.Close()
	}()
	n.log.Info("normalizer started", "topics", []string{n.cfg.Topics.CRMAccess, n.cfg.Topics.Outbound}, "group", n.cfg.GroupID)
	err = cons.Run(ctx, n.handle)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// Stats returns a snapshot of the counters; safe to call from any goroutine.
func (n *Normalizer) Stats() Stats {
	return Stats{
		Consumed:     n.stats.consumed.Load(),
		Normalized:   n.stats.normalized.Load(),
		Duplicates:   n.stats.duplicates.Load(),
		DeadLettered: n.stats.deadLettered.Load(),
	}
}

// decoded is one message's result, computed in parallel with the others.
type decoded struct {
	ev  *event.Event
	val []byte // the marshaled envelope
	err error
	why string // dead-letter reason when err is set
}

// batchSize is the most raw events handled (and committed) together: large
// enough that the per-batch costs (the writer's linger, the synchronous
// produce and commit) are small against decoding, which is spread over the
// cores (decodeAll).
const batchSize = 2000

// minPerWorker is the fewest messages worth a goroutine of their own.
const minPerWorker = 64

// decodeAll decodes and marshals batch on up to GOMAXPROCS goroutines (the
// decoding is most of the stage's CPU); results keep the batch's order.
func (n *Normalizer) decodeAll(batch []kafka.Message, now time.Time) []decoded {
	res := make([]decoded, len(batch))
	one := func(i int) {
		ev, err := n.decode(batch[i], now)
		if err != nil {
			res[i] = decoded{err: err, why: reason(err)}
			return
		}
		b, err := event.MarshalEvent(ev)
		if err != nil {
			res[i] = decoded{err: err, why: "marshal"}
			return
		}
		res[i] = decoded{ev: ev, val: b}
	}
	workers := min(runtime.GOMAXPROCS(0), len(batch)/minPerWorker)
	if workers <= 1 {
		for i := range batch {
			one(i)
		}
		return res
	}
	var wg sync.WaitGroup
	chunk := (len(batch) + workers - 1) / workers
	for lo := 0; lo < len(batch); lo += chunk {
		hi := min(lo+chunk, len(batch))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				one(i)
			}
		})
	}
	wg.Wait()
	return res
}

func (n *Normalizer) handle(ctx context.Context, batch []kafka.Message) error {
	var out, dead []kafka.Message
	var ids []string
	batchSeen := make(map[string]struct{}, len(batch))
	now := n.nowFunc().UTC()
	for i, d := range n.decodeAll(batch, now) {
		m := batch[i]
		n.stats.consumed.Add(1)
		if d.err != nil {
			dead = append(dead, kafkaio.DeadLetter(m, d.why, d.err.Error()))
			metrics.DeadLetters.WithLabelValues("normalizer", d.why).Inc()
			continue
		}
		ev := d.ev
		if _, dup := batchSeen[ev.EventID]; dup || n.seen.has(ev.EventID) {
			n.stats.duplicates.Add(1)
			metrics.Duplicates.Inc()
			continue
		}
		batchSeen[ev.EventID] = struct{}{}
		// The message timestamp is the event time, so a partition can be
		// re-read from an event time (state rebuild, backtests).
		out = append(out, kafka.Message{Key: []byte(ev.Actor.UID), Value: d.val, Time: ev.Time})
		ids = append(ids, ev.EventID)
	}
	if len(out) > 0 {
		if err := n.events.Write(ctx, out...); err != nil {
			return fmt.Errorf("normalizer: write events: %w", err)
		}
	}
	if len(dead) > 0 {
		if err := n.dead.Write(ctx, dead...); err != nil {
			return fmt.Errorf("normalizer: write dead letters: %w", err)
		}
		n.log.Warn("events dead-lettered", "count", len(dead))
	}
	// Remember ids only once their events are safely written: a failed batch
	// is redelivered and must not then be taken for duplicates.
	for _, id := range ids {
		n.seen.add(id)
	}
	n.stats.normalized.Add(uint64(len(out)))
	n.stats.deadLettered.Add(uint64(len(dead)))
	return nil
}

func (n *Normalizer) decode(m kafka.Message, now time.Time) (*event.Event, error) {
	var kind event.Kind
	switch m.Topic {
	case n.cfg.Topics.CRMAccess:
		kind = event.KindCRMAccess
	case n.cfg.Topics.Outbound:
		kind = event.KindOutbound
	default:
		return nil, &event.DecodeError{Reason: "unknown_topic"}
	}
	src := event.Source{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
	return n.dec.DecodeRaw(kind, m.Value, src, now)
}

// reason is the short, low-cardinality dead-letter reason of err.
func reason(err error) string {
	var de *event.DecodeError
	if errors.As(err, &de) && de.Reason != "" {
		return de.Reason
	}
	return "invalid"
}
