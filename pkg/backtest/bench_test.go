package backtest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/backtest"
	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/inspect"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/privacy"
	"github.com/leakline/leakline/pkg/testenv"
)

// BenchmarkReplay: the default pack over a day of 200 employees (24,000
// CRM reads, 2,400 mails with customer addresses) on a 6-partition
// in-process broker; one op is one whole backtest replay. Reports events/s
// and allocations per event.
//
//	go test ./pkg/backtest -run XXX -bench Replay -benchtime 5x
func BenchmarkReplay(b *testing.B) {
	const topic = "dlp.events"
	broker := testenv.Kafka(b, map[string]int{topic: 6})
	kc := kafkaio.Config{Brokers: broker.Addrs(), ClientID: "backtest-bench"}
	t0 := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	var msgs []kafka.Message
	for a := 0; a < 200; a++ {
		actor := event.Actor{UID: fmt.Sprintf("u-%03d", a), Email: fmt.Sprintf("u%03d@corp.example", a), Department: "support"}
		for k := 0; k < 120; k++ {
			at := t0.Add(time.Duration(k*4)*time.Minute + time.Duration(a)*time.Second)
			id := fmt.Sprintf("e-%03d-%04d", a, k)
			ids := []string{fmt.Sprintf("C-%03d-%04d", a, k), fmt.Sprintf("C-%03d-%04d", a, k+1)}
			ev := &event.Event{Kind: event.KindCRMAccess, EventID: id, Time: at, Actor: actor,
				CRM: &event.CRMAccess{SchemaVersion: 1, ClassUID: event.ClassAPIActivity, ActivityID: 2, EventID: id, Time: at, Actor: actor,
					Action: event.ActionView, Records: event.Records{IDs: ids, Count: len(ids), Region: "US"}}}
			msgs = append(msgs, message(b, ev))
			if k%10 == 9 {
				id := id + "-m"
				text := fmt.Sprintf("Please call back customer%d.%d@example.com about the renewal.", a, k)
				ev := &event.Event{Kind: event.KindOutbound, EventID: id, Time: at.Add(time.Minute), Actor: actor,
					Outbound: &event.Outbound{SchemaVersion: 1, ClassUID: event.ClassEmailActivity, ActivityID: 1, EventID: id, Time: at.Add(time.Minute), Actor: actor,
						Channel: event.ChannelEmail, Destination: event.Destination{Recipients: []string{"x@mail.example"}, Domains: []string{"mail.example"}},
						Content: event.Content{Size: int64(len(text)), Text: text}}}
				msgs = append(msgs, message(b, ev))
			}
		}
	}
	ctx := context.Background()
	w := kafkaio.NewWriter(kc, topic)
	for i := 0; i < len(msgs); i += 1000 {
		if err := w.Write(ctx, msgs[i:min(i+1000, len(msgs))]...); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	tok, err := privacy.NewTokenizer(testKey)
	if err != nil {
		b.Fatal(err)
	}
	sc, err := inspect.New(inspect.Config{AllowDomains: []string{"corp.example"}}, tok)
	if err != nil {
		b.Fatal(err)
	}
	cfg := backtest.Config{Kafka: kc, Topic: topic, Engine: detect.DefaultConfig(), Scanner: sc, From: t0, To: t0.Add(24 * time.Hour)}
	b.ReportAllocs()
	b.ResetTimer()
	var events int
	for b.Loop() {
		r, err := backtest.Replay(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if r.Events != len(msgs) {
			b.Fatalf("replayed %d events, want %d", r.Events, len(msgs))
		}
		events += r.Events
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

func message(tb testing.TB, ev *event.Event) kafka.Message {
	tb.Helper()
	v, err := event.MarshalEvent(ev)
	if err != nil {
		tb.Fatal(err)
	}
	return kafka.Message{Key: []byte(ev.Actor.UID), Value: v, Time: ev.Time}
}
