package kafkaio

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/metrics"
)

// GroupConsumer consumes topics as a member of a consumer group, like
// Consumer, but exposes the partition assignment: for every partition the
// group assigns to this member, Run creates a PartitionWorker (where a
// stateful service rebuilds its per-partition state), feeds it that
// partition's messages in order, and closes it when the partition is revoked.
// It is built on kafka-go's low-level kafka.ConsumerGroup (one generation at
// a time) with one partition-bound kafka.Reader per assigned partition.
//
// Delivery is at-least-once, per partition: a batch's offsets are committed
// (through the generation, so a member that lost the partition cannot
// commit for it) only after the worker's Handle returned nil, and a new
// owner starts exactly at the committed offset. Rebalances are "eager", as
// with every kafka-go consumer: on a new generation every partition of the
// old one is stopped and its worker closed before this member rejoins, so no
// two workers of the group (on this member or another) process one partition
// at the same time, as long as workers honour their contexts (a member that
// does not rejoin within RebalanceTimeout is expelled, and its later commits
// are refused) and no worker Close outlives CloseTimeout.
//
// kafka-go (v0.4.51) and kfake behaviour this relies on:
//   - Generation.CommitOffsets sends the offsets exactly as given; Kafka's
//     convention is "the next offset to read", so a batch is committed as its
//     last offset + 1 (Reader.CommitMessages adds the 1 itself, CommitOffsets
//     does not). PartitionAssignment.Offset, read back by OffsetFetch, is the
//     same "next offset" (or the configured StartOffset when the group has
//     none).
//   - A generation ends when its heartbeat fails (RebalanceInProgress once
//     another member joins or leaves, or a broken coordinator connection), or
//     as soon as any function launched with Generation.Start returns; kafka-go
//     then waits for every such function before it rejoins. The brokers (Kafka
//     and kfake alike) accept commits of the ending generation while the group
//     is PreparingRebalance, so a batch handled during a revocation is still
//     committed; in CompletingRebalance they answer RebalanceInProgress and
//     after it IllegalGeneration/UnknownMemberId: the batch is then delivered
//     again to the next owner.
//   - kafka.ConsumerGroup joins as soon as it is created and, once it holds a
//     generation, does not notice a rebalance until someone calls Next; it is
//     therefore created by Run, not by NewGroupConsumer.
type GroupConsumer struct {
	cfg ConsumerConfig
	gcf kafka.ConsumerGroupConfig

	running      atomic.Bool
	commitM      sync.Mutex     // serializes commits on the generation's connection
	readerCloses sync.WaitGroup // partition readers being closed

	mu       sync.Mutex
	cg       *kafka.ConsumerGroup
	closed   bool
	assigned []Assignment
	lag      map[string]map[int]int64

	closeOnce sync.Once
	closeErr  error
}

// Assignment is one partition assigned to this member in one generation.
type Assignment struct {
	// Topic and Partition name the partition.
	Topic     string
	Partition int
	// Committed is the group's committed offset for the partition when it
	// was assigned: the next offset to read (the last committed message is
	// at Committed-1). Without a commit it is ConsumerConfig.StartOffset,
	// kafka.FirstOffset by default.
	Committed int64
	// Generation is the consumer-group generation of the assignment.
	Generation int32
}

// PartitionWorker processes one assigned partition. Calls for one partition
// are sequential: Handle is never called concurrently with itself, and Close
// is called once, after the last Handle returned. Workers of different
// partitions run concurrently.
type PartitionWorker interface {
	// Handle processes a batch of the partition's messages, in offset
	// order. A nil return commits the batch (its last offset + 1); an error
	// stops Run, unless ctx had ended (revocation or shutdown), in which case
	// the batch is just not committed. ctx ends when the partition is
	// revoked or Run stops; Handle should then return promptly.
	Handle(ctx context.Context, batch []kafka.Message) error
	// Close releases the worker: the partition was revoked or the consumer
	// is stopping. It is bounded by Config.CloseTimeout (a Close still
	// running then is abandoned).
	Close() error
}

// WorkerFactory creates the worker of a newly assigned partition, e.g. by
// rebuilding the partition's state from the log (see MessageAt and
// ReplayRange); it may take long, and is called concurrently for the
// partitions of one generation. ctx ends when the partition is revoked or Run
// stops; the factory should then return promptly (its error is then
// ignored). Any other error stops Run.
type WorkerFactory func(ctx context.Context, a Assignment) (PartitionWorker, error)

// errRevoked is the cancellation cause of a generation's partitions when the
// generation ended.
var errRevoked = errors.New("kafkaio: partitions revoked")

// NewGroupConsumer validates cfg and returns a GroupConsumer. It joins the
// group only when Run is called.
func NewGroupConsumer(cfg ConsumerConfig) (*GroupConsumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Topics = slices.Clone(cfg.Topics)
	info, errLog := quietKafkaLoggers(cfg.Logger, "component", "kafkaio.group", "group", cfg.GroupID)
	gcf := kafka.ConsumerGroupConfig{
		ID:                cfg.GroupID,
		Brokers:           cfg.Brokers,
		Dialer:            cfg.dialer(),
		Topics:            cfg.Topics,
		HeartbeatInterval: cfg.HeartbeatInterval,
		SessionTimeout:    cfg.SessionTimeout,
		RebalanceTimeout:  cfg.RebalanceTimeout,
		JoinGroupBackoff:  time.Second,
		StartOffset:       cfg.StartOffset,
		Timeout:           cfg.WriteTimeout,
		Logger:            info,
		ErrorLogger:       errLog,
	}
	check := gcf
	if err := check.Validate(); err != nil {
		return nil, fmt.Errorf("kafkaio: invalid consumer config: %w", err)
	}
	return &GroupConsumer{cfg: cfg, gcf: gcf, lag: map[string]map[int]int64{}}, nil
}

// Run joins the group and consumes until ctx ends, a worker fails or Close is
// called. For each generation it starts, per assigned partition, a goroutine
// that calls f, then fetches from Assignment.Committed in batches (up to
// MaxBatch messages, or what arrived within MaxWait of the first), calls
// Handle and commits each batch Handle accepted. When the generation ends
// (a rebalance), it stops every partition (a batch being handled is
// finished and, if accepted, committed; a batch fetched but not handled is
// dropped), closes the workers, and waits for the next generation.
//
// Run returns ctx.Err() when ctx ends, an error wrapping ErrClosed after
// Close, and the wrapped error of a failing factory, Handle, fetch or commit
// (nothing uncommitted is lost: the next owner of the partition resumes from
// the last commit). A commit refused because the generation ended is not an
// error. Errors joining the group are logged and retried (kafka-go rejoins
// after a second), except those retrying cannot fix (an invalid session
// timeout, authorization failures), which Run returns.
// Before it returns, Run closes every worker and leaves the group (as Close
// does, bounded by CloseTimeout); the GroupConsumer cannot be run again.
func (g *GroupConsumer) Run(ctx context.Context, f WorkerFactory) error {
	if f == nil {
		return errors.New("kafkaio: GroupConsumer.Run: nil WorkerFactory")
	}
	if !g.running.CompareAndSwap(false, true) {
		return errors.New("kafkaio: GroupConsumer.Run called concurrently")
	}
	defer g.running.Store(false)

	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return fmt.Errorf("kafkaio: group %s: %w", g.cfg.GroupID, ErrClosed)
	}
	if g.cg == nil {
		cg, err := kafka.NewConsumerGroup(g.gcf)
		if err != nil {
			g.mu.Unlock()
			return fmt.Errorf("kafkaio: group %s: %w", g.cfg.GroupID, err)
		}
		g.cg = cg
	}
	cg := g.cg
	g.mu.Unlock()

	err := g.run(ctx, cg, f)
	if cerr := g.Close(); cerr != nil {
		g.cfg.Logger.Warn("kafkaio: leaving the group after Run", "group", g.cfg.GroupID, "error", cerr)
	}
	g.readerCloses.Wait() // each bounded by CloseTimeout
	return err
}

func (g *GroupConsumer) run(ctx context.Context, cg *kafka.ConsumerGroup, f WorkerFactory) error {
	join := newOutage("join", g.cfg.Logger, "group", g.cfg.GroupID)
	defer join.abandon()
	for {
		gen, err := cg.Next(ctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, kafka.ErrGroupClosed):
			return fmt.Errorf("kafkaio: group %s: %w", g.cfg.GroupID, ErrClosed)
		case isPermanentGroupError(err):
			metrics.KafkaErrors.WithLabelValues("join", string(Classify(err))).Inc()
			return fmt.Errorf("kafkaio: group %s: join: %w", g.cfg.GroupID, err)
		case err != nil:
			// kafka-go retries by itself (after JoinGroupBackoff); a
			// transient failure (the broker is away) is logged once.
			if _, transient := join.failed(err); !transient {
				g.cfg.Logger.Warn("kafkaio: joining the consumer group failed; retrying",
					"group", g.cfg.GroupID, "error", err)
			}
			continue
		}
		join.ok()
		if err := g.runGeneration(ctx, gen, f); err != nil {
			return err
		}
	}
}

// isPermanentGroupError tells whether joining the group failed in a way
// that retrying cannot fix (configuration or authorization).
func isPermanentGroupError(err error) bool {
	for _, e := range []kafka.Error{
		kafka.InvalidSessionTimeout,
		kafka.InvalidGroupId,
		kafka.InconsistentGroupProtocol,
		kafka.GroupAuthorizationFailed,
		kafka.TopicAuthorizationFailed,
		kafka.ClusterAuthorizationFailed,
		kafka.SASLAuthenticationFailed,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// runGeneration runs the partitions of gen until the generation ends (nil),
// ctx ends (ctx.Err()) or a partition fails (its error).
func (g *GroupConsumer) runGeneration(ctx context.Context, gen *kafka.Generation, f WorkerFactory) error {
	result := make(chan error, 1)
	// The partitions run under one function of the generation: kafka-go waits
	// for it before rejoining, so a revoked partition is stopped (and its
	// worker closed) before anyone else can be assigned it.
	gen.Start(func(gctx context.Context) {
		err := g.superviseGeneration(ctx, gctx, gen, f)
		result <- err
		if err != nil {
			// Run is ending without a rebalance. Returning would end the
			// generation and make kafka-go rejoin at once; keep it until
			// Run's Close (or the coordinator) ends it, and leave then.
			<-gctx.Done()
		}
	})
	return <-result
}

func (g *GroupConsumer) superviseGeneration(ctx, gctx context.Context, gen *kafka.Generation, f WorkerFactory) error {
	if gctx.Err() != nil {
		return nil // ended before it started
	}
	var assigned []Assignment
	for topic, parts := range gen.Assignments {
		for _, p := range parts {
			assigned = append(assigned, Assignment{Topic: topic, Partition: p.ID, Committed: p.Offset, Generation: gen.ID})
		}
	}
	slices.SortFunc(assigned, func(a, b Assignment) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	g.setAssigned(assigned)
	defer g.setAssigned(nil)
	g.cfg.Logger.Info("kafkaio: partitions assigned", "group", g.cfg.GroupID, "generation", gen.ID,
		"member", gen.MemberID, "partitions", describeAssignments(assigned))

	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(gctx, func() { cancel(errRevoked) })
	defer stop()

	var wg sync.WaitGroup
	for _, a := range assigned {
		wg.Go(func() {
			if err := g.runPartition(pctx, gen, a, f); err != nil {
				cancel(err)
			}
		})
	}
	<-pctx.Done()
	wg.Wait()

	cause := context.Cause(pctx)
	switch {
	case errors.Is(cause, errRevoked):
		g.cfg.Logger.Info("kafkaio: generation ended; partitions revoked", "group", g.cfg.GroupID, "generation", gen.ID)
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		return cause
	}
}

// runPartition creates the partition's worker and feeds it until pctx ends
// (nil) or something fails (the error).
func (g *GroupConsumer) runPartition(pctx context.Context, gen *kafka.Generation, a Assignment, f WorkerFactory) error {
	where := fmt.Sprintf("group %s: %s/%d (generation %d)", g.cfg.GroupID, a.Topic, a.Partition, a.Generation)
	w, err := g.newWorker(pctx, a, f, where)
	if err != nil {
		if pctx.Err() != nil {
			g.cfg.Logger.Debug("kafkaio: worker factory stopped by revocation or shutdown", "where", where, "error", err)
			return nil
		}
		return fmt.Errorf("kafkaio: %s: worker factory: %w", where, err)
	}
	if w == nil {
		return fmt.Errorf("kafkaio: %s: worker factory returned a nil worker", where)
	}
	defer func() {
		if err := closeBounded("worker of "+where, g.cfg.CloseTimeout, w.Close); err != nil {
			g.cfg.Logger.Warn("kafkaio: closing a partition worker", "where", where, "error", err)
		}
	}()

	info, errLog := quietKafkaLoggers(g.cfg.Logger, "component", "kafkaio.group", "group", g.cfg.GroupID,
		"topic", a.Topic, "partition", a.Partition)
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:         g.cfg.Brokers,
		Topic:           a.Topic,
		Partition:       a.Partition,
		Dialer:          g.cfg.dialer(),
		QueueCapacity:   max(g.cfg.MaxBatch, 100),
		MaxWait:         fetchMaxWait,
		ReadLagInterval: -1,
		StartOffset:     g.cfg.StartOffset,
		Logger:          info,
		ErrorLogger:     errLog,
	})
	// Reader.Close waits for the fetch in flight (up to fetchMaxWait): close
	// it in the background so that a rebalance need not wait for it. Run
	// waits for these closes before it returns.
	defer g.readerCloses.Go(func() {
		if err := closeBounded("reader of "+where, g.cfg.CloseTimeout, r.Close); err != nil {
			g.cfg.Logger.Warn("kafkaio: closing a partition reader", "where", where, "error", err)
		}
	})
	if err := r.SetOffset(a.Committed); err != nil {
		return fmt.Errorf("kafkaio: %s: start at offset %d: %w", where, a.Committed, err)
	}

	fetch := newOutage("fetch", g.cfg.Logger, "where", where)
	defer fetch.abandon()
	commit := newOutage("commit", g.cfg.Logger, "where", where)
	defer commit.abandon()
	for {
		batch, err := fetchBatch(pctx, r, g.cfg.MaxBatch, g.cfg.MaxWait)
		if pctx.Err() != nil {
			return nil // not handled: delivered again to the next owner
		}
		if err != nil {
			// The partition reader reconnects by itself; a transient error
			// is only reported (kafka-go sends it after a few attempts).
			if _, transient := fetch.failed(err); transient {
				fetch.mu.Lock()
				n := fetch.failures
				fetch.mu.Unlock()
				if !wait(pctx, n) {
					return nil
				}
				continue
			}
			return fmt.Errorf("kafkaio: %s: fetch: %w", where, err)
		}
		fetch.ok()
		g.observe(batch)
		if err := w.Handle(pctx, batch); err != nil {
			if pctx.Err() != nil {
				g.cfg.Logger.Debug("kafkaio: handler stopped by revocation or shutdown; batch not committed",
					"where", where, "messages", len(batch), "error", err)
				return nil
			}
			return fmt.Errorf("kafkaio: %s: handler failed on a batch of %d messages (offsets %d-%d), not committed: %w",
				where, len(batch), batch[0].Offset, batch[len(batch)-1].Offset, err)
		}
		next := batch[len(batch)-1].Offset + 1
		if err := g.commitRetrying(pctx, gen, a, next, commit); err != nil {
			switch {
			case isRebalanceError(err):
				// The generation is over: the next owner gets the batch again.
				g.cfg.Logger.Warn("kafkaio: commit refused, the generation ended; the batch will be delivered again",
					"where", where, "offset", next, "error", err)
				return nil
			case pctx.Err() != nil:
				g.cfg.Logger.Warn("kafkaio: commit failed during revocation or shutdown; the batch will be delivered again",
					"where", where, "offset", next, "error", err)
				return nil
			}
			return fmt.Errorf("kafkaio: %s: commit offset %d: %w", where, next, err)
		}
		if pctx.Err() != nil {
			g.cfg.Logger.Debug("kafkaio: committed the batch handled during revocation or shutdown",
				"where", where, "offset", next)
			return nil
		}
	}
}

// newWorker calls f, again with backoff while it fails with a transient
// Kafka error (a worker rebuilding its state from the log while the broker
// is away), until it succeeds, fails otherwise or pctx ends.
func (g *GroupConsumer) newWorker(pctx context.Context, a Assignment, f WorkerFactory, where string) (PartitionWorker, error) {
	o := newOutage("assign", g.cfg.Logger, "where", where)
	defer o.abandon()
	for attempt := 1; ; attempt++ {
		w, err := f(pctx, a)
		if err == nil || pctx.Err() != nil {
			if err == nil {
				o.ok()
			}
			return w, err
		}
		if kind, transient := o.failed(err); !transient || kind == KindRebalance || !wait(pctx, attempt) {
			return nil, err
		}
	}
}

// fetchBatch fetches one message (waiting for it as long as ctx allows), then
// what else arrives within maxWait, up to maxBatch messages. An error
// fetching the first message is returned; a later one only ends the batch
// early (the Reader reports it again on the next fetch).
func fetchBatch(ctx context.Context, r *kafka.Reader, maxBatch int, maxWait time.Duration) ([]kafka.Message, error) {
	m, err := r.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	batch := make([]kafka.Message, 1, min(maxBatch, 1024))
	batch[0] = m
	if maxBatch <= 1 {
		return batch, nil
	}
	lctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	for len(batch) < maxBatch {
		m, err := r.FetchMessage(lctx)
		if err != nil {
			// The end of the linger, or an error the next fetch reports again.
			break
		}
		batch = append(batch, m)
	}
	return batch, nil
}

// commitRetrying commits next for the partition in gen, retrying transient
// failures (the coordinator's connection broke, a request timed out) with
// backoff on the same generation until the commit goes through, is refused
// because the generation ended, or pctx ends: a broker that went away ends
// the generation too (its heartbeat fails), and the batch is then delivered
// again to the partition's next owner. Fetching waits meanwhile.
func (g *GroupConsumer) commitRetrying(pctx context.Context, gen *kafka.Generation, a Assignment, next int64, o *outage) error {
	for attempt := 1; ; attempt++ {
		err := g.commit(gen, a, next)
		if err == nil {
			o.ok()
			return nil
		}
		kind, transient := o.failed(err)
		if !transient || kind == KindRebalance || !wait(pctx, attempt) {
			return err
		}
	}
}

// commit commits next (the offset after the batch) for the partition in gen.
// kafka-go's Generation.CommitOffsets takes the offsets as Kafka stores them:
// the next offset to read.
func (g *GroupConsumer) commit(gen *kafka.Generation, a Assignment, next int64) error {
	g.commitM.Lock()
	defer g.commitM.Unlock()
	return gen.CommitOffsets(map[string]map[int]int64{a.Topic: {a.Partition: next}})
}

func (g *GroupConsumer) setAssigned(as []Assignment) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.assigned = as
	// Lag is reported for the current assignment only.
	for t, parts := range g.lag {
		for p := range parts {
			if !slices.ContainsFunc(as, func(a Assignment) bool { return a.Topic == t && a.Partition == p }) {
				delete(parts, p)
			}
		}
		if len(parts) == 0 {
			delete(g.lag, t)
		}
	}
}

// observe records the lag of the partition of batch, and exports it with
// the consumed count as metrics (as Consumer does).
func (g *GroupConsumer) observe(batch []kafka.Message) {
	last := batch[len(batch)-1]
	lag := max(last.HighWaterMark-(last.Offset+1), 0)
	metrics.Consumed.WithLabelValues(g.cfg.GroupID, last.Topic).Add(float64(len(batch)))
	metrics.Lag.WithLabelValues(g.cfg.GroupID, last.Topic, strconv.Itoa(last.Partition)).Set(float64(lag))
	if !last.Time.IsZero() {
		metrics.LagSeconds.WithLabelValues(g.cfg.GroupID, last.Topic).Set(time.Since(last.Time).Seconds())
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	parts := g.lag[last.Topic]
	if parts == nil {
		parts = map[int]int64{}
		g.lag[last.Topic] = parts
	}
	parts[last.Partition] = lag
}

// Assigned returns the partitions this member holds in the current
// generation, sorted by topic and partition; empty between generations and
// before the first one. Committed is as of the assignment.
func (g *GroupConsumer) Assigned() []Assignment {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.assigned)
}

// Lag returns, per topic and partition of the current assignment, how many
// messages the partition's high-water mark was ahead of the last message
// fetched from it, as of that fetch: 0 means caught up. A partition appears
// only once a batch was fetched from it in the current generation.
func (g *GroupConsumer) Lag() map[string]map[int]int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]map[int]int64, len(g.lag))
	for t, parts := range g.lag {
		out[t] = maps.Clone(parts)
	}
	return out
}

// Close stops a Run in progress (its partitions are stopped and their
// workers closed; Run returns an error wrapping ErrClosed) and leaves the
// group. It returns after at most CloseTimeout, with an error wrapping
// ErrCloseTimeout if kafka-go did not finish (e.g. because the broker is
// gone; the member is then evicted after SessionTimeout). Close is
// idempotent; a GroupConsumer cannot be used after Close.
func (g *GroupConsumer) Close() error {
	g.closeOnce.Do(func() {
		g.mu.Lock()
		g.closed = true
		cg := g.cg
		g.mu.Unlock()
		if cg != nil {
			g.closeErr = closeBounded("consumer group "+g.cfg.GroupID, g.cfg.CloseTimeout, cg.Close)
		}
	})
	return g.closeErr
}

func describeAssignments(as []Assignment) string {
	s := make([]byte, 0, 16*len(as))
	for i, a := range as {
		if i > 0 {
			s = append(s, ' ')
		}
		s = fmt.Appendf(s, "%s/%d@%d", a.Topic, a.Partition, a.Committed)
	}
	return string(s)
}
