package detector_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/detector"
	"github.com/leakline/leakline/pkg/edm"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/testenv"
)

// TestEDMIndexFromKafka: an index published with `leakline edm publish` is
// loaded by the detector at start, and a mail naming customers the actor
// read is recognised as such.
func TestEDMIndexFromKafka(t *testing.T) {
	broker := testenv.Kafka(t, nil)
	kc := kafkaio.Config{Brokers: broker.Addrs(), ClientID: "edm"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topics := kafkaio.DefaultTopics()
	if err := kafkaio.EnsureTopics(ctx, kc, 1, append(topics.All(), "dlp.edm")...); err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("customer_id,email\n")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&csv, "C-%02d,customer%02d@example.com\n", i, i)
	}
	idx, err := edm.Build(strings.NewReader(csv.String()), edm.BuildOptions{Columns: map[string]string{"email": "email"}, IDColumn: "customer_id"}, testKey)
	if err != nil {
		t.Fatal(err)
	}
	file, err := idx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := edm.Publish(ctx, kc, "dlp.edm", file, edm.PublishOptions{}); err != nil {
		t.Fatal(err)
	}

	actor := event.Actor{UID: "u-1", Email: "u1@corp.example"}
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	ids := make([]string, 20)
	for i := range ids {
		ids[i] = fmt.Sprintf("C-%02d", i)
	}
	var body strings.Builder
	for i := 10; i < 30; i++ { // 10 read by the actor, 10 not
		fmt.Fprintf(&body, "customer%02d@example.com\n", i)
	}
	evs := []*event.Event{
		{Kind: event.KindCRMAccess, EventID: "r1", Time: t0, Actor: actor, CRM: &event.CRMAccess{SchemaVersion: 1, ClassUID: event.ClassAPIActivity, ActivityID: 2,
			EventID: "r1", Time: t0, Actor: actor, Action: event.ActionView, TicketID: "T-1", Records: event.Records{IDs: ids, Count: len(ids)}}},
		{Kind: event.KindOutbound, EventID: "m1", Time: t0.Add(time.Hour), Actor: actor, Outbound: &event.Outbound{SchemaVersion: 1, ClassUID: event.ClassEmailActivity, ActivityID: 1,
			EventID: "m1", Time: t0.Add(time.Hour), Actor: actor, Channel: event.ChannelEmail,
			Destination: event.Destination{Recipients: []string{"x@mail.example"}, Domains: []string{"mail.example"}},
			Content:     event.Content{Size: int64(body.Len()), Text: body.String()}}},
	}
	w := kafkaio.NewWriter(kc, topics.Events)
	defer w.Close()
	for _, m := range messages(t, evs) {
		if err := w.Write(ctx, kafka.Message{Key: m.Key, Value: m.Value, Time: m.Time}); err != nil {
			t.Fatal(err)
		}
	}
	got := collect(t, kc, topics.Findings)
	d, err := detector.New(detector.Config{Kafka: kc, Topics: topics, Engine: engineConfig(), HMACKey: testKey, EDMTopic: "dlp.edm",
		Consumer: kafkaio.ConsumerConfig{SessionTimeout: 2 * time.Second, HeartbeatInterval: 100 * time.Millisecond}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	run(t, d)
	deadline := time.Now().Add(45 * time.Second)
	for {
		for _, f := range got.snapshot() {
			if f.RuleID == "outbound.pii_external" {
				if f.EDMCustomers != 20 || f.EDMReadByActor != 10 {
					t.Fatalf("edm customers %d, read by actor %d; want 20 and 10", f.EDMCustomers, f.EDMReadByActor)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no outbound.pii_external finding")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
