// Package detector owns the detection stage: it consumes normalized events
// from dlp.events, runs them through the detection engine and publishes the
// findings to dlp.findings keyed by finding id.
package detector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/inspect"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/metrics"
	"github.com/leakline/leakline/pkg/privacy"
)

// Config configures a Detector.
type Config struct {
	Kafka   kafkaio.Config
	Topics  kafkaio.Topics
	GroupID string
	Engine  detect.Config
	Inspect inspect.Config
	// HMACKey keys the tokens of matched values. It comes from a secret,
	// never from a config file.
	HMACKey []byte
}

// Detector runs the stage.
type Detector struct {
	cfg    Config
	log    *slog.Logger
	engine *detect.Engine
	mu     sync.Mutex // guards engine stats reads against the Run goroutine
	out    *kafkaio.Writer
	dead   *kafkaio.Writer
	now    func() time.Time
}

// New builds a Detector; Run starts it.
func New(cfg Config, log *slog.Logger) (*Detector, error) {
	if cfg.GroupID == "" {
		cfg.GroupID = "leakline-detector"
	}
	if err := cfg.Kafka.Validate(); err != nil {
		return nil, fmt.Errorf("detector: %w", err)
	}
	tok, err := privacy.NewTokenizer(cfg.HMACKey)
	if err != nil {
		return nil, fmt.Errorf("detector: %w", err)
	}
	sc, err := inspect.New(cfg.Inspect, tok)
	if err != nil {
		return nil, fmt.Errorf("detector: %w", err)
	}
	eng, err := detect.New(cfg.Engine, sc)
	if err != nil {
		return nil, err
	}
	return &Detector{cfg: cfg, log: log, engine: eng, now: time.Now}, nil
}

// Stats returns the engine's counters.
func (d *Detector) Stats() detect.Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.engine.Stats()
}

// Run consumes dlp.events until ctx ends. A batch's offsets are committed
// only after its findings were acknowledged by the broker.
func (d *Detector) Run(ctx context.Context) error {
	cons, err := kafkaio.NewConsumer(kafkaio.ConsumerConfig{
		Config:  d.cfg.Kafka,
		GroupID: d.cfg.GroupID,
		Topics:  []string{d.cfg.Topics.Events},
	})
	if err != nil {
		return fmt.Errorf("detector: %w", err)
	}
	d.out = kafkaio.NewWriter(d.cfg.Kafka, d.cfg.Topics.Findings)
	d.dead = kafkaio.NewWriter(d.cfg.Kafka, d.cfg.Topics.DeadLetter)
	defer func() {
		_ = cons.Close()
		_ = d.out.Close()
		_ = d.dead.Close()
	}()
	d.log.Info("detector started", "topic", d.cfg.Topics.Events, "group", d.cfg.GroupID, "pack", d.cfg.Engine.PackVersion)
	err = cons.Run(ctx, d.handle)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func (d *Detector) handle(ctx context.Context, batch []kafka.Message) error {
	var out, dead []kafka.Message
	now := d.now().UTC()
	d.mu.Lock()
	before := d.engine.Stats()
	for _, m := range batch {
		ev, err := event.UnmarshalEvent(m.Value)
		if err != nil {
			dead = append(dead, kafkaio.DeadLetter(m, "bad_normalized_event", err.Error()))
			metrics.DeadLetters.WithLabelValues("detector", "bad_normalized_event").Inc()
			continue
		}
		for _, f := range d.engine.Process(m.Partition, ev, now) {
			metrics.Findings.WithLabelValues(f.RuleID, f.Severity).Inc()
			b, err := json.Marshal(f)
			if err != nil {
				d.mu.Unlock()
				return fmt.Errorf("detector: marshal finding: %w", err)
			}
			out = append(out, kafka.Message{Key: []byte(f.FindingID), Value: b})
		}
	}
	after := d.engine.Stats()
	d.mu.Unlock()
	metrics.LateEvents.Add(float64(after.LateEvents - before.LateEvents))
	metrics.FutureEvents.Add(float64(after.FutureDated - before.FutureDated))
	if len(out) > 0 {
		if err := d.out.Write(ctx, out...); err != nil {
			return fmt.Errorf("detector: write findings: %w", err)
		}
		d.log.Info("findings emitted", "count", len(out))
	}
	if len(dead) > 0 {
		if err := d.dead.Write(ctx, dead...); err != nil {
			return fmt.Errorf("detector: write dead letters: %w", err)
		}
	}
	return nil
}
