package kafkaio_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/testenv"
)

// keyFor returns a key the Hash balancer puts on partition p of n.
func keyFor(p, n int) string {
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	for i := 0; ; i++ {
		k := fmt.Sprintf("actor-%d", i)
		if (&kafka.Hash{}).Balance(kafka.Message{Key: []byte(k)}, parts...) == p {
			return k
		}
	}
}

func TestReplayRangeByTimestamp(t *testing.T) {
	const topic, n = "replay", 100
	b := testenv.Kafka(t, map[string]int{topic: 2})
	cfg := kafkaio.Config{Brokers: b.Addrs()}
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }

	// Partition 1: messages 0..99 at base+i s, except message 50, a late
	// event stamped base+10 s. Partition 0 gets other messages at the same
	// times, which must not appear.
	key1, key0 := keyFor(1, 2), keyFor(0, 2)
	var msgs []kafka.Message
	for i := range n {
		m := msg(i, key1, i, 0)
		m.Time = at(i)
		if i == 50 {
			m.Time = at(10)
		}
		o := msg(1000+i, key0, i, 0)
		o.Time = at(i)
		msgs = append(msgs, m, o)
	}
	w := kafkaio.NewWriter(cfg, topic)
	defer w.Close()
	if err := w.Write(timeout(t, 20*time.Second), msgs...); err != nil {
		t.Fatal(err)
	}

	replay := func(from time.Time, end int64) ([]int, error) {
		var ids []int
		var last int64 = -1
		err := kafkaio.ReplayRange(timeout(t, 10*time.Second), cfg, topic, 1, from, end, func(m kafka.Message) error {
			if m.Partition != 1 || m.Topic != topic || m.Offset <= last {
				return fmt.Errorf("message %s/%d@%d after offset %d", m.Topic, m.Partition, m.Offset, last)
			}
			last = m.Offset
			ids = append(ids, parse(t, m).id)
			return nil
		})
		return ids, err
	}
	span := func(lo, hi int) []int { // lo..hi-1
		var ids []int
		for i := lo; i < hi; i++ {
			ids = append(ids, i)
		}
		return ids
	}

	for _, tc := range []struct {
		name string
		from time.Time
		end  int64
		want []int
	}{
		// The first offset stamped ≥ base+30 s is 30; the late message 50
		// (stamped base+10 s) lies after it and is delivered too.
		{"mid time to offset", at(30), 70, span(30, 70)},
		{"between timestamps", at(30).Add(-time.Millisecond), 70, span(30, 70)},
		{"zero time", time.Time{}, 70, span(0, 70)},
		{"to the high-water mark", at(95), n, span(95, n)},
		{"before the first message", base.Add(-time.Hour), 5, span(0, 5)},
		{"after every timestamp", at(n + 1), n, nil},
		{"start beyond end", at(30), 20, nil},
		{"empty range", time.Time{}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := replay(tc.from, tc.end)
			if err != nil {
				t.Fatalf("ReplayRange: %v", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("replayed %v, want %v", got, tc.want)
			}
		})
	}

	// The late message's timestamp is below from but it follows the first
	// message at or after from.
	got, err := replay(at(45), 55)
	if err != nil || !slices.Equal(got, span(45, 55)) {
		t.Errorf("replay around the late message: %v, %v", got, err)
	}

	if _, err := replay(time.Time{}, n+1); err == nil {
		t.Error("ReplayRange beyond the high-water mark succeeded")
	} else {
		t.Logf("beyond the high-water mark: %v", err)
	}

	errStop := errors.New("stop here")
	var seen []int64
	err = kafkaio.ReplayRange(timeout(t, 10*time.Second), cfg, topic, 1, time.Time{}, n, func(m kafka.Message) error {
		seen = append(seen, m.Offset)
		if m.Offset == 7 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) || len(seen) != 8 {
		t.Errorf("fn error: ReplayRange returned %v after %d messages, want errStop after 8", err, len(seen))
	}

	m, err := kafkaio.MessageAt(timeout(t, 10*time.Second), cfg, topic, 1, 42)
	if err != nil {
		t.Fatalf("MessageAt: %v", err)
	}
	if p := parse(t, m); p.id != 42 || m.Offset != 42 || m.Partition != 1 || !m.Time.Equal(at(42)) || string(m.Key) != key1 {
		t.Errorf("MessageAt(42) = id %d offset %d partition %d time %v key %q", p.id, m.Offset, m.Partition, m.Time, m.Key)
	}
	if m, err := kafkaio.MessageAt(timeout(t, 10*time.Second), cfg, topic, 1, 50); err != nil || !m.Time.Equal(at(10)) {
		t.Errorf("MessageAt(50): %v at %v, want the late stamp %v", err, m.Time, at(10))
	}
	for _, off := range []int64{-1, n, n + 10} {
		if _, err := kafkaio.MessageAt(timeout(t, 10*time.Second), cfg, topic, 1, off); !errors.Is(err, kafkaio.ErrNoMessage) {
			t.Errorf("MessageAt(%d): %v, want ErrNoMessage", off, err)
		}
	}
}

func TestReplayRangeLarge(t *testing.T) {
	// Many fetches: more than one fetch's worth of bytes (1 MiB).
	const topic, n, size = "replay-large", 6000, 400
	b := testenv.Kafka(t, map[string]int{topic: 1})
	cfg := kafkaio.Config{Brokers: b.Addrs()}
	w := kafkaio.NewWriter(cfg, topic)
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = msg(i, "k", i, size)
	}
	if err := w.Write(timeout(t, 20*time.Second), msgs...); err != nil {
		t.Fatal(err)
	}
	next := 0
	start := time.Now()
	err := kafkaio.ReplayRange(timeout(t, 20*time.Second), cfg, topic, 0, time.Time{}, n-1, func(m kafka.Message) error {
		if id := parse(t, m).id; id != next || m.Offset != int64(next) {
			return fmt.Errorf("got id %d at offset %d, want %d", id, m.Offset, next)
		}
		next++
		return nil
	})
	if err != nil || next != n-1 {
		t.Fatalf("ReplayRange: %v after %d messages, want %d", err, next, n-1)
	}
	t.Logf("replayed %d messages of %d B in %v", next, size, time.Since(start).Round(time.Millisecond))
}

func TestReplayRangeCancelled(t *testing.T) {
	const topic = "replay-cancel"
	b := testenv.Kafka(t, map[string]int{topic: 1})
	cfg := kafkaio.Config{Brokers: b.Addrs()}
	produce(t, b, topic, 0, 100, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := kafkaio.ReplayRange(ctx, cfg, topic, 0, time.Time{}, 100, func(m kafka.Message) error {
		if m.Offset == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ReplayRange after cancel: %v, want context.Canceled", err)
	}
	if err := kafkaio.ReplayRange(context.Background(), cfg, topic, -1, time.Time{}, 1, func(kafka.Message) error { return nil }); err == nil {
		t.Error("negative partition accepted")
	}
}

func TestReplayRangeMissingTopic(t *testing.T) {
	b := testenv.Kafka(t, nil)
	cfg := kafkaio.Config{Brokers: b.Addrs()}
	start := time.Now()
	err := kafkaio.ReplayRange(timeout(t, 10*time.Second), cfg, "absent", 0, time.Time{}, 1, func(kafka.Message) error { return nil })
	if !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Errorf("ReplayRange of a missing topic: %v, want UnknownTopicOrPartition", err)
	}
	t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if _, err := kafkaio.MessageAt(timeout(t, 10*time.Second), cfg, "absent", 0, 0); err == nil {
		t.Error("MessageAt of a missing topic succeeded")
	}
	if err := kafkaio.Ping(timeout(t, 5*time.Second), cfg, "absent"); err == nil {
		t.Error("the topic was auto-created")
	}
}
