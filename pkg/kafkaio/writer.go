package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/metrics"
)

// writerBatchSize is the most messages one produce request carries for one
// partition (kafka-go's default is 100). A synchronous Write of fewer
// messages per partition waits Config.BatchTimeout before sending.
const writerBatchSize = 500

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
	wr.tr = cfg.transport()
	info, errLog := kafkaLoggers(cfg.Logger, "component", "kafkaio.writer", "topic", topic)
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
		Transport:              wr.tr,
		Logger:                 info,
		ErrorLogger:            errLog,
	}
	return wr
}

// Topic returns the topic the Writer produces to.
func (w *Writer) Topic() string { return w.topic }

// Write produces msgs and returns once every one of them is acknowledged by
// all in-sync replicas, or with an error naming the topic. Leave Message.Topic
// empty (or equal to the Writer's topic). On error some messages may have been
// written (errors.As the error to kafka.WriteErrors to see which failed); if
// ctx ends first, Write returns ctx.Err() but kafka-go may still write the
// messages afterwards. Either way a retry can duplicate messages. The byte
// slices of msgs must not be modified until Write returned.
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
	if err := w.w.WriteMessages(ctx, msgs...); err != nil {
		if errors.Is(err, io.ErrClosedPipe) {
			err = ErrClosed
		}
		return fmt.Errorf("kafkaio: write %d messages to %s: %w", len(msgs), w.topic, err)
	}
	metrics.Produced.WithLabelValues(w.topic).Add(float64(len(msgs)))
	return nil
}

// Close flushes pending messages and releases the Writer's connections. It
// returns after at most Config.CloseTimeout (with an error wrapping
// ErrCloseTimeout when kafka-go did not finish: a write to an unreachable
// broker keeps retrying in the background). Close is idempotent.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.closeErr = closeBounded("writer for "+w.topic, w.cfg.CloseTimeout, w.w.Close)
		w.tr.CloseIdleConnections()
	})
	return w.closeErr
}
