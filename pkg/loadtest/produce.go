package loadtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/leakline/leakline/pkg/demo"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/scenario"
)

// Rate-mode producer shape: the generator wakes every produceTick, builds
// the events that are due since the last wake-up and hands them to
// produceWriters concurrent writers (kafkaio.Writer batches concurrent
// writes) through a queue of produceQueue batches per topic.
const (
	produceTick    = 5 * time.Millisecond
	produceWriters = 4
	produceQueue   = 16
	// produceMaxBatch bounds the events built per wake-up: a generator that
	// fell behind catches up in batches of this size (without waiting for
	// the ticker) rather than in one huge write.
	produceMaxBatch = 5000
)

// progressCounters are what producers report while they run.
type progressCounters struct {
	produced atomic.Int64 // events acknowledged by the broker
	// behindNS is the largest delay of the open-loop generator behind its
	// schedule, in nanoseconds.
	behindNS atomic.Int64
}

func (c *progressCounters) behind(d time.Duration) {
	for {
		old := c.behindNS.Load()
		if int64(d) <= old || c.behindNS.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

type produceBatch struct {
	w    *kafkaio.Writer
	msgs []kafka.Message
}

// produceRate runs the open-loop producer of plan from t0 until every
// event is acknowledged or ctx ends. Baseline event seq is produced at
// t0 + plan.scheduled(seq) and is what plan.baseline(seq) says: a pool
// event, its event time in its cycle, and the actor of its cohort; each
// scenario event goes just before the baseline event at its pos.
func produceRate(ctx context.Context, kc kafkaio.Config, t kafkaio.Topics, plan *ratePlan, t0 time.Time, ctr *progressCounters) error {
	writers := map[event.Kind]*kafkaio.Writer{
		event.KindCRMAccess: kafkaio.NewWriter(kc, t.CRMAccess),
		event.KindOutbound:  kafkaio.NewWriter(kc, t.Outbound),
	}
	defer func() {
		for _, w := range writers {
			_ = w.Close()
		}
	}()
	queue := make(chan produceBatch, produceQueue)
	g, gctx := errgroup.WithContext(ctx)
	for range produceWriters {
		g.Go(func() error {
			for b := range queue {
				if err := b.w.Write(gctx, b.msgs...); err != nil {
					return fmt.Errorf("loadtest: produce: %w", err)
				}
				ctr.produced.Add(int64(len(b.msgs)))
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(queue)
		return generate(gctx, plan, t0, writers, queue, ctr)
	})
	return g.Wait()
}

func generate(ctx context.Context, plan *ratePlan, t0 time.Time, writers map[event.Kind]*kafkaio.Writer, queue chan<- produceBatch, ctr *progressCounters) error {
	tick := time.NewTicker(produceTick)
	defer tick.Stop()
	total := plan.total()
	var (
		seq    int64
		inj    int
		suffix []byte
		id     []byte
	)
	for {
		el := time.Since(t0)
		due := min(total, int64(plan.rate*el.Seconds())+1)
		if seq < due {
			ctr.behind(el - plan.scheduled(seq))
		}
		behind := due-seq > produceMaxBatch
		due = min(due, seq+produceMaxBatch)
		batches := map[event.Kind][]kafka.Message{}
		arena := make([]byte, 0, 1024*int(max(1, min(due-seq, 4096))))
		emit := func(in *injected) {
			v := in.tpl.render(nil, []byte(in.tpl.id), in.at, nil)
			batches[in.tpl.kind] = append(batches[in.tpl.kind], kafka.Message{Key: []byte(in.tpl.id), Value: v, Time: in.at})
		}
		for ; seq < due; seq++ {
			for ; inj < len(plan.inject) && plan.inject[inj].pos <= seq; inj++ {
				emit(&plan.inject[inj])
			}
			tpl, at, cohort := plan.baseline(seq)
			id = appendRateID(id[:0], seq)
			suffix = suffix[:0]
			if cohort > 0 {
				suffix = appendCohortSuffix(suffix, cohort)
			}
			start := len(arena)
			arena = append(arena, id...)
			key := arena[start:len(arena):len(arena)]
			start = len(arena)
			arena = tpl.render(arena, id, at, suffix)
			batches[tpl.kind] = append(batches[tpl.kind], kafka.Message{Key: key, Value: arena[start:len(arena):len(arena)], Time: at})
		}
		if seq >= total {
			// Scenario events placed after the last baseline event.
			for ; inj < len(plan.inject); inj++ {
				emit(&plan.inject[inj])
			}
		}
		for kind, msgs := range batches {
			select {
			case queue <- produceBatch{w: writers[kind], msgs: msgs}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if seq >= total && inj == len(plan.inject) {
			return nil
		}
		if behind {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// replayStep is one time-compressed Replay slice: events [previous end,
// end) of the org were produced from at.
type replayStep struct {
	end int
	at  time.Time
}

// produceCompressed replays the org's days slice by slice (demo.Replay),
// each slice waiting for the normalizer unless unpaced, and records when
// each slice was produced.
func produceCompressed(ctx context.Context, kc kafkaio.Config, t kafkaio.Topics, evs []scenario.Raw, step time.Duration, settled func(context.Context, int) error, unpaced bool, ctr *progressCounters) ([]replayStep, error) {
	var (
		mu    sync.Mutex
		steps []replayStep
	)
	stepStart := time.Now()
	settle := func(ctx context.Context, written int) error {
		mu.Lock()
		steps = append(steps, replayStep{end: written, at: stepStart})
		mu.Unlock()
		ctr.produced.Store(int64(written))
		var err error
		if !unpaced {
			err = settled(ctx, written)
		}
		stepStart = time.Now()
		return err
	}
	err := demo.Replay(ctx, kc, t, evs, step, settle)
	return steps, err
}

// production is what the scorer needs to know about what was produced:
// the scenarios with their times as produced, when each scenario's first
// exfiltration event was produced, and when any event was.
type production struct {
	scenarios []scenario.Scenario
	exfil     map[string]time.Time
	at        func(id string) (time.Time, bool)
}

// production of a rate-mode run started at t0: produce times follow from
// the sequence numbers of baseline events and the positions of scenario
// events; the scenarios' times are already the run's event times.
func (p *ratePlan) production(t0 time.Time) production {
	out := production{scenarios: p.scenarios, exfil: map[string]time.Time{}}
	producedAt := func(pos int64) time.Time { return t0.Add(p.scheduled(min(pos, p.total()))) }
	injectedAt := make(map[string]time.Time, len(p.inject))
	for _, in := range p.inject {
		injectedAt[in.tpl.id] = producedAt(in.pos)
	}
	for i, s := range out.scenarios {
		out.exfil[s.Name] = producedAt(p.exfilPos[i])
	}
	out.at = func(id string) (time.Time, bool) {
		if seq, ok := parseRateID(id); ok {
			return t0.Add(p.scheduled(seq)), true
		}
		t, ok := injectedAt[id]
		return t, ok
	}
	return out
}

// compressedProduction of a time-compressed replay: each event was
// produced at the start of its slice.
func compressedProduction(org *scenario.Org, steps []replayStep) production {
	at := make(map[string]time.Time, len(org.Events))
	evTime := make(map[string]time.Time, len(org.Events))
	prev := 0
	for _, s := range steps {
		for i := prev; i < s.end; i++ {
			id := string(org.Events[i].Key)
			at[id], evTime[id] = s.at, org.Events[i].Time
		}
		prev = s.end
	}
	out := production{scenarios: org.Scenarios, exfil: map[string]time.Time{}}
	// A scenario's first exfiltration event was produced with the first
	// slice holding one of its events at or after Exfil.
	for _, s := range org.Scenarios {
		for _, id := range s.EventIDs {
			p, ok := at[id]
			if !ok || evTime[id].Before(s.Exfil) {
				continue
			}
			if t, seen := out.exfil[s.Name]; !seen || p.Before(t) {
				out.exfil[s.Name] = p
			}
		}
	}
	out.at = func(id string) (time.Time, bool) { t, ok := at[id]; return t, ok }
	return out
}
