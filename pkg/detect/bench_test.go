package detect_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/edm"
	"github.com/leakline/leakline/pkg/event"
)

// mixedStream returns n normalized events of about 0.5 KB: 80% CRM reads
// (a few records, most with a ticket) and 20% outbound mails whose text
// holds an address or a card now and then, for actors drawn from a Zipf
// distribution over `actors`.
func mixedStream(n, actors int) []*event.Event {
	evs := make([]*event.Event, 0, n)
	mixedEvents(n, actors, 50*time.Millisecond, func(ev *event.Event) { evs = append(evs, ev) })
	return evs
}

// mixedEvents generates mixedStream's events one at a time, each with its
// own freshly allocated strings as a decoder makes them: whatever the engine
// keeps of an event stays on the heap, the rest is garbage.
func mixedEvents(n, actors int, step time.Duration, yield func(*event.Event)) {
	r := rand.New(rand.NewPCG(1, 2))
	z := rand.NewZipf(r, 1.1, 1, uint64(actors-1))
	t0 := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	filler := strings.Repeat("Thanks for the update, the renewal is on track and the team will follow up next week. ", 4)
	for i := 0; i < n; i++ {
		a := int(z.Uint64())
		actor := event.Actor{UID: fmt.Sprintf("u-%06d", a), Email: fmt.Sprintf("u%06d@corp.example", a), Department: "support", Role: "agent"}
		at := t0.Add(time.Duration(i) * step)
		id := fmt.Sprintf("e-%08d", i)
		if i%5 != 0 {
			ticket := ""
			if r.IntN(10) > 0 {
				ticket = fmt.Sprintf("T-%06d", r.IntN(1_000_000))
			}
			ids := []string{fmt.Sprintf("C-%07d", r.IntN(5_000_000)), fmt.Sprintf("C-%07d", r.IntN(5_000_000))}
			yield(&event.Event{Kind: event.KindCRMAccess, EventID: id, Time: at, Actor: actor, CRM: &event.CRMAccess{
				EventID: id, Time: at, Actor: actor, Action: event.ActionView, TicketID: ticket, AppName: "crm",
				Records: event.Records{IDs: ids, Count: 2, Fields: []string{"name", "email"}, Region: "US"}}})
			continue
		}
		text := filler
		if r.IntN(4) == 0 {
			text += fmt.Sprintf(" Contact: customer%d@example.com card 4111 1111 1111 1111.", i)
		}
		to := "colleague@corp.example"
		if r.IntN(3) == 0 {
			to = "partner@vendor.example"
		}
		yield(&event.Event{Kind: event.KindOutbound, EventID: id, Time: at, Actor: actor, Outbound: &event.Outbound{
			EventID: id, Time: at, Actor: actor, Channel: event.ChannelEmail, Subject: "Renewal",
			Destination: event.Destination{Recipients: []string{to}, Domains: []string{to[strings.IndexByte(to, '@')+1:]}},
			Content:     event.Content{Size: int64(len(text)), Text: text}}})
	}
}

// BenchmarkEngineProcess is the per-event cost of the default pack:
// inspection of outbound text plus every rule's match, group and window.
func BenchmarkEngineProcess(b *testing.B) {
	evs := mixedStream(200_000, 20_000)
	e, err := detect.New(detect.DefaultConfig(), scanner(b))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ev := evs[i%len(evs)]
		if i >= len(evs) { // a second pass: fresh ids, later times
			cp := *ev
			cp.EventID = fmt.Sprintf("%s-%d", ev.EventID, i)
			cp.Time = ev.Time.Add(time.Duration(i/len(evs)) * 24 * time.Hour)
			ev = &cp
		}
		e.Process(ev, now)
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/event")
}

// BenchmarkEngineStatePerActor reports the engine's heap per tracked actor
// per rule after 1 M events (~14 h of event time) of Zipf-distributed
// activity of 100 k actors: the Go heap after GC, minus the heap before the
// engine was made, over the (rule, group) pairs it tracks. Events are
// generated one at a time with their own strings (as decoded), so ids and
// keys the engine keeps count; nothing else holds them.
func BenchmarkEngineStatePerActor(b *testing.B) {
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		e, err := detect.New(detect.DefaultConfig(), scanner(b))
		if err != nil {
			b.Fatal(err)
		}
		now := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
		mixedEvents(1_000_000, 100_000, 50*time.Millisecond, func(ev *event.Event) { e.Process(ev, now) })
		runtime.GC()
		runtime.ReadMemStats(&after)
		s := e.Stats()
		groups := max(s.Groups, 1)
		b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/float64(groups), "B/group")
		b.ReportMetric(float64(groups), "groups")
		runtime.KeepAlive(e)
	}
}

// BenchmarkEngineStateSteady shows that the engine's memory is bounded by
// the rules' horizons, not by how long it runs: 20 k actors (Zipf) and
// 6 M events over 90 days of event time (one every 1.3 s, processed as they
// happen), with an exact-data-match index so that every CRM read is kept
// for the look-back. Every rule of the default pack forgets a group once its
// window (≤ 30 days) and the allowed lateness passed, and a read leaves the
// read-sets after the 7-day look-back, so the heap after day 45 should be
// what it is after day 90. It reports the live heap (after GC) at days 30, 45, 60, 75 and 90 in
// MB, and the change from day 45 to day 90 in percent.
func BenchmarkEngineStateSteady(b *testing.B) {
	const events, actors, days = 6_000_000, 20_000, 90
	step := days * 24 * time.Hour / events
	var csv strings.Builder
	csv.WriteString("customer_id,email\n")
	for i := range 1000 {
		fmt.Fprintf(&csv, "C-%07d,customer%d@example.com\n", i, i)
	}
	idx, err := edm.Build(strings.NewReader(csv.String()), edm.BuildOptions{
		Columns: map[string]string{"email": "email"}, IDColumn: "customer_id"}, testKey)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		cfg := detect.DefaultConfig()
		cfg.EDM = idx // with it, every CRM read is kept for the look-back
		e, err := detect.New(cfg, scanner(b))
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
		heapAt := map[int]float64{}
		next := 30
		mixedEvents(events, actors, step, func(ev *event.Event) {
			e.Process(ev, ev.Time.Add(time.Second))
			if d := int(ev.Time.Sub(t0) / (24 * time.Hour)); d >= next {
				runtime.GC()
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				heapAt[next] = (float64(m.HeapAlloc) - float64(base.HeapAlloc)) / 1e6
				next += 15
			}
		})
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		heapAt[days] = (float64(m.HeapAlloc) - float64(base.HeapAlloc)) / 1e6
		for _, d := range []int{30, 45, 60, 75, 90} {
			b.ReportMetric(heapAt[d], fmt.Sprintf("MB@day%d", d))
		}
		b.ReportMetric(100*(heapAt[90]-heapAt[45])/heapAt[45], "%change-45-90")
		runtime.KeepAlive(e)
	}
}
