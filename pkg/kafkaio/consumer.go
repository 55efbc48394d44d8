package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/metrics"
)

// Defaults of ConsumerConfig.
const (
	DefaultMaxBatch          = 500
	DefaultMaxWait           = 50 * time.Millisecond
	DefaultSessionTimeout    = 6 * time.Second // Kafka's group.min.session.timeout.ms
	DefaultHeartbeatInterval = 500 * time.Millisecond
	DefaultRebalanceTimeout  = 10 * time.Second
)

// fetchMaxWait is how long one fetch request waits at the broker for data. It
// also bounds how long a revoked partition's fetcher (and so a rebalance or a
// Close) waits for its in-flight fetch.
const fetchMaxWait = 500 * time.Millisecond

// ConsumerConfig configures a group Consumer.
type ConsumerConfig struct {
	Config
	// GroupID is the consumer group. Required.
	GroupID string
	// Topics to consume. Required.
	Topics []string
	// MaxBatch is the most messages handed to one handler call.
	// Default DefaultMaxBatch.
	MaxBatch int
	// MaxWait is how long Run lingers after the first message of a batch
	// for more to arrive. Default DefaultMaxWait.
	MaxWait time.Duration
	// StartOffset is where to start in a partition the group has no
	// committed offset for: kafka.FirstOffset (default) or kafka.LastOffset.
	StartOffset int64
	// SessionTimeout is how long the coordinator waits for a heartbeat
	// before it evicts the member. Kafka accepts 6 s to 5 min by default.
	// Default DefaultSessionTimeout.
	SessionTimeout time.Duration
	// HeartbeatInterval is how often the member heartbeats; it also bounds
	// how long the member takes to notice a rebalance.
	// Default DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// RebalanceTimeout is how long the coordinator waits for every member to
	// rejoin during a rebalance. Default DefaultRebalanceTimeout.
	RebalanceTimeout time.Duration
}

// Validate reports what is wrong with the configuration, if anything.
func (c ConsumerConfig) Validate() error {
	var errs []error
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.GroupID == "" {
		errs = append(errs, errors.New("no GroupID"))
	}
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("no Topics"))
	}
	for _, t := range c.Topics {
		if t == "" {
			errs = append(errs, errors.New("empty topic name"))
		}
	}
	if c.MaxBatch < 0 {
		errs = append(errs, fmt.Errorf("MaxBatch %d is negative", c.MaxBatch))
	}
	switch c.StartOffset {
	case 0, kafka.FirstOffset, kafka.LastOffset:
	default:
		errs = append(errs, fmt.Errorf("StartOffset %d is neither kafka.FirstOffset nor kafka.LastOffset", c.StartOffset))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"MaxWait", c.MaxWait}, {"SessionTimeout", c.SessionTimeout}, {"HeartbeatInterval", c.HeartbeatInterval}, {"RebalanceTimeout", c.RebalanceTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s is negative (%v)", d.name, d.v))
		}
	}
	d := c.withDefaults()
	if d.HeartbeatInterval >= d.SessionTimeout {
		errs = append(errs, fmt.Errorf("HeartbeatInterval %v is not below SessionTimeout %v", d.HeartbeatInterval, d.SessionTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafkaio: invalid consumer config: %w", err)
	}
	return nil
}

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	c.Config = c.Config.withDefaults()
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.StartOffset == 0 {
		c.StartOffset = kafka.FirstOffset
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = DefaultRebalanceTimeout
	}
	return c
}

// Consumer consumes topics as a member of a consumer group, at least once:
// it commits a batch's offsets only after its handler succeeded. It is built
// on kafka.Reader (FetchMessage + CommitMessages, synchronous commits).
type Consumer struct {
	cfg ConsumerConfig
	r   *kafka.Reader

	running atomic.Bool
	closing atomic.Bool // Close was called

	// fetchOutage and commitOutage follow transient failures.
	fetchOutage, commitOutage *outage
	// committed is, per partition, the highest offset of a commit that had
	// to be retried, until a message past it arrives (Run only).
	committed map[topicPartition]int64

	mu  sync.Mutex
	lag map[string]map[int]int64

	closeOnce sync.Once
	closeErr  error
}

// NewConsumer validates cfg and starts a group member; it joins the group in
// the background.
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Topics = append([]string(nil), cfg.Topics...)
	info, errLog := quietKafkaLoggers(cfg.Logger, "component", "kafkaio.consumer", "group", cfg.GroupID)
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           cfg.Brokers,
		GroupID:           cfg.GroupID,
		GroupTopics:       cfg.Topics,
		Dialer:            cfg.dialer(),
		QueueCapacity:     max(cfg.MaxBatch, 100),
		MaxWait:           fetchMaxWait,
		ReadLagInterval:   -1,
		HeartbeatInterval: cfg.HeartbeatInterval,
		CommitInterval:    0, // synchronous commits
		SessionTimeout:    cfg.SessionTimeout,
		RebalanceTimeout:  cfg.RebalanceTimeout,
		JoinGroupBackoff:  time.Second,
		StartOffset:       cfg.StartOffset,
		Logger:            info,
		ErrorLogger:       errLog,
	})
	return &Consumer{cfg: cfg, r: r, lag: map[string]map[int]int64{},
		fetchOutage:  newOutage("fetch", cfg.Logger, "group", cfg.GroupID),
		commitOutage: newOutage("commit", cfg.Logger, "group", cfg.GroupID),
	}, nil
}

// Handler processes one batch. A nil return lets Run commit the batch; an
// error stops Run without committing. The batch is not reused by Run.
type Handler func(ctx context.Context, batch []kafka.Message) error

// Run consumes until ctx ends, the handler fails or an error occurs. It
// fetches a batch (up to MaxBatch messages, or what arrived within MaxWait of
// the first one), calls h, and only after h returned nil commits, for each
// partition, the highest offset of the batch. A batch holds messages of
// several partitions, each partition's in offset order.
//
// If h returns an error, Run returns it wrapped and commits nothing: the
// service is expected to stop, and a consumer of the same group then starts
// again from the last commit (at-least-once). A commit refused because the
// group is rebalancing is not an error: the messages are delivered again to
// whichever member owns the partition next.
//
// A broker that goes away is waited for: a fetch or commit failing with a
// transient error (see Classify) is retried with exponential backoff and
// jitter, logged once when it starts failing and once when it works again,
// counted in leakline_kafka_errors_total, and reported by Health meanwhile.
// While a handled batch cannot be committed, Run fetches nothing more (the
// memory held is the batch and kafka-go's bounded queue); once the commit
// goes through, messages the group delivers again up to the committed
// offsets are skipped. Fatal errors (authorization, a missing topic, bad
// configuration) end Run.
//
// Run returns ctx.Err() when ctx ends (a batch already handled is still
// committed, if the broker answers within WriteTimeout), and an error
// wrapping ErrClosed after Close. Run must not be called concurrently with
// itself.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("kafkaio: Consumer.Run called concurrently")
	}
	defer c.running.Store(false)
	defer c.fetchOutage.abandon()
	defer c.commitOutage.abandon()

	for {
		m, err := c.r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := c.fetchFailed(ctx, err); err != nil {
				return err
			}
			continue
		}
		c.fetchOutage.ok()
		batch := make([]kafka.Message, 1, c.cfg.MaxBatch)
		batch[0] = m
		batch, fetchErr := c.linger(ctx, batch)
		if ctx.Err() != nil {
			return ctx.Err() // not handled: delivered again
		}
		if batch = c.skipCommitted(batch); len(batch) == 0 {
			continue
		}
		c.observe(batch)

		if err := h(ctx, batch); err != nil {
			first := batch[0]
			return fmt.Errorf("kafkaio: group %s: handler failed on a batch of %d messages (first %s/%d@%d), not committed: %w",
				c.cfg.GroupID, len(batch), first.Topic, first.Partition, first.Offset, err)
		}
		if err := c.commit(ctx, batch); err != nil {
			return err
		}
		if fetchErr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := c.fetchFailed(ctx, fetchErr); err != nil {
				return err
			}
		}
	}
}

// fetchFailed handles a fetch error: nil after a backoff for a transient
// one (kafka-go's Reader reconnects and rejoins by itself), else the error.
func (c *Consumer) fetchFailed(ctx context.Context, err error) error {
	if c.closing.Load() {
		return c.fetchError(errors.Join(ErrClosed, err))
	}
	if _, transient := c.fetchOutage.failed(err); !transient {
		return c.fetchError(err)
	}
	c.fetchOutage.mu.Lock()
	n := c.fetchOutage.failures
	c.fetchOutage.mu.Unlock()
	if !wait(ctx, n) {
		return ctx.Err()
	}
	return nil
}

// linger adds to batch what arrives within MaxWait, up to MaxBatch messages.
// It returns a fetch error other than the end of the linger (the batch
// fetched so far is still valid).
func (c *Consumer) linger(ctx context.Context, batch []kafka.Message) ([]kafka.Message, error) {
	if len(batch) >= c.cfg.MaxBatch {
		return batch, nil
	}
	lctx, cancel := context.WithTimeout(ctx, c.cfg.MaxWait)
	defer cancel()
	for len(batch) < c.cfg.MaxBatch {
		m, err := c.r.FetchMessage(lctx)
		if err != nil {
			if lctx.Err() != nil {
				return batch, nil
			}
			return batch, err
		}
		batch = append(batch, m)
	}
	return batch, nil
}

func (c *Consumer) fetchError(err error) error {
	if errors.Is(err, io.EOF) {
		err = ErrClosed
	}
	return fmt.Errorf("kafkaio: group %s: fetch: %w", c.cfg.GroupID, err)
}

// topicPartition names a partition.
type topicPartition struct {
	topic     string
	partition int
}

// skipCommitted drops from batch the messages at or below an offset this
// consumer committed only after retrying: after the broker came back, the
// group starts again from the offsets committed before the outage, and the
// batches committed late would otherwise be handled twice. A partition's
// entry goes once a message past it arrives, so in normal operation there
// is nothing to look up.
func (c *Consumer) skipCommitted(batch []kafka.Message) []kafka.Message {
	if len(c.committed) == 0 {
		return batch
	}
	out := batch[:0]
	for _, m := range batch {
		k := topicPartition{m.Topic, m.Partition}
		if o, ok := c.committed[k]; ok {
			if m.Offset <= o {
				continue
			}
			delete(c.committed, k)
		}
		out = append(out, m)
	}
	if skipped := len(batch) - len(out); skipped > 0 {
		c.cfg.Logger.Debug("kafkaio: skipped messages redelivered up to an offset already committed",
			"group", c.cfg.GroupID, "messages", skipped)
	}
	return out
}

// commit commits the highest offset of each partition in batch, retrying
// transient failures with backoff until the commit goes through or ctx ends.
// Each attempt outlives the cancellation of ctx (bounded by WriteTimeout) so
// that a handled batch is committed on shutdown.
func (c *Consumer) commit(ctx context.Context, batch []kafka.Message) error {
	highest := make(map[topicPartition]int64, 8)
	for _, m := range batch {
		k := topicPartition{m.Topic, m.Partition}
		if o, ok := highest[k]; !ok || m.Offset > o {
			highest[k] = m.Offset
		}
	}
	marks := make([]kafka.Message, 0, len(highest))
	for k, o := range highest {
		marks = append(marks, kafka.Message{Topic: k.topic, Partition: k.partition, Offset: o})
	}
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.WriteTimeout)
		err := c.r.CommitMessages(cctx, marks...)
		cancel()
		if err == nil {
			c.commitOutage.ok()
			if attempt == 1 {
				return nil
			}
			if c.committed == nil {
				c.committed = make(map[topicPartition]int64, len(highest))
			}
			for k, o := range highest {
				if old, ok := c.committed[k]; !ok || o > old {
					c.committed[k] = o
				}
			}
			return nil
		}
		kind, transient := c.commitOutage.failed(err)
		switch {
		case kind == KindRebalance:
			c.cfg.Logger.Warn("kafkaio: commit refused during a rebalance; the batch will be delivered again",
				"group", c.cfg.GroupID, "messages", len(batch), "error", err)
			return nil
		case errors.Is(err, io.ErrClosedPipe):
			err = ErrClosed
		case transient && ctx.Err() == nil:
			if wait(ctx, attempt) {
				continue
			}
			fallthrough
		case transient:
			c.cfg.Logger.Warn("kafkaio: stopping before a handled batch could be committed; it will be delivered again",
				"group", c.cfg.GroupID, "messages", len(batch), "error", err)
			return ctx.Err()
		}
		return fmt.Errorf("kafkaio: group %s: commit %d partitions: %w", c.cfg.GroupID, len(marks), err)
	}
}

// isRebalanceError tells whether a commit failed because this member's
// generation ended; the partitions then belong to the next generation.
func isRebalanceError(err error) bool {
	return Classify(err) == KindRebalance
}

// observe records the lag of the partitions in batch.
func (c *Consumer) observe(batch []kafka.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range batch {
		parts := c.lag[m.Topic]
		if parts == nil {
			parts = map[int]int64{}
			c.lag[m.Topic] = parts
		}
		lag := max(m.HighWaterMark-(m.Offset+1), 0)
		parts[m.Partition] = lag
		metrics.Lag.WithLabelValues(c.cfg.GroupID, m.Topic, strconv.Itoa(m.Partition)).Set(float64(lag))
	}
	if n := len(batch); n > 0 {
		last := batch[n-1]
		metrics.Consumed.WithLabelValues(c.cfg.GroupID, last.Topic).Add(float64(n))
		if !last.Time.IsZero() {
			metrics.LagSeconds.WithLabelValues(c.cfg.GroupID, last.Topic).Set(time.Since(last.Time).Seconds())
		}
	}
}

// Lag returns, per topic and partition, how many messages the partition's
// high-water mark was ahead of the last message fetched from it, as of that
// fetch: 0 means caught up. Only partitions this consumer has fetched from
// appear, including ones a rebalance has since moved to another member.
// (kafka.Reader.Lag is -1 in group mode.)
func (c *Consumer) Lag() map[string]map[int]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]map[int]int64, len(c.lag))
	for t, parts := range c.lag {
		cp := make(map[int]int64, len(parts))
		for p, l := range parts {
			cp[p] = l
		}
		out[t] = cp
	}
	return out
}

// Close leaves the group and releases the consumer's connections. It returns
// after at most CloseTimeout (with an error wrapping ErrCloseTimeout when
// kafka-go did not finish, e.g. because the broker is gone). A Run in
// progress returns an error wrapping ErrClosed. Close is idempotent.
func (c *Consumer) Close() error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		c.closeErr = closeBounded("consumer of group "+c.cfg.GroupID, c.cfg.CloseTimeout, c.r.Close)
	})
	return c.closeErr
}
