// Package chsink owns the storage stage: findings from dlp.findings are
// written to ClickHouse in batches flushed by size and by time. Offsets are
// committed only after ClickHouse acknowledged the insert; while ClickHouse
// is away the sink retries the same batch with backoff and fetches nothing
// more, so memory stays bounded and nothing is lost. Inserts are idempotent
// (ReplacingMergeTree on finding_id, read with FINAL), so a redelivered batch
// rewrites the same rows.
package chsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/metrics"
)

// Config configures a Sink.
type Config struct {
	Kafka   kafkaio.Config
	Topics  kafkaio.Topics
	GroupID string
	// BatchSize and FlushInterval bound a batch by rows and by time.
	BatchSize     int
	FlushInterval time.Duration
	// MaxRetryInterval caps the backoff between insert attempts.
	MaxRetryInterval time.Duration
}

// Stats counts what the sink did.
type Stats struct {
	Inserted, Batches, Retries, DeadLettered uint64
}

// Sink runs the stage.
type Sink struct {
	cfg   Config
	log   *slog.Logger
	store *chstore.Store
	dead  *kafkaio.Writer
	stats struct{ inserted, batches, retries, deadLettered atomic.Uint64 }
}

// New builds a Sink writing to store; Run starts it.
func New(cfg Config, store *chstore.Store, log *slog.Logger) (*Sink, error) {
	if cfg.GroupID == "" {
		cfg.GroupID = "leakline-chsink"
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
	}
}

// Run consumes dlp.findings until ctx ends.
func (s *Sink) Run(ctx context.Context) error {
	cons, err := kafkaio.NewConsumer(kafkaio.ConsumerConfig{
		Config:   s.cfg.Kafka,
		GroupID:  s.cfg.GroupID,
		Topics:   []string{s.cfg.Topics.Findings},
		MaxBatch: s.cfg.BatchSize,
		MaxWait:  s.cfg.FlushInterval,
	})
	if err != nil {
		return fmt.Errorf("chsink: %w", err)
	}
	s.dead = kafkaio.NewWriter(s.cfg.Kafka, s.cfg.Topics.DeadLetter)
	defer func() {
		_ = cons.Close()
		_ = s.dead.Close()
	}()
	s.log.Info("chsink started", "topic", s.cfg.Topics.Findings, "group", s.cfg.GroupID, "batch", s.cfg.BatchSize, "flush", s.cfg.FlushInterval)
	err = cons.Run(ctx, s.handle)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *Sink) handle(ctx context.Context, batch []kafka.Message) error {
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
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = s.cfg.MaxRetryInterval
	start := time.Now()
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		return struct{}{}, s.store.InsertFindings(ctx, fs)
	},
		backoff.WithBackOff(bo),
		backoff.WithMaxElapsedTime(0), // wait for ClickHouse as long as it takes
		backoff.WithNotify(func(err error, next time.Duration) {
			s.stats.retries.Add(1)
			metrics.SinkRetries.Inc()
			s.log.Warn("clickhouse insert failed; retrying", "rows", len(fs), "retry_in", next, "err", err)
		}),
	)
	if err != nil {
		return fmt.Errorf("chsink: insert %d findings: %w", len(fs), err)
	}
	s.stats.inserted.Add(uint64(len(fs)))
	s.stats.batches.Add(1)
	metrics.SinkBatchRows.Observe(float64(len(fs)))
	metrics.SinkInsertSeconds.Observe(time.Since(start).Seconds())
	s.log.Debug("findings stored", "rows", len(fs), "took", time.Since(start))
	return nil
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
