// Package backtest replays recorded normalized events through a candidate
// rule pack and compares its findings with the production findings stored
// in ClickHouse over the same span: per rule, which findings are new, gone,
// unchanged or changed. It is `leakline rules backtest`.
//
// A backtest is read-only. It reads the partitions of the events topic
// directly (kafkaio.ReplayRange through detector.Replay: no consumer group,
// no commit, no topic auto-creation) and reads findings FINAL from
// ClickHouse; it writes nothing anywhere and deploys nothing.
//
// # Span, warm-up and tail
//
// The span is [From, To). A finding belongs to it when its window ends at or
// after From and starts before To — the same test on both sides. Windows
// need history, so each partition's engine is warmed up from From − horizon
// (detect.Config.Horizon of the candidate pack: the longest epoch, window,
// cool-down and baseline history, plus the allowed lateness — exactly what
// the live detector re-reads to rebuild state on assignment); the findings
// the warm-up produces that end before From are not reported. Incidents
// opened before To keep growing after it, and production keeps their last
// revision, so each partition is read on past To until the first message
// with a timestamp after To + horizon (or the partition's end when the
// backtest started): an incident never outlives its epoch, so by then every
// incident of the span has its final value on both sides. Events are
// processed in offset order with one engine per partition, as the live
// detector does, so with the production pack the backtest reproduces the
// production findings exactly (same ids, rules and values).
package backtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/detector"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/inspect"
	"github.com/leakline/leakline/pkg/kafkaio"
)

// Config configures a backtest.
type Config struct {
	Kafka kafkaio.Config
	// Topic is the normalized events topic (dlp.events).
	Topic string
	// Engine is the detector's engine configuration with the candidate
	// pack as Engine.Pack.
	Engine detect.Config
	// Scanner inspects outbound content (built like the detector's, from
	// its inspect configuration and HMAC key).
	Scanner *inspect.Scanner
	// From and To bound the span: [From, To).
	From, To time.Time
	// Parallel bounds how many partitions are replayed at once (default 2).
	Parallel int
	// Now is the processing time given to the engines (default time.Now);
	// it only sets detected_at.
	Now func() time.Time
}

func (c Config) validate() error {
	var errs []error
	if c.Topic == "" {
		errs = append(errs, errors.New("no events topic"))
	}
	if c.Scanner == nil {
		errs = append(errs, errors.New("no content scanner"))
	}
	if c.From.IsZero() || c.To.IsZero() || !c.From.Before(c.To) {
		errs = append(errs, fmt.Errorf("span [%s, %s) is empty", c.From.Format(time.RFC3339), c.To.Format(time.RFC3339)))
	}
	if err := c.Engine.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("backtest: %w", err)
	}
	return nil
}

// Replayed is what the candidate pack found.
type Replayed struct {
	// WarmFrom is where the replay started (From − horizon); StopAfter the
	// message time after which each partition stopped (To + horizon).
	WarmFrom, StopAfter time.Time
	Partitions          int
	// Events is how many events the engines processed (warm-up and tail
	// included).
	Events int
	// Findings are the candidate's findings of the span, the last revision
	// of each, ordered by window start then id.
	Findings []finding.Finding
}

// InSpan tells whether f belongs to the span [from, to): its window ends at
// or after from and starts before to.
func InSpan(f *finding.Finding, from, to time.Time) bool {
	return !f.WindowEnd.Before(from) && f.WindowStart.Before(to)
}

// errStop ends a partition's replay once it is past StopAfter.
var errStop = errors.New("backtest: past the tail")

// Replay runs the candidate pack over every partition of the events topic,
// one engine per partition, and returns its findings of the span.
func Replay(ctx context.Context, cfg Config) (*Replayed, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	par := cfg.Parallel
	if par <= 0 {
		par = 2
	}
	horizon := cfg.Engine.Horizon()
	res := &Replayed{WarmFrom: cfg.From.Add(-horizon), StopAfter: cfg.To.Add(horizon)}
	parts, err := kafkaio.Partitions(ctx, cfg.Kafka, cfg.Topic)
	if err != nil {
		return nil, err
	}
	res.Partitions = len(parts)

	var mu sync.Mutex
	latest := map[string]finding.Finding{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(par)
	for _, p := range parts {
		g.Go(func() error {
			end, err := kafkaio.EndOffset(gctx, cfg.Kafka, cfg.Topic, p)
			if err != nil {
				return fmt.Errorf("backtest: %w", err)
			}
			eng, err := detect.New(cfg.Engine, cfg.Scanner)
			if err != nil {
				return fmt.Errorf("backtest: %w", err)
			}
			found := map[string]finding.Finding{}
			n, err := detector.Replay(gctx, cfg.Kafka, cfg.Topic, p, res.WarmFrom, end, eng, now().UTC(),
				func(m kafka.Message, fs []finding.Finding) error {
					for _, f := range fs {
						if old, ok := found[f.FindingID]; !ok || f.Revision >= old.Revision {
							found[f.FindingID] = f
						}
					}
					if m.Time.After(res.StopAfter) {
						return errStop
					}
					return nil
				})
			if err != nil && !errors.Is(err, errStop) {
				return fmt.Errorf("backtest: partition %d: %w", p, err)
			}
			mu.Lock()
			defer mu.Unlock()
			res.Events += n
			for id, f := range found {
				if InSpan(&f, cfg.From, cfg.To) {
					latest[id] = f
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, f := range latest {
		res.Findings = append(res.Findings, f)
	}
	sortFindings(res.Findings)
	return res, nil
}

// Production reads the production findings of the span [from, to) from
// ClickHouse (findings FINAL: the last revision of each). lookback bounds
// how long before from a finding of the span may start: an incident never
// spans two epochs, so the horizon is enough.
func Production(ctx context.Context, st *chstore.Store, from, to time.Time, lookback time.Duration) ([]finding.Finding, error) {
	fs, err := st.Findings(ctx, chstore.FindingFilter{From: from.Add(-lookback), To: to})
	if err != nil {
		return nil, fmt.Errorf("backtest: production findings: %w", err)
	}
	out := fs[:0]
	for i := range fs {
		if InSpan(&fs[i], from, to) {
			out = append(out, fs[i])
		}
	}
	sortFindings(out)
	return out, nil
}

func sortFindings(fs []finding.Finding) {
	slices.SortFunc(fs, func(a, b finding.Finding) int {
		if c := a.WindowStart.Compare(b.WindowStart); c != 0 {
			return c
		}
		if a.FindingID < b.FindingID {
			return -1
		}
		if a.FindingID > b.FindingID {
			return 1
		}
		return 0
	})
}
