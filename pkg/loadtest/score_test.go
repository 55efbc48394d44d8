package loadtest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/pager"
	"github.com/leakline/leakline/pkg/scenario"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func f64(v float64) *float64 { return &v }

func TestScore(t *testing.T) {
	scenarios := []scenario.Scenario{
		{Name: "a", Kind: scenario.KindAttack, Actor: "u-a", Start: t0, Exfil: at(time.Hour), ExpectRules: []string{"r1"}},
		{Name: "missed", Kind: scenario.KindAttack, Actor: "u-m", Start: t0, Exfil: t0, ExpectRules: []string{"r1"}},
		{Name: "b", Kind: scenario.KindBenign, Actor: "u-b", Start: t0},
		{Name: "quiet", Kind: scenario.KindBenign, Actor: "u-q", Start: t0},
	}
	// Wall clock of the run: a's exfiltration was produced at w0.
	w0 := time.Date(2026, 11, 28, 19, 0, 0, 0, time.UTC)
	wall := func(d time.Duration) time.Time { return w0.Add(d) }
	tr := truth{Scenarios: scenarios, EmployeeDays: 1000, ExfilProduced: map[string]time.Time{"a": w0, "missed": w0}}
	findings := []finding.Finding{
		// u-a: the expected rule, whose first revision ended 2 h after exfil
		// (the latest revision ends later), and an unexpected rule.
		{FindingID: "f1", RuleID: "r1", ActorUID: "u-a", WindowEnd: at(9 * time.Hour)},
		{FindingID: "f2", RuleID: "r9", ActorUID: "u-a", WindowEnd: at(30 * time.Minute)},
		// u-m: only a shadow finding of the expected rule, and one before its start.
		{FindingID: "f3", RuleID: "r1", ActorUID: "u-m", Shadow: true, WindowEnd: at(time.Hour)},
		{FindingID: "f4", RuleID: "r1", ActorUID: "u-m", WindowEnd: at(-time.Hour)},
		// u-b: a live finding (a false alarm), u-x: an ordinary employee's.
		{FindingID: "f5", RuleID: "r2", ActorUID: "u-b", WindowEnd: at(time.Hour)},
		{FindingID: "f6", RuleID: "r3", ActorUID: "u-x", WindowEnd: t0},
		{FindingID: "f7", RuleID: "r3", ActorUID: "u-q", Shadow: true, WindowEnd: at(time.Hour)},
	}
	first := map[string]time.Time{"f1": at(3 * time.Hour)}
	stored := map[string]time.Time{"f1": wall(1500 * time.Millisecond), "f2": wall(200 * time.Millisecond)}
	pages := []ReceivedPage{
		// a's expected rule paged twice (new, then update): the first counts.
		{DedupKey: "f1", RuleID: "r1", ActorUID: "u-a", Kind: "new", WindowEnd: at(3 * time.Hour), Received: wall(900 * time.Millisecond)},
		{DedupKey: "f1", RuleID: "r1", ActorUID: "u-a", Kind: "update", WindowEnd: at(9 * time.Hour), Received: wall(5 * time.Second)},
		// r9 is not a's expected rule: not a's page, and not a false one.
		{DedupKey: "f2", RuleID: "r9", ActorUID: "u-a", Kind: "new", WindowEnd: at(30 * time.Minute), Received: wall(100 * time.Millisecond)},
		// u-m's page of a finding before its start does not count.
		{DedupKey: "f4", RuleID: "r1", ActorUID: "u-m", Kind: "new", WindowEnd: at(-time.Hour), Received: wall(time.Second)},
		// u-b and u-x pages are false positives (two incidents).
		{DedupKey: "f5", RuleID: "r2", ActorUID: "u-b", Kind: "new", WindowEnd: at(time.Hour), Received: wall(time.Second)},
		{DedupKey: "f6", RuleID: "r3", ActorUID: "u-x", Kind: "new", WindowEnd: t0, Received: wall(time.Second)},
	}
	rep := score(tr, observed{Findings: findings, FirstEnd: first, Stored: stored, Pages: pages})
	got := map[string]ScenarioResult{}
	for _, s := range rep.Scenarios {
		got[s.Name] = s
	}
	tests := []struct {
		name                      string
		detected, paged           bool
		ttd, storedAfter, pagedAt *float64
		fired, rulesPaged         []string
	}{
		{"a", true, true, f64(7200), f64(1.5), f64(0.9), []string{"r1", "r9"}, []string{"r1"}},
		{"missed", false, false, nil, nil, nil, []string{}, []string{}},
		{"b", true, true, nil, nil, nil, []string{"r2"}, []string{"r2"}},
		{"quiet", false, false, nil, nil, nil, []string{}, []string{}},
	}
	eq := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := got[tc.name]
			if s.Detected != tc.detected || s.Paged != tc.paged || !eq(s.TimeToDetectS, tc.ttd) || !eq(s.StoredAfterS, tc.storedAfter) ||
				!eq(s.PagedAfterS, tc.pagedAt) || !slices.Equal(s.RulesFired, tc.fired) || !slices.Equal(s.RulesPaged, tc.rulesPaged) {
				t.Errorf("got %+v (ttd %v stored %v paged %v)", s, deref(s.TimeToDetectS), deref(s.StoredAfterS), deref(s.PagedAfterS))
			}
		})
	}
	// False positives: f5 (benign actor), f6 (nobody's scenario); f4 is an
	// attack actor's, f3 and f7 are shadow.
	if rep.FalsePositives != 2 || rep.FalsePositivesPer1kEmployeeDay != 2 || rep.ShadowFindings != 2 || !slices.Equal(rep.FalsePosRules, []string{"r2", "r3"}) {
		t.Errorf("false positives %d (%.2f per 1k employee-days, rules %v), shadow %d", rep.FalsePositives, rep.FalsePositivesPer1kEmployeeDay, rep.FalsePosRules, rep.ShadowFindings)
	}
	if rep.Pages != 5 || rep.FalsePositivePages != 2 || rep.FalsePositivePagesPer1kEmpDay != 2 {
		t.Errorf("pages %d, false-positive pages %d (%.2f per 1k)", rep.Pages, rep.FalsePositivePages, rep.FalsePositivePagesPer1kEmpDay)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestScoreMillisecondStart(t *testing.T) {
	// A scenario starting at a sub-millisecond instant is detected by a
	// finding whose window end ClickHouse truncated to the millisecond.
	start := t0.Add(1234567 * time.Nanosecond)
	tr := truth{Scenarios: []scenario.Scenario{{Name: "a", Kind: scenario.KindAttack, Actor: "u-a", Start: start, Exfil: start, ExpectRules: []string{"r1"}}}}
	rep := score(tr, observed{Findings: []finding.Finding{{FindingID: "f", RuleID: "r1", ActorUID: "u-a", WindowEnd: start.Truncate(time.Millisecond)}}})
	if !rep.Scenarios[0].Detected {
		t.Errorf("not detected: %+v", rep.Scenarios[0])
	}
}

func TestPercentiles(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want LatencyMS
	}{
		{"empty", nil, LatencyMS{}},
		{"one", []float64{7}, LatencyMS{7, 7, 7}},
		{"hundred", func() []float64 {
			v := make([]float64, 100)
			for i := range v {
				v[i] = float64(100 - i) // 100 … 1, unsorted
			}
			return v
		}(), LatencyMS{51, 96, 100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentiles(tc.in); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLatencyReport(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	samples := []latencySample{
		{produced: at(ms(100)), stored: at(ms(110))},   // 10 ms, second 0
		{produced: at(ms(900)), stored: at(ms(930))},   // 30 ms, second 0
		{produced: at(ms(1500)), stored: at(ms(1700))}, // 200 ms, second 1
	}
	all, series := latencyReport(samples, t0, time.Second)
	if all != (LatencyMS{30, 200, 200}) {
		t.Errorf("overall %+v", all)
	}
	want := []LatencyPoint{{T: 0, P50: 30, P99: 30, N: 2}, {T: 1, P50: 200, P99: 200, N: 1}}
	if !slices.Equal(series, want) {
		t.Errorf("series %+v, want %+v", series, want)
	}
}

func TestCommittedLag(t *testing.T) {
	ends := map[string]map[int]partitionRange{
		"t": {0: {first: 0, end: 100}, 1: {first: 50, end: 80}, 2: {first: 0, end: 10}},
	}
	tests := []struct {
		name      string
		committed map[string][]kafka.OffsetFetchPartition
		want      int64
	}{
		{"caught up", map[string][]kafka.OffsetFetchPartition{"t": {{Partition: 0, CommittedOffset: 100}, {Partition: 1, CommittedOffset: 80}, {Partition: 2, CommittedOffset: 10}}}, 0},
		{"behind", map[string][]kafka.OffsetFetchPartition{"t": {{Partition: 0, CommittedOffset: 90}, {Partition: 1, CommittedOffset: 60}}}, 30},
		// No commit yet (-1): the whole retained log; a commit before the
		// first retained offset counts from it.
		{"no commit", map[string][]kafka.OffsetFetchPartition{"t": {{Partition: 0, CommittedOffset: -1}, {Partition: 1, CommittedOffset: 10}}}, 130},
		{"unknown topic", map[string][]kafka.OffsetFetchPartition{"u": {{Partition: 0, CommittedOffset: -1}}}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := committedLag(ends, tc.committed); got != tc.want {
				t.Errorf("lag %d, want %d", got, tc.want)
			}
		})
	}
}

func TestRateIDs(t *testing.T) {
	for _, seq := range []int64{0, 7, 123456789} {
		id := string(appendRateID(nil, seq))
		if got, ok := parseRateID(id); !ok || got != seq {
			t.Errorf("%s → %d, %v", id, got, ok)
		}
	}
	for _, id := range []string{"evt-org-00000001", "evt-rate-", "evt-rate-x", "evt-rate--1"} {
		if _, ok := parseRateID(id); ok {
			t.Errorf("%q parsed as a rate id", id)
		}
	}
}

func TestParseTemplateErrors(t *testing.T) {
	tests := []struct{ name, raw string }{
		{"no id", `{"time":"2026-11-02T09:00:00Z","actor":{"uid":"u"}}`},
		{"no time after id", `{"time":"2026-11-02T09:00:00Z","event_id":"e","actor":{"uid":"u"}}`},
		{"bad time", `{"event_id":"e","time":"yesterday","actor":{"uid":"u"}}`},
		{"no uid", `{"event_id":"e","time":"2026-11-02T09:00:00Z","actor":{}}`},
		{"escaped id", `{"event_id":"e\"x","time":"2026-11-02T09:00:00Z","actor":{"uid":"u"}}`},
		{"empty uid", `{"event_id":"e","time":"2026-11-02T09:00:00Z","actor":{"uid":""}}`},
		{"unterminated", `{"event_id":"e`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseTemplate("crm_access", []byte(tc.raw)); err == nil {
				t.Errorf("accepted %s", tc.raw)
			}
		})
	}
}

func TestPageReceiver(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	r, err := newPageReceiver(secret)
	if err != nil {
		t.Fatal(err)
	}
	r.ln.Close() // served through httptest below
	srv := httptest.NewServer(r)
	defer srv.Close()
	post := func(b pager.WebhookBody, sign []byte) int {
		body, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		req.Header.Set(pager.HeaderSignature, pager.Sign(sign, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	page := pager.Page{DedupKey: "f1", FindingID: "f1", RuleID: "r1", ActorUID: "u-a", WindowEnd: t0}
	tests := []struct {
		name string
		body pager.WebhookBody
		key  []byte
		want int
	}{
		{"new", pager.WebhookBody{Action: "trigger", Kind: "new", DedupKey: "f1", Page: page}, secret, 200},
		{"update", pager.WebhookBody{Action: "trigger", Kind: "update", DedupKey: "f1", Page: page}, secret, 200},
		{"resolve", pager.WebhookBody{Action: "resolve", Kind: "resolve", DedupKey: "f1", Page: page}, secret, 200},
		{"shadow", pager.WebhookBody{Action: "trigger", Kind: "shadow", DedupKey: "f2", Page: page}, secret, 200},
		{"forged", pager.WebhookBody{Action: "trigger", Kind: "new", DedupKey: "f3", Page: page}, []byte("another secret, 32 bytes long.."), 400},
		{"no dedup key", pager.WebhookBody{Action: "trigger", Kind: "new", Page: page}, secret, 400},
	}
	for _, tc := range tests {
		if got := post(tc.body, tc.key); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	pages, incidents, bad := r.Pages()
	if len(pages) != 2 || incidents != 1 || bad != 2 || r.resolved != 1 {
		t.Errorf("pages %+v, incidents %d, bad %d, resolved %d", pages, incidents, bad, r.resolved)
	}
	if p := pages[0]; p.DedupKey != "f1" || p.RuleID != "r1" || p.ActorUID != "u-a" || !p.WindowEnd.Equal(t0) || p.Received.IsZero() {
		t.Errorf("recorded %+v", p)
	}
}

func TestChartSelfContained(t *testing.T) {
	rep := &Report{
		Mode: "rate <test>", Events: 3, ThroughputEPS: 1000,
		Scenarios: []ScenarioResult{{Name: "a", Kind: "attack", Detected: true, Paged: true}},
		Series: []Point{
			{T: 1, ProducedEPS: 1000, StoredEPS: 900, Lag: map[string]int64{"leakline-detector": 5}},
			{T: 2, ProducedEPS: 1000, StoredEPS: 1100, Lag: map[string]int64{"leakline-detector": -1}},
		},
		LatencySeries: []LatencyPoint{{T: 0, P50: 120, P99: 480, N: 10}},
	}
	var b strings.Builder
	if err := renderChart(&b, rep); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	if n := strings.Count(html, "<svg"); n != 4 {
		t.Errorf("%d charts, want 4", n)
	}
	for _, banned := range []string{"<script", "src=", "href=", "@import", "url("} {
		if strings.Contains(html, banned) {
			t.Errorf("the page is not self-contained: it contains %q", banned)
		}
	}
	if !strings.Contains(html, "rate &lt;test&gt;") || strings.Count(html, "<polyline") < 4 {
		t.Errorf("mode not escaped or lines missing:\n%s", html)
	}
}

func TestNiceMax(t *testing.T) {
	tests := []struct{ in, want float64 }{{0, 1}, {-3, 1}, {0.7, 1}, {1, 1}, {1.2, 2}, {3, 5}, {7, 10}, {48000, 50000}, {51000, 100000}}
	for _, tc := range tests {
		if got := niceMax(tc.in); got != tc.want {
			t.Errorf("niceMax(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
