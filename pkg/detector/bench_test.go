package detector_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/testenv"
)

// BenchmarkDetectorThroughput measures the whole detector stage against the
// embedded broker: fetch from dlp.events, decode, inspect, evaluate the
// default pack, publish findings, commit. Events are ~0.5 KB: 80 % CRM reads,
// 20 % mails. Run with -benchtime=1x; it reports events/s.
func BenchmarkDetectorThroughput(b *testing.B) {
	const n = 200_000
	broker := testenv.Kafka(b, nil)
	kc := kafkaio.Config{Brokers: broker.Addrs(), ClientID: "bench"}
	ctx := context.Background()
	if err := kafkaio.EnsureTopics(ctx, kc, partitions, kafkaio.DefaultTopics().All()...); err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	text := strings.Repeat("Thanks for the update, the renewal is on track and we follow up next week. ", 4)
	msgs := make([]kafka.Message, 0, n)
	for i := 0; i < n; i++ {
		actor := event.Actor{UID: fmt.Sprintf("u-%05d", i%5000), Email: "a@corp.example", Department: "support"}
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		id := fmt.Sprintf("e-%08d", i)
		ev := &event.Event{Kind: event.KindCRMAccess, EventID: id, Time: at, Actor: actor, CRM: &event.CRMAccess{
			SchemaVersion: 1, ClassUID: event.ClassAPIActivity, ActivityID: 2, EventID: id, Time: at, Actor: actor,
			Action: event.ActionView, TicketID: "T-1", Records: event.Records{IDs: []string{fmt.Sprintf("C-%07d", i)}, Count: 1, Fields: []string{"name", "email"}}}}
		if i%5 == 0 {
			ev = &event.Event{Kind: event.KindOutbound, EventID: id, Time: at, Actor: actor, Outbound: &event.Outbound{
				SchemaVersion: 1, ClassUID: event.ClassEmailActivity, ActivityID: 1, EventID: id, Time: at, Actor: actor, Channel: event.ChannelEmail,
				Destination: event.Destination{Recipients: []string{"x@corp.example"}, Domains: []string{"corp.example"}},
				Content:     event.Content{Size: int64(len(text)), Text: text}}}
		}
		v, err := event.MarshalEvent(ev)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(actor.UID), Value: v, Time: at})
	}
	w := kafkaio.NewWriter(kc, kafkaio.DefaultTopics().Events)
	for i := 0; i < len(msgs); i += 5000 {
		if err := w.Write(ctx, msgs[i:min(i+5000, len(msgs))]...); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	for b.Loop() {
		d := newDetector(b, kc)
		start := time.Now()
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- d.Run(rctx) }()
		for d.Stats().Events < n {
			time.Sleep(5 * time.Millisecond)
		}
		el := time.Since(start)
		cancel()
		<-done
		b.ReportMetric(float64(n)/el.Seconds(), "events/s")
	}
}
