package kafkaio_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/testenv"
)

func TestCompactedTopicWriteReplay(t *testing.T) {
	b := testenv.Kafka(t, nil)
	cfg := kafkaio.Config{Brokers: b.Addrs(), ClientID: "kafkaio-test"}
	ctx := timeout(t, 30*time.Second)
	const topic = "state.compacted"

	// A missing topic: no end offset, nothing replayed, not auto-created.
	end, err := kafkaio.ReplayPartition(ctx, cfg, topic, 0, func(kafka.Message) error { return nil })
	if end != 0 || !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Fatalf("ReplayPartition of a missing topic: %d, %v; want 0, UnknownTopicOrPartition", end, err)
	}
	if ids, err := kafkaio.Partitions(ctx, cfg, topic); !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Fatalf("Partitions of a missing topic: %v, %v; want UnknownTopicOrPartition", ids, err)
	}
	for range 2 { // the second call finds the topic
		if err := kafkaio.EnsureCompactedTopic(ctx, cfg, topic, kafka.ConfigEntry{ConfigName: "segment.ms", ConfigValue: "3600000"}); err != nil {
			t.Fatal(err)
		}
	}
	if end, err := kafkaio.EndOffset(ctx, cfg, topic, 0); end != 0 || err != nil {
		t.Fatalf("EndOffset of an empty topic: %d, %v", end, err)
	}
	if ids, err := kafkaio.Partitions(ctx, cfg, topic); err != nil || fmt.Sprint(ids) != "[0]" {
		t.Fatalf("Partitions: %v, %v; want [0]", ids, err)
	}
	if end, err := kafkaio.ReplayPartition(ctx, cfg, topic, 0, func(kafka.Message) error { t.Error("message in an empty topic"); return nil }); end != 0 || err != nil {
		t.Fatalf("ReplayPartition of an empty topic: %d, %v", end, err)
	}

	var msgs []kafka.Message
	for i := range 5 {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprint("v", i))})
	}
	if err := kafkaio.WritePartition(ctx, cfg, topic, 0, kafkaio.PartitionBatch{Size: 2, Timeout: time.Millisecond}, msgs...); err != nil {
		t.Fatal(err)
	}
	if end, err := kafkaio.EndOffset(ctx, cfg, topic, 0); end != 5 || err != nil {
		t.Fatalf("EndOffset: %d, %v; want 5", end, err)
	}
	var got []string
	end, err = kafkaio.ReplayPartition(ctx, cfg, topic, 0, func(m kafka.Message) error {
		got = append(got, fmt.Sprintf("%d:%s=%s", m.Offset, m.Key, m.Value))
		return nil
	})
	if want := "[0:k0=v0 1:k1=v1 2:k2=v2 3:k3=v3 4:k4=v4]"; end != 5 || err != nil || fmt.Sprint(got) != want {
		t.Errorf("ReplayPartition: %d, %v, %v; want 5, nil, %s", end, err, got, want)
	}
	if _, err := kafkaio.EndOffset(ctx, cfg, topic, 1); !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Errorf("EndOffset of a missing partition: %v", err)
	}
}

func TestTransportAndDialerDefaults(t *testing.T) {
	if id := (kafkaio.Config{}).Transport().ClientID; id != kafkaio.DefaultClientID {
		t.Errorf("Transport ClientID %q", id)
	}
	if id := (kafkaio.Config{ClientID: "x"}).Transport().ClientID; id != "x" {
		t.Errorf("Transport ClientID %q", id)
	}
	if d := (kafkaio.Config{}).ReaderDialer(); d.ClientID != kafkaio.DefaultClientID || d.Timeout != 5*time.Second {
		t.Errorf("ReaderDialer %+v", d)
	}
	own := &kafka.Dialer{Timeout: time.Second}
	if d := (kafkaio.Config{ClientID: "x", Dialer: own}).ReaderDialer(); d == own || d.ClientID != "x" || d.Timeout != time.Second {
		t.Errorf("ReaderDialer %+v", d)
	}
}

func TestCloseWithin(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	start := time.Now()
	err := kafkaio.CloseWithin("stuck", 50*time.Millisecond, func() error { <-block; return nil })
	if !errors.Is(err, kafkaio.ErrCloseTimeout) || time.Since(start) > 2*time.Second {
		t.Errorf("CloseWithin of a stuck close: %v after %v", err, time.Since(start))
	}
	boom := errors.New("boom")
	if err := kafkaio.CloseWithin("failing", time.Second, func() error { return boom }); !errors.Is(err, boom) {
		t.Errorf("CloseWithin: %v, want boom", err)
	}
	if err := kafkaio.CloseWithin("fine", time.Second, func() error { return nil }); err != nil {
		t.Error(err)
	}
}
