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
	tr := transport(cfg)
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: timeoutOr(cfg.WriteTimeout, 10*time.Second), Transport: tr}
	resp, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic:             topic,
		NumPartitions:     1,
		ReplicationFactor: max(cfg.ReplicationFactor, 1),
		ConfigEntries:     append([]kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}, extra...),
	}}})
	if err != nil {
		return fmt.Errorf("ruledeploy: create topic %s: %w", topic, err)
	}
	if err := resp.Errors[topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("ruledeploy: create topic %s: %w", topic, err)
	}
	return kafkaio.EnsureTopics(ctx, cfg, 1, topic)
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
	tr := transport(cfg)
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Brokers...),
		Topic:                  topic,
		Balancer:               kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 }),
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           time.Millisecond,
		BatchBytes:             MaxMessageBytes + 64<<10,
		WriteTimeout:           timeoutOr(cfg.WriteTimeout, 30*time.Second),
		AllowAutoTopicCreation: false,
		Transport:              tr,
	}
	err = w.WriteMessages(ctx, kafka.Message{Key: []byte(MessageKey), Value: b, Time: m.Time})
	closeErr := closeWithin(w, timeoutOr(cfg.CloseTimeout, 5*time.Second))
	if err != nil {
		return fmt.Errorf("ruledeploy: publish pack %s seq %d to %s: %w", m.Version, m.Seq, topic, err)
	}
	return closeErr
}

// History reads partition 0 of topic from its start to its current end and
// returns every message on it (compaction may have removed deploys older
// than 30 days that a newer one superseded), oldest first. A missing topic
// has no history.
func History(ctx context.Context, cfg kafkaio.Config, topic string) ([]Entry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hwm, err := highWater(ctx, cfg, topic)
	if errors.Is(err, kafka.UnknownTopicOrPartition) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Entry
	if hwm == 0 {
		return nil, nil
	}
	err = kafkaio.ReplayRange(ctx, cfg, topic, 0, time.Time{}, hwm, func(km kafka.Message) error {
		if len(km.Value) == 0 {
			return nil // tombstone
		}
		m, err := Decode(km.Value)
		out = append(out, Entry{Offset: km.Offset, Message: m, Err: err})
		return nil
	})
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
		Dialer:      dialer(cfg),
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
	done := make(chan error, 1)
	go func() { done <- f.r.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		return fmt.Errorf("ruledeploy: closing the follower: %w", kafkaio.ErrCloseTimeout)
	}
}

// highWater returns the high-water mark of partition 0 of topic.
func highWater(ctx context.Context, cfg kafkaio.Config, topic string) (int64, error) {
	tr := transport(cfg)
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: timeoutOr(cfg.WriteTimeout, 10*time.Second), Transport: tr}
	resp, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(0)}}})
	if err != nil {
		return 0, fmt.Errorf("ruledeploy: list offsets of %s: %w", topic, err)
	}
	ps := resp.Topics[topic]
	if len(ps) == 0 {
		return 0, fmt.Errorf("ruledeploy: list offsets of %s: %w", topic, kafka.UnknownTopicOrPartition)
	}
	if ps[0].Error != nil {
		return 0, fmt.Errorf("ruledeploy: list offsets of %s: %w", topic, ps[0].Error)
	}
	return ps[0].LastOffset, nil
}

func closeWithin(w *kafka.Writer, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- w.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("ruledeploy: closing the writer: %w", kafkaio.ErrCloseTimeout)
	}
}

func timeoutOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// transport builds a kafka-go Transport from the config's dialer settings.
func transport(cfg kafkaio.Config) *kafka.Transport {
	t := &kafka.Transport{ClientID: cfg.ClientID, DialTimeout: 5 * time.Second}
	if t.ClientID == "" {
		t.ClientID = kafkaio.DefaultClientID
	}
	if d := cfg.Dialer; d != nil {
		t.TLS, t.SASL = d.TLS, d.SASLMechanism
		if d.Timeout > 0 {
			t.DialTimeout = d.Timeout
		}
		if d.DialFunc != nil {
			t.Dial = d.DialFunc
		}
	}
	return t
}

// dialer returns the kafka-go Dialer of a Reader.
func dialer(cfg kafkaio.Config) *kafka.Dialer {
	if cfg.Dialer != nil {
		d := *cfg.Dialer
		if d.ClientID == "" {
			d.ClientID = cfg.ClientID
		}
		return &d
	}
	id := cfg.ClientID
	if id == "" {
		id = kafkaio.DefaultClientID
	}
	return &kafka.Dialer{ClientID: id, Timeout: 5 * time.Second, DualStack: true}
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
