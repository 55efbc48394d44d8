package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/chserver"
	"github.com/leakline/leakline/pkg/chsink"
	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/embedkafka"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/inspect"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/pipeline"
	"github.com/leakline/leakline/pkg/privacy"
	"github.com/leakline/leakline/pkg/scenario"
	"github.com/leakline/leakline/pkg/testenv"
)

// The fault tests run the pipeline on single-partition topics and feed it
// CRM-access events only: every stage then sees the events in exactly the
// order they were produced, so one detection engine run over the injected
// events in that order (the oracle) says which findings ClickHouse must hold.

// faultOpts says which servers a fault test runs against.
type faultOpts struct {
	// ch is a private ClickHouse the test may stop or pause; nil means the
	// package's shared server.
	ch *chserver.Server
	// broker is a broker the test may restart; nil means a fresh one.
	broker *embedkafka.Broker
	// limits of the normalizer's decoder.
	limits event.Limits
	// sinkBatch is the sink's batch size (default 50).
	sinkBatch int
	// readTimeout bounds each read from ClickHouse by the sink (default 3 s).
	readTimeout time.Duration
}

// faultEnv is a prepared pipeline configuration and the store it writes to.
type faultEnv struct {
	cfg   pipeline.Config
	store *chstore.Store
}

func faultSetup(t *testing.T, o faultOpts) *faultEnv {
	t.Helper()
	srv := o.ch
	if srv == nil {
		srv = needClickHouse(t)
	}
	broker := o.broker
	if broker == nil {
		broker = testenv.Kafka(t, nil)
	}
	if o.sinkBatch == 0 {
		o.sinkBatch = 50
	}
	if o.readTimeout == 0 {
		o.readTimeout = 3 * time.Second
	}
	store := testenv.ClickHouseStore(t, srv)
	cfg := pipeline.Config{
		Kafka:      kafkaio.Config{Brokers: broker.Addrs(), ClientID: "faults", WriteTimeout: 5 * time.Second},
		Topics:     kafkaio.DefaultTopics(),
		Partitions: 1,
		Store:      chstore.Config{Addr: srv.Addr(), Database: store.Database(), DialTimeout: 2 * time.Second, ReadTimeout: o.readTimeout},
		Limits:     o.limits,
		Engine:     detect.DefaultConfig(),
		HMACKey:    testKey,
		Sink:       chsink.Config{BatchSize: o.sinkBatch, FlushInterval: 100 * time.Millisecond, MaxRetryInterval: time.Second},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pipeline.Prepare(ctx, cfg); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return &faultEnv{cfg: cfg, store: store}
}

// crmDay returns n CRM-access events of 12 support agents from 18:00 UTC,
// one every 7 s, in time order: agent a reads a new customer records per
// event, mostly exports without a ticket (agents 5–11 cross the bulk-read
// threshold, several incidents each), every fourth event of an even agent
// is a ticketed view, and the evening crosses 20:00 (after-hours exports).
func crmDay(n int) []*event.CRMAccess {
	t0 := time.Date(2026, 11, 2, 18, 0, 0, 0, time.UTC)
	const agents = 12
	next := make([]int, agents)
	out := make([]*event.CRMAccess, 0, n)
	for i := 0; i < n; i++ {
		a := i % agents
		at := t0.Add(time.Duration(i) * 7 * time.Second)
		ids := make([]string, 0, a+1)
		for k := 0; k <= a; k++ {
			ids = append(ids, fmt.Sprintf("C-%02d-%06d", a, next[a]))
			next[a]++
		}
		action, ticket := event.ActionExport, ""
		if a%2 == 0 && (i/agents)%4 == 3 {
			action, ticket = "view", fmt.Sprintf("T-%d", i)
		}
		region := "US"
		if a%3 == 0 {
			region = "EU"
		}
		out = append(out, &event.CRMAccess{
			SchemaVersion: 1, ClassUID: event.ClassAPIActivity, ActivityID: 2,
			EventID: fmt.Sprintf("crm-%06d", i), Time: at,
			Actor:  event.Actor{UID: fmt.Sprintf("agent-%02d", a), Email: fmt.Sprintf("agent%02d@corp.example", a), Department: "support"},
			Action: action, Records: event.Records{IDs: ids, Count: len(ids), Region: region}, TicketID: ticket,
		})
	}
	return out
}

// raw encodes events as their source would produce them.
func raw(t *testing.T, evs []*event.CRMAccess) []scenario.Raw {
	t.Helper()
	out := make([]scenario.Raw, len(evs))
	for i, e := range evs {
		out[i] = scenario.Raw{Kind: event.KindCRMAccess, Key: []byte(e.Actor.UID), Value: mustJSON(t, e), Time: e.Time}
	}
	return out
}

// oracle runs one detection engine (the pipeline's single partition) over
// the events of rs in order, skipping the injected poison (indices of rs)
// and repeated event ids as the normalizer does, and returns the latest
// revision of every finding, the number of distinct valid events and the
// engine's counters. Any other event that does not decode fails the test.
func oracle(t *testing.T, cfg pipeline.Config, rs []scenario.Raw, poison map[int]string) (map[string]finding.Finding, int, detect.Stats) {
	t.Helper()
	dec, err := event.NewDecoder(cfg.Limits)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := privacy.NewTokenizer(cfg.HMACKey)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := inspect.New(cfg.Inspect, tok)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := detect.New(cfg.Engine, sc)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	seen := map[string]bool{}
	out := map[string]finding.Finding{}
	for i, r := range rs {
		if _, ok := poison[i]; ok {
			continue
		}
		ev, err := dec.DecodeRaw(r.Kind, r.Value, event.Source{}, now)
		if err != nil {
			t.Fatalf("event %d of the scenario does not decode: %v", i, err)
		}
		if seen[ev.EventID] {
			continue
		}
		seen[ev.EventID] = true
		for _, f := range eng.Process(ev, now) {
			if old, ok := out[f.FindingID]; !ok || f.Revision > old.Revision {
				out[f.FindingID] = f
			}
		}
	}
	return out, len(seen), eng.Stats()
}

// produce writes rs to the raw CRM topic in order, in chunks, calling
// between(i) after chunk i (nil for none).
func produce(t *testing.T, cfg pipeline.Config, rs []scenario.Raw, chunks int, between func(i int)) {
	t.Helper()
	w := kafkaio.NewWriter(cfg.Kafka, cfg.Topics.CRMAccess)
	defer w.Close()
	size := (len(rs) + chunks - 1) / chunks
	for i := 0; i < chunks; i++ {
		lo, hi := i*size, min((i+1)*size, len(rs))
		if lo >= hi {
			break
		}
		msgs := make([]kafka.Message, 0, hi-lo)
		for _, r := range rs[lo:hi] {
			msgs = append(msgs, kafka.Message{Key: r.Key, Value: r.Value, Time: r.Time})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := w.Write(ctx, msgs...)
		cancel()
		if err != nil {
			t.Fatalf("produce chunk %d: %v", i, err)
		}
		if between != nil {
			between(i)
		}
	}
}

// stored reads the findings table under FINAL, keyed by finding id.
func stored(ctx context.Context, st *chstore.Store) (map[string]finding.Finding, error) {
	fs, err := st.Findings(ctx, chstore.FindingFilter{})
	if err != nil {
		return nil, err
	}
	out := make(map[string]finding.Finding, len(fs))
	for _, f := range fs {
		out[f.FindingID] = f
	}
	return out, nil
}

// tableCounts returns count() under FINAL, the number of distinct ids and
// the rows before merges of a table.
func tableCounts(ctx context.Context, t *testing.T, st *chstore.Store, table, idCol string) (final, distinct, rows uint64) {
	t.Helper()
	tbl := st.Database() + "." + table
	if err := st.Conn().QueryRow(ctx, "SELECT count() FROM "+tbl+" FINAL").Scan(&final); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	if err := st.Conn().QueryRow(ctx, "SELECT uniqExact("+idCol+"), count() FROM "+tbl).Scan(&distinct, &rows); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return final, distinct, rows
}

// waitStored waits until ClickHouse holds exactly the oracle's findings and
// wantEvents event rows, then checks that each finding and each event is
// there once: count() FINAL equals the number of distinct ids.
func waitStored(t *testing.T, st *chstore.Store, want map[string]finding.Finding, wantEvents int, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	defer cancel()
	deadline := time.Now().Add(timeout)
	var d []string
	var events uint64
	for {
		got, err := stored(ctx, st)
		if err == nil {
			d = testenv.DiffFindings(want, got)
			events, _, _ = tableCounts(ctx, t, st, "events", "event_id")
			if len(d) == 0 && events == uint64(wantEvents) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d event rows (want %d); findings differ from the oracle (%d):\n%v", timeout, events, wantEvents, len(d), d)
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // anything beyond want would show up now
	for _, c := range []struct{ table, id string }{{"findings", "finding_id"}, {"events", "event_id"}} {
		final, distinct, rows := tableCounts(ctx, t, st, c.table, c.id)
		wantN := uint64(wantEvents)
		if c.table == "findings" {
			wantN = uint64(len(want))
		}
		if final != wantN || distinct != wantN {
			t.Errorf("%s: count() FINAL %d, %d distinct ids (%d rows before merges), want %d", c.table, final, distinct, rows, wantN)
		}
	}
}

// parts counts a table's parts: active ones, and those written by inserts
// (level 0, active or already merged away; ClickHouse keeps merged parts
// for 8 minutes, longer than a test runs).
func parts(ctx context.Context, t *testing.T, st *chstore.Store, table string) (active, inserted uint64) {
	t.Helper()
	q := "SELECT countIf(active), countIf(level = 0) FROM system.parts WHERE database = ? AND table = ?"
	if err := st.Conn().QueryRow(ctx, q, st.Database(), table).Scan(&active, &inserted); err != nil {
		t.Fatalf("system.parts of %s: %v", table, err)
	}
	return active, inserted
}

// minFindings fails the test when the oracle has too few findings for the
// scenario to prove anything.
func minFindings(t *testing.T, want map[string]finding.Finding, n int) {
	t.Helper()
	if len(want) < n {
		t.Fatalf("the oracle found only %d findings (want ≥ %d): the scenario proves nothing", len(want), n)
	}
}

// readySample is one answer of Pipeline.Ready.
type readySample struct {
	at    time.Time // when the probe started
	ready bool
}

// readyWatch probes Pipeline.Ready every 200 ms, as an orchestrator would.
type readyWatch struct {
	mu  sync.Mutex
	got []readySample
}

func (w *readyWatch) samples() []readySample {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got)
}

// watchReady probes p.Ready (each probe bounded by 1 s) until the test ends.
func watchReady(t *testing.T, p *pipeline.Pipeline) *readyWatch {
	w := &readyWatch{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			at := time.Now()
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			err := p.Ready(pctx)
			pcancel()
			if ctx.Err() != nil {
				return
			}
			w.mu.Lock()
			w.got = append(w.got, readySample{at: at, ready: err == nil})
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// logRecorder is a slog handler keeping the messages at Info and above,
// with their attributes, of every logger derived from it.
type logRecorder struct {
	attrs []slog.Attr
	log   *recordedLines
}

type recordedLines struct {
	mu    sync.Mutex
	lines []string
}

func newLogRecorder() *logRecorder { return &logRecorder{log: &recordedLines{}} }

func (l *logRecorder) Enabled(_ context.Context, lvl slog.Level) bool { return lvl >= slog.LevelInfo }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	for _, a := range l.attrs {
		fmt.Fprintf(&b, " %s", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s", a)
		return true
	})
	l.log.mu.Lock()
	defer l.log.mu.Unlock()
	l.log.lines = append(l.log.lines, b.String())
	return nil
}

func (l *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{attrs: append(slices.Clip(l.attrs), as...), log: l.log}
}

func (l *logRecorder) WithGroup(string) slog.Handler { return l }

func (l *logRecorder) lines() []string {
	l.log.mu.Lock()
	defer l.log.mu.Unlock()
	return slices.Clone(l.log.lines)
}

// count returns how many recorded lines contain s.
func (l *logRecorder) count(s string) int {
	n := 0
	for _, line := range l.lines() {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}
