package embedkafka_test

import (
	"bytes"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/embedkafka"
)

// writeBytes produces n messages of size bytes each to topic, in batches.
func writeBytes(t *testing.T, b *embedkafka.Broker, topic string, n, size int) {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(b.Addrs()...), Topic: topic, Balancer: &kafka.RoundRobin{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 500, Transport: tr}
	defer w.Close()
	val := bytes.Repeat([]byte("x"), size)
	msgs := make([]kafka.Message, 0, 1000)
	for i := 0; i < n; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(strconv.Itoa(i)), Value: val})
		if len(msgs) == cap(msgs) || i == n-1 {
			if err := w.WriteMessages(ctxT(t, 30*time.Second), msgs...); err != nil {
				t.Fatalf("write %s: %v", topic, err)
			}
			msgs = msgs[:0]
		}
	}
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestRetentionBoundsMemory: with Retention, 96 MiB written to a bounded
// topic leave about Bytes per partition in the broker and in the Go heap,
// the newest records stay readable, and compacted and unlisted topics are
// never cut.
func TestRetentionBoundsMemory(t *testing.T) {
	const (
		bound   = 2 << 20 // per partition
		seg     = 512 << 10
		parts   = 3
		msgSize = 1000
	)
	b := start(t, embedkafka.Options{
		Topics:    map[string]int{"bounded": parts, "unlisted": 1},
		Retention: embedkafka.Retention{Bytes: bound, SegmentBytes: seg, Interval: 20 * time.Millisecond, Topics: []string{"bounded", "compacted"}},
	})
	if err := b.Cluster().CreateTopic("compacted", 1, map[string]string{"cleanup.policy": "compact"}); err != nil {
		t.Fatal(err)
	}
	writeBytes(t, b, "compacted", 4<<10, msgSize) // 4 MiB: kept (compaction, not retention, is for compacted topics)
	writeBytes(t, b, "unlisted", 4<<10, msgSize)
	base := heapInuse()

	for round := 0; round < 4; round++ {
		writeBytes(t, b, "bounded", 24<<10, msgSize) // 24 MiB a round
		time.Sleep(100 * time.Millisecond)           // a few retention passes
		stored := b.StoredBytes("bounded")
		if limit := int64(parts * (bound + 2*seg + 64<<10)); stored > limit {
			t.Fatalf("round %d: the bounded topic holds %d bytes, more than %d", round, stored, limit)
		}
		grown := int64(heapInuse()) - int64(base)
		if grown > 48<<20 {
			t.Fatalf("round %d: the heap grew by %d MiB with retention on", round, grown>>20)
		}
		t.Logf("after %d MiB written: %d KiB stored in the bounded topic, heap %+d KiB", (round+1)*24, stored>>10, grown>>10)
	}
	for _, topic := range []string{"compacted", "unlisted"} {
		if got := b.StoredBytes(topic); got < 4<<10*msgSize {
			t.Errorf("%s holds %d bytes: retention cut a topic it must not touch", topic, got)
		}
	}

	// What is left is readable: a partition starts after the cut and ends
	// at the newest record.
	cl := client(t, b)
	resp, err := cl.ListOffsets(ctxT(t, 10*time.Second), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		"bounded": {kafka.FirstOffsetOf(0), kafka.LastOffsetOf(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	var first, last int64
	for _, po := range resp.Topics["bounded"] {
		if po.Error != nil {
			t.Fatal(po.Error)
		}
		first, last = po.FirstOffset, po.LastOffset
	}
	if first <= 0 || last-first < bound/(2*msgSize) {
		t.Fatalf("partition 0 spans offsets [%d, %d): expected a cut start and about %d records kept", first, last, bound/msgSize)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: b.Addrs(), Topic: "bounded", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		t.Fatal(err)
	}
	m, err := r.ReadMessage(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if m.Offset < first || len(m.Value) != msgSize {
		t.Fatalf("read offset %d (%d bytes), expected ≥ %d", m.Offset, len(m.Value), first)
	}
}

// TestRetentionOffKeepsEverything: the zero Retention deletes nothing.
func TestRetentionOffKeepsEverything(t *testing.T) {
	b := start(t, embedkafka.Options{Topics: map[string]int{"t": 1}})
	writeBytes(t, b, "t", 4<<10, 1000)
	time.Sleep(100 * time.Millisecond)
	if got := b.StoredBytes("t"); got < 4<<10*1000 {
		t.Fatalf("stored %d bytes, want every record", got)
	}
}

// TestRetentionWaitsForGroups: with Groups, nothing a listed group has not
// committed is cut, however far over the bound the partition is; once the
// group commits, the cut follows.
func TestRetentionWaitsForGroups(t *testing.T) {
	const bound, msgSize = 1 << 20, 1000
	b := start(t, embedkafka.Options{
		Topics:    map[string]int{"raw": 1},
		Retention: embedkafka.Retention{Bytes: bound, SegmentBytes: 256 << 10, Interval: 20 * time.Millisecond, Topics: []string{"raw"}, Groups: []string{"reader", "absent"}},
	})
	writeBytes(t, b, "raw", 100, msgSize)
	readGroup(t, b, "reader", "raw", 100) // commits offset 100
	writeBytes(t, b, "raw", 8<<10, msgSize)
	time.Sleep(200 * time.Millisecond)
	p := b.Cluster().PartitionInfo("raw", 0)
	if p.LogStartOffset > 100 {
		t.Fatalf("cut to %d past the group's commit at 100", p.LogStartOffset)
	}
	if p.NumBytes < 8<<10*msgSize {
		t.Fatalf("holds %d bytes: uncommitted records were deleted", p.NumBytes)
	}
	readGroup(t, b, "reader", "raw", 8<<10) // commits everything
	time.Sleep(200 * time.Millisecond)
	p = b.Cluster().PartitionInfo("raw", 0)
	if p.NumBytes > bound+2*(256<<10) || p.LogStartOffset <= 100 {
		t.Fatalf("after the commit: log start %d, %d bytes held, want about %d", p.LogStartOffset, p.NumBytes, bound)
	}
}
