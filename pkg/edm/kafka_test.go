package edm

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/testenv"
)

func TestPublishAndLoadFromKafka(t *testing.T) {
	b := testenv.Kafka(t, nil)
	if b == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := kafkaio.Config{Brokers: b.Addrs()}
	const topic = "dlp.edm"

	if _, err := LoadFromKafka(ctx, cfg, "dlp.edm.empty", testKey); err == nil {
		t.Error("LoadFromKafka on a missing topic: no error")
	}

	v1 := buildTest(t, customersCSV)
	f1, _ := v1.MarshalBinary()
	v2, err := Build(bytes.NewReader(genCSV(20_000, 2)), BuildOptions{Columns: genColumns, IDColumn: "customer_id"}, testKey)
	if err != nil {
		t.Fatal(err)
	}
	f2, _ := v2.MarshalBinary()

	r1, err := Publish(ctx, cfg, topic, f1, PublishOptions{ChunkSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if r1.ID != v1.ID() || r1.Chunks != (len(f1)+1023)/1024 {
		t.Errorf("publish v1: %+v", r1)
	}
	x, err := LoadFromKafka(ctx, cfg, topic, testKey)
	if err != nil || x.ID() != v1.ID() {
		t.Fatalf("load v1: %v", err)
	}
	if _, ok := x.LookupValue(TypeEmail, []byte("jane.doe@example.com")); !ok {
		t.Error("v1 loaded from Kafka misses an e-mail")
	}

	// An abandoned, incomplete newer version (a publisher that died) does
	// not hide the complete one.
	w := &kafka.Writer{Addr: kafka.TCP(b.Addrs()...), Topic: topic, Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 }), BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	if err := w.WriteMessages(ctx, kafka.Message{Key: chunkKey("0123456789abcdef0123456789abcdef", 0), Value: f2[:1024], Headers: []kafka.Header{
		{Key: hdrFormat, Value: []byte("1")}, {Key: hdrIndex, Value: []byte("0123456789abcdef0123456789abcdef")},
		{Key: hdrChunk, Value: []byte("0")}, {Key: hdrChunks, Value: []byte("9")}, {Key: hdrSize, Value: []byte("9000")},
	}}, kafka.Message{Key: []byte("garbage"), Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if x, err = LoadFromKafka(ctx, cfg, topic, testKey); err != nil || x.ID() != v1.ID() {
		t.Fatalf("load with an incomplete newer version: %v", err)
	}

	r2, err := Publish(ctx, cfg, topic, f2, PublishOptions{ChunkSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(r2.Deleted) != 1 || r2.Deleted[0] != "0123456789abcdef0123456789abcdef" {
		t.Errorf("publish v2 deleted %v (keep 2: v2 and v1 stay)", r2.Deleted)
	}
	x, err = LoadFromKafka(ctx, cfg, topic, testKey)
	if err != nil || x.ID() != v2.ID() || x.Rows() != 20_000 {
		t.Fatalf("load v2: %v", err)
	}
	if _, err := LoadFromKafka(ctx, cfg, topic, otherKey); !errors.Is(err, errKey) {
		t.Errorf("wrong key: %v", err)
	}

	// Republishing v1 makes it current again (rollback); keep 1 deletes v2.
	r3, err := Publish(ctx, cfg, topic, f1, PublishOptions{Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(r3.Deleted) != 1 || r3.Deleted[0] != v2.ID() {
		t.Errorf("republish v1 deleted %v", r3.Deleted)
	}
	if x, err = LoadFromKafka(ctx, cfg, topic, testKey); err != nil || x.ID() != v1.ID() {
		t.Fatalf("load after rollback: %v", err)
	}
	vs, err := scanVersions(ctx, cfg, topic, 0, nil)
	if err != nil || len(vs) != 1 || vs[0].id != v1.ID() {
		t.Errorf("versions after rollback: %v %v", vs, err)
	}

	// A damaged file is refused before anything is written.
	bad := bytes.Clone(f1)
	bad[len(bad)-40] ^= 1
	if _, err := Publish(ctx, cfg, topic, bad, PublishOptions{}); !errors.Is(err, ErrFormat) {
		t.Errorf("publish damaged: %v", err)
	}
}
