package normalizer

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/scenario"
)

// TestDecodeAllMatchesSequential: decoding a batch on several goroutines
// gives, message by message and in order, what decoding it one message at a
// time gives (valid events, the malformed one, an unknown topic, garbage).
func TestDecodeAllMatchesSequential(t *testing.T) {
	topics := kafkaio.DefaultTopics()
	n, err := New(Config{Kafka: kafkaio.Config{Brokers: []string{"127.0.0.1:9"}}, Topics: topics}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	day := scenario.DemoDay(11, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	var batch []kafka.Message
	for i, r := range day.Events {
		topic := topics.Outbound
		if r.Kind == event.KindCRMAccess {
			topic = topics.CRMAccess
		}
		batch = append(batch, kafka.Message{Topic: topic, Partition: i % 6, Offset: int64(i), Value: r.Value})
	}
	batch = append(batch,
		kafka.Message{Topic: "elsewhere", Value: day.Events[0].Value},
		kafka.Message{Topic: topics.Outbound, Value: []byte(`{"not":"an event"}`)},
		kafka.Message{Topic: topics.CRMAccess, Value: []byte(`{`)})
	if len(batch) < 4*minPerWorker {
		t.Fatalf("batch of %d is too small to be split", len(batch))
	}
	now := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	got := n.decodeAll(batch, now)
	var valid, invalid int
	for i, m := range batch {
		ev, err := n.decode(m, now)
		g := got[i]
		switch {
		case err != nil:
			invalid++
			if g.err == nil || g.why != reason(err) || g.err.Error() != err.Error() {
				t.Fatalf("message %d: sequential error %v (%s), parallel %v (%s)", i, err, reason(err), g.err, g.why)
			}
		default:
			valid++
			want, merr := event.MarshalEvent(ev)
			if merr != nil || g.err != nil || !bytes.Equal(g.val, want) || g.ev.EventID != ev.EventID {
				t.Fatalf("message %d: parallel result %v differs from the sequential one", i, g.err)
			}
		}
	}
	if valid == 0 || invalid < 3+day.Malformed {
		t.Fatalf("%d valid and %d invalid messages: the batch lost its mix", valid, invalid)
	}
}
