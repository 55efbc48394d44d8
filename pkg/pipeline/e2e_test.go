package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/chserver"
	"github.com/leakline/leakline/pkg/chsink"
	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/demo"
	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/pipeline"
	"github.com/leakline/leakline/pkg/scenario"
	"github.com/leakline/leakline/pkg/testenv"
)

var chServer *chserver.Server

func TestMain(m *testing.M) {
	srv, stop, err := testenv.StartClickHouseMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ClickHouse unavailable:", err)
		if testenv.InCI() {
			os.Exit(1)
		}
	}
	chServer = srv
	code := m.Run()
	if stop != nil {
		stop()
	}
	os.Exit(code)
}

func needClickHouse(t *testing.T) *chserver.Server {
	t.Helper()
	if chServer == nil {
		testenv.Unavailable(t, "ClickHouse", errors.New("the server did not start in TestMain"))
	}
	return chServer
}

var testKey = []byte("0123456789abcdef0123456789abcdef-test-only-key")

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// setup starts a broker, a fresh database and returns a pipeline config.
func setup(t *testing.T) (pipeline.Config, *chstore.Store) {
	t.Helper()
	srv := needClickHouse(t)
	broker := testenv.Kafka(t, nil)
	store := testenv.ClickHouseStore(t, srv)
	cfg := pipeline.Config{
		Kafka:      kafkaio.Config{Brokers: broker.Addrs(), ClientID: "e2e"},
		Topics:     kafkaio.DefaultTopics(),
		Partitions: 6,
		Store:      chstore.Config{Addr: srv.Addr(), Database: store.Database()},
		Engine:     detect.DefaultConfig(),
		HMACKey:    testKey,
		Sink:       chsink.Config{BatchSize: 200, FlushInterval: 100 * time.Millisecond},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pipeline.Prepare(ctx, cfg); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return cfg, store
}

// start runs a pipeline until the test ends (see runOnce).
func start(t *testing.T, cfg pipeline.Config) *pipeline.Pipeline {
	t.Helper()
	p, _ := runOnce(t, cfg)
	return p
}

// runOnce runs one pipeline instance until the test ends, as its service
// would: nothing restarts it. exited yields Run's error if it returns
// before the test ends; an error other than the end of the test fails it.
func runOnce(t *testing.T, cfg pipeline.Config) (p *pipeline.Pipeline, exited <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := pipeline.New(ctx, cfg, testLogger(t))
	if err != nil {
		cancel()
		t.Fatalf("pipeline: %v", err)
	}
	done := make(chan error, 1)
	stopped := make(chan struct{})
	var runErr error
	go func() {
		runErr = p.Run(ctx)
		done <- runErr
		close(stopped)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
			if runErr != nil && !errors.Is(runErr, context.Canceled) {
				t.Errorf("pipeline stopped with error: %v", runErr)
			}
		case <-time.After(30 * time.Second):
			t.Error("pipeline did not stop within 30s")
		}
	})
	return p, done
}

func TestEndToEndInsiderDay(t *testing.T) {
	cfg, store := setup(t)
	p := start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if err := p.Ready(ctx); err != nil {
		t.Fatalf("running pipeline not ready: %v", err)
	}
	day := scenario.DemoDay(7, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	if err := demo.Replay(ctx, cfg.Kafka, cfg.Topics, day.Events, cfg.Engine.AllowedLateness, demo.NormalizerSettled(p.Normalizer)); err != nil {
		t.Fatal(err)
	}
	if _, err := demo.WaitForRules(ctx, store, day.Insider, day.ExpectedRules, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every valid event normalized", func() bool {
		s := p.Normalizer.Stats()
		return s.Normalized+s.DeadLettered == uint64(len(day.Events))
	})
	waitFor(t, "the detector to catch up", func() bool {
		return p.Detector.Stats().Events == uint64(len(day.Events)-day.Malformed)
	})
	time.Sleep(500 * time.Millisecond) // a last revision may still be in flight to the sink

	all, err := store.Findings(ctx, chstore.FindingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	perRule := map[string]int{}
	for _, f := range all {
		if f.ActorUID != day.Insider {
			t.Errorf("false positive: %s for %s (value %g)", f.RuleID, f.ActorUID, f.Value)
			continue
		}
		perRule[f.RuleID]++
	}
	for _, r := range day.ExpectedRules {
		if perRule[r] != 1 {
			t.Errorf("rule %s: %d findings for the insider, want exactly 1 incident", r, perRule[r])
		}
	}
	n, err := store.CountFindings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != uint64(len(all)) {
		t.Errorf("count() FINAL = %d, but %d findings read", n, len(all))
	}
	for _, f := range all {
		switch f.RuleID {
		case "crm.bulk_read_no_ticket":
			if f.Value < 200 || f.Threshold != 200 || len(f.EventIDs) == 0 {
				t.Errorf("bulk-read finding: value %g threshold %g event ids %d", f.Value, f.Threshold, len(f.EventIDs))
			}
		case "outbound.pii_external":
			if f.Channel != "email" || f.PIICounts["EMAIL_ADDRESS"] < 120 || f.PIICounts["CREDIT_CARD"] < 120 {
				t.Errorf("content finding: channel %q counts %v", f.Channel, f.PIICounts)
			}
			if len(f.Evidence) == 0 {
				t.Error("content finding has no evidence")
			}
			for _, e := range f.Evidence {
				if e.Token == "" || e.Masked == "" || !strings.Contains(e.Masked, "*") {
					t.Errorf("evidence not masked/tokenized: %+v", e)
				}
			}
			if strings.Contains(f.Destination, "dana.w.private") {
				t.Errorf("destination not masked: %q", f.Destination)
			}
		}
	}

	// The malformed event is in the dead-letter topic with its reason.
	dl := readTopic(t, cfg.Kafka, cfg.Topics.DeadLetter, day.Malformed)
	for _, m := range dl {
		info, ok := kafkaio.DeadLetterInfo(m)
		if !ok || info.Reason == "" || info.SourceTopic != cfg.Topics.Outbound {
			t.Errorf("dead letter without reason/source: %+v", info)
		}
	}

	// Every valid event's metadata is in the events table exactly once, and
	// the insider's CRM reads and mail are on their timeline.
	assertEventMeta(ctx, t, store, day)

	// No stored column anywhere contains a raw customer value.
	assertNoRawPII(t, needClickHouse(t), store.Database(), day.RawPII())
}

// assertEventMeta checks the events table against the day: one row per
// valid event (under FINAL and by distinct event id), and the insider's
// CRM reads and outbound mail with their metadata.
func assertEventMeta(ctx context.Context, t *testing.T, store *chstore.Store, day scenario.Day) {
	t.Helper()
	want := uint64(len(day.Events) - day.Malformed)
	tbl := store.Database() + ".events"
	var final, distinct, raw uint64
	waitFor(t, "every event's metadata stored", func() bool {
		if err := store.Conn().QueryRow(ctx, "SELECT count() FROM "+tbl+" FINAL").Scan(&final); err != nil {
			t.Fatalf("count events: %v", err)
		}
		return final >= want
	})
	if err := store.Conn().QueryRow(ctx, "SELECT uniqExact(event_id), count() FROM "+tbl).Scan(&distinct, &raw); err != nil {
		t.Fatalf("count distinct events: %v", err)
	}
	if final != want || distinct != want {
		t.Errorf("events: %d rows under FINAL, %d distinct ids (%d rows before merges), want %d", final, distinct, raw, want)
	}

	dec, err := event.NewDecoder(event.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	wantCRM := map[string]int{}       // event id -> records read
	wantMail := map[string]struct{}{} // event ids of outbound mail
	var first, last time.Time
	for _, r := range day.Events {
		ev, err := dec.DecodeRaw(r.Kind, r.Value, event.Source{}, time.Now())
		if err != nil || ev.Actor.UID != day.Insider {
			continue
		}
		if first.IsZero() || ev.Time.Before(first) {
			first = ev.Time
		}
		if ev.Time.After(last) {
			last = ev.Time
		}
		switch {
		case ev.Kind == event.KindCRMAccess:
			wantCRM[ev.EventID] = ev.CRM.Records.Count
		case ev.Kind == event.KindOutbound && ev.Outbound.Channel == event.ChannelEmail:
			wantMail[ev.EventID] = struct{}{}
		}
	}
	if len(wantCRM) == 0 || len(wantMail) == 0 {
		t.Fatalf("scenario: %d CRM reads and %d mails of the insider", len(wantCRM), len(wantMail))
	}
	got, err := store.ActorEvents(ctx, day.Insider, first.Add(-time.Minute), last.Add(time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	piiMail := 0
	for _, e := range got {
		seen[e.EventID]++
		if e.ActorUID != day.Insider || e.Department == "" {
			t.Errorf("event %s: actor %q department %q", e.EventID, e.ActorUID, e.Department)
		}
		if n, ok := wantCRM[e.EventID]; ok {
			if e.Kind != string(event.KindCRMAccess) || e.RecordCount != uint64(n) || e.Channel != "" || len(e.PIICounts) != 0 {
				t.Errorf("CRM read %s: %+v, want %d records", e.EventID, e, n)
			}
		}
		if _, ok := wantMail[e.EventID]; ok {
			if e.Kind != string(event.KindOutbound) || e.Channel != event.ChannelEmail || e.Size == 0 || e.Destination == "" {
				t.Errorf("mail %s: %+v", e.EventID, e)
			}
			if strings.Contains(e.Destination, "dana.w.private") {
				t.Errorf("mail %s: destination not masked: %q", e.EventID, e.Destination)
			}
			if e.PIICounts["EMAIL_ADDRESS"] >= 120 && e.PIICounts["CREDIT_CARD"] >= 120 {
				piiMail++
			}
		}
	}
	for id := range wantCRM {
		if seen[id] != 1 {
			t.Errorf("CRM read %s: %d rows on the insider's timeline, want 1", id, seen[id])
		}
	}
	for id := range wantMail {
		if seen[id] != 1 {
			t.Errorf("mail %s: %d rows on the insider's timeline, want 1", id, seen[id])
		}
	}
	if piiMail == 0 {
		t.Error("no mail of the insider carries the PII counts of the exfiltration")
	}
}

// TestChsinkRestartNoLossNoDuplicate stops the sink mid-stream and starts a
// new one: every finding is stored exactly once, at its highest revision.
func TestChsinkRestartNoLossNoDuplicate(t *testing.T) {
	cfg, store := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 3000
	var msgs []kafka.Message
	base := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		for rev := uint64(1); rev <= uint64(1+i%3); rev++ {
			f := finding.Finding{
				FindingID: finding.ID("r", "1", fmt.Sprintf("u-%d", i), base), Revision: rev,
				RuleID: "r", RuleVersion: "1", PackVersion: "p", Title: "t", Severity: finding.SeverityLow,
				ActorUID: fmt.Sprintf("u-%d", i), WindowStart: base, WindowEnd: base.Add(time.Minute),
				Value: float64(rev), DetectedAt: base,
			}
			msgs = append(msgs, kafka.Message{Key: []byte(f.FindingID), Value: mustJSON(t, f)})
		}
	}
	w := kafkaio.NewWriter(cfg.Kafka, cfg.Topics.Findings)
	if err := w.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	sinkCfg := cfg
	sinkCfg.Stages = []string{pipeline.StageChsink}
	sinkCfg.Sink.BatchSize = 100
	first, err := pipeline.New(ctx, sinkCfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- first.Run(runCtx) }()
	waitFor(t, "the first sink to store some batches", func() bool { return first.Sink.Stats().Inserted >= 1000 })
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("first sink: %v", err)
	}
	if got := first.Sink.Stats().Inserted; got >= uint64(len(msgs)) {
		t.Fatalf("the first sink stored everything (%d rows) before it was stopped; the restart proves nothing", got)
	}

	second := start(t, sinkCfg)
	waitFor(t, "every finding stored", func() bool {
		c, err := store.CountFindings(ctx)
		return err == nil && c == n
	})
	waitFor(t, "the second sink to drain the topic", func() bool {
		return first.Sink.Stats().Inserted+second.Sink.Stats().Inserted >= uint64(len(msgs))
	})
	fs, err := store.Findings(ctx, chstore.FindingFilter{Limit: 2 * n})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != n {
		t.Fatalf("%d findings under FINAL, want %d", len(fs), n)
	}
	for _, f := range fs {
		var i int
		fmt.Sscanf(f.ActorUID, "u-%d", &i)
		if want := uint64(1 + i%3); f.Revision != want {
			t.Fatalf("finding of %s at revision %d, want %d", f.ActorUID, f.Revision, want)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readTopic(t *testing.T, kc kafkaio.Config, topic string, want int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := kafkaio.NewConsumer(kafkaio.ConsumerConfig{Config: kc, GroupID: "e2e-reader-" + topic, Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	var got []kafka.Message
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = c.Run(runCtx, func(_ context.Context, b []kafka.Message) error {
			mu.Lock()
			got = append(got, b...)
			mu.Unlock()
			return nil
		})
	}()
	waitFor(t, fmt.Sprintf("%d messages on %s", want, topic), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= want
	})
	time.Sleep(300 * time.Millisecond) // anything beyond want would show up now
	mu.Lock()
	defer mu.Unlock()
	if len(got) != want {
		t.Errorf("%d messages on %s, want %d", len(got), topic, want)
	}
	return got
}

// assertNoRawPII dumps every row of every table of db as text over the HTTP
// interface and fails if any raw value appears.
func assertNoRawPII(t *testing.T, srv *chserver.Server, db string, values []string) {
	t.Helper()
	tables := httpQuery(t, srv, "SELECT name FROM system.tables WHERE database = '"+db+"' FORMAT TSV")
	names := strings.Fields(tables)
	if len(names) == 0 {
		t.Fatalf("no tables in %s", db)
	}
	rows := 0
	for _, name := range names {
		dump := httpQuery(t, srv, "SELECT * FROM "+db+"."+name+" FORMAT TSV")
		rows += strings.Count(dump, "\n")
		for _, v := range values {
			if v != "" && strings.Contains(dump, v) {
				t.Errorf("table %s contains a raw PII value", name)
				break
			}
		}
	}
	if rows == 0 {
		t.Fatal("no rows scanned for raw PII")
	}
}

func httpQuery(t *testing.T, srv *chserver.Server, q string) string {
	t.Helper()
	resp, err := http.Post("http://"+srv.HTTPAddr()+"/?"+url.Values{"database": {"default"}}.Encode(), "text/plain", strings.NewReader(q))
	if err != nil {
		t.Fatalf("clickhouse http: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("clickhouse http %d: %s", resp.StatusCode, b)
	}
	return string(b)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReadyFollowsTheBroker: readiness is true while the broker answers and
// false once it is gone.
func TestReadyFollowsTheBroker(t *testing.T) {
	broker := testenv.Kafka(t, nil)
	cfg := pipeline.Config{
		Kafka:   kafkaio.Config{Brokers: broker.Addrs(), ClientID: "ready"},
		Topics:  kafkaio.DefaultTopics(),
		Engine:  detect.DefaultConfig(),
		HMACKey: testKey,
		Stages:  []string{pipeline.StageDetector},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafkaio.EnsureTopics(ctx, cfg.Kafka, 1, cfg.Topics.All()...); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Ready(ctx); err != nil {
		t.Fatalf("not ready with the broker up: %v", err)
	}
	broker.Close()
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	if err := p.Ready(rctx); err == nil {
		t.Fatal("ready with the broker gone")
	}
}
