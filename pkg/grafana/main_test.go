package grafana_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/experimental/datasourcetest"

	"github.com/leakline/leakline/pkg/chserver"
	"github.com/leakline/leakline/pkg/chsink"
	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/demo"
	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/grafana"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/pipeline"
	"github.com/leakline/leakline/pkg/scenario"
	"github.com/leakline/leakline/pkg/testenv"
)

// srv is the package's ClickHouse server; nil if it could not be started
// (tests then skip, or fail under CI=true).
var srv *chserver.Server

func TestMain(m *testing.M) {
	s, stop, err := testenv.StartClickHouseMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	srv = s
	code := m.Run()
	stopPlugin()
	stop()
	os.Exit(code)
}

var testKey = []byte("0123456789abcdef0123456789abcdef-test-only-key")

// demoFixture is a ClickHouse database holding the demo day, loaded through
// the real pipeline, and the plugin serving it over gRPC.
type demoFixture struct {
	day   scenario.Day
	store *chstore.Store
	// from and to cover the scripted day.
	from, to time.Time
	plugin   datasourcetest.TestPlugin
	addr     string // the plugin's gRPC address
	settings backend.DataSourceInstanceSettings
}

// loadDemo runs the demo day through Kafka (in-process broker), the
// normalizer, the detector (content rule in shadow mode, so shadow and live
// findings both exist) and the sink into a new database, stops the
// pipeline, adds the insider's event metadata to the events table (the
// pipeline does not write it yet), and starts the plugin on it.
func loadDemo(t *testing.T) *demoFixture {
	t.Helper()
	begin := time.Now()
	store := testenv.ClickHouseStore(t, srv)
	broker := testenv.Kafka(t, nil)
	cfg := pipeline.Config{
		Kafka:      kafkaio.Config{Brokers: broker.Addrs(), ClientID: "grafana-test"},
		Topics:     kafkaio.DefaultTopics(),
		Partitions: 3,
		Store:      chstore.Config{Addr: srv.Addr(), Database: store.Database()},
		Engine:     twoRuleConfig(t),
		HMACKey:    testKey,
		Sink:       chsink.Config{BatchSize: 200, FlushInterval: 100 * time.Millisecond},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := pipeline.Prepare(ctx, cfg); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	p, err := pipeline.New(runCtx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		stop()
		t.Fatalf("pipeline: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	stopPipeline := func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("pipeline: %v", err)
		}
	}

	// The day ends two hours ago, so the dashboards' default ranges
	// (now-24h and longer) cover it.
	start := time.Now().UTC().Truncate(time.Hour).Add(-10 * time.Hour)
	day := scenario.DemoDay(7, start)
	if err := demo.Replay(ctx, cfg.Kafka, cfg.Topics, day.Events, cfg.Engine.AllowedLateness, demo.NormalizerSettled(p.Normalizer)); err != nil {
		stopPipeline()
		t.Fatal(err)
	}
	if _, err := demo.WaitForRules(ctx, store, day.Insider, day.ExpectedRules, 60*time.Second); err != nil {
		stopPipeline()
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for p.Detector.Stats().Events < uint64(len(day.Events)-day.Malformed) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a last revision may still be in flight to the sink
	stopPipeline()
	insertEventMeta(t, store, day)
	t.Logf("demo day loaded through the pipeline in %v", time.Since(begin).Round(time.Millisecond))

	f := &demoFixture{day: day, store: store, from: start.Add(-time.Hour), to: start.Add(10 * time.Hour)}
	f.settings = instanceSettings("leakline", srv.Addr(), store.Database(), nil)
	f.plugin, f.addr = startPlugin(t)
	return f
}

// insertEventMeta writes the metadata of the insider's events (kind, time,
// channel, domains, sizes, record counts; no content, no recipients) to the
// events table, as the event-metadata writer will.
func insertEventMeta(t *testing.T, st *chstore.Store, day scenario.Day) {
	t.Helper()
	ctx := context.Background()
	batch, err := st.Conn().PrepareBatch(ctx, "INSERT INTO "+st.Database()+".events (event_id, kind, time, time_ms, actor_uid, department, channel, destination, size, pii_types, pii_counts, record_count)")
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Close()
	n := 0
	for _, raw := range day.Events {
		var err error
		switch raw.Kind {
		case event.KindCRMAccess:
			var e event.CRMAccess
			if json.Unmarshal(raw.Value, &e) != nil || e.Actor.UID != day.Insider {
				continue
			}
			err = batch.Append(e.EventID, string(raw.Kind), e.Time.UTC().Truncate(time.Second), e.Time.UnixMilli(), e.Actor.UID, e.Actor.Department,
				"", "", uint64(0), []string{}, []uint32{}, uint64(e.Records.Count))
		case event.KindOutbound:
			var e event.Outbound
			if json.Unmarshal(raw.Value, &e) != nil || e.Actor.UID != day.Insider {
				continue
			}
			size := e.Content.Size
			for _, a := range e.Attachments {
				size += a.Size
			}
			err = batch.Append(e.EventID, string(raw.Kind), e.Time.UTC().Truncate(time.Second), e.Time.UnixMilli(), e.Actor.UID, e.Actor.Department,
				e.Channel, strings.Join(e.Destination.Domains, ","), uint64(size), []string{}, []uint32{}, uint64(0))
		default:
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no events of the insider")
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
}

// instanceSettings are the settings Grafana would send for a datasource.
func instanceSettings(uid, addr, db string, extra map[string]any) backend.DataSourceInstanceSettings {
	j := map[string]any{"address": addr, "database": db, "dialTimeout": "3s", "queryTimeout": "30s", "streamInterval": "200ms"}
	for k, v := range extra {
		if v == nil {
			delete(j, k)
		} else {
			j[k] = v
		}
	}
	b, _ := json.Marshal(j)
	return backend.DataSourceInstanceSettings{
		UID: uid, Name: "Leakline " + uid, Type: grafana.PluginID, JSONData: b,
		DecryptedSecureJSONData: map[string]string{"password": ""},
		Updated:                 time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

// The plugin is served once per test binary: the SDK registers its
// Prometheus collectors when it starts serving, and a second registration
// in the same process panics.
var (
	pluginOnce sync.Once
	plugin     datasourcetest.TestPlugin
	pluginAddr string
	pluginErr  error
)

// startPlugin serves the datasource over real gRPC on a free port, once;
// TestMain shuts it down. Tests share it through distinct datasource UIDs
// (one instance each).
func startPlugin(t *testing.T) (datasourcetest.TestPlugin, string) {
	t.Helper()
	pluginOnce.Do(func() {
		var l net.Listener
		l, pluginErr = net.Listen("tcp", "127.0.0.1:0")
		if pluginErr != nil {
			return
		}
		pluginAddr = l.Addr().String()
		l.Close()
		plugin, pluginErr = datasourcetest.Manage(grafana.NewDatasource, datasourcetest.ManageOpts{Address: pluginAddr})
	})
	if pluginErr != nil {
		t.Fatalf("start plugin: %v", pluginErr)
	}
	return plugin, pluginAddr
}

// stopPlugin shuts the shared plugin down, if it was started.
func stopPlugin() {
	if plugin.Client != nil || plugin.Server != nil {
		if err := plugin.Shutdown(); err != nil {
			fmt.Fprintln(os.Stderr, "plugin shutdown:", err)
		}
	}
}

// pluginContext is the context of a request by a user with role (none if
// role is empty) on the datasource s.
func pluginContext(s backend.DataSourceInstanceSettings, role string) backend.PluginContext {
	pc := backend.PluginContext{OrgID: 1, PluginID: grafana.PluginID, DataSourceInstanceSettings: &s}
	if role != "" {
		pc.User = &backend.User{Login: strings.ToLower(role) + "-user", Email: strings.ToLower(role) + "@corp.example", Role: role}
	}
	return pc
}

// queryJSON runs one query over real gRPC.
func (f *demoFixture) query(t *testing.T, role string, q backend.DataQuery) backend.DataResponse {
	t.Helper()
	if q.RefID == "" {
		q.RefID = "A"
	}
	if q.TimeRange.From.IsZero() {
		q.TimeRange = backend.TimeRange{From: f.from, To: f.to}
	}
	if q.MaxDataPoints == 0 {
		q.MaxDataPoints = 1000
	}
	resp, err := f.plugin.Client.QueryData(context.Background(), &backend.QueryDataRequest{
		PluginContext: pluginContext(f.settings, role),
		Queries:       []backend.DataQuery{q},
	})
	if err != nil {
		t.Fatalf("QueryData: %v", err)
	}
	r, ok := resp.Responses[q.RefID]
	if !ok {
		t.Fatalf("no response for %s", q.RefID)
	}
	return r
}

// field returns the frame's field by name, failing the test if absent.
func field(t *testing.T, fr *data.Frame, name string) *data.Field {
	t.Helper()
	f, i := fr.FieldByName(name)
	if i < 0 {
		t.Fatalf("frame %s has no field %s", fr.Name, name)
	}
	return f
}

// stringsOf lists every string a frame carries: string field values, field
// names, labels, configs and meta.
func stringsOf(fr *data.Frame) []string {
	out := []string{fr.Name}
	if fr.Meta != nil {
		b, _ := json.Marshal(fr.Meta)
		out = append(out, string(b))
	}
	for _, f := range fr.Fields {
		out = append(out, f.Name, f.Labels.String())
		if f.Config != nil {
			b, _ := json.Marshal(f.Config)
			out = append(out, string(b))
		}
		for i := 0; i < f.Len(); i++ {
			switch v := f.At(i).(type) {
			case string:
				out = append(out, v)
			case *string:
				if v != nil {
					out = append(out, *v)
				}
			}
		}
	}
	return out
}

// assertNoneOf fails if any of the values occurs in any of the texts.
func assertNoneOf(t *testing.T, what string, texts, values []string) {
	t.Helper()
	for _, s := range texts {
		for _, v := range values {
			if v != "" && strings.Contains(s, v) {
				t.Errorf("%s carries a forbidden value (length %d)", what, len(v))
				return
			}
		}
	}
}

// twoRuleConfig narrows the default pack to the bulk-read rule (live) and
// the content rule switched to shadow mode, so the demo day yields exactly
// one live and one shadow finding for the assertions of these tests.
func twoRuleConfig(t *testing.T) detect.Config {
	t.Helper()
	cfg := detect.DefaultConfig()
	pack := *cfg.Pack
	pack.Rules = nil
	for _, id := range []string{ruleBulk, ruleContent} {
		r := cfg.Pack.Rule(id)
		if r == nil {
			t.Fatalf("the default pack has no rule %s", id)
		}
		cp := *r
		cp.Shadow = id == ruleContent
		pack.Rules = append(pack.Rules, &cp)
	}
	cfg.Pack = &pack
	return cfg
}
