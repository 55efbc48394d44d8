package grafana_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/leakline/leakline/pkg/detect"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/grafana"
)

// defaultPack is the pack the demo day runs through (narrowed in loadDemo).
var defaultPack = detect.DefaultConfig().Pack

const (
	ruleBulk    = "crm.bulk_read_no_ticket" // live, high
	ruleContent = "outbound.pii_external"   // shadow (in this test), critical
)

// TestPlugin loads the demo day once and exercises the plugin over gRPC:
// every query type, every dashboard panel, the resources, the reveal and
// its audit, and the live stream. Every frame any test receives is
// collected and finally scanned for raw PII and evidence tokens.
func TestPlugin(t *testing.T) {
	f := loadDemo(t)
	all, err := f.store.Findings(context.Background(), chstore.FindingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for _, fd := range all {
		for _, e := range fd.Evidence {
			tokens = append(tokens, e.Token)
		}
	}
	if len(all) != 2 || len(tokens) == 0 {
		t.Fatalf("demo day: %d findings, %d evidence tokens; want 2 findings with evidence", len(all), len(tokens))
	}

	var mu sync.Mutex
	var seen []*data.Frame
	collect := func(frames data.Frames) {
		mu.Lock()
		seen = append(seen, frames...)
		mu.Unlock()
	}
	t.Run("queries", func(t *testing.T) { testQueries(t, f, collect) })
	t.Run("dashboards", func(t *testing.T) { testDashboards(t, f, collect) })
	t.Run("lookups", func(t *testing.T) { testLookups(t, f) })
	t.Run("reveal", func(t *testing.T) { testReveal(t, f, all) })
	t.Run("stream", func(t *testing.T) { testStream(t, f, collect) })

	t.Run("no filter value in query_log", func(t *testing.T) {
		testQueryLog(t, f, all)
	})
	t.Run("no raw PII or token in any frame", func(t *testing.T) {
		if len(seen) < 20 {
			t.Fatalf("only %d frames collected", len(seen))
		}
		var texts []string
		for _, fr := range seen {
			texts = append(texts, stringsOf(fr)...)
		}
		raw := f.day.RawPII()
		assertNoneOf(t, "a frame", texts, raw)
		assertNoneOf(t, "a frame", texts, tokens)
		t.Logf("scanned %d frames (%d strings) for %d raw values and %d tokens", len(seen), len(texts), len(raw), len(tokens))
	})
}

// sumFloats sums every float64 field except time.
func sumFloats(fr *data.Frame) float64 {
	var s float64
	for _, fl := range fr.Fields {
		if fl.Type() != data.FieldTypeFloat64 {
			continue
		}
		for i := 0; i < fl.Len(); i++ {
			s += fl.At(i).(float64)
		}
	}
	return s
}

// seriesNames are the label values of a wide frame's numeric fields.
func seriesNames(fr *data.Frame, label string) []string {
	var out []string
	for _, fl := range fr.Fields[1:] {
		out = append(out, fl.Labels[label])
	}
	return out
}

func testQueries(t *testing.T, f *demoFixture, collect func(data.Frames)) {
	insider := f.day.Insider
	type check func(t *testing.T, fs data.Frames)
	rows := func(want int) check {
		return func(t *testing.T, fs data.Frames) {
			if len(fs) != 1 {
				t.Fatalf("%d frames, want 1", len(fs))
			}
			if n, _ := fs[0].RowLen(); n != want {
				t.Fatalf("%d rows, want %d", n, want)
			}
		}
	}
	wide := func(label string, wantSeries []string, wantTotal float64) check {
		return func(t *testing.T, fs data.Frames) {
			if len(fs) != 1 {
				t.Fatalf("%d frames", len(fs))
			}
			fr := fs[0]
			if fr.Meta == nil || fr.Meta.Type != data.FrameTypeTimeSeriesWide {
				t.Fatalf("frame type %v, want a wide time series", fr.Meta)
			}
			if fr.Fields[0].Type() != data.FieldTypeTime {
				t.Fatalf("first field %s is not time", fr.Fields[0].Name)
			}
			for _, fl := range fr.Fields[1:] {
				if fl.Type() != data.FieldTypeFloat64 {
					t.Fatalf("field %s is %s, want float64 (alerting needs numbers)", fl.Name, fl.Type())
				}
			}
			if got := seriesNames(fr, label); !slices.Equal(got, wantSeries) {
				t.Errorf("series %q, want %q", got, wantSeries)
			}
			if got := sumFloats(fr); got != wantTotal {
				t.Errorf("total %v, want %v", got, wantTotal)
			}
			if n, _ := fr.RowLen(); n < 60 {
				t.Errorf("%d buckets over a %v range; zero buckets must be filled", n, f.to.Sub(f.from))
			}
		}
	}
	for _, tc := range []struct {
		name    string
		query   string
		wantErr string
		check   check
	}{
		{name: "findings", query: `{"queryType":"findings"}`, check: func(t *testing.T, fs data.Frames) {
			rows(2)(t, fs)
			fr := fs[0]
			actors := field(t, fr, "actor_uid")
			for i := 0; i < actors.Len(); i++ {
				if actors.At(i) != insider {
					t.Errorf("row %d is of %v, want the insider", i, actors.At(i))
				}
			}
			ev := field(t, fr, "evidence_masked")
			rule := field(t, fr, "rule_id")
			for i := 0; i < fr.Rows(); i++ {
				if rule.At(i) == ruleContent && !strings.Contains(ev.At(i).(string), "*") {
					t.Errorf("evidence not masked: %q", ev.At(i))
				}
			}
			if len(actors.Config.Links) != 1 || !strings.Contains(actors.Config.Links[0].URL, "/d/leakline-investigation/investigation?var-actor=") {
				t.Errorf("actor field lacks the investigation link: %+v", actors.Config)
			}
			if fr.Meta.Channel != "" {
				t.Errorf("channel %q without stream", fr.Meta.Channel)
			}
		}},
		{name: "findings by rule", query: `{"queryType":"findings","rules":["` + ruleContent + `"]}`, check: rows(1)},
		{name: "findings by severity", query: `{"queryType":"findings","severities":["high"]}`, check: rows(1)},
		{name: "findings by channel", query: `{"queryType":"findings","channels":["email"]}`, check: rows(1)},
		{name: "findings by actor", query: `{"queryType":"findings","actor":"` + insider + `"}`, check: rows(2)},
		{name: "findings of another actor", query: `{"queryType":"findings","actors":["u-1001"]}`, check: rows(0)},
		{name: "findings live only", query: `{"queryType":"findings","shadow":"live"}`, check: rows(1)},
		{name: "findings shadow only", query: `{"queryType":"findings","shadow":"shadow"}`, check: rows(1)},
		{name: "findings all value", query: `{"queryType":"findings","rules":["$__all"],"limit":1}`, check: rows(1)},
		{name: "findings streamed", query: `{"queryType":"findings","stream":true}`, check: func(t *testing.T, fs data.Frames) {
			if got, want := fs[0].Meta.Channel, "ds/leakline/findings"; got != want {
				t.Errorf("channel %q, want %q", got, want)
			}
		}},
		{name: "evidence", query: `{"queryType":"evidence","actor":"` + insider + `"}`, check: func(t *testing.T, fs data.Frames) {
			fr := fs[0]
			if fr.Rows() == 0 {
				t.Fatal("no evidence rows")
			}
			m := field(t, fr, "masked")
			for i := 0; i < m.Len(); i++ {
				if !strings.Contains(m.At(i).(string), "*") {
					t.Errorf("evidence %q not masked", m.At(i))
				}
			}
		}},
		{name: "over time by severity", query: `{"queryType":"findings_over_time","groupBy":"severity"}`, check: wide("severity", []string{"critical", "high"}, 2)},
		{name: "over time by channel", query: `{"queryType":"findings_over_time","groupBy":"channel"}`, check: wide("channel", []string{"email", "none"}, 2)},
		{name: "over time by rule", query: `{"queryType":"findings_over_time","groupBy":"rule"}`, check: wide("rule", []string{ruleBulk, ruleContent}, 2)},
		{name: "over time by mode", query: `{"queryType":"findings_over_time","groupBy":"mode"}`, check: wide("mode", []string{"live", "shadow"}, 2)},
		{name: "over time by pack", query: `{"queryType":"findings_over_time","groupBy":"pack_version"}`, check: wide("pack_version", []string{defaultPack.Version}, 2)},
		{name: "over time by rule version", query: `{"queryType":"findings_over_time","groupBy":"rule_version"}`, check: wide("rule_version", []string{ruleBulk + "@" + defaultPack.Rule(ruleBulk).Version, ruleContent + "@" + defaultPack.Rule(ruleContent).Version}, 2)},
		{name: "over time total", query: `{"queryType":"findings_over_time"}`, check: wide("", []string{""}, 2)},
		{name: "over time filtered keeps empty series", query: `{"queryType":"findings_over_time","groupBy":"severity","severities":["low","critical"]}`, check: wide("severity", []string{"critical", "low"}, 1)},
		{name: "over time of an actor", query: `{"queryType":"findings_over_time","groupBy":"rule","actor":"` + insider + `"}`, check: wide("rule", []string{ruleBulk, ruleContent}, 2)},
		{name: "over time of nobody", query: `{"queryType":"findings_over_time","groupBy":"rule","actor":"u-1001"}`, check: wide("rule", []string{""}, 0)},
		{name: "top users", query: `{"queryType":"top_users"}`, check: func(t *testing.T, fs data.Frames) {
			rows(1)(t, fs)
			fr := fs[0]
			if fr.At(0, 0) != insider {
				t.Errorf("top user %v, want %s", fr.At(0, 0), insider)
			}
			// Live findings only: the high bulk read (weight 10), decayed
			// over at most a few hours with a 7-day half-life.
			score := field(t, fr, "risk_score").At(0).(float64)
			if score <= 9 || score > 10 {
				t.Errorf("risk score %v, want just under 10", score)
			}
			if n := field(t, fr, "findings").At(0).(int64); n != 1 {
				t.Errorf("%d findings counted, want 1 (live)", n)
			}
		}},
		{name: "top users with shadow", query: `{"queryType":"top_users","includeShadow":true,"halfLifeHours":1}`, check: func(t *testing.T, fs data.Frames) {
			rows(1)(t, fs)
			score := field(t, fs[0], "risk_score").At(0).(float64)
			if score <= 0 || score >= 35 {
				t.Errorf("risk score %v, want in (0, 35): both findings, decayed with a 1 h half-life", score)
			}
			if n := field(t, fs[0], "findings").At(0).(int64); n != 2 {
				t.Errorf("%d findings counted, want 2", n)
			}
		}},
		{name: "user timeline", query: `{"queryType":"user_timeline","actor":"` + insider + `"}`, check: func(t *testing.T, fs data.Frames) {
			fr := fs[0]
			kinds := map[string]int{}
			k := field(t, fr, "kind")
			for i := 0; i < k.Len(); i++ {
				kinds[k.At(i).(string)]++
			}
			if kinds["finding"] != 2 || kinds["crm_access"] < 30 || kinds["outbound"] < 1 {
				t.Errorf("timeline kinds %v, want 2 findings, ≥30 CRM reads, ≥1 outbound", kinds)
			}
			tm := field(t, fr, "time")
			for i := 1; i < tm.Len(); i++ {
				if tm.At(i).(time.Time).Before(tm.At(i - 1).(time.Time)) {
					t.Fatal("timeline not in time order")
				}
			}
		}},
		{name: "rule performance", query: `{"queryType":"rule_performance"}`, check: func(t *testing.T, fs data.Frames) {
			rows(2)(t, fs)
			fr := fs[0]
			got := map[string]string{}
			for i := 0; i < fr.Rows(); i++ {
				got[field(t, fr, "rule_id").At(i).(string)] = fmt.Sprintf("%s fires=%v", field(t, fr, "mode").At(i), field(t, fr, "fires").At(i))
			}
			want := map[string]string{ruleBulk: "live fires=1", ruleContent: "shadow fires=1"}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("rule performance %v, want %v", got, want)
			}
		}},
		{name: "pipeline health", query: `{"queryType":"pipeline_health"}`, check: func(t *testing.T, fs data.Frames) {
			if len(fs) != 2 {
				t.Fatalf("%d frames, want ingest and freshness", len(fs))
			}
			// The rows arrived just now, not during the scripted day:
			// query the last hour instead (see "pipeline health now").
			if rows := field(t, fs[1], "rows_stored").At(0).(float64); rows < 2 {
				t.Errorf("freshness: %v rows stored", rows)
			}
		}},
		{name: "lookup actors", query: `{"queryType":"lookup","lookup":"actors"}`, check: func(t *testing.T, fs data.Frames) {
			rows(1)(t, fs)
			if fs[0].At(0, 0) != insider || fs[0].At(1, 0) != insider {
				t.Errorf("lookup %v", fs[0].At(0, 0))
			}
		}},
		{name: "lookup rules", query: `{"queryType":"lookup","lookup":"rules"}`, check: rows(2)},
		{name: "unknown type", query: `{"queryType":"sql","rawSql":"SELECT 1"}`, wantErr: "unknown queryType"},
		{name: "timeline without actor", query: `{"queryType":"user_timeline"}`, wantErr: "exactly one actor"},
		{name: "bad group", query: `{"queryType":"findings_over_time","groupBy":"actor_email"}`, wantErr: "invalid groupBy"},
		{name: "bad shadow", query: `{"queryType":"findings","shadow":"maybe"}`, wantErr: "invalid shadow"},
		{name: "bad limit", query: `{"queryType":"findings","limit":100000}`, wantErr: "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.query(t, grafana.RoleViewer, backend.DataQuery{JSON: json.RawMessage(tc.query), Interval: time.Minute})
			collect(r.Frames)
			if tc.wantErr != "" {
				if r.Error == nil || !strings.Contains(r.Error.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", r.Error, tc.wantErr)
				}
				if r.Status != backend.StatusBadRequest {
					t.Errorf("status %v, want 400", r.Status)
				}
				return
			}
			if r.Error != nil {
				t.Fatalf("error: %v", r.Error)
			}
			for _, fr := range r.Frames {
				if fr.RefID != "A" {
					t.Errorf("frame %s has refId %q", fr.Name, fr.RefID)
				}
			}
			tc.check(t, r.Frames)
		})
	}

	t.Run("pipeline health now", func(t *testing.T) {
		now := time.Now()
		r := f.query(t, grafana.RoleViewer, backend.DataQuery{
			JSON:      json.RawMessage(`{"queryType":"pipeline_health","view":"ingest"}`),
			TimeRange: backend.TimeRange{From: now.Add(-time.Hour), To: now.Add(time.Minute)},
			Interval:  time.Minute,
		})
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		collect(r.Frames)
		fr := r.Frames[0]
		if rows := sumFloats(fr); rows < 3 { // ≥ 2 rows stored + ≥ 2 new findings
			t.Errorf("ingest frame totals %v", rows)
		}
		if news := field(t, fr, "new_findings"); news.Len() < 60 {
			t.Errorf("%d buckets in an hour", news.Len())
		}
	})

	t.Run("several queries at once, editor", func(t *testing.T) {
		resp, err := f.plugin.Client.QueryData(context.Background(), &backend.QueryDataRequest{
			PluginContext: pluginContext(f.settings, grafana.RoleEditor),
			Queries: []backend.DataQuery{
				{RefID: "A", QueryType: grafana.QueryFindings, TimeRange: backend.TimeRange{From: f.from, To: f.to}},
				{RefID: "B", QueryType: grafana.QueryTopUsers, TimeRange: backend.TimeRange{From: f.from, To: f.to}},
				{RefID: "C", JSON: json.RawMessage(`{"queryType":"nope"}`)},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{"A", "B"} {
			r := resp.Responses[ref]
			if r.Error != nil || len(r.Frames) == 0 || r.Frames[0].Rows() == 0 {
				t.Errorf("%s: %v, %d frames", ref, r.Error, len(r.Frames))
			}
			collect(r.Frames)
		}
		if resp.Responses["C"].Error == nil {
			t.Error("C: no error for an unknown query type")
		}
	})
}

// callResource calls a resource over gRPC and returns status and body.
func callResource(t *testing.T, f *demoFixture, role, method, path string, body []byte) (int, []byte) {
	t.Helper()
	var (
		status int
		out    []byte
	)
	u, err := url.Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	req := &backend.CallResourceRequest{
		PluginContext: pluginContext(f.settings, role),
		Path:          strings.TrimPrefix(u.Path, "/"),
		Method:        method,
		URL:           path,
		Body:          body,
	}
	err = f.plugin.Client.CallResource(context.Background(), req, backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error {
		if r.Status != 0 {
			status = r.Status
		}
		out = append(out, r.Body...)
		return nil
	}))
	if err != nil {
		t.Fatalf("CallResource %s: %v", path, err)
	}
	return status, out
}

func testLookups(t *testing.T, f *demoFixture) {
	for _, tc := range []struct {
		path       string
		wantStatus int
		want       []string
	}{
		{"/rules", 200, []string{ruleBulk, ruleContent}},
		{"/actors", 200, []string{f.day.Insider}},
		{"/actors?prefix=u-10", 200, []string{f.day.Insider}},
		{"/actors?prefix=u-2", 200, []string{}},
		{"/channels", 200, []string{"email"}},
		{"/severities", 200, []string{"critical", "high"}},
		{"/rules?limit=1", 200, []string{ruleBulk}},
		{"/rules?limit=x", 400, nil},
		{"/nope", 404, nil},
	} {
		t.Run(tc.path, func(t *testing.T) {
			status, body := callResource(t, f, grafana.RoleViewer, http.MethodGet, tc.path, nil)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d (%s)", status, tc.wantStatus, body)
			}
			if tc.want == nil {
				return
			}
			var opts []grafana.Option
			if err := json.Unmarshal(body, &opts); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			got := []string{}
			for _, o := range opts {
				got = append(got, o.Value)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func testReveal(t *testing.T, f *demoFixture, all []finding.Finding) {
	var content finding.Finding
	for _, fd := range all {
		if fd.RuleID == ruleContent {
			content = fd
		}
	}
	ctx := context.Background()
	auditRows := func() uint64 {
		var n uint64
		if err := f.store.Conn().QueryRow(ctx, "SELECT count() FROM "+f.store.Database()+".evidence_access_audit").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	q := "/reveal?finding_id=" + content.FindingID + "&reason=" + url.QueryEscape("case INC-42")
	for _, tc := range []struct {
		name, role, method, path string
		body                     string
		wantStatus               int
		wantOutcome              string // "" means no audit row
	}{
		{name: "viewer refused", role: grafana.RoleViewer, method: http.MethodGet, path: q, wantStatus: 403, wantOutcome: chstore.AccessDenied},
		{name: "no user refused", role: "", method: http.MethodGet, path: q, wantStatus: 403, wantOutcome: chstore.AccessDenied},
		{name: "editor", role: grafana.RoleEditor, method: http.MethodGet, path: q, wantStatus: 200, wantOutcome: chstore.AccessGranted},
		{name: "admin by POST", role: grafana.RoleAdmin, method: http.MethodPost, path: "/reveal",
			body: `{"finding_id":"` + content.FindingID + `","reason":"case INC-43"}`, wantStatus: 200, wantOutcome: chstore.AccessGranted},
		{name: "editor without reason", role: grafana.RoleEditor, method: http.MethodGet, path: "/reveal?finding_id=" + content.FindingID, wantStatus: 400},
		{name: "no finding id", role: grafana.RoleEditor, method: http.MethodGet, path: "/reveal?reason=x", wantStatus: 400},
		{name: "unknown finding", role: grafana.RoleEditor, method: http.MethodGet, path: "/reveal?finding_id=0000&reason=x", wantStatus: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := auditRows()
			status, body := callResource(t, f, tc.role, tc.method, tc.path, []byte(tc.body))
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tc.wantStatus, body)
			}
			assertNoneOf(t, "the reveal response", []string{string(body)}, f.day.RawPII())
			after := auditRows()
			if tc.wantOutcome == "" {
				if after != before {
					t.Fatalf("%d audit rows written, want none", after-before)
				}
				return
			}
			if after != before+1 {
				t.Fatalf("%d audit rows written, want exactly 1", after-before)
			}
			rows, err := f.store.EvidenceAccesses(ctx, content.FindingID)
			if err != nil {
				t.Fatal(err)
			}
			last := rows[len(rows)-1]
			if last.Outcome != tc.wantOutcome || last.UserRole != tc.role || last.DatasourceUID != "leakline" || last.OrgID != 1 ||
				time.Since(last.At) > time.Minute || (tc.role != "" && last.UserLogin != strings.ToLower(tc.role)+"-user") {
				t.Errorf("audit row %+v", last)
			}
			if tc.wantStatus != 200 {
				if strings.Contains(string(body), `"evidence"`) || strings.Contains(string(body), content.Evidence[0].Token) {
					t.Errorf("a refused reveal returned evidence: %s", body)
				}
				return
			}
			var rr grafana.RevealResponse
			if err := json.Unmarshal(body, &rr); err != nil {
				t.Fatal(err)
			}
			if rr.FindingID != content.FindingID || rr.RawValuesStored || !strings.Contains(rr.Note, "never stores raw") ||
				len(rr.Evidence) != len(content.Evidence) || rr.Evidence[0].Token == "" || !strings.Contains(rr.Evidence[0].Masked, "*") ||
				rr.AuditID != last.AuditID || last.ActorUID != f.day.Insider || !strings.HasPrefix(last.Reason, "case INC-4") {
				t.Errorf("reveal %+v, audit %+v", rr, last)
			}
		})
	}
}

// testStream subscribes to the findings stream over gRPC as a Viewer and
// expects a finding stored after the subscription to arrive.
func testStream(t *testing.T, f *demoFixture, collect func(data.Frames)) {
	conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sc := pluginv2.NewStreamClient(conn)
	pc := backend.ToProto().PluginContext(pluginContext(f.settings, grafana.RoleViewer))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, tc := range []struct {
		path string
		want pluginv2.SubscribeStreamResponse_Status
	}{{"findings", pluginv2.SubscribeStreamResponse_OK}, {"secrets", pluginv2.SubscribeStreamResponse_NOT_FOUND}} {
		sub, err := sc.SubscribeStream(ctx, &pluginv2.SubscribeStreamRequest{PluginContext: pc, Path: tc.path})
		if err != nil || sub.Status != tc.want {
			t.Fatalf("subscribe %s: %v, %v; want %v", tc.path, sub, err, tc.want)
		}
	}
	pub, err := sc.PublishStream(ctx, &pluginv2.PublishStreamRequest{PluginContext: pc, Path: "findings", Data: []byte(`{}`)})
	if err != nil || pub.Status != pluginv2.PublishStreamResponse_PERMISSION_DENIED {
		t.Fatalf("publish: %v, %v", pub, err)
	}

	run, err := sc.RunStream(ctx, &pluginv2.RunStreamRequest{PluginContext: pc, Path: "findings"})
	if err != nil {
		t.Fatal(err)
	}
	start := f.day.Events[0].Time.Add(5 * time.Hour)
	nf := finding.Finding{
		FindingID: finding.ID("stream.test", "1", "u-2001", start), RuleID: "stream.test", RuleVersion: "1", PackVersion: "builtin-1",
		Title: "stream test", Severity: finding.SeverityLow, ActorUID: "u-2001", WindowStart: start, WindowEnd: start.Add(time.Minute),
		Channel: "usb", Value: 11, Threshold: 10, EventCount: 1, DetectedAt: time.Now().UTC(),
		PIICounts: map[string]uint32{"EMAIL_ADDRESS": 11},
		Evidence:  []finding.Evidence{{Type: "EMAIL_ADDRESS", Masked: "o***@example.com", Token: "00112233445566778899aabbccddeeff"}},
	}
	// The stream starts after the newest stored row; store new revisions
	// until one arrives.
	got := make(chan *data.Frame, 1)
	go func() {
		for {
			pkt, err := run.Recv()
			if err != nil {
				return
			}
			var fr data.Frame
			if err := json.Unmarshal(pkt.Data, &fr); err != nil {
				t.Errorf("stream packet: %v", err)
				return
			}
			if fr.Rows() > 0 {
				select {
				case got <- &fr:
				default:
				}
			}
		}
	}()
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for rev := uint64(1); ; rev++ {
		nf.Revision = rev
		if err := f.store.InsertFindings(ctx, []finding.Finding{nf}); err != nil {
			t.Fatal(err)
		}
		select {
		case fr := <-got:
			collect(data.Frames{fr})
			ids := field(t, fr, "finding_id")
			if ids.At(ids.Len()-1) != nf.FindingID {
				t.Fatalf("streamed finding %v, want %s", ids.At(ids.Len()-1), nf.FindingID)
			}
			texts := stringsOf(fr)
			assertNoneOf(t, "a stream frame", texts, []string{nf.Evidence[0].Token})
			return
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("no finding arrived on the stream within 30 s")
		}
	}
}

// testQueryLog checks that the values the tests sent (actors, rule ids,
// prefixes, finding ids, reasons) never reached system.query_log: they
// travel as external data.
func testQueryLog(t *testing.T, f *demoFixture, all []finding.Finding) {
	ctx := context.Background()
	if err := f.store.Conn().Exec(ctx, "SYSTEM FLUSH LOGS"); err != nil {
		t.Fatal(err)
	}
	rows, err := f.store.Conn().Query(ctx, "SELECT query FROM system.query_log WHERE event_date >= yesterday()")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	forbidden := []string{f.day.Insider, "u-10", "u-1001", "INC-4", ruleContent, ruleBulk}
	for _, fd := range all {
		forbidden = append(forbidden, fd.FindingID)
	}
	ours := 0
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(q, f.store.Database()) {
			continue
		}
		if strings.Contains(q, "FROM _") {
			ours++
		}
		for _, v := range forbidden {
			if strings.Contains(q, v) {
				t.Errorf("query_log has %q in: %s", v, q)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if ours < 10 {
		t.Fatalf("only %d plugin queries with external data in query_log: the check proves nothing", ours)
	}
	t.Logf("%d plugin queries in query_log, none with a filter value", ours)
}
