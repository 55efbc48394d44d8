package kafkaio_test

import (
	"context"
	"errors"
	"log"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/kafkaio"
)

// engine stands for a per-partition detection engine.
type engine struct{ replaying bool }

func (e *engine) apply(m kafka.Message) {
	// Update windows; emit findings only when !e.replaying.
}

type engineWorker struct{ e *engine }

func (w engineWorker) Handle(_ context.Context, batch []kafka.Message) error {
	for _, m := range batch {
		w.e.apply(m)
	}
	return nil // the batch is committed
}

func (w engineWorker) Close() error { return nil }

// A stateful consumer rebuilds each assigned partition's state from the log:
// from the timestamp of the last committed message minus the state's horizon
// up to the committed offset, with emission suppressed, then continues live.
func ExampleGroupConsumer() {
	const horizon = 2 * time.Hour // longest window + allowed lateness
	cfg := kafkaio.ConsumerConfig{
		Config:  kafkaio.Config{Brokers: []string{"localhost:9092"}},
		GroupID: "leakline-detector",
		Topics:  []string{"dlp.events"},
	}
	gc, err := kafkaio.NewGroupConsumer(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer gc.Close()

	factory := func(ctx context.Context, a kafkaio.Assignment) (kafkaio.PartitionWorker, error) {
		e := &engine{replaying: true}
		if a.Committed > 0 { // kafka.FirstOffset (-2) when the group never committed
			last, err := kafkaio.MessageAt(ctx, cfg.Config, a.Topic, a.Partition, a.Committed-1)
			switch {
			case errors.Is(err, kafkaio.ErrNoMessage):
				// Deleted by retention: consumption restarts at the log
				// start, with nothing before it to rebuild from.
			case err != nil:
				return nil, err
			default:
				err := kafkaio.ReplayRange(ctx, cfg.Config, a.Topic, a.Partition,
					last.Time.Add(-horizon), a.Committed, func(m kafka.Message) error {
						e.apply(m)
						return nil
					})
				if err != nil {
					return nil, err
				}
			}
		}
		e.replaying = false
		return engineWorker{e}, nil
	}
	if err := gc.Run(context.Background(), factory); err != nil {
		log.Print(err)
	}
}
