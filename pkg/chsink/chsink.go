// Package chsink owns the storage stage: findings from dlp.findings and
// event metadata from dlp.eventmeta are written to ClickHouse (findings and
// events tables) in batches flushed by size and by time, each topic by its
// own consumer group and loop. Offsets are
// committed only after ClickHouse acknowledged the insert; while ClickHouse
// is away the sink retries the same batch with backoff and fetches nothing
// more, so memory stays bounded and nothing is lost. Inserts are idempotent
// (ReplacingMergeTree on finding_id, and on (actor_uid, time, event_id) for
// events, read with FINAL), so a redelivered batch rewrites the same rows.
package chsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cenkalti/backoff/v5"
	gojson "github.com/goccy/go-json"
	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/metrics"
)

// Config configures a Sink.
type Config struct {
	Kafka   kafkaio.Config
	Topics  kafkaio.Topics
	GroupID string
	// EventsGroupID is the consumer group of the event-metadata loop
	// (Topics.EventMeta; the loop does not run when that topic is empty).
	// Default GroupID + "-events".
	EventsGroupID string
	// BatchSize and FlushInterval bound a batch by rows and by time.
	BatchSize     int
	FlushInterval time.Duration
	// MaxRetryInterval caps the backoff between insert attempts.
	MaxRetryInterval time.Duration
}

// Stats counts what the sink did.
type Stats struct {
	Inserted, Batches, Retries, DeadLettered uint64
	// EventsInserted and EventBatches count the event-metadata loop's rows
	// and batches (Retries and DeadLettered count both loops).
	EventsInserted, EventBatches uint64
	// Held is the number of fetched records the sink holds now, in batches
	// not yet acknowledged by ClickHouse (both loops); MaxHeld is the most
	// it ever held. Each loop holds at most one batch (BatchSize records):
	// while ClickHouse is away it retries that batch and fetches nothing
	// more, so MaxHeld never exceeds 2 × BatchSize.
	Held, MaxHeld uint64
}

// Sink runs the stage.
type Sink struct {
	cfg   Config
	log   *slog.Logger
	store *chstore.Store
	dead  *kafkaio.Writer
	stats struct {
		inserted, batches, retries, deadLettered atomic.Uint64
		eventsInserted, eventBatches             atomic.Uint64
		held, maxHeld                            atomic.Uint64
	}
}

// New builds a Sink writing to store; Run starts it.
func New(cfg Config, store *chstore.Store, log *slog.Logger) (*Sink, error) {
	if cfg.GroupID == "" {
		cfg.GroupID = "leakline-chsink"
	}
	if cfg.EventsGroupID == "" {
		cfg.EventsGroupID = cfg.GroupID + "-events"
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 5000
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 500 * time.Millisecond
	}
	if cfg.MaxRetryInterval <= 0 {
		cfg.MaxRetryInterval = 5 * time.Second
	}
	if err := cfg.Kafka.Validate(); err != nil {
		return nil, fmt.Errorf("chsink: %w", err)
	}
	if store == nil {
		return nil, errors.New("chsink: a store is required")
	}
	return &Sink{cfg: cfg, log: log, store: store}, nil
}

// Stats returns a snapshot of the counters.
func (s *Sink) Stats() Stats {
	return Stats{
		Inserted:     s.stats.inserted.Load(),
		Batches:      s.stats.batches.Load(),
		Retries:      s.stats.retries.Load(),
		DeadLettered: s.stats.deadLettered.Load(),

		EventsInserted: s.stats.eventsInserted.Load(),
		EventBatches:   s.stats.eventBatches.Load(),
		Held:           s.stats.held.Load(),
		MaxHeld:        s.stats.maxHeld.Load(),
	}
}

// hold accounts for a fetched batch of n records until the returned func
// releases it (Stats.Held, Stats.MaxHeld and the buffered-rows gauge).
func (s *Sink) hold(n int) (release func()) {
	h := s.stats.held.Add(uint64(n))
	for {
		m := s.stats.maxHeld.Load()
		if h <= m || s.stats.maxHeld.CompareAndSwap(m, h) {
			break
		}
	}
	metrics.SinkBufferedRows.Add(float64(n))
	return func() {
		s.stats.held.Add(^uint64(n - 1))
		metrics.SinkBufferedRows.Sub(float64(n))
	}
}

// Run consumes dlp.findings (and dlp.eventmeta, when Topics.EventMeta is
// set) until ctx ends. The two loops are separate consumer groups; when one
// fails, the other is stopped and the first error returned.
func (s *Sink) Run(ctx context.Context) error {
	s.dead = kafkaio.NewWriter(s.cfg.Kafka, s.cfg.Topics.DeadLetter)
	defer func() { _ = s.dead.Close() }()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.loop(gctx, s.cfg.GroupID, s.cfg.Topics.Findings, s.handle) })
	if s.cfg.Topics.EventMeta != "" {
		g.Go(func() error { return s.loop(gctx, s.cfg.EventsGroupID, s.cfg.Topics.EventMeta, s.handleEvents) })
	}
	err := g.Wait()
	if err != nil && errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// loop consumes topic with group, handing each batch to handle; offsets are
// committed only after handle returned nil.
func (s *Sink) loop(ctx context.Context, group, topic string, handle func(context.Context, []kafka.Message) error) error {
	cons, err := kafkaio.NewConsumer(kafkaio.ConsumerConfig{
		Config:   s.cfg.Kafka,
		GroupID:  group,
		Topics:   []string{topic},
		MaxBatch: s.cfg.BatchSize,
		MaxWait:  s.cfg.FlushInterval,
	})
	if err != nil {
		return fmt.Errorf("chsink: %w", err)
	}
	defer func() { _ = cons.Close() }()
	s.log.Info("chsink started", "topic", topic, "group", group, "batch", s.cfg.BatchSize, "flush", s.cfg.FlushInterval)
	err = cons.Run(ctx, handle)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *Sink) handle(ctx context.Context, batch []kafka.Message) error {
	defer s.hold(len(batch))()
	fs := make([]finding.Finding, 0, len(batch))
	var dead []kafka.Message
	for _, m := range batch {
		f, err := decodeFinding(m.Value)
		if err != nil {
			dead = append(dead, kafkaio.DeadLetter(m, "bad_finding", err.Error()))
			metrics.DeadLetters.WithLabelValues("chsink", "bad_finding").Inc()
			continue
		}
		fs = append(fs, f)
	}
	if len(fs) > 0 {
		if err := s.insert(ctx, fs); err != nil {
			return err
		}
	}
	if len(dead) > 0 {
		if err := s.dead.Write(ctx, dead...); err != nil {
			return fmt.Errorf("chsink: write dead letters: %w", err)
		}
		s.stats.deadLettered.Add(uint64(len(dead)))
	}
	return nil
}

// insert writes one batch, retrying with exponential backoff and jitter
// until ClickHouse accepts it or ctx ends.
func (s *Sink) insert(ctx context.Context, fs []finding.Finding) error {
	start := time.Now()
	if err := s.retry(ctx, "findings", len(fs), func() error { return s.store.InsertFindings(ctx, fs) }); err != nil {
		return err
	}
	s.stats.inserted.Add(uint64(len(fs)))
	s.stats.batches.Add(1)
	metrics.SinkBatchRows.Observe(float64(len(fs)))
	metrics.SinkInsertSeconds.Observe(time.Since(start).Seconds())
	s.log.Debug("findings stored", "rows", len(fs), "took", time.Since(start))
	return nil
}

// retry runs insert until it succeeds or ctx ends, with exponential backoff
// and jitter between attempts (capped at MaxRetryInterval): while ClickHouse
// is away the loop holds its batch and fetches nothing more.
func (s *Sink) retry(ctx context.Context, what string, rows int, insert func() error) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = s.cfg.MaxRetryInterval
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		return struct{}{}, insert()
	},
		backoff.WithBackOff(bo),
		backoff.WithMaxElapsedTime(0), // wait for ClickHouse as long as it takes
		backoff.WithNotify(func(err error, next time.Duration) {
			s.stats.retries.Add(1)
			metrics.SinkRetries.Inc()
			s.log.Warn("clickhouse insert failed; retrying", "table", what, "rows", rows, "retry_in", next, "err", err)
		}),
	)
	if err != nil {
		return fmt.Errorf("chsink: insert %d %s: %w", rows, what, err)
	}
	return nil
}

// handleEvents stores one batch of event metadata in the events table;
// undecodable messages are dead-lettered.
func (s *Sink) handleEvents(ctx context.Context, batch []kafka.Message) error {
	defer s.hold(len(batch))()
	evs := make([]chstore.EventMeta, 0, len(batch))
	var dead []kafka.Message
	for _, m := range batch {
		e, err := decodeEventMeta(m.Value)
		if err != nil {
			dead = append(dead, kafkaio.DeadLetter(m, "bad_event_meta", err.Error()))
			metrics.DeadLetters.WithLabelValues("chsink", "bad_event_meta").Inc()
			continue
		}
		evs = append(evs, e)
	}
	if len(evs) > 0 {
		start := time.Now()
		if err := s.retry(ctx, "events", len(evs), func() error { return s.store.InsertEvents(ctx, evs) }); err != nil {
			return err
		}
		s.stats.eventsInserted.Add(uint64(len(evs)))
		s.stats.eventBatches.Add(1)
		s.log.Debug("events stored", "rows", len(evs), "took", time.Since(start))
	}
	if len(dead) > 0 {
		if err := s.dead.Write(ctx, dead...); err != nil {
			return fmt.Errorf("chsink: write dead letters: %w", err)
		}
		s.stats.deadLettered.Add(uint64(len(dead)))
	}
	return nil
}

// MaxEventMetaBytes bounds one encoded event summary.
const MaxEventMetaBytes = 1 << 16

// decodeEventMeta decodes an event.Summary from dlp.eventmeta.
func decodeEventMeta(b []byte) (event.Summary, error) {
	var m event.Summary
	if len(b) > MaxEventMetaBytes {
		return m, fmt.Errorf("event metadata of %d bytes exceeds %d", len(b), MaxEventMetaBytes)
	}
	// The summaries are the detector's own output: goccy/go-json decodes
	// them ~3x faster than encoding/json (FuzzDecodeEventMeta checks that
	// it accepts nothing encoding/json rejects and decodes the same); what
	// it refuses is decoded again by encoding/json for the error.
	if fastUnmarshal(b, &m) != nil {
		m = event.Summary{}
		if err := json.Unmarshal(b, &m); err != nil {
			return m, fmt.Errorf("decode event metadata: %w", err)
		}
	}
	if m.EventID == "" || m.Kind == "" || m.ActorUID == "" || m.Time.IsZero() {
		return m, errors.New("event metadata lacks event_id, kind, actor_uid or time")
	}
	m.Time = m.Time.UTC()
	return m, nil
}

// MaxFindingBytes bounds one encoded finding.
const MaxFindingBytes = 1 << 20

func decodeFinding(b []byte) (finding.Finding, error) {
	var f finding.Finding
	if len(b) > MaxFindingBytes {
		return f, fmt.Errorf("finding of %d bytes exceeds %d", len(b), MaxFindingBytes)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("decode finding: %w", err)
	}
	if f.FindingID == "" || f.RuleID == "" || f.ActorUID == "" {
		return f, errors.New("finding lacks finding_id, rule_id or actor_uid")
	}
	return f, nil
}

// fastUnmarshal decodes with goccy/go-json; a panic inside it counts as a
// failure.
func fastUnmarshal(b []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("fast decoder panicked")
		}
	}()
	return gojson.Unmarshal(b, v)
}
