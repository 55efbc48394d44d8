package kafkaio_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/embedkafka"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/testenv"
)

// groupLog records what the workers of one or more GroupConsumers saw and
// checks the invariants every worker must observe:
//   - at most one worker holds a partition at a time, across members;
//   - a worker's factory sees Committed equal to the offset after the last
//     batch any earlier worker's Handle accepted (what was committed);
//   - a worker gets its partition's offsets contiguously from Committed,
//     never concurrently.
type groupLog struct {
	t *testing.T

	mu        sync.Mutex
	owner     map[int]string // partition → member whose worker holds it
	through   map[int]int64  // partition → offset after the last accepted batch
	seen      map[int]int    // message id → times handled (accepted)
	calls     []factoryCall
	closes    int
	problems  []string
	changed   chan struct{}
	byID      map[int]kafka.Message // first accepted delivery of each id
	handledBy map[int][]string      // id → members that handled it
}

type factoryCall struct {
	member string
	a      kafkaio.Assignment
	want   int64 // the Committed expected
}

func newGroupLog(t *testing.T) *groupLog {
	return &groupLog{
		t: t, owner: map[int]string{}, through: map[int]int64{}, seen: map[int]int{},
		changed: make(chan struct{}, 1), byID: map[int]kafka.Message{}, handledBy: map[int][]string{},
	}
}

func (l *groupLog) problem(format string, args ...any) {
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
}

func (l *groupLog) notify() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// hook lets a test intercept a batch before the worker accepts it; a non-nil
// error is returned by Handle (and the batch is not recorded).
type hook func(ctx context.Context, w *testWorker, batch []kafka.Message) error

// factory returns the WorkerFactory of member.
func (l *groupLog) factory(member string, h hook) kafkaio.WorkerFactory {
	return func(ctx context.Context, a kafkaio.Assignment) (kafkaio.PartitionWorker, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		want := int64(kafka.FirstOffset)
		if th, ok := l.through[a.Partition]; ok {
			want = th
		}
		l.calls = append(l.calls, factoryCall{member: member, a: a, want: want})
		if a.Committed != want {
			l.problem("%s: partition %d assigned with Committed %d, want %d", member, a.Partition, a.Committed, want)
		}
		if o, ok := l.owner[a.Partition]; ok {
			l.problem("%s: partition %d assigned while %s's worker still holds it", member, a.Partition, o)
		}
		l.owner[a.Partition] = member
		next := a.Committed
		if next == kafka.FirstOffset {
			next = 0
		}
		l.notify()
		return &testWorker{l: l, member: member, a: a, next: next, hook: h}, nil
	}
}

type testWorker struct {
	l      *groupLog
	member string
	a      kafkaio.Assignment
	hook   hook
	busy   atomic.Bool
	next   int64 // the offset the next batch must start at
	closed atomic.Bool
}

func (w *testWorker) Handle(ctx context.Context, batch []kafka.Message) error {
	if !w.busy.CompareAndSwap(false, true) {
		w.l.mu.Lock()
		w.l.problem("%s: concurrent Handle on partition %d", w.member, w.a.Partition)
		w.l.mu.Unlock()
	}
	defer w.busy.Store(false)
	w.l.mu.Lock()
	if w.closed.Load() {
		w.l.problem("%s: Handle after Close on partition %d", w.member, w.a.Partition)
	}
	for i, m := range batch {
		if m.Topic != w.a.Topic || m.Partition != w.a.Partition {
			w.l.problem("%s: worker of %s/%d got %s/%d", w.member, w.a.Topic, w.a.Partition, m.Topic, m.Partition)
		}
		if m.Offset != w.next+int64(i) {
			w.l.problem("%s: partition %d: message %d of the batch at offset %d, want %d",
				w.member, w.a.Partition, i, m.Offset, w.next+int64(i))
		}
	}
	w.l.mu.Unlock()
	if w.hook != nil {
		if err := w.hook(ctx, w, batch); err != nil {
			w.next = batch[0].Offset // delivered again only to a next worker
			return err
		}
	}
	w.l.mu.Lock()
	for _, m := range batch {
		id := parse(w.l.t, m).id
		if w.l.seen[id] == 0 {
			w.l.byID[id] = m
		}
		w.l.seen[id]++
		w.l.handledBy[id] = append(w.l.handledBy[id], w.member)
	}
	w.next = batch[len(batch)-1].Offset + 1
	w.l.through[w.a.Partition] = w.next
	w.l.mu.Unlock()
	w.l.notify()
	return nil
}

func (w *testWorker) Close() error {
	if !w.closed.CompareAndSwap(false, true) {
		w.l.mu.Lock()
		w.l.problem("%s: worker of partition %d closed twice", w.member, w.a.Partition)
		w.l.mu.Unlock()
		return nil
	}
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	if w.l.owner[w.a.Partition] == w.member {
		delete(w.l.owner, w.a.Partition)
	}
	w.l.closes++
	w.l.notify()
	return nil
}

// check reports the recorded invariant violations.
func (l *groupLog) check() {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.problems {
		l.t.Error(p)
	}
}

func (l *groupLog) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

// waitFor polls cond until it holds or d passes.
func (l *groupLog) waitFor(d time.Duration, what string, cond func() bool) {
	l.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-l.changed:
		case <-tick.C:
		case <-deadline.C:
			l.t.Fatalf("after %v: %s", d, what)
		}
	}
}

// runGroup starts gc.Run in the background; stop cancels it and returns its
// error; done is closed when Run returned (then stop returns at once).
func runGroup(t testing.TB, gc *kafkaio.GroupConsumer, f kafkaio.WorkerFactory) (stop func() error, done <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	ended := make(chan struct{})
	go func() {
		err = gc.Run(ctx, f)
		close(ended)
	}()
	stop = func() error {
		cancel()
		select {
		case <-ended:
			return err
		case <-time.After(15 * time.Second):
			return errors.New("Run did not return")
		}
	}
	t.Cleanup(func() { stop() })
	return stop, ended
}

func newGroupConsumer(t testing.TB, cfg kafkaio.ConsumerConfig) *kafkaio.GroupConsumer {
	t.Helper()
	gc, err := kafkaio.NewGroupConsumer(cfg)
	if err != nil {
		t.Fatalf("NewGroupConsumer: %v", err)
	}
	t.Cleanup(func() { gc.Close() })
	return gc
}

func partitionsOf(as []kafkaio.Assignment) []int {
	ps := make([]int, len(as))
	for i, a := range as {
		ps[i] = a.Partition
	}
	return ps
}

func TestGroupConsumerCleanRun(t *testing.T) {
	const topic, n = "group-clean", 3000
	start := time.Now()
	b := testenv.Kafka(t, map[string]int{topic: 6})
	produce(t, b, topic, 0, n, 300)
	cfg := consumerConfig(b, "group-clean", topic)
	cfg.MaxBatch = 100

	l := newGroupLog(t)
	gc := newGroupConsumer(t, cfg)
	if as := gc.Assigned(); len(as) != 0 {
		t.Fatalf("Assigned before Run: %v", as)
	}
	var maxBatch atomic.Int64
	stop, _ := runGroup(t, gc, l.factory("m1", func(_ context.Context, _ *testWorker, batch []kafka.Message) error {
		if int64(len(batch)) > maxBatch.Load() {
			maxBatch.Store(int64(len(batch)))
		}
		return nil
	}))
	l.waitFor(20*time.Second, "not every message handled", func() bool { return l.distinct() == n })
	time.Sleep(200 * time.Millisecond) // room for a stray redelivery

	as := gc.Assigned()
	if got := partitionsOf(as); !slices.Equal(got, []int{0, 1, 2, 3, 4, 5}) {
		t.Errorf("Assigned partitions %v, want 0..5", got)
	}
	for _, a := range as {
		if a.Topic != topic || a.Committed != kafka.FirstOffset || a.Generation != as[0].Generation {
			t.Errorf("assignment %+v", a)
		}
	}
	lag := gc.Lag()
	if len(lag[topic]) != 6 {
		t.Errorf("Lag for %d partitions, want 6: %v", len(lag[topic]), lag)
	}
	for p, v := range lag[topic] {
		if v != 0 {
			t.Errorf("partition %d lag %d after catching up", p, v)
		}
	}
	if m := maxBatch.Load(); m > 100 || m < 2 {
		t.Errorf("largest batch %d, want 2..MaxBatch 100", m)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	if as := gc.Assigned(); len(as) != 0 {
		t.Errorf("Assigned after Run: %v", as)
	}

	l.mu.Lock()
	for id, times := range l.seen {
		if times != 1 {
			t.Errorf("message %d handled %d times", id, times)
		}
	}
	if l.closes != 6 || len(l.calls) != 6 {
		t.Errorf("%d factory calls and %d worker closes, want 6 each", len(l.calls), l.closes)
	}
	through := l.through
	l.mu.Unlock()
	l.check()

	// The commits are Kafka's "next offset to read": a new member of the
	// group starts right after the last message and sees nothing again.
	if err := gc.Run(context.Background(), l.factory("late", nil)); !errors.Is(err, kafkaio.ErrClosed) {
		t.Errorf("Run after Run: %v, want ErrClosed", err)
	}
	l2 := newGroupLog(t)
	l2.through = through
	gc2 := newGroupConsumer(t, cfg)
	stop2, _ := runGroup(t, gc2, l2.factory("m2", nil))
	l2.waitFor(10*time.Second, "the second member got no assignment", func() bool { return len(gc2.Assigned()) == 6 })
	time.Sleep(300 * time.Millisecond)
	stop2()
	for _, c := range l2.calls {
		if hw := through[c.a.Partition]; c.a.Committed != hw {
			t.Errorf("partition %d: second member starts at %d, want the high-water mark %d", c.a.Partition, c.a.Committed, hw)
		}
	}
	if d := l2.distinct(); d != 0 {
		t.Errorf("second member handled %d committed messages", d)
	}
	l2.check()
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}

// TestGroupConsumerRebalance scales a group 1 → 2 → 3 → 1 members while
// messages flow.
func TestGroupConsumerRebalance(t *testing.T) {
	const topic, round = "group-rebalance", 600
	start := time.Now()
	b := testenv.Kafka(t, map[string]int{topic: 6})
	cfg := consumerConfig(b, "group-rebalance", topic)
	cfg.MaxBatch = 10
	logs := &logCapture{}
	cfg.Logger = slog.New(logs)
	l := newGroupLog(t)
	slow := func(context.Context, *testWorker, []kafka.Message) error {
		time.Sleep(20 * time.Millisecond) // keep batches in flight across rebalances
		return nil
	}

	// Member A alone holds all six partitions.
	a := newGroupConsumer(t, cfg)
	stopA, _ := runGroup(t, a, l.factory("A", slow))
	produce(t, b, topic, 0, round, round)
	l.waitFor(20*time.Second, "A did not handle the first round", func() bool { return l.distinct() == round })
	if got := partitionsOf(a.Assigned()); len(got) != 6 {
		t.Fatalf("A holds %v, want 6 partitions", got)
	}

	// B joins while A is busy with a new round: the partitions are split 3/3.
	produce(t, b, topic, round, round, round)
	bm := newGroupConsumer(t, cfg)
	joined := time.Now()
	stopB, doneB := runGroup(t, bm, l.factory("B", slow))
	l.waitFor(20*time.Second, "no 3/3 split", func() bool {
		pa, pb := partitionsOf(a.Assigned()), partitionsOf(bm.Assigned())
		all := slices.Sorted(slices.Values(append(slices.Clone(pa), pb...)))
		return len(pa) == 3 && len(pb) == 3 && slices.Equal(slices.Compact(all), []int{0, 1, 2, 3, 4, 5})
	})
	t.Logf("split %v after B started: A %v, B %v", time.Since(joined).Round(time.Millisecond),
		partitionsOf(a.Assigned()), partitionsOf(bm.Assigned()))
	l.waitFor(20*time.Second, "the second round was not handled", func() bool { return l.distinct() == 2*round })
	produce(t, b, topic, 2*round, round, round)
	l.waitFor(20*time.Second, "the third round was not handled", func() bool { return l.distinct() == 3*round })
	l.mu.Lock()
	var byB int
	for id := 2 * round; id < 3*round; id++ {
		if slices.Contains(l.handledBy[id], "B") {
			byB++
		}
	}
	l.mu.Unlock()
	if byB == 0 || byB == round {
		t.Errorf("B handled %d of the %d messages of the split round", byB, round)
	}

	// C joins while A and B are busy: 2/2/2.
	produce(t, b, topic, 3*round, round, round)
	cm := newGroupConsumer(t, cfg)
	stopC, doneC := runGroup(t, cm, l.factory("C", slow))
	l.waitFor(20*time.Second, "no 2/2/2 split", func() bool {
		pa, pb, pc := partitionsOf(a.Assigned()), partitionsOf(bm.Assigned()), partitionsOf(cm.Assigned())
		all := slices.Sorted(slices.Values(slices.Concat(pa, pb, pc)))
		return len(pa) == 2 && len(pb) == 2 && len(pc) == 2 && slices.Equal(slices.Compact(all), []int{0, 1, 2, 3, 4, 5})
	})
	l.waitFor(20*time.Second, "the fourth round was not handled", func() bool { return l.distinct() == 4*round })

	// B and C leave at once while A is busy: A gets all six partitions back,
	// each from the offset its last owner committed.
	produce(t, b, topic, 4*round, round, round)
	left := time.Now()
	var closing sync.WaitGroup
	for name, m := range map[string]*kafkaio.GroupConsumer{"B": bm, "C": cm} {
		closing.Go(func() {
			if err := m.Close(); err != nil {
				t.Errorf("%s Close: %v", name, err)
			}
			t.Logf("%s Close took %v", name, time.Since(left).Round(time.Millisecond))
		})
	}
	closing.Wait()
	for name, r := range map[string]struct {
		done <-chan struct{}
		stop func() error
	}{"B": {doneB, stopB}, "C": {doneC, stopC}} {
		select {
		case <-r.done:
			if err := r.stop(); !errors.Is(err, kafkaio.ErrClosed) {
				t.Errorf("%s's Run returned %v, want ErrClosed", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s's Run did not return after Close", name)
		}
	}
	l.waitFor(20*time.Second, "A did not get all partitions back", func() bool { return len(a.Assigned()) == 6 })
	t.Logf("A holds all partitions %v after B's and C's Close", time.Since(left).Round(time.Millisecond))
	l.waitFor(20*time.Second, "not every message handled", func() bool { return l.distinct() == 5*round })
	if err := stopA(); !errors.Is(err, context.Canceled) {
		t.Errorf("A's Run returned %v", err)
	}

	l.mu.Lock()
	dups := 0
	for id, times := range l.seen {
		dups += times - 1
		if times > 1 {
			t.Logf("message %d handled by %v", id, l.handledBy[id])
		}
	}
	gens := map[int32]bool{}
	var reassigned int
	for _, c := range l.calls {
		gens[c.a.Generation] = true
		if c.member == "A" && c.a.Committed >= 0 {
			reassigned++
		}
	}
	calls := len(l.calls)
	l.mu.Unlock()
	l.check() // includes: Committed as committed, contiguous offsets from it
	if dups != 0 {
		t.Errorf("%d redeliveries, want none: every accepted batch was committed", dups)
	}
	if reassigned < 6 {
		t.Errorf("A was re-assigned %d partitions with committed offsets, want ≥ 6", reassigned)
	}
	t.Logf("%d messages, %d factory calls over %d generations, %d redeliveries; took %v",
		5*round, calls, len(gens), dups, time.Since(start).Round(time.Millisecond))
	revokeCommits := 0
	for _, line := range logs.lines() {
		switch {
		case strings.HasPrefix(line, "kafkaio: committed the batch handled during revocation"):
			revokeCommits++
		case strings.HasPrefix(line, "kafkaio: commit"):
			t.Errorf("log: %s", line)
		}
	}
	t.Logf("%d batches committed during a revocation", revokeCommits)
	if revokeCommits == 0 {
		t.Error("no batch was in flight during a revocation; the test did not exercise it")
	}
}

// produceTimed writes messages first..first+n-1 with key actor-<i%keys> and
// Time base + i seconds.
func produceTimed(t testing.TB, b *embedkafka.Broker, topic string, first, n, keys int, base time.Time) {
	t.Helper()
	w := kafkaio.NewWriter(kafkaio.Config{Brokers: b.Addrs()}, topic)
	defer w.Close()
	msgs := make([]kafka.Message, 0, n)
	for i := first; i < first+n; i++ {
		m := msg(i, fmt.Sprintf("actor-%04d", i%keys), i, 0)
		m.Time = base.Add(time.Duration(i) * time.Second)
		msgs = append(msgs, m)
	}
	if err := w.Write(timeout(t, 20*time.Second), msgs...); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// TestGroupConsumerKillMidBatch stops a member while each of its partitions
// is in the middle of a batch: nothing of those batches is committed, the
// next member starts each partition at the last commit, gets the interrupted
// messages again, and rebuilds from the log the state the first member had
// at that commit (the detector's rebuild on assignment).
func TestGroupConsumerKillMidBatch(t *testing.T) {
	const topic, n, horizon = "group-kill", 600, 30 * time.Second
	start := time.Now()
	b := testenv.Kafka(t, map[string]int{topic: 6})
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	produceTimed(t, b, topic, 0, n, 60, base)
	cfg := consumerConfig(b, "group-kill", topic)
	cfg.MaxBatch = 20

	l := newGroupLog(t)
	var mu sync.Mutex
	batches := map[int]int{}         // partition → batches accepted by A
	blocked := map[int][]int{}       // partition → ids of the interrupted batch
	stateA := map[int]map[int]bool{} // partition → ids A holds (accepted)
	a := newGroupConsumer(t, cfg)
	stopA, _ := runGroup(t, a, l.factory("A", func(ctx context.Context, w *testWorker, batch []kafka.Message) error {
		p := w.a.Partition
		mu.Lock()
		if batches[p] < 2 {
			batches[p]++
			if stateA[p] == nil {
				stateA[p] = map[int]bool{}
			}
			for _, m := range batch {
				stateA[p][parse(t, m).id] = true
			}
			mu.Unlock()
			return nil
		}
		for _, m := range batch {
			blocked[p] = append(blocked[p], parse(t, m).id)
		}
		mu.Unlock()
		<-ctx.Done() // "killed" mid-batch
		return ctx.Err()
	}))
	l.waitFor(20*time.Second, "A did not reach a third batch on every partition", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(blocked) == 6
	})
	through := map[int]int64{}
	l.mu.Lock()
	for p, o := range l.through {
		through[p] = o
	}
	l.mu.Unlock()
	if err := stopA(); !errors.Is(err, context.Canceled) {
		t.Fatalf("A's Run returned %v, want context.Canceled", err)
	}

	// B rebuilds each partition's state as the detector does: from the
	// timestamp of the last committed message minus the horizon, up to the
	// committed offset.
	type rebuilt struct {
		ids  map[int]bool
		from time.Time
		err  error
	}
	var rmu sync.Mutex
	rebuilds := map[int]rebuilt{}
	bf := l.factory("B", nil)
	bm := newGroupConsumer(t, cfg)
	_, _ = runGroup(t, bm, func(ctx context.Context, as kafkaio.Assignment) (kafkaio.PartitionWorker, error) {
		r := rebuilt{ids: map[int]bool{}}
		last, err := kafkaio.MessageAt(ctx, cfg.Config, as.Topic, as.Partition, as.Committed-1)
		if err == nil {
			r.from = last.Time.Add(-horizon)
			err = kafkaio.ReplayRange(ctx, cfg.Config, as.Topic, as.Partition, r.from, as.Committed, func(m kafka.Message) error {
				r.ids[parse(t, m).id] = true
				return nil
			})
		}
		r.err = err
		rmu.Lock()
		rebuilds[as.Partition] = r
		rmu.Unlock()
		return bf(ctx, as)
	})
	l.waitFor(20*time.Second, "not every message handled", func() bool { return l.distinct() == n })
	time.Sleep(100 * time.Millisecond)

	l.check() // B's Committed = offset after A's last accepted batch, contiguous from there
	l.mu.Lock()
	defer l.mu.Unlock()
	for p, ids := range blocked {
		for _, id := range ids {
			if got := l.handledBy[id]; !slices.Equal(got, []string{"B"}) {
				t.Errorf("partition %d: interrupted message %d handled by %v, want B once", p, id, got)
			}
		}
	}
	for id, times := range l.seen {
		if times != 1 {
			t.Errorf("message %d handled %d times (by %v)", id, times, l.handledBy[id])
		}
	}
	rmu.Lock()
	defer rmu.Unlock()
	for p := range 6 {
		r, ok := rebuilds[p]
		if !ok || r.err != nil {
			t.Errorf("partition %d: no rebuild: %v", p, r.err)
			continue
		}
		want := map[int]bool{}
		for id := range stateA[p] {
			if !l.byID[id].Time.Before(r.from) {
				want[id] = true
			}
		}
		if len(want) == 0 || len(want) == len(stateA[p]) {
			t.Errorf("partition %d: horizon keeps %d of A's %d messages; the test wants a proper subset", p, len(want), len(stateA[p]))
		}
		if len(r.ids) != len(want) {
			t.Errorf("partition %d: rebuilt %d messages, A held %d within the horizon (committed through %d)", p, len(r.ids), len(want), through[p])
		}
		for id := range want {
			if !r.ids[id] {
				t.Errorf("partition %d: message %d missing from the rebuilt state", p, id)
			}
		}
	}
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}

var errWorker = errors.New("injected worker failure")

func TestGroupConsumerHandleErrorStopsRun(t *testing.T) {
	const topic, n = "group-fail", 100
	b := testenv.Kafka(t, map[string]int{topic: 1})
	produce(t, b, topic, 0, n, 10)
	cfg := consumerConfig(b, "group-fail", topic)
	cfg.MaxBatch = 30

	l := newGroupLog(t)
	calls := 0
	a := newGroupConsumer(t, cfg)
	err := a.Run(timeout(t, 20*time.Second), l.factory("A", func(context.Context, *testWorker, []kafka.Message) error {
		if calls++; calls == 2 {
			return errWorker
		}
		return nil
	}))
	if !errors.Is(err, errWorker) {
		t.Fatalf("Run returned %v, want the worker's error", err)
	}
	t.Logf("Run: %v", err)
	if l.closes != 1 {
		t.Errorf("%d worker closes, want 1", l.closes)
	}
	// Run left the group: B resumes at once from A's commit.
	bm := newGroupConsumer(t, cfg)
	stop, _ := runGroup(t, bm, l.factory("B", nil))
	l.waitFor(10*time.Second, "B did not handle the rest", func() bool { return l.distinct() == n })
	stop()
	l.check()
	if got := l.calls[len(l.calls)-1].a.Committed; got != 30 {
		t.Errorf("B starts at %d, want 30 (after A's one accepted batch)", got)
	}
}

func TestGroupConsumerCloseBoundedWhenBrokerGone(t *testing.T) {
	const topic = "group-gone"
	b, err := embedkafka.Start(embedkafka.Options{Topics: map[string]int{topic: 2}})
	if err != nil {
		testenv.Unavailable(t, "Kafka broker", err)
	}
	defer b.Close()
	const closeTimeout = 1500 * time.Millisecond
	cfg := consumerConfig(b, "group-gone", topic)
	cfg.CloseTimeout = closeTimeout
	cfg.WriteTimeout = 2 * time.Second
	produce(t, b, topic, 0, 10, 10)

	l := newGroupLog(t)
	hang := make(chan struct{})
	defer close(hang)
	gc, err := kafkaio.NewGroupConsumer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	f := l.factory("A", nil)
	go func() {
		runErr <- gc.Run(context.Background(), func(ctx context.Context, a kafkaio.Assignment) (kafkaio.PartitionWorker, error) {
			w, err := f(ctx, a)
			return hangingClose{w, hang}, err
		})
	}()
	l.waitFor(10*time.Second, "messages not handled", func() bool { return l.distinct() == 10 })

	b.Close()
	time.Sleep(300 * time.Millisecond) // the generation ends; workers' Close hangs
	begin := time.Now()
	err = gc.Close()
	took := time.Since(begin)
	t.Logf("Close took %v: %v", took.Round(time.Millisecond), err)
	if took > closeTimeout+500*time.Millisecond {
		t.Errorf("Close took %v, want at most CloseTimeout %v + slack", took, closeTimeout)
	}
	if err != nil && !errors.Is(err, kafkaio.ErrCloseTimeout) {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-runErr:
		t.Logf("Run returned after %v: %v", time.Since(begin).Round(time.Millisecond), err)
		if !errors.Is(err, kafkaio.ErrClosed) {
			t.Errorf("Run returned %v, want ErrClosed", err)
		}
	case <-time.After(3 * closeTimeout):
		t.Error("Run did not return after Close")
	}
}

// hangingClose is a worker whose Close blocks until release is closed.
type hangingClose struct {
	kafkaio.PartitionWorker
	release chan struct{}
}

func (h hangingClose) Close() error {
	h.PartitionWorker.Close()
	<-h.release
	return nil
}

// logCapture is a slog.Handler keeping kafkaio's messages.
type logCapture struct {
	mu   sync.Mutex
	msgs []string
}

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	if !strings.HasPrefix(r.Message, "kafkaio:") {
		return nil
	}
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	c.mu.Lock()
	c.msgs = append(c.msgs, b.String())
	c.mu.Unlock()
	return nil
}

func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCapture) WithGroup(string) slog.Handler      { return c }

func (c *logCapture) lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

func TestGroupConsumerFactoryCancelledOnRevoke(t *testing.T) {
	const topic, n = "group-revoke", 120
	b := testenv.Kafka(t, map[string]int{topic: 6})
	produce(t, b, topic, 0, n, n)
	cfg := consumerConfig(b, "group-revoke", topic)
	l := newGroupLog(t)

	// A's first generation rebuilds "forever": its factories block until
	// the rebalance B causes cancels them.
	var mu sync.Mutex
	var firstGen int32 = -1
	blocked, cancelled := 0, 0
	fa := l.factory("A", nil)
	a := newGroupConsumer(t, cfg)
	stopA, doneA := runGroup(t, a, func(ctx context.Context, as kafkaio.Assignment) (kafkaio.PartitionWorker, error) {
		mu.Lock()
		if firstGen < 0 {
			firstGen = as.Generation
		}
		first := as.Generation == firstGen
		if first {
			blocked++
		}
		mu.Unlock()
		if !first {
			return fa(ctx, as)
		}
		<-ctx.Done()
		mu.Lock()
		cancelled++
		mu.Unlock()
		return nil, ctx.Err()
	})
	l.waitFor(10*time.Second, "A's factories not called", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return blocked == 6
	})
	bm := newGroupConsumer(t, cfg)
	stopB, _ := runGroup(t, bm, l.factory("B", nil))
	l.waitFor(20*time.Second, "not every message handled", func() bool { return l.distinct() == n })
	select {
	case <-doneA:
		t.Fatalf("A's Run returned: %v", stopA())
	default:
	}
	mu.Lock()
	if cancelled != 6 {
		t.Errorf("%d of A's 6 blocked factories saw their context end", cancelled)
	}
	mu.Unlock()
	if pa, pb := a.Assigned(), bm.Assigned(); len(pa) != 3 || len(pb) != 3 {
		t.Errorf("A holds %v, B %v", partitionsOf(pa), partitionsOf(pb))
	}
	stopB()
	stopA()
	l.check()
}

func TestGroupConsumerRefusedSessionTimeout(t *testing.T) {
	const topic = "group-refused"
	b := testenv.Kafka(t, map[string]int{topic: 1})
	cfg := consumerConfig(b, "group-refused", topic)
	cfg.SessionTimeout = 50 * time.Millisecond // below the broker's minimum (100 ms here, 6 s in Kafka)
	cfg.HeartbeatInterval = 10 * time.Millisecond
	gc := newGroupConsumer(t, cfg)
	err := gc.Run(timeout(t, 10*time.Second), newGroupLog(t).factory("A", nil))
	if !errors.Is(err, kafka.InvalidSessionTimeout) {
		t.Errorf("Run: %v, want InvalidSessionTimeout", err)
	}
}
