package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/metrics"
)

// writerBatchSize is the most messages one produce request carries for one
// partition (kafka-go's default is 100). A synchronous Write of fewer
// messages per partition waits Config.BatchTimeout before sending.
const writerBatchSize = 500

// writerAttempts is how often kafka-go tries a produce request before Write
// sees the error and retries it with its own backoff.
const writerAttempts = 3

// ErrClosed is returned by a Writer or Consumer used after Close.
var ErrClosed = errors.New("kafkaio: closed")

// Writer produces to one topic. It is a kafka.Writer with acks from all
// in-sync replicas, the Hash balancer (equal keys go to the same partition,
// so the events of one actor stay in order; messages without a key are
// spread round robin), a batch timeout of a few milliseconds and no topic
// auto-creation. A Writer is safe for concurrent use; concurrent Writes are
// batched together.
//
// Note: kafka.Hash (FNV-1a) places keys differently from the Java client's
// murmur2 partitioner; every producer of a topic must use the same balancer
// for per-key ordering to hold.
type Writer struct {
	topic string
	w     *kafka.Writer
	tr    *kafka.Transport
	cfg   Config
	err   error // invalid config

	outage *outage // transient write failures

	// closing ends with Close; it stops the retries of Writes in progress.
	closing     context.Context
	closeWrites context.CancelFunc

	closeOnce sync.Once
	closeErr  error
}

// NewWriter returns a Writer for topic. An invalid config is reported by the
// first Write.
func NewWriter(cfg Config, topic string) *Writer {
	wr := &Writer{topic: topic}
	if err := cfg.Validate(); err != nil {
		wr.err = err
	} else if topic == "" {
		wr.err = errors.New("kafkaio: NewWriter: empty topic")
	}
	cfg = cfg.withDefaults()
	wr.cfg = cfg
	wr.outage = newOutage("write", cfg.Logger, "topic", topic)
	wr.closing, wr.closeWrites = context.WithCancel(context.Background())
	wr.tr = cfg.transport()
	info, errLog := quietKafkaLoggers(cfg.Logger, "component", "kafkaio.writer", "topic", topic)
	wr.w = &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Brokers...),
		Topic:                  topic,
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		BatchSize:              writerBatchSize,
		BatchTimeout:           cfg.BatchTimeout,
		WriteTimeout:           cfg.WriteTimeout,
		ReadTimeout:            cfg.WriteTimeout,
		AllowAutoTopicCreation: false,
		// kafka-go retries a failed produce itself (leader moves); Write
		// waits out longer outages with backoff, logging and readiness.
		MaxAttempts:     writerAttempts,
		WriteBackoffMin: retryMin,
		WriteBackoffMax: time.Second,
		Transport:       wr.tr,
		Logger:          info,
		ErrorLogger:     errLog,
	}
	return wr
}

// Topic returns the topic the Writer produces to.
func (w *Writer) Topic() string { return w.topic }

// Write produces msgs and returns once every one of them is acknowledged by
// all in-sync replicas, or with an error naming the topic. Leave Message.Topic
// empty (or equal to the Writer's topic).
//
// A broker that goes away is waited for: a write failing with a transient
// error (see Classify) is retried, for the messages not acknowledged yet,
// with exponential backoff and jitter until it succeeds or ctx ends; the
// outage is logged once when it starts and once when writes work again,
// counted in leakline_kafka_errors_total and reported by Health meanwhile.
// A fatal error (authorization, a missing topic, a message too large) is
// returned at once. On error some messages may have been written; if ctx
// ends first, Write returns an error wrapping ctx.Err() but kafka-go may
// still write the messages afterwards. Retries (these and the caller's) can
// therefore duplicate messages. The byte slices of msgs must not be modified
// until Write returned.
func (w *Writer) Write(ctx context.Context, msgs ...kafka.Message) error {
	if w.err != nil {
		return w.err
	}
	if len(msgs) == 0 {
		return nil
	}
	copied := false
	for i := range msgs {
		switch msgs[i].Topic {
		case "":
		case w.topic:
			// kafka-go refuses a topic on both Writer and Message.
			if !copied {
				msgs = append([]kafka.Message(nil), msgs...)
				copied = true
			}
			msgs[i].Topic = ""
		default:
			return fmt.Errorf("kafkaio: write to %s: message %d is for topic %q", w.topic, i, msgs[i].Topic)
		}
	}
	total := len(msgs)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(w.closing, cancel)()
	err := w.outage.retry(rctx, func(ctx context.Context) error {
		err := w.w.WriteMessages(ctx, msgs...)
		msgs = unwritten(msgs, err)
		return err
	})
	if n := total - len(msgs); n > 0 {
		metrics.Produced.WithLabelValues(w.topic).Add(float64(n))
	}
	if err != nil {
		if errors.Is(err, io.ErrClosedPipe) || (w.closing.Err() != nil && ctx.Err() == nil) {
			err = errors.Join(ErrClosed, err)
		}
		return fmt.Errorf("kafkaio: write %d messages to %s (%d not acknowledged): %w", total, w.topic, len(msgs), err)
	}
	return nil
}

// unwritten returns the messages a WriteMessages that returned err did not
// write: those with an error in kafka.WriteErrors, or all of them.
func unwritten(msgs []kafka.Message, err error) []kafka.Message {
	if err == nil {
		return nil
	}
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) || len(werrs) != len(msgs) {
		return msgs
	}
	out := make([]kafka.Message, 0, werrs.Count())
	for i, e := range werrs {
		if e != nil {
			out = append(out, msgs[i])
		}
	}
	return out
}

// Close flushes pending messages and releases the Writer's connections. It
// returns after at most Config.CloseTimeout (with an error wrapping
// ErrCloseTimeout when kafka-go did not finish: a write to an unreachable
// broker keeps retrying in the background). Close is idempotent.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.closeWrites()
		w.outage.abandon()
		w.closeErr = closeBounded("writer for "+w.topic, w.cfg.CloseTimeout, w.w.Close)
		w.tr.CloseIdleConnections()
	})
	return w.closeErr
}
