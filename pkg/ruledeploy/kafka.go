package ruledeploy

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/kafkaio"
)

// ErrNoPack is returned by Latest when no pack was ever deployed.
var ErrNoPack = errors.New("ruledeploy: no pack deployed")

// minCompactionLag keeps every deploy on the topic for at least this long
// before compaction may drop all but the newest: History shows them.
const minCompactionLag = 30 * 24 * time.Hour

// Entry is one message of the rules topic as History reads it.
type Entry struct {
	Offset int64
	// Message is the decoded message; nil when it could not be decoded
	// (Err says why).
	Message *Message
	Err     error
}

// EnsureTopic creates topic with one partition, compaction and a minimum
// compaction lag of 30 days if it does not exist, and waits until it has a
// leader.
func EnsureTopic(ctx context.Context, cfg kafkaio.Config, topic string) error {
	return ensureCompacted(ctx, cfg, topic,
		kafka.ConfigEntry{ConfigName: "min.compaction.lag.ms", ConfigValue: fmt.Sprint(minCompactionLag.Milliseconds())})
}

// ensureCompacted creates topic with one partition, compaction and extra
// settings if it does not exist, and waits until it has a leader.
func ensureCompacted(ctx context.Context, cfg kafkaio.Config, topic string, extra ...kafka.ConfigEntry) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := kafkaio.EnsureCompactedTopic(ctx, cfg, topic, extra...); err != nil {
		return fmt.Errorf("ruledeploy: %w", err)
	}
	return nil
}

// Publish writes the (signed) message to partition 0 of topic with key
// MessageKey, creating the topic if missing (see EnsureTopic), and returns
// once all in-sync replicas acknowledged it.
func Publish(ctx context.Context, cfg kafkaio.Config, topic string, m *Message) error {
	if m.Signature == "" {
		return ErrUnsigned
	}
	b, err := m.Encode()
	if err != nil {
		return err
	}
	if err := EnsureTopic(ctx, cfg, topic); err != nil {
		return err
	}
	batch := kafkaio.PartitionBatch{Bytes: MaxMessageBytes + 64<<10, Timeout: time.Millisecond}
	if err := kafkaio.WritePartition(ctx, cfg, topic, 0, batch, kafka.Message{Key: []byte(MessageKey), Value: b, Time: m.Time}); err != nil {
		return fmt.Errorf("ruledeploy: publish pack %s seq %d to %s: %w", m.Version, m.Seq, topic, err)
	}
	return nil
}

// History reads partition 0 of topic from its start to its current end and
// returns every message on it (compaction may have removed deploys older
// than 30 days that a newer one superseded), oldest first. A missing topic
// has no history.
func History(ctx context.Context, cfg kafkaio.Config, topic string) ([]Entry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var out []Entry
	end, err := kafkaio.ReplayPartition(ctx, cfg, topic, 0, func(km kafka.Message) error {
		if len(km.Value) == 0 {
			return nil // tombstone
		}
		m, err := Decode(km.Value)
		out = append(out, Entry{Offset: km.Offset, Message: m, Err: err})
		return nil
	})
	if end == 0 && errors.Is(err, kafka.UnknownTopicOrPartition) {
		return nil, nil // no topic: finding its end offset failed
	}
	if err != nil {
		return nil, fmt.Errorf("ruledeploy: read %s: %w", topic, err)
	}
	return out, nil
}

// Latest returns the decodable message with the highest Seq on topic (not
// verified), or ErrNoPack.
func Latest(ctx context.Context, cfg kafkaio.Config, topic string) (*Message, error) {
	h, err := History(ctx, cfg, topic)
	if err != nil {
		return nil, err
	}
	var best *Message
	for _, e := range h {
		if e.Message != nil && (best == nil || e.Message.Seq >= best.Seq) {
			best = e.Message
		}
	}
	if best == nil {
		return nil, ErrNoPack
	}
	return best, nil
}

// Follower reads partition 0 of the rules topic from its start and then
// waits for new messages.
type Follower struct {
	r *kafka.Reader
}

// Follow returns a Follower of topic, which must exist (see EnsureTopic).
func Follow(cfg kafkaio.Config, topic string) (*Follower, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     cfg.Brokers,
		Topic:       topic,
		Partition:   0,
		Dialer:      cfg.ReaderDialer(),
		MinBytes:    1,
		MaxBytes:    MaxMessageBytes + 64<<10,
		MaxWait:     500 * time.Millisecond,
		StartOffset: kafka.FirstOffset,
	})
	return &Follower{r: r}, nil
}

// Next returns the next message: decoded, or with the decode error.
// Tombstones are skipped. It blocks until one arrives or ctx ends.
func (f *Follower) Next(ctx context.Context) (Entry, error) {
	for {
		km, err := f.r.ReadMessage(ctx)
		if err != nil {
			return Entry{}, err
		}
		if len(km.Value) == 0 {
			continue
		}
		m, err := Decode(km.Value)
		return Entry{Offset: km.Offset, Message: m, Err: err}, nil
	}
}

// Close releases the Follower's connections, waiting at most 5 s.
func (f *Follower) Close() error {
	return kafkaio.CloseWithin("rules follower", 5*time.Second, f.r.Close)
}

// highWater returns the high-water mark of partition 0 of topic; the error
// wraps kafka.UnknownTopicOrPartition when the topic is missing.
func highWater(ctx context.Context, cfg kafkaio.Config, topic string) (int64, error) {
	hwm, err := kafkaio.EndOffset(ctx, cfg, topic, 0)
	if err != nil {
		return 0, fmt.Errorf("ruledeploy: %w", err)
	}
	return hwm, nil
}

// End returns the offset after the newest message of partition 0 of topic
// (its high-water mark); a follower has caught up once it has read the
// message at End − 1.
func End(ctx context.Context, cfg kafkaio.Config, topic string) (int64, error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	return highWater(ctx, cfg, topic)
}

// LatestValid returns the message with the highest Seq on topic that
// verifies with pub and compiles to its checksum — the pack detectors with
// pub run — or ErrNoPack.
func LatestValid(ctx context.Context, cfg kafkaio.Config, topic string, pub ed25519.PublicKey) (*Message, error) {
	h, err := History(ctx, cfg, topic)
	if err != nil {
		return nil, err
	}
	var best *Message
	for _, e := range h {
		m := e.Message
		if m == nil || best != nil && m.Seq <= best.Seq || Verify(m, pub) != nil {
			continue
		}
		if _, err := m.Pack(); err == nil {
			best = m
		}
	}
	if best == nil {
		return nil, ErrNoPack
	}
	return best, nil
}
