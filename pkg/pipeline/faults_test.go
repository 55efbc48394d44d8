package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/leakline/leakline/pkg/embedkafka"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/metrics"
	"github.com/leakline/leakline/pkg/pager"
	"github.com/leakline/leakline/pkg/pipeline"
	"github.com/leakline/leakline/pkg/scenario"
	"github.com/leakline/leakline/pkg/testenv"
)

// Fault tests of the whole pipeline (normalizer → detector → chsink, and the
// pager) against the embedded broker and a private ClickHouse 18.16. Each
// compares what ClickHouse holds with the oracle (faults_helpers_test.go):
// one detection engine run over the injected events.

// poisonKinds are the kinds of bad input injected, with the dead-letter
// reason each must get.
var poisonKinds = []struct {
	reason string
	make   func(t *testing.T, valid []byte) []byte
}{
	{event.ReasonInvalidJSON, func(_ *testing.T, valid []byte) []byte { return valid[:len(valid)/2] }},
	{event.ReasonSchema, func(t *testing.T, valid []byte) []byte {
		var m map[string]any
		if err := json.Unmarshal(valid, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "action") // required by the schema
		return mustJSON(t, m)
	}},
	{event.ReasonOversized, func(_ *testing.T, valid []byte) []byte {
		// Valid JSON, one field padded past the normalizer's size limit.
		return bytes.Replace(valid, []byte(`"ticket_id"`), []byte(`"app_name":"`+strings.Repeat("x", 20<<10)+`","ticket_id"`), 1)
	}},
}

// TestFaultPoisonEvents mixes 1 % poison (invalid JSON, schema violations,
// oversized events) into valid traffic: the dead-letter topic holds exactly
// the injected events, each with its reason and source offset, and every
// valid event is processed (findings equal the oracle's, one events row per
// valid event).
func TestFaultPoisonEvents(t *testing.T) {
	env := faultSetup(t, faultOpts{limits: event.Limits{MaxEventBytes: 16 << 10}})
	valid := raw(t, crmDay(1500))
	var rs []scenario.Raw
	poison := map[int]string{} // index in rs (= source offset) → reason
	for i, r := range valid {
		rs = append(rs, r)
		if i%100 == 50 { // 1 %
			k := poisonKinds[len(poison)%len(poisonKinds)]
			bad := r
			bad.Value = k.make(t, r.Value)
			if k.reason == event.ReasonOversized && len(bad.Value) <= 16<<10 {
				t.Fatalf("oversized poison of %d bytes", len(bad.Value))
			}
			poison[len(rs)] = k.reason
			rs = append(rs, bad)
		}
	}
	want, wantEvents, _ := oracle(t, env.cfg, rs, poison)
	minFindings(t, want, 10)

	p := start(t, env.cfg)
	produce(t, env.cfg, rs, 10, nil)
	waitStored(t, env.store, want, wantEvents, 90*time.Second)

	dl := readTopic(t, env.cfg.Kafka, env.cfg.Topics.DeadLetter, len(poison))
	got := map[int]string{}
	for _, m := range dl {
		info, ok := kafkaio.DeadLetterInfo(m)
		if !ok || info.SourceTopic != env.cfg.Topics.CRMAccess || info.Detail == "" {
			t.Errorf("dead letter without reason, detail or source: %+v", info)
			continue
		}
		got[int(info.SourceOffset)] = info.Reason
	}
	for off, reason := range poison {
		if got[off] != reason {
			t.Errorf("poison at offset %d: dead-lettered with reason %q, want %q", off, got[off], reason)
		}
	}
	if s := p.Normalizer.Stats(); s.DeadLettered != uint64(len(poison)) || s.Normalized != uint64(wantEvents) {
		t.Errorf("normalizer: %d dead-lettered, %d normalized; want %d and %d", s.DeadLettered, s.Normalized, len(poison), wantEvents)
	}
	if s := p.Detector.Stats(); s.Events != uint64(wantEvents) {
		t.Errorf("detector processed %d events, want %d", s.Events, wantEvents)
	}
}

// hook is an in-test webhook receiver of the pager: it verifies each
// request's signature and records the bodies.
type hook struct {
	srv    *httptest.Server
	secret []byte
	mu     sync.Mutex
	bodies []pager.WebhookBody
}

func newHook(t *testing.T, secret []byte) *hook {
	h := &hook{secret: secret}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if !pager.VerifySignature(h.secret, b, r.Header.Get(pager.HeaderSignature)) {
			t.Errorf("webhook: bad signature")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var body pager.WebhookBody
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("webhook: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.bodies = append(h.bodies, body)
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// pages counts the new pages (kind "new") per dedup key, and every body.
func (h *hook) pages() (news map[string]int, total int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	news = map[string]int{}
	for _, b := range h.bodies {
		if b.Kind == "new" {
			news[b.DedupKey]++
		}
	}
	return news, len(h.bodies)
}

// TestFaultDuplicatedEvents re-produces 10 % of the events (same event id,
// same bytes): no duplicate finding (each finding id once under FINAL, the
// findings equal the duplicate-free oracle's) and no duplicate page (the
// pager, with a webhook receiver, opens exactly one incident per live
// finding).
func TestFaultDuplicatedEvents(t *testing.T) {
	env := faultSetup(t, faultOpts{})
	clean := raw(t, crmDay(1500))
	var rs []scenario.Raw
	dups := 0
	for i, r := range clean {
		rs = append(rs, r)
		if i%10 == 3 && i >= 20 { // 10 %: an event of a little earlier again
			rs = append(rs, clean[i-17])
			dups++
		}
	}
	want, wantEvents, _ := oracle(t, env.cfg, clean, nil)
	minFindings(t, want, 10)
	live := 0
	for _, f := range want {
		if !f.Shadow {
			live++
		}
	}

	secret := []byte("0123456789abcdef-webhook-secret")
	h := newHook(t, secret)
	pol, err := pager.ParsePolicy([]byte(fmt.Sprintf(`version: 1
receivers:
  - {name: hook, type: webhook, url: %q}
routes:
  - match: {}
    receivers: [hook]
    resolve_after: 1h
`, h.srv.URL+"/hook")))
	if err != nil {
		t.Fatal(err)
	}
	pg, err := pager.New(pager.Config{Kafka: env.cfg.Kafka, Topics: env.cfg.Topics, Policy: pol, WebhookSecret: secret,
		GrafanaURL: "https://grafana.test", MinRetryInterval: 50 * time.Millisecond, MaxRetryInterval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pgDone := make(chan error, 1)
	go func() { pgDone <- pg.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-pgDone; err != nil && ctx.Err() == nil {
			t.Errorf("pager: %v", err)
		}
	})

	p := start(t, env.cfg)
	produce(t, env.cfg, rs, 10, nil)
	waitStored(t, env.store, want, wantEvents, 90*time.Second)
	if s := p.Normalizer.Stats(); s.Duplicates != uint64(dups) || s.Normalized != uint64(wantEvents) {
		t.Errorf("normalizer: %d duplicates dropped, %d normalized; want %d and %d", s.Duplicates, s.Normalized, dups, wantEvents)
	}

	waitFor(t, "one page per live finding", func() bool {
		news, _ := h.pages()
		return len(news) >= live
	})
	time.Sleep(time.Second) // a duplicate page would show up now
	news, total := h.pages()
	if len(news) != live {
		t.Errorf("%d incidents paged, want %d (live findings of the oracle)", len(news), live)
	}
	for key, n := range news {
		f, ok := want[key]
		switch {
		case !ok:
			t.Errorf("page for %.8s, which is no finding of the oracle", key)
		case f.Shadow:
			t.Errorf("page for shadow finding %.8s", key)
		case n != 1:
			t.Errorf("finding %.8s paged %d times, want once", key, n)
		}
	}
	t.Logf("%d events + %d duplicates: %d findings (%d live), %d webhook requests", len(clean), dups, len(want), live, total)
}

// TestFaultLateAndOutOfOrderEvents: events shuffled within the allowed
// lateness give the findings of the in-order stream; events later than the
// allowed lateness are counted (late-events metric) and not applied to
// windows, although they would open an incident; future-dated events are
// counted (future-dated metric) and applied at their ingestion time.
func TestFaultLateAndOutOfOrderEvents(t *testing.T) {
	env := faultSetup(t, faultOpts{})
	lateness := env.cfg.Engine.AllowedLateness
	base := crmDay(1500)

	// Late: ticketless exports of 250 new records each by an agent of their
	// own, dated lateness + 10 min behind the stream where they arrive.
	const nLate, nFuture = 6, 3
	lateAt := len(base) / 2
	var late []*event.CRMAccess
	for i := 0; i < nLate; i++ {
		at := base[lateAt-1].Time.Add(-lateness - 10*time.Minute + time.Duration(i)*time.Second)
		ids := make([]string, 250)
		for k := range ids {
			ids[k] = fmt.Sprintf("L-%d-%04d", i, k)
		}
		late = append(late, &event.CRMAccess{SchemaVersion: 1, ClassUID: event.ClassAPIActivity, ActivityID: 2,
			EventID: fmt.Sprintf("late-%d", i), Time: at, Actor: event.Actor{UID: "agent-late", Department: "support"},
			Action: event.ActionExport, Records: event.Records{IDs: ids, Count: len(ids)}})
	}
	// Applied on time, the late events alone would open an incident.
	if alone, _, _ := oracle(t, env.cfg, raw(t, late), nil); len(alone) == 0 {
		t.Fatal("the late events would open no incident on time: the test proves nothing")
	}
	// Future-dated: ticketed views dated two hours ahead of the wall clock,
	// at the end (they move the watermark, closing open incidents).
	var future []*event.CRMAccess
	for i := 0; i < nFuture; i++ {
		at := time.Now().Add(2*time.Hour + time.Duration(i)*time.Second).UTC().Truncate(time.Second)
		future = append(future, &event.CRMAccess{SchemaVersion: 1, ClassUID: event.ClassAPIActivity, ActivityID: 2,
			EventID: fmt.Sprintf("future-%d", i), Time: at, Actor: event.Actor{UID: "agent-future", Department: "support"},
			Action: "view", Records: event.Records{IDs: []string{"C-F"}, Count: 1}, TicketID: "T-F"})
	}

	// In order: the oracle's input. Shuffled: what the pipeline gets, each
	// block of 20 events (140 s of event time, under the lateness) permuted.
	inOrder := append(append(append(slices.Clone(base[:lateAt]), late...), base[lateAt:]...), future...)
	shuffled := slices.Clone(base)
	r := rand.New(rand.NewPCG(9, 9))
	for lo := 0; lo < len(shuffled); lo += 20 {
		blk := shuffled[lo:min(lo+20, len(shuffled))]
		r.Shuffle(len(blk), func(i, j int) { blk[i], blk[j] = blk[j], blk[i] })
	}
	maxShift := time.Duration(0)
	for i := 1; i < len(shuffled); i++ {
		for j := max(0, i-40); j < i; j++ {
			maxShift = max(maxShift, shuffled[j].Time.Sub(shuffled[i].Time))
		}
	}
	if maxShift <= 0 || maxShift >= lateness {
		t.Fatalf("shuffle moved events by up to %v: want within (0, %v)", maxShift, lateness)
	}
	shuffled = append(append(append(shuffled[:lateAt:lateAt], late...), shuffled[lateAt:]...), future...)

	want, wantEvents, ost := oracle(t, env.cfg, raw(t, inOrder), nil)
	minFindings(t, want, 10)
	if ost.LateEvents != nLate || ost.FutureDated != nFuture {
		t.Fatalf("oracle: %d late and %d future-dated events, want %d and %d", ost.LateEvents, ost.FutureDated, nLate, nFuture)
	}
	for _, f := range want {
		if f.ActorUID == "agent-late" {
			t.Fatalf("the oracle applied a late event: %s %s", f.RuleID, f.ActorUID)
		}
	}

	lateBefore, futureBefore := testutil.ToFloat64(metrics.LateEvents), testutil.ToFloat64(metrics.FutureEvents)
	p := start(t, env.cfg)
	produce(t, env.cfg, raw(t, shuffled), 10, nil)
	waitStored(t, env.store, want, wantEvents, 90*time.Second)
	s := p.Detector.Stats()
	if s.Events != uint64(wantEvents) || s.LateEvents != nLate || s.FutureDated != nFuture {
		t.Errorf("detector: %d events, %d late, %d future-dated; want %d, %d, %d", s.Events, s.LateEvents, s.FutureDated, wantEvents, nLate, nFuture)
	}
	if d := testutil.ToFloat64(metrics.LateEvents) - lateBefore; d != nLate {
		t.Errorf("leakline_late_events_total grew by %g, want %d", d, nLate)
	}
	if d := testutil.ToFloat64(metrics.FutureEvents) - futureBefore; d != nFuture {
		t.Errorf("leakline_future_dated_events_total grew by %g, want %d", d, nFuture)
	}
}

// sinkConsumed is how many messages the sink's two loops have fetched
// (leakline_messages_consumed_total of their consumer groups).
func sinkConsumed(t *testing.T, cfg pipeline.Config) float64 {
	t.Helper()
	return testutil.ToFloat64(metrics.Consumed.WithLabelValues("leakline-chsink", cfg.Topics.Findings)) +
		testutil.ToFloat64(metrics.Consumed.WithLabelValues("leakline-chsink-events", cfg.Topics.EventMeta))
}

// TestFaultClickHouseStopped stops ClickHouse (SIGTERM, data kept) for 60 s
// while events keep coming: the sink holds at most one batch per loop and
// fetches nothing more (backpressure, bounded memory), and once ClickHouse
// is back every finding and every event row arrives exactly once.
func TestFaultClickHouseStopped(t *testing.T) {
	const outage = 60 * time.Second
	srv := testenv.ClickHouse(t)
	env := faultSetup(t, faultOpts{ch: srv, sinkBatch: 50})
	rs := raw(t, crmDay(3000))
	want, wantEvents, _ := oracle(t, env.cfg, rs, nil)
	minFindings(t, want, 10)

	p := start(t, env.cfg)
	const chunks = 30
	var stoppedAt time.Time
	var consumedAtStop float64
	var eventsAtStop uint64
	produce(t, env.cfg, rs, chunks, func(i int) {
		switch {
		case i == 2:
			waitFor(t, "the sink to store events", func() bool { return p.Sink.Stats().EventsInserted > 0 })
			if err := srv.Halt(); err != nil {
				t.Fatal(err)
			}
			stoppedAt, consumedAtStop, eventsAtStop = time.Now(), sinkConsumed(t, env.cfg), p.Detector.Stats().Events
		case i > 2:
			// Steady load: the rest of the traffic spread over the outage.
			time.Sleep((outage - 5*time.Second) / (chunks - 3))
		}
	})
	time.Sleep(time.Until(stoppedAt.Add(outage)))

	// During the outage the detector kept publishing, but the sink fetched
	// at most the batch each loop was holding when ClickHouse went away.
	s := p.Sink.Stats()
	fetched := sinkConsumed(t, env.cfg) - consumedAtStop
	published := p.Detector.Stats().Events - eventsAtStop
	bound := uint64(2 * env.cfg.Sink.BatchSize)
	t.Logf("outage: detector published %d event summaries, sink fetched %g, held at most %d (bound %d), %d insert retries",
		published, fetched, s.MaxHeld, bound, s.Retries)
	if published < 10*bound {
		t.Fatalf("only %d events during the outage: no load to hold back", published)
	}
	if fetched > float64(bound) {
		t.Errorf("the sink fetched %g messages while ClickHouse was down, want ≤ %d (one batch per loop)", fetched, bound)
	}
	if s.Retries == 0 {
		t.Error("no insert was retried while ClickHouse was down")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("restart ClickHouse: %v", err)
	}
	waitStored(t, env.store, want, wantEvents, 60*time.Second)
	s = p.Sink.Stats()
	if s.MaxHeld > bound {
		t.Errorf("the sink held up to %d records, want ≤ %d", s.MaxHeld, bound)
	}
	if s.Held != 0 || testutil.ToFloat64(metrics.SinkBufferedRows) != 0 {
		t.Errorf("the sink still holds %d records after catching up", s.Held)
	}
}

// TestFaultClickHouseFrozen freezes ClickHouse with SIGSTOP for 20 s while
// events keep coming: inserts time out and are retried, and after SIGCONT
// nothing is lost or duplicated, and the tables have no pile-up of parts.
func TestFaultClickHouseFrozen(t *testing.T) {
	const freeze = 20 * time.Second
	srv := testenv.ClickHouse(t)
	env := faultSetup(t, faultOpts{ch: srv, sinkBatch: 50, readTimeout: 2 * time.Second})
	rs := raw(t, crmDay(1500))
	want, wantEvents, _ := oracle(t, env.cfg, rs, nil)
	minFindings(t, want, 10)

	p := start(t, env.cfg)
	const chunks = 12
	var frozenAt time.Time
	produce(t, env.cfg, rs, chunks, func(i int) {
		switch {
		case i == 2:
			waitFor(t, "the sink to store events", func() bool { return p.Sink.Stats().EventsInserted > 0 })
			if err := srv.Pause(); err != nil {
				t.Fatal(err)
			}
			frozenAt = time.Now()
			t.Cleanup(func() { _ = srv.Resume() }) // never leave it frozen
		case i > 2:
			time.Sleep((freeze - 5*time.Second) / (chunks - 3))
		}
	})
	time.Sleep(time.Until(frozenAt.Add(freeze)))
	retries := p.Sink.Stats().Retries
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if retries == 0 {
		t.Error("no insert timed out and was retried while ClickHouse was frozen")
	}
	waitStored(t, env.store, want, wantEvents, 60*time.Second)

	// Each insert attempt (a batch, or a retry of it that ClickHouse ran
	// after all) writes one part per table; rows are never inserted one by
	// one. So the parts inserted into a table are at most its batches plus
	// the retries, and the active parts stay below 150, where ClickHouse
	// starts delaying inserts (parts_to_delay_insert).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := p.Sink.Stats()
	for _, c := range []struct {
		table   string
		batches uint64
		rows    int
	}{{"findings", s.Batches, len(want)}, {"events", s.EventBatches, wantEvents}} {
		active, inserted := parts(ctx, t, env.store, c.table)
		t.Logf("%s: %d parts inserted by %d batches and %d retries (%d rows), %d active", c.table, inserted, c.batches, s.Retries, c.rows, active)
		if inserted < c.batches || inserted > c.batches+s.Retries || active >= 150 {
			t.Errorf("%s: %d parts inserted, %d active; want from %d batches to %d batches + %d retries, and < 150 active",
				c.table, inserted, active, c.batches, c.batches, s.Retries)
		}
	}
}

// TestFaultBrokerRestart stops the broker while events flow and starts it
// again after an outage on the same data directory and address. The same
// pipeline instance rides it out (no stage exits, nothing is restarted):
// Ready is false during the outage and true again after it, the Kafka
// clients count their errors, and ClickHouse ends with every finding and
// event row exactly once. The second case outlasts the group session
// timeout, so the consumer groups rebalance when the broker is back.
func TestFaultBrokerRestart(t *testing.T) {
	cases := []struct {
		name   string
		outage time.Duration
	}{
		{"short", 5 * time.Second},
		{"beyond session timeout", kafkaio.DefaultSessionTimeout + 4*time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { brokerRestart(t, tc.outage) })
	}
}

func brokerRestart(t *testing.T, outage time.Duration) {
	dir := t.TempDir()
	broker, err := embedkafka.Start(embedkafka.Options{DataDir: dir})
	if err != nil {
		testenv.Unavailable(t, "Kafka broker", err)
	}
	t.Cleanup(func() { broker.Close() })
	addr := broker.Addrs()[0]
	env := faultSetup(t, faultOpts{broker: broker})
	logs := newLogRecorder()
	env.cfg.Kafka.Logger = slog.New(logs)
	rs := raw(t, crmDay(1500))
	want, wantEvents, _ := oracle(t, env.cfg, rs, nil)
	minFindings(t, want, 10)

	p, exited := runOnce(t, env.cfg)
	ready := watchReady(t, p)
	errorsBefore := testenv.MetricSum(t, metrics.KafkaErrors)
	var down, up time.Time
	type restart struct {
		b  *embedkafka.Broker
		at time.Time // when the broker listened again
	}
	restarted := make(chan restart, 1)
	// The producer goes on writing during the outage: its Writer waits.
	produce(t, env.cfg, rs, 10, func(i int) {
		if i != 4 {
			return
		}
		waitFor(t, "the sink to store events", func() bool { return p.Sink.Stats().EventsInserted > 0 })
		broker.Close()
		down = time.Now()
		go func() {
			time.Sleep(outage)
			start := time.Now()
			b, err := embedkafka.Start(embedkafka.Options{Addr: addr, DataDir: dir})
			if err != nil {
				t.Errorf("restart the broker on %s: %v", addr, err)
			}
			restarted <- restart{b, start}
		}()
	})
	r := <-restarted
	if r.b == nil {
		t.FailNow()
	}
	broker, up = r.b, r.at
	waitStored(t, env.store, want, wantEvents, 90*time.Second)
	select {
	case err := <-exited:
		t.Fatalf("the pipeline exited during the broker outage: %v", err)
	default:
	}

	// Ready was false throughout the outage (after a second for the probe
	// in flight when the broker went away) and is true again.
	var duringOutage, readyDuringOutage int
	for _, s := range ready.samples() {
		if s.at.After(down.Add(time.Second)) && s.at.Before(up) {
			duringOutage++
			if s.ready {
				readyDuringOutage++
			}
		}
	}
	if duringOutage == 0 || readyDuringOutage > 0 {
		t.Errorf("Ready answered %d times during the outage, %d of them ready; want > 0 and 0", duringOutage, readyDuringOutage)
	}
	waitFor(t, "the pipeline to be ready again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return p.Ready(ctx) == nil
	})
	if err := kafkaio.Health(); err != nil {
		t.Errorf("a Kafka client still reports an outage after recovery: %v", err)
	}
	grew := testenv.MetricSum(t, metrics.KafkaErrors) - errorsBefore
	if grew == 0 {
		t.Error("no Kafka client error was counted during the outage")
	}
	if s := p.Normalizer.Stats(); s.Normalized != uint64(wantEvents) {
		t.Errorf("the normalizer published %d events, want %d (each once)", s.Normalized, wantEvents)
	}
	t.Logf("outage %v: %g Kafka client errors counted, %d readiness probes during it, normalizer %+v",
		up.Sub(down).Round(time.Millisecond), grew, duringOutage, p.Normalizer.Stats())
	// One warning when an operation starts failing and one line when it
	// works again (or is given up), not one per attempt.
	failing, recovered, abandoned := logs.count(" failing; waiting for the broker"), logs.count(" works again"), logs.count(" given up while failing")
	t.Logf("log lines: %d outages started, %d recovered, %d given up; %d lines in all", failing, recovered, abandoned, len(logs.lines()))
	if failing == 0 || failing != recovered+abandoned || float64(failing) >= grew {
		t.Errorf("%d outage warnings, %d recoveries, %d given up for %g errors: want ≥ 1 warning, each ended once, fewer than the errors",
			failing, recovered, abandoned, grew)
		for _, l := range logs.lines() {
			t.Log(l)
		}
	}
}
