package kafkaio_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/embedkafka"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/testenv"
)

// Group timings for tests: the embedded broker accepts sessions from 100 ms.
func consumerConfig(b *embedkafka.Broker, group string, topics ...string) kafkaio.ConsumerConfig {
	return kafkaio.ConsumerConfig{
		Config:            kafkaio.Config{Brokers: b.Addrs(), ClientID: "kafkaio-test"},
		GroupID:           group,
		Topics:            topics,
		MaxWait:           20 * time.Millisecond,
		SessionTimeout:    2 * time.Second,
		HeartbeatInterval: 100 * time.Millisecond,
		RebalanceTimeout:  3 * time.Second,
	}
}

func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// msg builds message id of key; its value says "id key seq" and is padded to
// size bytes.
func msg(id int, key string, seq, size int) kafka.Message {
	v := fmt.Sprintf("%07d %s %07d ", id, key, seq)
	if len(v) < size {
		v += strings.Repeat("x", size-len(v))
	}
	return kafka.Message{Key: []byte(key), Value: []byte(v)}
}

type parsed struct {
	id  int
	key string
	seq int
}

func parse(t testing.TB, m kafka.Message) parsed {
	f := strings.Fields(string(m.Value))
	if len(f) < 3 {
		t.Fatalf("bad value %q", m.Value)
	}
	id, _ := strconv.Atoi(f[0])
	seq, _ := strconv.Atoi(f[2])
	return parsed{id: id, key: f[1], seq: seq}
}

// produce writes n messages over keys distinct keys (ids from first) with
// one Writer, in chunks.
func produce(t testing.TB, b *embedkafka.Broker, topic string, first, n, keys int) {
	t.Helper()
	w := kafkaio.NewWriter(kafkaio.Config{Brokers: b.Addrs()}, topic)
	defer w.Close()
	seq := map[string]int{}
	var chunk []kafka.Message
	for i := first; i < first+n; i++ {
		k := fmt.Sprintf("actor-%04d", i%keys)
		chunk = append(chunk, msg(i, k, seq[k], 0))
		seq[k]++
		if len(chunk) == 2000 || i == first+n-1 {
			if err := w.Write(timeout(t, 20*time.Second), chunk...); err != nil {
				t.Fatalf("Write: %v", err)
			}
			chunk = nil
		}
	}
}

// sink collects what handlers saw.
type sink struct {
	mu      sync.Mutex
	msgs    []kafka.Message
	ids     map[int]int // id → times seen
	changed chan struct{}
}

func newSink() *sink { return &sink{ids: map[int]int{}, changed: make(chan struct{}, 1)} }

func (s *sink) add(t testing.TB, batch []kafka.Message) {
	s.mu.Lock()
	for _, m := range batch {
		s.msgs = append(s.msgs, m)
		s.ids[parse(t, m).id]++
	}
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *sink) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// waitDistinct waits until the sink saw n distinct ids.
func (s *sink) waitDistinct(t testing.TB, n int, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for s.distinct() < n {
		select {
		case <-s.changed:
		case <-deadline:
			t.Fatalf("saw %d distinct messages after %v, want %d", s.distinct(), d, n)
		}
	}
}

// run starts c.Run in the background; stop cancels it and returns its error.
func run(t testing.TB, c *kafkaio.Consumer, h kafkaio.Handler) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(15 * time.Second):
				err = errors.New("Run did not return")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func newConsumer(t testing.TB, cfg kafkaio.ConsumerConfig) *kafkaio.Consumer {
	t.Helper()
	c, err := kafkaio.NewConsumer(cfg)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRoundTrip10k(t *testing.T) {
	const topic, n, keys = "roundtrip", 10_000, 100
	b := testenv.Kafka(t, map[string]int{topic: 6})
	produce(t, b, topic, 0, n, keys)

	cfg := consumerConfig(b, "rt", topic)
	c := newConsumer(t, cfg)
	s := newSink()
	stop := run(t, c, func(_ context.Context, batch []kafka.Message) error {
		if len(batch) > kafkaio.DefaultMaxBatch {
			return fmt.Errorf("batch of %d > MaxBatch", len(batch))
		}
		s.add(t, batch)
		return nil
	})
	s.waitDistinct(t, n, 30*time.Second)
	time.Sleep(100 * time.Millisecond) // room for a stray redelivery
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) != n {
		t.Errorf("handled %d messages, want exactly %d", len(s.msgs), n)
	}
	for id, times := range s.ids {
		if times != 1 {
			t.Errorf("message %d handled %d times", id, times)
		}
	}
	partOf := map[string]int{}
	lastSeq := map[string]int{}
	usedParts := map[int]bool{}
	hash := &kafka.Hash{}
	for _, m := range s.msgs {
		p := parse(t, m)
		if string(m.Key) != p.key || m.Topic != topic {
			t.Fatalf("message %d: key %q topic %q", p.id, m.Key, m.Topic)
		}
		if want := hash.Balance(kafka.Message{Key: m.Key}, 0, 1, 2, 3, 4, 5); m.Partition != want {
			t.Errorf("key %s on partition %d, Hash balancer says %d", p.key, m.Partition, want)
		}
		if prev, ok := partOf[p.key]; ok && prev != m.Partition {
			t.Errorf("key %s on partitions %d and %d", p.key, prev, m.Partition)
		}
		partOf[p.key] = m.Partition
		usedParts[m.Partition] = true
		if prev, ok := lastSeq[p.key]; ok && p.seq != prev+1 {
			t.Errorf("key %s: seq %d after %d", p.key, p.seq, prev)
		} else if !ok && p.seq != 0 {
			t.Errorf("key %s starts at seq %d", p.key, p.seq)
		}
		lastSeq[p.key] = p.seq
	}
	if len(usedParts) != 6 {
		t.Errorf("messages on %d partitions, want 6", len(usedParts))
	}
}

var errInjected = errors.New("injected handler failure")

func TestAtLeastOnceAfterHandlerFailure(t *testing.T) {
	const topic, n = "alo", 1000
	b := testenv.Kafka(t, map[string]int{topic: 6})
	produce(t, b, topic, 0, n, 50)

	cfg := consumerConfig(b, "alo", topic)
	cfg.MaxBatch = 50
	c1 := newConsumer(t, cfg)
	committed := map[int]bool{} // handled by c1 in batches that returned nil
	failed := map[int]bool{}
	batches := 0
	err := c1.Run(timeout(t, 30*time.Second), func(_ context.Context, batch []kafka.Message) error {
		batches++
		if batches == 5 {
			for _, m := range batch {
				failed[parse(t, m).id] = true
			}
			return errInjected
		}
		for _, m := range batch {
			committed[parse(t, m).id] = true
		}
		return nil
	})
	if !errors.Is(err, errInjected) {
		t.Fatalf("Run returned %v, want the handler's error", err)
	}
	if len(failed) == 0 || len(committed) == 0 {
		t.Fatalf("committed %d, failed %d", len(committed), len(failed))
	}
	if err := c1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	c2 := newConsumer(t, cfg)
	s := newSink()
	stop := run(t, c2, func(_ context.Context, batch []kafka.Message) error {
		s.add(t, batch)
		return nil
	})
	s.waitDistinct(t, n-len(committed), 20*time.Second)
	time.Sleep(100 * time.Millisecond)
	stop()

	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range failed {
		if s.ids[id] == 0 {
			t.Errorf("message %d of the failed batch was not delivered again", id)
		}
	}
	for id := 0; id < n; id++ {
		if !committed[id] && s.ids[id] == 0 {
			t.Errorf("message %d lost", id)
		}
		if committed[id] && s.ids[id] > 0 {
			t.Errorf("message %d was committed by the first consumer but delivered again", id)
		}
	}
}

func TestRestartResumesAfterCommit(t *testing.T) {
	const topic = "restart"
	b := testenv.Kafka(t, map[string]int{topic: 6})
	produce(t, b, topic, 0, 300, 30)
	cfg := consumerConfig(b, "restart", topic)

	c1 := newConsumer(t, cfg)
	s1 := newSink()
	stop := run(t, c1, func(_ context.Context, batch []kafka.Message) error { s1.add(t, batch); return nil })
	s1.waitDistinct(t, 300, 20*time.Second)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if err := c1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	produce(t, b, topic, 300, 100, 30)
	c2 := newConsumer(t, cfg)
	s2 := newSink()
	stop = run(t, c2, func(_ context.Context, batch []kafka.Message) error { s2.add(t, batch); return nil })
	s2.waitDistinct(t, 100, 20*time.Second)
	time.Sleep(200 * time.Millisecond)
	stop()
	s2.mu.Lock()
	defer s2.mu.Unlock()
	for id, times := range s2.ids {
		if id < 300 {
			t.Errorf("committed message %d delivered again after a clean restart", id)
		}
		if times != 1 {
			t.Errorf("message %d seen %d times", id, times)
		}
	}
}

func TestTwoConsumersSplitPartitions(t *testing.T) {
	const topic = "split"
	b := testenv.Kafka(t, map[string]int{topic: 6})
	cfg := consumerConfig(b, "split", topic)

	type rec struct {
		who  int
		part int
		id   int
	}
	var mu sync.Mutex
	var recs []rec
	all := newSink()
	handler := func(who int) kafkaio.Handler {
		return func(_ context.Context, batch []kafka.Message) error {
			mu.Lock()
			for _, m := range batch {
				recs = append(recs, rec{who, m.Partition, parse(t, m).id})
			}
			mu.Unlock()
			all.add(t, batch)
			return nil
		}
	}
	// Member 1 alone owns every partition first.
	run(t, newConsumer(t, cfg), handler(1))
	const perRound = 120
	produce(t, b, topic, 0, perRound, perRound)
	all.waitDistinct(t, perRound, 20*time.Second)
	next := perRound

	// Member 2 joins: the group rebalances. Produce in rounds until one
	// round is split between both members with disjoint partitions covering
	// all six (the group then is stable).
	joined := time.Now()
	run(t, newConsumer(t, cfg), handler(2))
	deadline := time.Now().Add(25 * time.Second)
	for round := 1; ; round++ {
		if time.Now().After(deadline) {
			t.Fatalf("no stable split after %d rounds", round)
		}
		mu.Lock()
		recs = recs[:0]
		mu.Unlock()
		produce(t, b, topic, next, perRound, perRound)
		next += perRound
		all.waitDistinct(t, next, 20*time.Second)
		mu.Lock()
		owners := map[int]map[int]bool{1: {}, 2: {}}
		for _, r := range recs {
			if r.id >= next-perRound {
				owners[r.who][r.part] = true
			}
		}
		mu.Unlock()
		p1, p2 := slices.Sorted(maps.Keys(owners[1])), slices.Sorted(maps.Keys(owners[2]))
		disjoint := true
		for _, p := range p1 {
			if owners[2][p] {
				disjoint = false
			}
		}
		if len(p1) > 0 && len(p2) > 0 && disjoint && len(p1)+len(p2) == 6 {
			t.Logf("round %d, %v after member 2 started: member 1 has partitions %v, member 2 has %v",
				round, time.Since(joined).Round(time.Millisecond), p1, p2)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Together they saw every message (waitDistinct above); a rebalance
	// may deliver some twice (at-least-once).
	all.mu.Lock()
	dups := 0
	for _, times := range all.ids {
		dups += times - 1
	}
	all.mu.Unlock()
	t.Logf("%d messages, %d redeliveries across rebalances", next, dups)
}

func TestHandledBatchIsCommittedWhenRunIsCancelled(t *testing.T) {
	const topic = "cancel"
	b := testenv.Kafka(t, map[string]int{topic: 1})
	produce(t, b, topic, 0, 100, 1)
	cfg := consumerConfig(b, "cancel", topic)
	cfg.MaxBatch = 40

	c1 := newConsumer(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var handled []int
	err := c1.Run(ctx, func(_ context.Context, batch []kafka.Message) error {
		for _, m := range batch {
			handled = append(handled, parse(t, m).id)
		}
		cancel() // shutdown begins while the batch is done
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want context.Canceled", err)
	}
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	if len(handled) == 0 {
		t.Fatal("nothing handled")
	}

	c2 := newConsumer(t, cfg)
	s := newSink()
	stop := run(t, c2, func(_ context.Context, batch []kafka.Message) error { s.add(t, batch); return nil })
	s.waitDistinct(t, 100-len(handled), 20*time.Second)
	time.Sleep(100 * time.Millisecond)
	stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range handled {
		if s.ids[id] > 0 {
			t.Errorf("message %d was handled before the cancel but delivered again", id)
		}
	}
}

func TestEnsureTopicsUnreachable(t *testing.T) {
	b, err := embedkafka.Start(embedkafka.Options{})
	if err != nil {
		testenv.Unavailable(t, "Kafka broker", err)
	}
	addrs := b.Addrs()
	b.Close() // nothing listens there now
	start := time.Now()
	err = kafkaio.EnsureTopics(timeout(t, 2*time.Second), kafkaio.Config{Brokers: addrs}, 1, "t")
	if err == nil {
		t.Fatal("EnsureTopics succeeded without a broker")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("EnsureTopics took %v despite a 2 s context", took)
	}
	t.Logf("error: %v", err)
}

func TestLag(t *testing.T) {
	const topic, n = "lag", 1000
	b := testenv.Kafka(t, map[string]int{topic: 6})
	produce(t, b, topic, 0, n, n)
	cfg := consumerConfig(b, "lag", topic)
	cfg.MaxBatch = 50
	c := newConsumer(t, cfg)
	if l := c.Lag(); len(l) != 0 {
		t.Fatalf("Lag before fetching: %v", l)
	}
	s := newSink()
	var mu sync.Mutex
	maxLag := int64(0)
	var negative []string
	run(t, c, func(_ context.Context, batch []kafka.Message) error {
		mu.Lock()
		for tp, parts := range c.Lag() {
			for p, l := range parts {
				if l < 0 {
					negative = append(negative, fmt.Sprintf("%s/%d=%d", tp, p, l))
				}
				maxLag = max(maxLag, l)
			}
		}
		mu.Unlock()
		time.Sleep(time.Millisecond) // let lag build up
		s.add(t, batch)
		return nil
	})
	s.waitDistinct(t, n, 20*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(negative) > 0 {
		t.Errorf("negative lag: %v", negative)
	}
	if maxLag == 0 {
		t.Errorf("lag never above 0 while 1000 messages were consumed 50 at a time")
	}
	lag := c.Lag()
	if len(lag[topic]) != 6 {
		t.Errorf("lag for %d partitions, want 6: %v", len(lag[topic]), lag)
	}
	for p, l := range lag[topic] {
		if l != 0 {
			t.Errorf("partition %d lag %d after catching up, want 0", p, l)
		}
	}
}

func TestCloseBoundedWhenBrokerGone(t *testing.T) {
	const topic = "gone"
	b, err := embedkafka.Start(embedkafka.Options{Topics: map[string]int{topic: 2}})
	if err != nil {
		testenv.Unavailable(t, "Kafka broker", err)
	}
	defer b.Close()
	const closeTimeout = 1500 * time.Millisecond
	base := kafkaio.Config{Brokers: b.Addrs(), CloseTimeout: closeTimeout, WriteTimeout: 2 * time.Second}

	w := kafkaio.NewWriter(base, topic)
	if err := w.Write(timeout(t, 10*time.Second), msg(0, "k", 0, 10)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	cfg := consumerConfig(b, "gone", topic)
	cfg.Config = base
	c, err := kafkaio.NewConsumer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newSink()
	runErr := make(chan error, 1)
	go func() {
		runErr <- c.Run(context.Background(), func(_ context.Context, batch []kafka.Message) error { s.add(t, batch); return nil })
	}()
	s.waitDistinct(t, 1, 10*time.Second)

	// A write in flight while the broker goes away keeps kafka-go retrying.
	w2 := kafkaio.NewWriter(base, topic)
	if err := w2.Write(timeout(t, 10*time.Second), msg(1, "k", 1, 10)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	b.Close()
	go w2.Write(context.Background(), msg(2, "k", 2, 10))
	time.Sleep(50 * time.Millisecond)

	for name, closer := range map[string]func() error{"writer": w.Close, "busy writer": w2.Close, "consumer": c.Close} {
		start := time.Now()
		err := closer()
		took := time.Since(start)
		t.Logf("%s Close took %v: %v", name, took.Round(time.Millisecond), err)
		if took > closeTimeout+500*time.Millisecond {
			t.Errorf("%s Close took %v, want at most CloseTimeout %v + slack", name, took, closeTimeout)
		}
		if err != nil && !errors.Is(err, kafkaio.ErrCloseTimeout) {
			t.Errorf("%s Close: %v", name, err)
		}
	}
	select {
	case err := <-runErr:
		t.Logf("Run returned %v", err)
	case <-time.After(5 * time.Second):
		// kafka-go's Close gave up (ErrCloseTimeout) and Run is still
		// blocked inside kafka-go: acceptable, the service is exiting.
		t.Log("Run still blocked after Close timed out")
	}
}

func TestDeadLetterThroughBroker(t *testing.T) {
	topics := kafkaio.DefaultTopics()
	b := testenv.Kafka(t, map[string]int{topics.Events: 3, topics.DeadLetter: 1})
	base := kafkaio.Config{Brokers: b.Addrs()}

	w := kafkaio.NewWriter(base, topics.Events)
	defer w.Close()
	orig := kafka.Message{Key: []byte("actor-7"), Value: []byte{0xff, 0x00, '{', 'b', 'a', 'd'}, Headers: []kafka.Header{{Key: "trace", Value: []byte("abc")}}}
	if err := w.Write(timeout(t, 10*time.Second), orig); err != nil {
		t.Fatal(err)
	}

	// Read the original back to get its coordinates, dead-letter it.
	got := make(chan kafka.Message, 1)
	c := newConsumer(t, consumerConfig(b, "dlq-src", topics.Events))
	stop := run(t, c, func(_ context.Context, batch []kafka.Message) error { got <- batch[0]; return nil })
	var src kafka.Message
	select {
	case src = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("original not consumed")
	}
	stop()
	long := strings.Repeat("é", 1000) // 2000 bytes
	dlw := kafkaio.NewWriter(base, topics.DeadLetter)
	defer dlw.Close()
	if err := dlw.Write(timeout(t, 10*time.Second), kafkaio.DeadLetter(src, "decode_error", long)); err != nil {
		t.Fatal(err)
	}

	dc := newConsumer(t, consumerConfig(b, "dlq-reader", topics.DeadLetter))
	got2 := make(chan kafka.Message, 1)
	run(t, dc, func(_ context.Context, batch []kafka.Message) error { got2 <- batch[0]; return nil })
	var dl kafka.Message
	select {
	case dl = <-got2:
	case <-time.After(10 * time.Second):
		t.Fatal("dead letter not consumed")
	}
	if string(dl.Value) != string(orig.Value) || string(dl.Key) != string(orig.Key) {
		t.Errorf("dead letter key/value %q/%q, want the original %q/%q", dl.Key, dl.Value, orig.Key, orig.Value)
	}
	if v, ok := kafkaio.HeaderString(dl, "trace"); !ok || v != "abc" {
		t.Errorf("original header lost: %q %v", v, ok)
	}
	info, ok := kafkaio.DeadLetterInfo(dl)
	if !ok {
		t.Fatalf("DeadLetterInfo: not a dead letter; headers %v", dl.Headers)
	}
	if info.Reason != "decode_error" || info.SourceTopic != topics.Events || info.SourcePartition != src.Partition || info.SourceOffset != src.Offset {
		t.Errorf("info %+v, source %s/%d@%d", info, src.Topic, src.Partition, src.Offset)
	}
	if len(info.Detail) > kafkaio.MaxDLQDetail || !strings.HasPrefix(long, info.Detail) || len(info.Detail) < kafkaio.MaxDLQDetail-1 {
		t.Errorf("detail of %d bytes, want the first ≤%d bytes of the text", len(info.Detail), kafkaio.MaxDLQDetail)
	}
	if time.Since(info.Time) > time.Minute || info.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("dlq time %v", info.Time)
	}
}

func TestEnsureTopics(t *testing.T) {
	b := testenv.Kafka(t, map[string]int{"existing": 2})
	cfg := kafkaio.Config{Brokers: b.Addrs()}
	all := append(kafkaio.DefaultTopics().All(), "existing")
	ctx := timeout(t, 20*time.Second)
	if err := kafkaio.EnsureTopics(ctx, cfg, 6, all...); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
	if err := kafkaio.EnsureTopics(ctx, cfg, 6, all...); err != nil {
		t.Fatalf("EnsureTopics again: %v", err)
	}
	conn, err := kafka.DialContext(ctx, "tcp", b.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, topic := range all {
		parts, err := conn.ReadPartitions(topic)
		want := 6
		if topic == "existing" {
			want = 2
		}
		if err != nil || len(parts) != want {
			t.Errorf("%s: %v, %d partitions, want %d", topic, err, len(parts), want)
		}
	}
	// A Writer may produce right away.
	w := kafkaio.NewWriter(cfg, kafkaio.DefaultTopics().Findings)
	defer w.Close()
	if err := w.Write(ctx, kafka.Message{Key: []byte("a"), Value: []byte("b")}); err != nil {
		t.Fatalf("Write after EnsureTopics: %v", err)
	}
}

func TestWriterRefusesMissingTopicAndForeignMessages(t *testing.T) {
	b := testenv.Kafka(t, map[string]int{"present": 1})
	cfg := kafkaio.Config{Brokers: b.Addrs()}

	w := kafkaio.NewWriter(cfg, "present")
	defer w.Close()
	if err := w.Write(timeout(t, 5*time.Second), kafka.Message{Topic: "other", Value: []byte("x")}); err == nil {
		t.Error("a message for another topic was accepted")
	}
	if err := w.Write(timeout(t, 5*time.Second), kafka.Message{Topic: "present", Value: []byte("x")}); err != nil {
		t.Errorf("a message naming the Writer's topic: %v", err)
	}

	missing := kafkaio.NewWriter(cfg, "absent")
	defer missing.Close()
	err := missing.Write(timeout(t, 3*time.Second), kafka.Message{Value: []byte("x")})
	if err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("write to a missing topic: %v, want an error naming it", err)
	}
	// (Not Conn.ReadPartitions: it asks the broker to auto-create topics.)
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(b.Addrs()...), Transport: tr}
	md, merr := cl.Metadata(timeout(t, 5*time.Second), &kafka.MetadataRequest{Topics: []string{"absent"}})
	if merr != nil {
		t.Fatal(merr)
	}
	if len(md.Topics) != 1 || !errors.Is(md.Topics[0].Error, kafka.UnknownTopicOrPartition) {
		t.Errorf("the Writer auto-created the topic: %+v", md.Topics)
	}

	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(timeout(t, time.Second), kafka.Message{Value: []byte("x")}); !errors.Is(err, kafkaio.ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
}
