package kafkaio_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/testenv"
)

// BenchmarkWriterConsumer measures, on the embedded broker over TCP, how fast
// a Writer produces ~400 B messages (4 goroutines sharing one Writer, 1000
// messages per Write) and how fast a group Consumer then consumes and commits
// them. It reports produce-msgs/s and consume-msgs/s (from the first batch,
// so not counting the group join); ns/op covers both phases and the join. Run with e.g. -bench WriterConsumer -benchtime 200000x.
var benchRuns atomic.Int64

func BenchmarkWriterConsumer(b *testing.B) {
	const (
		size     = 400
		keys     = 1000
		chunk    = 1000
		writers  = 4
		poolSize = 8 * chunk
	)
	br := testenv.Kafka(b, nil)
	cfg := kafkaio.Config{Brokers: br.Addrs()}
	pool := make([]kafka.Message, poolSize)
	for i := range pool {
		pool[i] = msg(i, fmt.Sprintf("actor-%04d", i%keys), i/keys, size)
	}

	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	topic := fmt.Sprintf("bench-%d-%d", benchRuns.Add(1), b.N)
	if err := kafkaio.EnsureTopics(context.Background(), cfg, 6, topic); err != nil {
		b.Fatal(err)
	}
	w := kafkaio.NewWriter(cfg, topic)
	defer w.Close()
	b.StartTimer()

	// Produce b.N messages.
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := next.Add(chunk) - chunk
				if from >= int64(b.N) {
					return
				}
				n := min(int64(chunk), int64(b.N)-from)
				off := int(from % poolSize)
				if off+int(n) > poolSize {
					off = 0
				}
				if err := w.Write(context.Background(), pool[off:off+int(n)]...); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	produced := time.Since(start)
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}

	// Consume and commit them.
	ccfg := kafkaio.ConsumerConfig{Config: cfg, GroupID: "bench-" + topic, Topics: []string{topic}}
	c, err := kafkaio.NewConsumer(ccfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var got int
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = c.Run(ctx, func(_ context.Context, batch []kafka.Message) error {
		if got == 0 {
			start = time.Now() // after joining the group
		}
		got += len(batch)
		if got >= b.N {
			cancel()
		}
		return nil
	})
	consumed := time.Since(start)
	b.StopTimer()
	if got < b.N {
		b.Fatalf("consumed %d of %d: %v", got, b.N, err)
	}
	b.ReportMetric(float64(b.N)/produced.Seconds(), "produce-msgs/s")
	b.ReportMetric(float64(b.N)/consumed.Seconds(), "consume-msgs/s")
}
