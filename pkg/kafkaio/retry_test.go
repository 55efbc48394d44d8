package kafkaio_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/leakline/leakline/pkg/embedkafka"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/metrics"
	"github.com/leakline/leakline/pkg/testenv"
)

// realNetErrors returns errors as the operating system gives them: a dial
// to a port nobody listens on, and a read on a connection this side closed.
func realNetErrors(t *testing.T) (refused, closed error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, refused = net.DialTimeout("tcp", addr, time.Second); refused == nil {
		t.Fatalf("dial %s: connected to a closed port", addr)
	}

	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, closed = c.Read(make([]byte, 1)); closed == nil {
		t.Fatal("read on a closed connection succeeded")
	}
	return refused, closed
}

func TestClassify(t *testing.T) {
	refused, closed := realNetErrors(t)
	deadline, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-deadline.Done()
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()

	tests := []struct {
		name      string
		err       error
		kind      kafkaio.ErrorKind
		transient bool
	}{
		{"nil", nil, "", false},
		{"connection refused", refused, kafkaio.KindConnection, true},
		{"connection refused, wrapped", fmt.Errorf("kafka.(*Client).Metadata: %w", refused), kafkaio.KindConnection, true},
		{"use of closed network connection", closed, kafkaio.KindConnection, true},
		{"closed connection, chain lost by %v", fmt.Errorf("commit: %v", closed), kafkaio.KindConnection, true},
		{"EOF", io.EOF, kafkaio.KindConnection, true},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), kafkaio.KindConnection, true},
		{"deadline exceeded", deadline.Err(), kafkaio.KindTimeout, true},
		{"request timed out", kafka.RequestTimedOut, kafkaio.KindTimeout, true},
		{"broker not available", kafka.BrokerNotAvailable, kafkaio.KindUnavailable, true},
		{"leader not available", fmt.Errorf("produce: %w", kafka.LeaderNotAvailable), kafkaio.KindUnavailable, true},
		{"not leader for partition", kafka.NotLeaderForPartition, kafkaio.KindUnavailable, true},
		{"not coordinator", kafka.NotCoordinatorForGroup, kafkaio.KindCoordinator, true},
		{"coordinator not available", kafka.GroupCoordinatorNotAvailable, kafkaio.KindCoordinator, true},
		{"coordinator loading", kafka.GroupLoadInProgress, kafkaio.KindCoordinator, true},
		{"rebalance in progress", kafka.RebalanceInProgress, kafkaio.KindRebalance, true},
		{"illegal generation", kafka.IllegalGeneration, kafkaio.KindRebalance, true},
		{"unknown member", kafka.UnknownMemberId, kafkaio.KindRebalance, true},
		{"SASL authentication failed", kafka.SASLAuthenticationFailed, kafkaio.KindAuth, false},
		{"topic authorization failed", fmt.Errorf("fetch: %w", kafka.TopicAuthorizationFailed), kafkaio.KindAuth, false},
		{"group authorization failed", kafka.GroupAuthorizationFailed, kafkaio.KindAuth, false},
		{"unknown CA", &net.OpError{Op: "remote error", Err: x509.UnknownAuthorityError{}}, kafkaio.KindAuth, false},
		{"certificate for another host", x509.HostnameError{Host: "kafka.example", Certificate: &x509.Certificate{}}, kafkaio.KindAuth, false},
		{"unknown topic", kafka.UnknownTopicOrPartition, kafkaio.KindUnknownTopic, false},
		{"invalid session timeout", kafka.InvalidSessionTimeout, kafkaio.KindConfig, false},
		{"message too large", kafka.MessageSizeTooLarge, kafkaio.KindConfig, false},
		{"closed client", fmt.Errorf("write: %w", kafkaio.ErrClosed), kafkaio.KindClosed, false},
		{"closed kafka-go writer", io.ErrClosedPipe, kafkaio.KindClosed, false},
		{"canceled", canceled.Err(), kafkaio.KindCanceled, false},
		{"other", errors.New("something else"), kafkaio.KindOther, false},
		{"write errors, all transient", kafka.WriteErrors{nil, kafka.LeaderNotAvailable, refused}, kafkaio.KindUnavailable, true},
		{"write errors, one fatal", kafka.WriteErrors{refused, kafka.TopicAuthorizationFailed, nil}, kafkaio.KindAuth, false},
		{"write errors, wrapped", fmt.Errorf("write: %w", kafka.WriteErrors{nil, io.EOF}), kafkaio.KindConnection, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind := kafkaio.Classify(tt.err)
			if kind != tt.kind {
				t.Errorf("Classify(%v) = %q, want %q", tt.err, kind, tt.kind)
			}
			if kind.Transient() != tt.transient {
				t.Errorf("%q.Transient() = %v, want %v", kind, kind.Transient(), tt.transient)
			}
		})
	}
}

// TestClientsRideOutBrokerRestart stops the broker under a running Consumer
// and a Writer, for longer than the group session timeout, and starts it
// again on the same data directory and address: the Writer's Write waits and
// succeeds, the Consumer's Run keeps going and hands every message over,
// Health reports the outage while it lasts and nothing after, and the
// errors are counted by kind.
func TestClientsRideOutBrokerRestart(t *testing.T) {
	const topic = "restart"
	dir := t.TempDir()
	b, err := embedkafka.Start(embedkafka.Options{DataDir: dir, Topics: map[string]int{topic: 2}})
	if err != nil {
		testenv.Unavailable(t, "Kafka broker", err)
	}
	t.Cleanup(func() { b.Close() })
	addr := b.Addrs()[0]

	cfg := consumerConfig(b, "restart", topic)
	cfg.WriteTimeout = 2 * time.Second
	var logs logCapture
	cfg.Logger = slog.New(&logs)
	c := newConsumer(t, cfg)
	s := newSink()
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() {
		runErr <- c.Run(ctx, func(_ context.Context, batch []kafka.Message) error { s.add(t, batch); return nil })
	}()
	t.Cleanup(func() { cancel(); <-runErr })

	w := kafkaio.NewWriter(cfg.Config, topic)
	t.Cleanup(func() { w.Close() })
	write := func(ctx context.Context, first, n int) error {
		msgs := make([]kafka.Message, n)
		for i := range msgs {
			msgs[i] = msg(first+i, fmt.Sprintf("actor-%d", i%7), i, 0)
		}
		return w.Write(ctx, msgs...)
	}
	if err := write(timeout(t, 10*time.Second), 0, 200); err != nil {
		t.Fatalf("Write: %v", err)
	}
	s.waitDistinct(t, 200, 20*time.Second)
	errorsBefore := testenv.MetricSum(t, metrics.KafkaErrors)

	b.Close()
	written := make(chan error, 1)
	go func() { written <- write(timeout(t, 60*time.Second), 200, 100) }()
	// Longer than the session timeout: the group rebalances on return.
	deadline := time.Now().Add(cfg.SessionTimeout + 2*time.Second)
	sawOutage := false
	for time.Now().Before(deadline) {
		if kafkaio.Health() != nil {
			sawOutage = true
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !sawOutage {
		t.Error("Health reported no outage while the broker was down")
	}
	select {
	case err := <-written:
		t.Fatalf("Write returned while the broker was down: %v", err)
	case err := <-runErr:
		t.Fatalf("Run returned while the broker was down: %v", err)
	default:
	}

	b2, err := embedkafka.Start(embedkafka.Options{Addr: addr, DataDir: dir})
	if err != nil {
		t.Fatalf("restart the broker on %s: %v", addr, err)
	}
	t.Cleanup(func() { b2.Close() })
	if err := <-written; err != nil {
		t.Fatalf("Write across the outage: %v", err)
	}
	s.waitDistinct(t, 300, 30*time.Second)
	waitHealthy := time.Now().Add(15 * time.Second)
	for kafkaio.Health() != nil && time.Now().Before(waitHealthy) {
		time.Sleep(100 * time.Millisecond)
	}
	if err := kafkaio.Health(); err != nil {
		t.Errorf("Health after the broker came back: %v", err)
	}
	select {
	case err := <-runErr:
		t.Fatalf("Run returned: %v", err)
	default:
	}
	grew := testenv.MetricSum(t, metrics.KafkaErrors) - errorsBefore
	if grew == 0 {
		t.Error("no Kafka client error was counted")
	}
	s.mu.Lock()
	again := 0
	for _, n := range s.ids {
		again += n - 1
	}
	s.mu.Unlock()
	t.Logf("%g client errors counted; %d of 300 messages delivered more than once (at-least-once)", grew, again)

	// Each failing operation logged once when it started failing and once
	// when it worked again, however many attempts failed.
	started, ended := map[string]int{}, map[string]int{}
	for _, l := range logs.lines() {
		op, _, _ := strings.Cut(strings.TrimPrefix(l, "kafkaio: "), " ")
		switch {
		case strings.Contains(l, " failing; waiting for the broker"):
			started[op]++
		case strings.Contains(l, " works again"), strings.Contains(l, " given up while failing"):
			ended[op]++
		}
	}
	if started["write"] != 1 || ended["write"] != 1 {
		t.Errorf("the Writer logged %d outage starts and %d ends, want 1 and 1", started["write"], ended["write"])
	}
	for op, n := range started {
		if n != 1 || ended[op] != 1 {
			t.Errorf("%s: %d outage starts and %d ends logged, want 1 and 1", op, n, ended[op])
		}
	}
	if t.Failed() {
		for _, l := range logs.lines() {
			t.Log(l)
		}
	}
}

// refuseCommits makes b answer every offset commit with NOT_COORDINATOR (a
// transient error) while refusing is set; refused counts the refusals.
func refuseCommits(b *embedkafka.Broker) (refusing *atomic.Bool, refused *atomic.Int64) {
	const notCoordinator = 16 // Kafka's NOT_COORDINATOR error code
	refusing, refused = new(atomic.Bool), new(atomic.Int64)
	refusing.Store(true)
	b.Cluster().ControlKey(int16(kmsg.OffsetCommit), func(r kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster().KeepControl()
		if !refusing.Load() {
			return nil, nil, false
		}
		req := r.(*kmsg.OffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, notCoordinator
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		refused.Add(1)
		return resp, nil, true
	})
	return refusing, refused
}

// TestConsumerHoldsBatchWhileCommitsFail makes the broker refuse every
// offset commit (NOT_COORDINATOR, a transient error) while fetches work: a
// Consumer (and a GroupConsumer) handles one batch, then fetches nothing
// more while it retries the commit (it holds one batch, however much is
// waiting), reports the outage and logs it once; once commits are accepted
// again it commits that batch, goes on, and hands every message over
// exactly once; a new member of the group then starts after the last
// message.
func TestConsumerHoldsBatchWhileCommitsFail(t *testing.T) {
	// start runs a consumer of cfg handing batches to s; stop stops it and
	// leaves the group.
	type starter func(t *testing.T, cfg kafkaio.ConsumerConfig, s *sink, batches *atomic.Int64) (stop func() error)
	consumer := func(t *testing.T, cfg kafkaio.ConsumerConfig, s *sink, batches *atomic.Int64) func() error {
		c := newConsumer(t, cfg)
		stop := run(t, c, func(_ context.Context, batch []kafka.Message) error {
			batches.Add(1)
			s.add(t, batch)
			return nil
		})
		return func() error { err := stop(); c.Close(); return err }
	}
	group := func(t *testing.T, cfg kafkaio.ConsumerConfig, s *sink, batches *atomic.Int64) func() error {
		stop, _ := runGroup(t, newGroupConsumer(t, cfg), func(context.Context, kafkaio.Assignment) (kafkaio.PartitionWorker, error) {
			return batchCounter{countingWorker{t, s}, batches}, nil
		})
		return stop // Run leaves the group when it returns
	}
	for _, tc := range []struct {
		name  string
		start starter
	}{{"Consumer", consumer}, {"GroupConsumer", group}} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "nocommit-" + tc.name
			b, err := embedkafka.Start(embedkafka.Options{Topics: map[string]int{topic: 1}})
			if err != nil {
				testenv.Unavailable(t, "Kafka broker", err)
			}
			t.Cleanup(func() { b.Close() })
			produce(t, b, topic, 0, 50, 5)
			refusing, refused := refuseCommits(b)

			cfg := consumerConfig(b, "nocommit", topic)
			cfg.MaxBatch = 10
			var logs logCapture
			cfg.Logger = slog.New(&logs)
			s := newSink()
			var batches atomic.Int64
			stop := tc.start(t, cfg, s, &batches)
			s.waitDistinct(t, 1, 20*time.Second)
			for deadline := time.Now().Add(20 * time.Second); refused.Load() < 4; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("only %d commits refused", refused.Load())
				}
			}
			time.Sleep(time.Second) // a consumer that went on fetching would hand over more now
			held := s.distinct()
			if n := batches.Load(); n != 1 || held > cfg.MaxBatch {
				t.Fatalf("handled %d batches (%d messages) while no commit went through, want 1 batch of ≤ %d", n, held, cfg.MaxBatch)
			}
			if err := kafkaio.Health(); err == nil || !strings.Contains(err.Error(), "commit (coordinator") {
				t.Errorf("Health while commits fail: %v, want the commit outage", err)
			}

			refusing.Store(false)
			s.waitDistinct(t, 50, 30*time.Second)
			s.mu.Lock()
			for id, n := range s.ids {
				if n != 1 {
					t.Errorf("message %d handed over %d times, want once", id, n)
				}
			}
			s.mu.Unlock()
			if err := kafkaio.Health(); err != nil {
				t.Errorf("Health after commits work again: %v", err)
			}
			if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("Run: %v", err)
			}
			var warned, recovered int
			for _, l := range logs.lines() {
				warned += strings.Count(l, "kafkaio: commit failing;")
				recovered += strings.Count(l, "kafkaio: commit works again")
			}
			if warned != 1 || recovered != 1 {
				t.Errorf("logged %d commit outage starts and %d recoveries for %d refused commits, want 1 and 1", warned, recovered, refused.Load())
			}

			// Everything was committed: a new member starts after message 49.
			produce(t, b, topic, 50, 1, 5)
			next := newSink()
			tc.start(t, cfg, next, new(atomic.Int64))
			next.waitDistinct(t, 1, 20*time.Second)
			time.Sleep(200 * time.Millisecond)
			next.mu.Lock()
			defer next.mu.Unlock()
			if len(next.ids) != 1 || next.ids[50] != 1 {
				t.Errorf("a new member got %v, want only message 50", next.ids)
			}
			t.Logf("%d commits refused; %d of 50 messages handed over meanwhile (one batch)", refused.Load(), held)
		})
	}
}

// batchCounter counts the batches its worker handles.
type batchCounter struct {
	countingWorker
	n *atomic.Int64
}

func (w batchCounter) Handle(ctx context.Context, batch []kafka.Message) error {
	w.n.Add(1)
	return w.countingWorker.Handle(ctx, batch)
}
