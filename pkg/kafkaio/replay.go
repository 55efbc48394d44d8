package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// ErrNoMessage is wrapped by the error of MessageAt when the partition holds
// no message at the offset: it is outside the partition's [log start,
// high-water mark) range, or it was compacted away or is a transaction
// marker.
var ErrNoMessage = errors.New("kafkaio: no message at offset")

// Limits of the direct partition reads of ReplayRange and MessageAt.
const (
	replayMaxBytes   = 1 << 20 // per fetch; Kafka still returns a larger first record batch whole
	replayMaxRetries = 5       // consecutive retriable failures before giving up
	replayMaxIdle    = 10      // consecutive fetches without progress before giving up
)

// ReplayRange reads partition of topic from the first message with a
// timestamp ≥ from (found with a ListOffsets request by time) up to, not
// including, offset end, and calls fn for each message, in offset order. If
// from is zero it starts at the partition's earliest offset.
//
// Kafka timestamps need not grow with offsets (producers set them; Leakline's
// normalizer stamps the event time). The range starts at the first offset
// whose timestamp is ≥ from, so every message before end with a timestamp ≥
// from is delivered, and so is every message after that first one, whatever
// its timestamp. If no message has a timestamp ≥ from, fn is not called.
// Messages already deleted by retention are skipped. An end beyond the
// partition's high-water mark is an error (nothing waits for new messages).
//
// fn's error stops the replay and is returned wrapped. ReplayRange connects
// to the partition leader directly (no consumer group, nothing is committed,
// a missing topic is not auto-created) and retries transient errors (leader
// changes, broken connections) a few times, resuming after the last message
// delivered.
func ReplayRange(ctx context.Context, cfg Config, topic string, partition int, from time.Time, end int64, fn func(kafka.Message) error) error {
	if err := checkPartitionArgs(cfg, topic, partition); err != nil {
		return err
	}
	if fn == nil {
		return errors.New("kafkaio: ReplayRange: nil fn")
	}
	if end < 0 {
		return fmt.Errorf("kafkaio: ReplayRange: negative end offset %d", end)
	}
	pl := newPartitionLog(cfg.withDefaults(), topic, partition)
	defer pl.release()

	first, last, err := pl.offsets(ctx)
	if err != nil {
		return err
	}
	if end > last {
		return fmt.Errorf("kafkaio: replay %s: end offset %d beyond the high-water mark %d", pl, end, last)
	}
	start := first
	if !from.IsZero() {
		off, err := pl.offsetAt(ctx, from)
		if err != nil {
			return err
		}
		if off < 0 {
			return nil // no message with a timestamp ≥ from
		}
		start = max(off, first)
	}
	return pl.read(ctx, start, end, fn)
}

// MessageAt returns the message at offset off of partition of topic, e.g. to
// learn the timestamp of the last committed message (at Assignment.Committed
// − 1). The error wraps ErrNoMessage if there is none.
func MessageAt(ctx context.Context, cfg Config, topic string, partition int, off int64) (kafka.Message, error) {
	if err := checkPartitionArgs(cfg, topic, partition); err != nil {
		return kafka.Message{}, err
	}
	pl := newPartitionLog(cfg.withDefaults(), topic, partition)
	defer pl.release()

	first, last, err := pl.offsets(ctx)
	if err != nil {
		return kafka.Message{}, err
	}
	if off < first || off >= last {
		return kafka.Message{}, fmt.Errorf("kafkaio: %s: offset %d outside the partition's range [%d, %d): %w",
			pl, off, first, last, ErrNoMessage)
	}
	var found *kafka.Message
	err = pl.read(ctx, off, off+1, func(m kafka.Message) error {
		found = &m
		return nil
	})
	if err != nil {
		return kafka.Message{}, err
	}
	if found == nil {
		return kafka.Message{}, fmt.Errorf("kafkaio: %s: offset %d: %w", pl, off, ErrNoMessage)
	}
	return *found, nil
}

func checkPartitionArgs(cfg Config, topic string, partition int) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if topic == "" {
		return errors.New("kafkaio: empty topic name")
	}
	if partition < 0 {
		return fmt.Errorf("kafkaio: negative partition %d", partition)
	}
	return nil
}

// partitionLog reads one partition over a connection to its leader, which it
// (re)dials as needed.
type partitionLog struct {
	cfg       Config
	topic     string
	partition int
	tr        *kafka.Transport // for metadata
	conn      *kafka.Conn      // to the leader; nil until dialled
}

func newPartitionLog(cfg Config, topic string, partition int) *partitionLog {
	return &partitionLog{cfg: cfg, topic: topic, partition: partition}
}

func (p *partitionLog) String() string { return fmt.Sprintf("%s/%d", p.topic, p.partition) }

func (p *partitionLog) close() {
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
}

func (p *partitionLog) release() {
	p.close()
	if p.tr != nil {
		p.tr.CloseIdleConnections()
	}
}

// dialLeader looks the partition's leader up and connects to it. It asks for
// metadata with a kafka.Client, which (unlike kafka.Dialer.DialLeader and
// Conn.ReadPartitions) does not ask the broker to auto-create the topic.
func (p *partitionLog) dialLeader(ctx context.Context) (*kafka.Conn, error) {
	if p.tr == nil {
		p.tr = p.cfg.transport()
		p.tr.MetadataTTL = 100 * time.Millisecond // see leader changes on redial
	}
	cl := &kafka.Client{Addr: kafka.TCP(p.cfg.Brokers...), Timeout: p.cfg.WriteTimeout, Transport: p.tr}
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{p.topic}})
	if err != nil {
		return nil, err
	}
	for _, t := range md.Topics {
		if t.Name != p.topic {
			continue
		}
		if t.Error != nil {
			return nil, t.Error
		}
		for _, part := range t.Partitions {
			switch {
			case part.ID != p.partition:
				continue
			case part.Error != nil:
				return nil, part.Error
			case part.Leader.Host == "":
				return nil, kafka.LeaderNotAvailable
			}
			return p.cfg.dialer().DialPartition(ctx, "tcp", "", part)
		}
	}
	return nil, kafka.UnknownTopicOrPartition
}

// do runs op on a connection to the leader, within WriteTimeout (plus a fetch
// wait) and ctx. A connection that failed other than with a Kafka error
// code is dropped, to be redialled by the next do.
func (p *partitionLog) do(ctx context.Context, op func(*kafka.Conn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.conn == nil {
		dctx, cancel := context.WithTimeout(ctx, p.cfg.WriteTimeout)
		conn, err := p.dialLeader(dctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("dial the leader: %w", err)
		}
		p.conn = conn
	}
	c := p.conn
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.SetDeadline(time.Now().Add(p.cfg.WriteTimeout + fetchMaxWait)); err != nil {
		p.close()
		return err
	}
	err := op(c)
	if ctx.Err() != nil {
		p.close()
		return ctx.Err()
	}
	var kerr kafka.Error
	if err != nil && !errors.As(err, &kerr) {
		p.close()
	}
	return err
}

// retry runs op until it succeeds, fails permanently, or failed
// replayMaxRetries times in a row with a retriable error.
func (p *partitionLog) retry(ctx context.Context, what string, op func(*kafka.Conn) error) error {
	for attempt := 0; ; attempt++ {
		err := p.do(ctx, op)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if !retriable(err) || attempt+1 >= replayMaxRetries {
			return fmt.Errorf("kafkaio: %s: %s: %w", p, what, err)
		}
		if !sleepCtx(ctx, backoffDelay(attempt)) {
			return ctx.Err()
		}
	}
}

// offsets returns the partition's first offset and high-water mark.
func (p *partitionLog) offsets(ctx context.Context) (first, last int64, err error) {
	err = p.retry(ctx, "list offsets", func(c *kafka.Conn) error {
		var err error
		first, last, err = c.ReadOffsets()
		return err
	})
	return first, last, err
}

// offsetAt returns the first offset whose message has a timestamp ≥ t, or
// -1 if there is none.
func (p *partitionLog) offsetAt(ctx context.Context, t time.Time) (off int64, err error) {
	err = p.retry(ctx, "list offsets by time", func(c *kafka.Conn) error {
		var err error
		off, err = c.ReadOffset(t)
		return err
	})
	return off, err
}

// read calls fn for each message from offset start up to, not including,
// end.
func (p *partitionLog) read(ctx context.Context, start, end int64, fn func(kafka.Message) error) error {
	off := start
	failures, idle := 0, 0
	for off < end {
		var fnErr error
		next := off
		err := p.do(ctx, func(c *kafka.Conn) error {
			if _, err := c.Seek(off, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
				return err
			}
			b := c.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: replayMaxBytes, MaxWait: fetchMaxWait})
			for {
				if ctx.Err() != nil {
					break
				}
				m, err := b.ReadMessage()
				if err != nil || m.Offset >= end {
					break
				}
				if fnErr = fn(m); fnErr != nil {
					break
				}
			}
			// The offset after the last message read (or past a
			// compacted tail of the batch).
			next = b.Offset()
			return b.Close()
		})
		if fnErr != nil {
			return fmt.Errorf("kafkaio: replay %s: at offset %d: %w", p, next-1, fnErr)
		}
		progressed := next > off
		if progressed {
			off, failures, idle = next, 0, 0
		}
		switch {
		case err == nil:
			if !progressed {
				if idle++; idle >= replayMaxIdle {
					return fmt.Errorf("kafkaio: replay %s: no progress at offset %d (end %d)", p, off, end)
				}
			}
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, kafka.OffsetOutOfRange):
			// Retention deleted the messages from off on while reading.
			first, _, oerr := p.offsets(ctx)
			if oerr != nil {
				return oerr
			}
			if off < first {
				off = first
				continue
			}
		case retriable(err) && failures+1 < replayMaxRetries:
			failures++
			if !sleepCtx(ctx, backoffDelay(failures)) {
				return ctx.Err()
			}
			continue
		}
		return fmt.Errorf("kafkaio: replay %s: fetch at offset %d: %w", p, off, err)
	}
	return nil
}

// retriable tells whether a partition read may succeed when tried again,
// possibly on a new connection.
func retriable(err error) bool {
	var kerr kafka.Error
	if errors.As(err, &kerr) {
		return kerr.Temporary()
	}
	return true // connection-level: redial
}

func backoffDelay(attempt int) time.Duration {
	return min(50*time.Millisecond<<attempt, time.Second)
}

// sleepCtx sleeps d or until ctx ends; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
