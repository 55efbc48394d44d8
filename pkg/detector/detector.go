// Package detector owns the detection stage: it consumes normalized events
// from dlp.events, runs each assigned partition through its own detection
// engine and publishes the findings to dlp.findings keyed by finding id, and
// a metadata summary of every event (no content) to dlp.eventmeta keyed by
// actor.
//
// Window state survives restarts and rebalances: when a partition is
// assigned, its engine is rebuilt by re-reading the partition from the
// timestamp of the last committed message minus the engine's horizon up to
// the committed offset, with emission suppressed (those findings were
// published before the commit). Processing depends on event time only, so
// the rebuilt state equals the state of an uninterrupted run, and findings
// are idempotent (deterministic ids), so a redelivered batch republishes the
// same findings.
package detector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/edm"
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
	// Consumer tunes the group consumer (timeouts, batch size); Kafka,
	// GroupID and Topics are set from the fields above.
	Consumer kafkaio.ConsumerConfig
	// Rules configures the hot reload of deployed rule packs (rules.go).
	Rules RulesConfig
	// EDMTopic, when set and Engine.EDM is not, is the compacted topic the
	// newest exact-data-match index is loaded from at start (published by
	// `leakline edm publish`, keyed with the same HMAC key).
	EDMTopic string
}

// Detector runs the stage.
type Detector struct {
	cfg     Config
	log     *slog.Logger
	scanner *inspect.Scanner
	out     *kafkaio.Writer
	meta    *kafkaio.Writer // dlp.eventmeta; nil when Topics.EventMeta is empty
	dead    *kafkaio.Writer
	now     func() time.Time

	mu      sync.Mutex
	engines map[int]*detect.Engine // by partition, while assigned
	retired detect.Stats           // counters of engines of revoked partitions
	hot     hotPack                // the deployed rule pack, if any (rules.go)
	gc      *kafkaio.GroupConsumer
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
	if _, err := detect.New(cfg.Engine, sc); err != nil { // validate once, up front
		return nil, err
	}
	return &Detector{cfg: cfg, log: log, scanner: sc, now: time.Now, engines: make(map[int]*detect.Engine)}, nil
}

// Stats returns the counters of every engine this detector ran.
func (d *Detector) Stats() detect.Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.retired
	for _, e := range d.engines {
		s = s.Add(e.Stats())
	}
	return s
}

// Assigned lists the partitions this detector holds now.
func (d *Detector) Assigned() []kafkaio.Assignment {
	d.mu.Lock()
	gc := d.gc
	d.mu.Unlock()
	if gc == nil {
		return nil
	}
	return gc.Assigned()
}

// Run consumes dlp.events until ctx ends. A batch's offsets are committed
// only after its findings and event metadata were acknowledged by the broker.
func (d *Detector) Run(ctx context.Context) error {
	cc := d.cfg.Consumer
	cc.Config, cc.GroupID, cc.Topics = d.cfg.Kafka, d.cfg.GroupID, []string{d.cfg.Topics.Events}
	gc, err := kafkaio.NewGroupConsumer(cc)
	if err != nil {
		return fmt.Errorf("detector: %w", err)
	}
	d.mu.Lock()
	d.gc = gc
	d.mu.Unlock()
	d.out = kafkaio.NewWriter(d.cfg.Kafka, d.cfg.Topics.Findings)
	d.dead = kafkaio.NewWriter(d.cfg.Kafka, d.cfg.Topics.DeadLetter)
	if d.cfg.Topics.EventMeta != "" {
		d.meta = kafkaio.NewWriter(d.cfg.Kafka, d.cfg.Topics.EventMeta)
	}
	defer func() {
		_ = gc.Close()
		_ = d.out.Close()
		if d.meta != nil {
			_ = d.meta.Close()
		}
		_ = d.dead.Close()
	}()
	if d.cfg.EDMTopic != "" && d.cfg.Engine.EDM == nil {
		idx, err := edm.LoadFromKafka(ctx, d.cfg.Kafka, d.cfg.EDMTopic, d.cfg.HMACKey)
		if err != nil {
			return fmt.Errorf("detector: edm index from %s: %w", d.cfg.EDMTopic, err)
		}
		d.cfg.Engine.EDM = idx
		d.log.Info("edm index loaded", "topic", d.cfg.EDMTopic, "customers", idx.Rows(), "identifiers", idx.Len())
	}
	// Rule pack hot reload (rules.go): follows the rules topic, swapping
	// packs into the engines between batches.
	stopRules, err := d.startRules(ctx)
	if err != nil {
		return err
	}
	defer stopRules()
	d.log.Info("detector started", "topic", d.cfg.Topics.Events, "group", d.cfg.GroupID, "horizon", d.cfg.Engine.Horizon())
	err = gc.Run(ctx, d.assign)
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled) || errors.Is(err, kafkaio.ErrClosed)) {
		return nil
	}
	return err
}

// assign builds the engine of a newly assigned partition, rebuilding its
// state from the partition itself.
func (d *Detector) assign(ctx context.Context, a kafkaio.Assignment) (kafkaio.PartitionWorker, error) {
	cfg := d.engineConfig() // the running rule pack (rules.go)
	eng, err := detect.New(cfg, d.scanner)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	replayed := 0
	if a.Committed > 0 {
		last, err := kafkaio.MessageAt(ctx, d.cfg.Kafka, a.Topic, a.Partition, a.Committed-1)
		switch {
		case errors.Is(err, kafkaio.ErrNoMessage):
			// Deleted by retention: nothing before the log start to rebuild from.
		case err != nil:
			return nil, fmt.Errorf("detector: partition %d: last committed message: %w", a.Partition, err)
		default:
			// Findings of the replayed events were published before the commit.
			replayed, err = Replay(ctx, d.cfg.Kafka, a.Topic, a.Partition, last.Time.Add(-cfg.Horizon()), a.Committed, eng, d.now(), nil)
			if err != nil {
				return nil, fmt.Errorf("detector: partition %d: rebuild state: %w", a.Partition, err)
			}
		}
	}
	d.mu.Lock()
	d.adoptPackLocked(eng) // a pack swapped in during the rebuild (rules.go)
	d.engines[a.Partition] = eng
	d.mu.Unlock()
	d.log.Info("partition assigned", "partition", a.Partition, "committed", a.Committed, "replayed", replayed, "took", time.Since(start))
	return &worker{d: d, partition: a.Partition, engine: eng}, nil
}

// worker processes one assigned partition.
type worker struct {
	d         *Detector
	partition int
	engine    *detect.Engine
}

func (w *worker) Close() error {
	d := w.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.engines[w.partition] == w.engine {
		delete(d.engines, w.partition)
		d.retired = d.retired.Add(w.engine.Stats())
	}
	return nil
}

func (w *worker) Handle(ctx context.Context, batch []kafka.Message) error {
	d := w.d
	var out, metas, dead []kafka.Message
	now := d.now().UTC()
	d.mu.Lock()
	before := w.engine.Stats()
	for _, m := range batch {
		ev, err := event.UnmarshalEvent(m.Value)
		if err != nil {
			dead = append(dead, kafkaio.DeadLetter(m, "bad_normalized_event", err.Error()))
			metrics.DeadLetters.WithLabelValues("detector", "bad_normalized_event").Inc()
			continue
		}
		fs := w.engine.Process(ev, now)
		if em, ok := w.engine.EventMeta(); ok && d.meta != nil {
			b, err := gojson.Marshal(em) // same bytes as encoding/json, ~3x cheaper
			if err != nil {
				d.mu.Unlock()
				return fmt.Errorf("detector: marshal event metadata: %w", err)
			}
			metas = append(metas, kafka.Message{Key: []byte(em.ActorUID), Value: b, Time: em.Time})
		}
		for _, f := range fs {
			metrics.Findings.WithLabelValues(f.RuleID, f.Severity).Inc()
			b, err := gojson.Marshal(f)
			if err != nil {
				d.mu.Unlock()
				return fmt.Errorf("detector: marshal finding: %w", err)
			}
			out = append(out, kafka.Message{Key: []byte(f.FindingID), Value: b})
		}
	}
	after := w.engine.Stats()
	d.mu.Unlock()
	metrics.LateEvents.Add(float64(after.LateEvents - before.LateEvents))
	metrics.FutureEvents.Add(float64(after.FutureDated - before.FutureDated))
	if len(out) > 0 {
		if err := d.out.Write(ctx, out...); err != nil {
			return fmt.Errorf("detector: write findings: %w", err)
		}
		d.log.Debug("findings emitted", "partition", w.partition, "count", len(out))
	}
	if len(metas) > 0 { // committed only after findings and metadata were acknowledged
		if err := d.meta.Write(ctx, metas...); err != nil {
			return fmt.Errorf("detector: write event metadata: %w", err)
		}
	}
	if len(dead) > 0 {
		if err := d.dead.Write(ctx, dead...); err != nil {
			return fmt.Errorf("detector: write dead letters: %w", err)
		}
	}
	return nil
}
