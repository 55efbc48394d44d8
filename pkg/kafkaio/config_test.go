package kafkaio_test

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/kafkaio"
)

func TestConfigValidate(t *testing.T) {
	ok := kafkaio.Config{Brokers: []string{"127.0.0.1:9092", "kafka:9092"}}
	tests := []struct {
		name    string
		mod     func(*kafkaio.Config)
		wantErr string
	}{
		{name: "valid", mod: func(*kafkaio.Config) {}},
		{name: "no brokers", mod: func(c *kafkaio.Config) { c.Brokers = nil }, wantErr: "no brokers"},
		{name: "broker without port", mod: func(c *kafkaio.Config) { c.Brokers = []string{"kafka"} }, wantErr: "host:port"},
		{name: "negative batch timeout", mod: func(c *kafkaio.Config) { c.BatchTimeout = -1 }, wantErr: "BatchTimeout"},
		{name: "negative close timeout", mod: func(c *kafkaio.Config) { c.CloseTimeout = -time.Second }, wantErr: "CloseTimeout"},
		{name: "bad replication", mod: func(c *kafkaio.Config) { c.ReplicationFactor = -2 }, wantErr: "ReplicationFactor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate: %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
}

func TestConsumerConfigValidate(t *testing.T) {
	ok := kafkaio.ConsumerConfig{Config: kafkaio.Config{Brokers: []string{"127.0.0.1:9092"}}, GroupID: "g", Topics: []string{"t"}}
	tests := []struct {
		name    string
		mod     func(*kafkaio.ConsumerConfig)
		wantErr string
	}{
		{name: "valid", mod: func(*kafkaio.ConsumerConfig) {}},
		{name: "last offset", mod: func(c *kafkaio.ConsumerConfig) { c.StartOffset = kafka.LastOffset }},
		{name: "no group", mod: func(c *kafkaio.ConsumerConfig) { c.GroupID = "" }, wantErr: "GroupID"},
		{name: "no topics", mod: func(c *kafkaio.ConsumerConfig) { c.Topics = nil }, wantErr: "Topics"},
		{name: "empty topic", mod: func(c *kafkaio.ConsumerConfig) { c.Topics = []string{""} }, wantErr: "empty topic"},
		{name: "bad start offset", mod: func(c *kafkaio.ConsumerConfig) { c.StartOffset = 42 }, wantErr: "StartOffset"},
		{name: "heartbeat not below session", mod: func(c *kafkaio.ConsumerConfig) { c.HeartbeatInterval = 10 * time.Second }, wantErr: "HeartbeatInterval"},
		{name: "negative batch", mod: func(c *kafkaio.ConsumerConfig) { c.MaxBatch = -1 }, wantErr: "MaxBatch"},
		{name: "bad base config", mod: func(c *kafkaio.ConsumerConfig) { c.Brokers = nil }, wantErr: "no brokers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate: %v, want an error about %q", err, tt.wantErr)
			}
			if _, err := kafkaio.NewConsumer(c); err == nil {
				t.Fatal("NewConsumer accepted an invalid config")
			}
		})
	}
}

func TestNewWriterReportsInvalidConfigOnWrite(t *testing.T) {
	w := kafkaio.NewWriter(kafkaio.Config{}, "t")
	defer w.Close()
	if err := w.Write(timeout(t, time.Second), kafka.Message{Value: []byte("x")}); err == nil || !strings.Contains(err.Error(), "no brokers") {
		t.Fatalf("Write with no brokers: %v", err)
	}
}

func TestTopics(t *testing.T) {
	want := []string{"audit.crm.access", "audit.outbound", "dlp.events", "dlp.findings", "dlp.eventmeta", "dlp.deadletter"}
	if got := kafkaio.DefaultTopics().All(); !slices.Equal(got, want) {
		t.Fatalf("DefaultTopics().All() = %v, want %v", got, want)
	}
	if got := (kafkaio.Topics{Events: "e", DeadLetter: "d"}).All(); !slices.Equal(got, []string{"e", "d"}) {
		t.Fatalf("All() of a partial set = %v", got)
	}
}

func TestDeadLetter(t *testing.T) {
	orig := kafka.Message{
		Topic: "dlp.events", Partition: 4, Offset: 123456789012,
		Key: []byte("actor-1"), Value: []byte("\x00raw bytes\xff"),
		Headers: []kafka.Header{{Key: "trace", Value: []byte("t1")}, {Key: kafkaio.HeaderDLQReason, Value: []byte("old")}},
	}
	before := time.Now().Add(-time.Second)
	detail := "bad \xff utf8 " + strings.Repeat("ü", 600) // 1200+ bytes
	dl := kafkaio.DeadLetter(orig, "schema_violation", detail)

	if dl.Topic != "" || string(dl.Key) != "actor-1" || string(dl.Value) != "\x00raw bytes\xff" {
		t.Fatalf("dead letter %+v", dl)
	}
	info, ok := kafkaio.DeadLetterInfo(dl)
	if !ok {
		t.Fatal("not recognized as a dead letter")
	}
	if info.Reason != "schema_violation" || info.SourceTopic != "dlp.events" || info.SourcePartition != 4 || info.SourceOffset != 123456789012 {
		t.Errorf("info %+v", info)
	}
	if len(info.Detail) > kafkaio.MaxDLQDetail || !utf8.ValidString(info.Detail) || !strings.HasPrefix(info.Detail, "bad \uFFFD utf8 ü") {
		t.Errorf("detail: %d bytes, valid %v, %q…", len(info.Detail), utf8.ValidString(info.Detail), info.Detail[:20])
	}
	if info.Time.Before(before) || info.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("time %v", info.Time)
	}
	raw, _ := kafkaio.HeaderString(dl, kafkaio.HeaderDLQTime)
	if _, err := time.Parse(time.RFC3339, raw); err != nil {
		t.Errorf("dlq.time %q is not RFC 3339: %v", raw, err)
	}
	// Original headers kept, earlier dlq.* replaced, not duplicated.
	n := 0
	for _, h := range dl.Headers {
		if h.Key == kafkaio.HeaderDLQReason {
			n++
		}
	}
	if v, _ := kafkaio.HeaderString(dl, "trace"); v != "t1" || n != 1 {
		t.Errorf("headers %v", dl.Headers)
	}
	if long := kafkaio.DeadLetter(orig, strings.Repeat("r", 500), ""); len(mustInfo(t, long).Reason) != kafkaio.MaxDLQReason {
		t.Errorf("reason not cut to %d bytes", kafkaio.MaxDLQReason)
	}

	if _, ok := kafkaio.DeadLetterInfo(orig); !ok {
		t.Error("orig carries a dlq.reason header and should read as a dead letter")
	}
	if _, ok := kafkaio.DeadLetterInfo(kafka.Message{Value: []byte("x")}); ok {
		t.Error("a plain message reads as a dead letter")
	}
	bad := kafka.Message{Headers: []kafka.Header{
		{Key: kafkaio.HeaderDLQReason, Value: []byte("r")},
		{Key: kafkaio.HeaderDLQSourcePartition, Value: []byte("x")},
	}}
	if info, ok := kafkaio.DeadLetterInfo(bad); !ok || info.SourcePartition != -1 || info.SourceOffset != -1 || !info.Time.IsZero() {
		t.Errorf("malformed dead letter: %+v %v", info, ok)
	}
}

func mustInfo(t *testing.T, m kafka.Message) kafkaio.DLQInfo {
	t.Helper()
	info, ok := kafkaio.DeadLetterInfo(m)
	if !ok {
		t.Fatal("not a dead letter")
	}
	return info
}

func TestHeaders(t *testing.T) {
	h := []kafka.Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}, {Key: "a", Value: []byte("3")}}
	m := kafka.Message{Headers: h}
	if v, ok := kafkaio.HeaderString(m, "a"); !ok || v != "3" {
		t.Errorf("HeaderString(a) = %q, %v; want the last one", v, ok)
	}
	if _, ok := kafkaio.Header(m, "c"); ok {
		t.Error("missing header found")
	}
	h = kafkaio.SetHeader(h, "a", []byte("9"))
	if len(h) != 2 || h[1].Key != "a" || string(h[1].Value) != "9" {
		t.Errorf("SetHeader: %v", h)
	}
	if h = kafkaio.SetHeader(nil, "x", nil); len(h) != 1 {
		t.Errorf("SetHeader on nil: %v", h)
	}
}
