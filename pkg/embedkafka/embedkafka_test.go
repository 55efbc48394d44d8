package embedkafka_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/embedkafka"
)

func start(t *testing.T, opt embedkafka.Options) *embedkafka.Broker {
	t.Helper()
	b, err := embedkafka.Start(opt)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func client(t *testing.T, b *embedkafka.Broker) *kafka.Client {
	tr := &kafka.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &kafka.Client{Addr: kafka.TCP(b.Addrs()...), Timeout: 10 * time.Second, Transport: tr}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func writeN(t *testing.T, b *embedkafka.Broker, topic string, from, n int) {
	t.Helper()
	tr := &kafka.Transport{}
	w := &kafka.Writer{
		Addr:         kafka.TCP(b.Addrs()...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 2 * time.Millisecond,
		Transport:    tr,
	}
	defer tr.CloseIdleConnections()
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte("k" + strconv.Itoa(from+i)), Value: []byte(strconv.Itoa(from + i))}
	}
	if err := w.WriteMessages(ctxT(t, 10*time.Second), msgs...); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
}

// readGroup reads exactly n messages with a group Reader, committing each,
// and returns their values.
func readGroup(t *testing.T, b *embedkafka.Broker, group, topic string, n int) []string {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           b.Addrs(),
		GroupID:           group,
		GroupTopics:       []string{topic},
		MaxWait:           200 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond,
		SessionTimeout:    2 * time.Second,
		RebalanceTimeout:  2 * time.Second,
		StartOffset:       kafka.FirstOffset,
	})
	defer r.Close()
	ctx := ctxT(t, 15*time.Second)
	var vals []string
	for len(vals) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("FetchMessage after %d of %d: %v", len(vals), n, err)
		}
		vals = append(vals, string(m.Value))
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("CommitMessages: %v", err)
		}
	}
	return vals
}

func TestKafkaGoCompatibility(t *testing.T) {
	b := start(t, embedkafka.Options{Topics: map[string]int{"seeded": 3}})
	addr := b.Addrs()[0]
	cl := client(t, b)
	ctx := ctxT(t, 20*time.Second)

	// The broker advertises its own listen address.
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{"seeded"}})
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	if len(md.Brokers) != 1 || net.JoinHostPort(md.Brokers[0].Host, strconv.Itoa(md.Brokers[0].Port)) != addr {
		t.Fatalf("brokers %+v, want one at %s", md.Brokers, addr)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil || len(md.Topics[0].Partitions) != 3 {
		t.Fatalf("seeded topic metadata: %+v", md.Topics)
	}
	for _, p := range md.Topics[0].Partitions {
		if p.Leader.Host == "" {
			t.Fatalf("partition %d has no leader", p.ID)
		}
	}

	// Client.CreateTopics, twice.
	req := &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: "created", NumPartitions: 4, ReplicationFactor: 1}}}
	resp, err := cl.CreateTopics(ctx, req)
	if err != nil || resp.Errors["created"] != nil {
		t.Fatalf("CreateTopics: %v %v", err, resp.Errors)
	}
	resp, err = cl.CreateTopics(ctx, req)
	if err != nil || !errors.Is(resp.Errors["created"], kafka.TopicAlreadyExists) {
		t.Fatalf("second CreateTopics: %v %v, want TopicAlreadyExists", err, resp.Errors)
	}

	// Conn.CreateTopics and Conn.ReadPartitions.
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	if err := conn.CreateTopics(kafka.TopicConfig{Topic: "conn-created", NumPartitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatalf("Conn.CreateTopics: %v", err)
	}
	parts, err := conn.ReadPartitions("conn-created")
	if err != nil || len(parts) != 2 {
		t.Fatalf("ReadPartitions: %v %+v", err, parts)
	}

	// Writer → ListOffsets → group Reader → committed offsets.
	writeN(t, b, "created", 0, 100)
	lo, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		"created": {kafka.LastOffsetOf(0), kafka.LastOffsetOf(1), kafka.LastOffsetOf(2), kafka.LastOffsetOf(3)},
	}})
	if err != nil {
		t.Fatalf("ListOffsets: %v", err)
	}
	var total int64
	last := map[int]int64{}
	for _, po := range lo.Topics["created"] {
		if po.Error != nil {
			t.Fatalf("ListOffsets partition %d: %v", po.Partition, po.Error)
		}
		total += po.LastOffset
		last[po.Partition] = po.LastOffset
	}
	if total != 100 {
		t.Fatalf("sum of end offsets %d, want 100", total)
	}
	vals := readGroup(t, b, "g1", "created", 100)
	seen := map[string]bool{}
	for _, v := range vals {
		seen[v] = true
	}
	if len(seen) != 100 {
		t.Fatalf("group reader saw %d distinct of 100", len(seen))
	}
	of, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "g1", Topics: map[string][]int{"created": {0, 1, 2, 3}}})
	if err != nil {
		t.Fatalf("OffsetFetch: %v", err)
	}
	for _, p := range of.Topics["created"] {
		if want := last[p.Partition]; p.CommittedOffset != want && !(want == 0 && p.CommittedOffset < 0) {
			t.Errorf("partition %d committed %d, want %d", p.Partition, p.CommittedOffset, want)
		}
	}
}

func TestAutoCreatedTopicsUseDefaultPartitions(t *testing.T) {
	b := start(t, embedkafka.Options{Partitions: 5})
	conn, err := kafka.DialContext(ctxT(t, 10*time.Second), "tcp", b.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.CreateTopics(kafka.TopicConfig{Topic: "dflt", NumPartitions: -1, ReplicationFactor: -1}); err != nil {
		t.Fatalf("CreateTopics with broker defaults: %v", err)
	}
	parts, err := conn.ReadPartitions("dflt")
	if err != nil || len(parts) != 5 {
		t.Fatalf("ReadPartitions: %v, %d partitions, want 5", err, len(parts))
	}
}

func TestAddrIsHonoured(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b := start(t, embedkafka.Options{Addr: addr})
	if got := b.Addrs(); len(got) != 1 || got[0] != addr {
		t.Fatalf("Addrs() = %v, want [%s]", got, addr)
	}
	if _, err := embedkafka.Start(embedkafka.Options{Addr: addr}); err == nil {
		t.Fatal("second broker on a taken address started")
	}
}

func TestDataDirRestartResumesCommittedOffsets(t *testing.T) {
	dir := t.TempDir()
	topics := map[string]int{"persisted": 2}
	b1, err := embedkafka.Start(embedkafka.Options{DataDir: dir, Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	addr := b1.Addrs()[0]
	writeN(t, b1, "persisted", 0, 10)
	if got := readGroup(t, b1, "g", "persisted", 10); len(got) != 10 {
		t.Fatalf("read %d", len(got))
	}
	b1.Close()

	b2 := start(t, embedkafka.Options{Addr: addr, DataDir: dir, Topics: map[string]int{"persisted": 2, "added-later": 3}})
	// A seed topic new to the stored state is created too.
	conn, err := kafka.DialContext(ctxT(t, 10*time.Second), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if parts, err := conn.ReadPartitions("added-later"); err != nil || len(parts) != 3 {
		t.Fatalf("added-later: %v, %d partitions", err, len(parts))
	}
	writeN(t, b2, "persisted", 10, 5)
	got := readGroup(t, b2, "g", "persisted", 5)
	for _, v := range got {
		if n, _ := strconv.Atoi(v); n < 10 {
			t.Fatalf("after restart the group got %q again; want only the 5 new messages (got %v)", v, got)
		}
	}
}
