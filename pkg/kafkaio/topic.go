package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
)

// Helpers for the small single-partition, compacted topics Leakline keeps
// state in (EDM indexes, rule packs, detector heartbeats): create the topic,
// write to one partition synchronously, read the partition whole.

// DefaultPartitionWriteTimeout is the WriteTimeout of WritePartition when
// Config.WriteTimeout is zero: its batches may carry large messages.
const DefaultPartitionWriteTimeout = 30 * time.Second

// Transport returns a private kafka-go Transport (for a kafka.Writer or
// kafka.Client) built from the config's ClientID and Dialer (TLS, SASL, dial
// timeout and function). The caller owns it: call CloseIdleConnections when
// done.
func (c Config) Transport() *kafka.Transport {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	return c.transport()
}

// ReaderDialer returns the kafka-go Dialer of a kafka.Reader built from the
// config: a copy of Config.Dialer (its ClientID defaulting to the config's),
// or plain TCP.
func (c Config) ReaderDialer() *kafka.Dialer {
	if c.Dialer == nil && c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	return c.dialer()
}

// CloseWithin runs closeFn and waits for it at most d; what names the
// closed thing in the error, which wraps ErrCloseTimeout when d passed first
// (closeFn then keeps running in the background).
func CloseWithin(what string, d time.Duration, closeFn func() error) error {
	return closeBounded(what, d, closeFn)
}

// EnsureCompactedTopic creates topic with one partition, cfg.ReplicationFactor
// replicas, cleanup.policy=compact and the extra topic settings if it does not
// exist (an existing topic is left as it is), then waits like EnsureTopics
// until it has a leader.
func EnsureCompactedTopic(ctx context.Context, cfg Config, topic string, extra ...kafka.ConfigEntry) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if topic == "" {
		return errors.New("kafkaio: EnsureCompactedTopic: empty topic name")
	}
	cfg = cfg.withDefaults()
	tr := cfg.transport()
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.WriteTimeout, Transport: tr}
	resp, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic:             topic,
		NumPartitions:     1,
		ReplicationFactor: cfg.ReplicationFactor,
		ConfigEntries:     append([]kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}, extra...),
	}}})
	if err != nil {
		return fmt.Errorf("kafkaio: create topic %s: %w", topic, cfg.explainConnError(err))
	}
	if err := resp.Errors[topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("kafkaio: create topic %s: %w", topic, cfg.explainConnError(err))
	}
	return EnsureTopics(ctx, cfg, 1, topic)
}

// PartitionBatch sets the batching of WritePartition; zero values mean
// kafka-go's BatchSize and BatchBytes defaults and DefaultBatchTimeout.
type PartitionBatch struct {
	Size    int
	Bytes   int64
	Timeout time.Duration
}

// WritePartition writes msgs to partition of topic with a one-off
// kafka.Writer (acks from all in-sync replicas, no topic auto-creation,
// WriteTimeout Config.WriteTimeout or DefaultPartitionWriteTimeout) and
// closes it within Config.CloseTimeout. The write error wraps kafka-go's;
// a close error wraps ErrCloseTimeout when the close gave up.
func WritePartition(ctx context.Context, cfg Config, topic string, partition int, batch PartitionBatch, msgs ...kafka.Message) error {
	if err := checkPartitionArgs(cfg, topic, partition); err != nil {
		return err
	}
	writeTimeout := cfg.WriteTimeout
	if writeTimeout == 0 {
		writeTimeout = DefaultPartitionWriteTimeout
	}
	cfg = cfg.withDefaults()
	if batch.Timeout == 0 {
		batch.Timeout = DefaultBatchTimeout
	}
	tr := cfg.transport()
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Brokers...),
		Topic:                  topic,
		Balancer:               kafka.BalancerFunc(func(kafka.Message, ...int) int { return partition }),
		RequiredAcks:           kafka.RequireAll,
		BatchSize:              batch.Size,
		BatchBytes:             batch.Bytes,
		BatchTimeout:           batch.Timeout,
		WriteTimeout:           writeTimeout,
		AllowAutoTopicCreation: false,
		Transport:              tr,
	}
	err := w.WriteMessages(ctx, msgs...)
	closeErr := closeBounded(fmt.Sprintf("writer for %s/%d", topic, partition), cfg.CloseTimeout, w.Close)
	if err != nil {
		return fmt.Errorf("kafkaio: write %d messages to %s/%d: %w", len(msgs), topic, partition, err)
	}
	return closeErr
}

// Partitions returns the partition ids of topic, sorted. A missing topic is
// an error wrapping kafka.UnknownTopicOrPartition: the metadata request goes
// through a kafka.Client, which does not ask the broker to auto-create it.
func Partitions(ctx context.Context, cfg Config, topic string) ([]int, error) {
	if len(cfg.Brokers) == 0 || topic == "" {
		return nil, fmt.Errorf("kafkaio: partitions: brokers and topic are required")
	}
	cfg = cfg.withDefaults()
	tr := cfg.transport()
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.WriteTimeout, Transport: tr}
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("kafkaio: metadata of %s: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("kafkaio: topic %s: %w", topic, t.Error)
		}
		if len(t.Partitions) == 0 {
			break
		}
		ids := make([]int, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			ids = append(ids, p.ID)
		}
		slices.Sort(ids)
		return ids, nil
	}
	return nil, fmt.Errorf("kafkaio: topic %s: %w", topic, kafka.UnknownTopicOrPartition)
}

// EndOffset returns the high-water mark of partition of topic: the offset
// after its newest message. A missing topic or partition gives an error
// wrapping kafka.UnknownTopicOrPartition. Unlike ReplayRange it asks any
// broker (a ListOffsets request through a kafka.Client).
func EndOffset(ctx context.Context, cfg Config, topic string, partition int) (int64, error) {
	if err := checkPartitionArgs(cfg, topic, partition); err != nil {
		return 0, err
	}
	cfg = cfg.withDefaults()
	tr := cfg.transport()
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.WriteTimeout, Transport: tr}
	resp, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(partition)}}})
	if err != nil {
		return 0, fmt.Errorf("kafkaio: list offsets of %s/%d: %w", topic, partition, err)
	}
	for _, p := range resp.Topics[topic] {
		if p.Partition != partition {
			continue
		}
		if p.Error != nil {
			return 0, fmt.Errorf("kafkaio: list offsets of %s/%d: %w", topic, partition, p.Error)
		}
		return p.LastOffset, nil
	}
	return 0, fmt.Errorf("kafkaio: list offsets of %s/%d: %w", topic, partition, kafka.UnknownTopicOrPartition)
}

// ReplayPartition reads partition of topic from its earliest offset up to
// its high-water mark when called (EndOffset) and calls fn for each message,
// in offset order, like ReplayRange; messages written meanwhile are not
// read. It returns that high-water mark: 0 with the error of EndOffset
// (wrapping kafka.UnknownTopicOrPartition for a missing topic) when finding
// it failed, so a non-zero end with an error means the replay failed.
func ReplayPartition(ctx context.Context, cfg Config, topic string, partition int, fn func(kafka.Message) error) (int64, error) {
	end, err := EndOffset(ctx, cfg, topic, partition)
	if err != nil || end == 0 {
		return end, err
	}
	return end, ReplayRange(ctx, cfg, topic, partition, time.Time{}, end, fn)
}
