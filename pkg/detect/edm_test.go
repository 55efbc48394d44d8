package detect_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/edm"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
)

// TestEDMCountsCustomersTheActorRead: an actor reads 50 customers, then mails
// the addresses of 30 of them and of 10 customers they never read. The
// finding recognises 40 known customers, 30 of them read by this actor.
func TestEDMCountsCustomersTheActorRead(t *testing.T) {
	var csv strings.Builder
	csv.WriteString("customer_id,email\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&csv, "C-%03d,customer%03d@example.com\n", i, i)
	}
	idx, err := edm.Build(strings.NewReader(csv.String()), edm.BuildOptions{
		Columns: map[string]string{"email": "email"}, IDColumn: "customer_id"}, testKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := detect.DefaultConfig()
	cfg.EDM = idx
	e, err := detect.New(cfg, scanner(t))
	if err != nil {
		t.Fatal(err)
	}
	actor := event.Actor{UID: "u-1", Email: "u1@corp.example", Department: "support"}
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	ids := make([]string, 50)
	for i := range ids {
		ids[i] = fmt.Sprintf("C-%03d", i)
	}
	e.Process(&event.Event{Kind: event.KindCRMAccess, EventID: "r1", Time: t0, Actor: actor, CRM: &event.CRMAccess{
		EventID: "r1", Time: t0, Actor: actor, Action: event.ActionView, TicketID: "T-1",
		Records: event.Records{IDs: ids, Count: len(ids)}}}, t0)

	var body strings.Builder
	for i := 20; i < 50; i++ { // 30 read by the actor
		fmt.Fprintf(&body, "customer%03d@example.com\n", i)
	}
	for i := 80; i < 90; i++ { // 10 never read
		fmt.Fprintf(&body, "customer%03d@example.com\n", i)
	}
	at := t0.Add(time.Hour)
	out := e.Process(&event.Event{Kind: event.KindOutbound, EventID: "m1", Time: at, Actor: actor, Outbound: &event.Outbound{
		EventID: "m1", Time: at, Actor: actor, Channel: event.ChannelEmail,
		Destination: event.Destination{Recipients: []string{"x@mail.example"}, Domains: []string{"mail.example"}},
		Content:     event.Content{Size: int64(body.Len()), Text: body.String()}}}, at)
	var f *finding.Finding
	for i := range out {
		if out[i].RuleID == "outbound.pii_external" {
			f = &out[i]
		}
	}
	if f == nil {
		t.Fatalf("no outbound.pii_external finding among %d", len(out))
	}
	if f.EDMCustomers != 40 || f.EDMReadByActor != 30 {
		t.Fatalf("edm customers %d read by actor %d; want 40 and 30", f.EDMCustomers, f.EDMReadByActor)
	}
}
