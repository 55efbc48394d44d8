// Package pipeline wires the stages (normalizer, detector, chsink) into one
// process for the demo, the end-to-end tests and single-node deployments.
// Each stage is also its own service (services/*); this package only
// composes them with one errgroup lifecycle.
package pipeline

import (
	"context"
	"fmt"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/leakline/leakline/pkg/chsink"
	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/detector"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/inspect"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/normalizer"
)

// Stage names.
const (
	StageNormalizer = "normalizer"
	StageDetector   = "detector"
	StageChsink     = "chsink"
)

// Config configures an in-process pipeline.
type Config struct {
	Kafka      kafkaio.Config
	Topics     kafkaio.Topics
	Partitions int
	Store      chstore.Config
	Limits     event.Limits
	Engine     detect.Config
	Inspect    inspect.Config
	HMACKey    []byte
	// EDMTopic: load the exact-data-match index from this topic at start.
	EDMTopic string
	// RulesPublicKeyFile: the detector follows the rules topic and
	// hot-swaps packs signed with this key (detector.RulesConfig).
	RulesPublicKeyFile string
	Sink               chsink.Config
	// Stages to run; empty means all.
	Stages []string
}

// Pipeline is a running set of stages.
type Pipeline struct {
	Normalizer *normalizer.Normalizer
	Detector   *detector.Detector
	Sink       *chsink.Sink
	store      *chstore.Store
	cfg        Config
}

func (c Config) runs(stage string) bool {
	if len(c.Stages) == 0 {
		return true
	}
	for _, s := range c.Stages {
		if s == stage {
			return true
		}
	}
	return false
}

// Prepare creates the topics and migrates ClickHouse (both idempotent).
func Prepare(ctx context.Context, cfg Config) error {
	parts := cfg.Partitions
	if parts <= 0 {
		parts = 6
	}
	if err := kafkaio.EnsureTopics(ctx, cfg.Kafka, parts, cfg.Topics.All()...); err != nil {
		return fmt.Errorf("pipeline: topics: %w", err)
	}
	st, err := chstore.Open(ctx, cfg.Store)
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	return nil
}

// New builds the configured stages.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Pipeline, error) {
	p := &Pipeline{cfg: cfg}
	var err error
	if cfg.runs(StageNormalizer) {
		if p.Normalizer, err = normalizer.New(normalizer.Config{Kafka: cfg.Kafka, Topics: cfg.Topics, Limits: cfg.Limits}, log.With("stage", StageNormalizer)); err != nil {
			return nil, err
		}
	}
	if cfg.runs(StageDetector) {
		if p.Detector, err = detector.New(detector.Config{Kafka: cfg.Kafka, Topics: cfg.Topics, Engine: cfg.Engine, Inspect: cfg.Inspect, HMACKey: cfg.HMACKey, EDMTopic: cfg.EDMTopic,
			Rules: detector.RulesConfig{PublicKeyFile: cfg.RulesPublicKeyFile}}, log.With("stage", StageDetector)); err != nil {
			return nil, err
		}
	}
	if cfg.runs(StageChsink) {
		if p.store, err = chstore.Open(ctx, cfg.Store); err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
		sc := cfg.Sink
		sc.Kafka, sc.Topics = cfg.Kafka, cfg.Topics
		if p.Sink, err = chsink.New(sc, p.store, log.With("stage", StageChsink)); err != nil {
			p.store.Close()
			return nil, err
		}
	}
	return p, nil
}

// Ready reports whether the pipeline can work: the broker answers with the
// topics of the stages that run, no Kafka client of the process is waiting
// out a broker failure (kafkaio.Health), and ClickHouse answers if the sink
// runs.
func (p *Pipeline) Ready(ctx context.Context) error {
	var topics []string
	if p.Normalizer != nil {
		topics = append(topics, p.cfg.Topics.CRMAccess, p.cfg.Topics.Outbound, p.cfg.Topics.Events)
	}
	if p.Detector != nil {
		topics = append(topics, p.cfg.Topics.Events, p.cfg.Topics.Findings)
	}
	if p.Sink != nil {
		topics = append(topics, p.cfg.Topics.Findings)
	}
	if (p.Detector != nil || p.Sink != nil) && p.cfg.Topics.EventMeta != "" {
		topics = append(topics, p.cfg.Topics.EventMeta)
	}
	if err := kafkaio.Ping(ctx, p.cfg.Kafka, topics...); err != nil {
		return err // with what to check when the broker refused the login
	}
	if err := kafkaio.Health(); err != nil {
		return err
	}
	if p.store != nil {
		if err := p.store.Conn().Ping(ctx); err != nil {
			return fmt.Errorf("clickhouse: %w", err)
		}
	}
	return nil
}

// Run runs every built stage until ctx ends or one fails; then it stops the
// others and returns the first error.
func (p *Pipeline) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if p.Normalizer != nil {
		g.Go(func() error { return p.Normalizer.Run(ctx) })
	}
	if p.Detector != nil {
		g.Go(func() error { return p.Detector.Run(ctx) })
	}
	if p.Sink != nil {
		g.Go(func() error { return p.Sink.Run(ctx) })
	}
	err := g.Wait()
	if p.store != nil {
		p.store.Close()
	}
	return err
}
