package pager

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cenkalti/backoff/v5"

	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/kafkaio"
)

func TestDashboardURL(t *testing.T) {
	from := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	to := from.Add(45 * time.Minute)
	got := DashboardURL("https://grafana.corp.example/", "u 1&2", from, to)
	want := "https://grafana.corp.example/d/leakline-investigation/investigation?var-actor=u+1%262&from=" +
		"1740822900000&to=1740826200000" // 09:55 to 10:50, padded by 5 min
	if got != want {
		t.Fatalf("DashboardURL =\n%s, want\n%s", got, want)
	}
	if DashboardURL("", "u", from, to) != "" {
		t.Fatal("link without a Grafana URL")
	}
}

func TestPageLimits(t *testing.T) {
	f := newFinding("outbound.pii_external", "u-1", "high")
	f.Title = strings.Repeat("é", 2000) // multi-byte, must be cut at a rune boundary
	f.Destination = strings.Repeat("x", 5000)
	for i := range 30 {
		f.Evidence = append(f.Evidence, finding.Evidence{Type: "email", Masked: "m***@x.example", Token: string(rune('a' + i%26))})
	}
	p := NewPage(&f, []string{"exfiltration"}, "https://g.test", "https://wiki.test/{rule_id}")
	if len(p.Summary) > MaxSummary || !utf8.ValidString(p.Summary) || !strings.HasSuffix(p.Summary, "…") {
		t.Errorf("summary of %d bytes, valid %v", len(p.Summary), utf8.ValidString(p.Summary))
	}
	if len(p.Description) > MaxDescription || !utf8.ValidString(p.Description) {
		t.Errorf("description of %d bytes", len(p.Description))
	}
	if len(p.Samples) != MaxSamples || p.RunbookURL != "https://wiki.test/outbound.pii_external" || p.DedupKey != f.FindingID {
		t.Errorf("page %+v", p)
	}
	ev := PagerDutyEvent(testRoutingKey, nil, Event{Action: ActionTrigger, Page: p, Time: time.Now()})
	if ev.Payload.Severity != "error" || len(ev.Payload.Summary) > MaxSummary || len(ev.DedupKey) > MaxDedupKey {
		t.Errorf("event %+v", ev.Payload)
	}
	ev = PagerDutyEvent(testRoutingKey, map[string]string{"high": "critical"}, Event{Action: ActionResolve, Page: p})
	b, _ := json.Marshal(ev)
	if string(b) != `{"routing_key":"`+testRoutingKey+`","event_action":"resolve","dedup_key":"`+f.FindingID+`"}` {
		t.Errorf("resolve event %s", b)
	}
	// Every payload the stand-in would see is valid.
	for _, a := range []Action{ActionTrigger, ActionResolve} {
		b, _ := json.Marshal(PagerDutyEvent(testRoutingKey, nil, Event{Action: a, Page: p, Time: time.Now()}))
		if _, bad := validatePD(b); len(bad) > 0 {
			t.Errorf("%s: %v", a, bad)
		}
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		h    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false}, {"3", 3 * time.Second, true}, {"0", 0, true}, {"-1", 0, false}, {"soon", 0, false},
		{"99999", maxRetryAfter, true}, {now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	} {
		got, ok := retryAfter(tt.h, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.h, got, ok, tt.want, tt.ok)
		}
	}
}

func TestTokenBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newTokenBucket(&RateLimit{Pages: 2, Per: 10 * time.Second}, now)
	if !b.take(now) || !b.take(now) || b.take(now) || b.full(now) {
		t.Fatal("burst of 2")
	}
	if !b.take(now.Add(5 * time.Second)) { // one token back after per/pages
		t.Fatal("refill")
	}
	if b.take(now.Add(6*time.Second)) || b.full(now.Add(14*time.Second)) || !b.full(now.Add(15*time.Second)) {
		t.Fatal("refill rate")
	}
	var unlimited *tokenBucket
	if !unlimited.take(now) || !unlimited.full(now) {
		t.Fatal("nil bucket must allow")
	}
}

// TestHTTPClassification: which answers are retried, honoured or final.
func TestHTTPClassification(t *testing.T) {
	status := 0
	var header http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		io.WriteString(w, "{\"errors\":[\"bad\\u0000thing\"]}\n")
	}))
	defer srv.Close()
	tg := &httpTarget{name: "x", url: srv.URL, client: srv.Client()}
	for _, tt := range []struct {
		status     int
		header     http.Header
		permanent  bool
		retryAfter time.Duration
	}{
		{200, nil, false, -1}, {202, nil, false, -1},
		{400, nil, true, -1}, {401, nil, true, -1}, {404, nil, true, -1}, {413, nil, true, -1},
		{408, nil, false, -1}, {429, nil, false, -1}, {429, http.Header{"Retry-After": {"2"}}, false, 2 * time.Second},
		{500, nil, false, -1}, {503, http.Header{"Retry-After": {"2"}}, false, -1},
	} {
		status, header = tt.status, tt.header
		err := tg.post(context.Background(), []byte("{}"), nil)
		if tt.status < 300 {
			if err != nil {
				t.Errorf("%d: %v", tt.status, err)
			}
			continue
		}
		var perm *backoff.PermanentError
		var rej *RejectedError
		if errors.As(err, &perm) != tt.permanent || errors.As(err, &rej) != tt.permanent {
			t.Errorf("%d: permanent %v, want %v (%v)", tt.status, errors.As(err, &perm), tt.permanent, err)
		}
		if rej != nil && (rej.Status != tt.status || strings.ContainsRune(rej.Body, 0)) {
			t.Errorf("%d: %+v", tt.status, rej)
		}
		var ra *backoff.RetryAfterError
		if got := errors.As(err, &ra); got != (tt.retryAfter >= 0) || (got && ra.Duration != tt.retryAfter) {
			t.Errorf("%d %v: retry-after %v", tt.status, tt.header, ra)
		}
	}
}

// TestWebhookSignedAndShadowRecorded: webhook bodies carry a valid HMAC
// signature; a shadow finding reaches only the webhook a shadow route names,
// marked as recorded, never the paging receiver.
func TestWebhookSignedAndShadowRecorded(t *testing.T) {
	env := kafkaEnv(t)
	pd := newPDServer(t)
	var mu sync.Mutex
	var bodies []WebhookBody
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if !VerifySignature(testSecret, b, r.Header.Get(HeaderSignature)) {
			t.Errorf("bad signature %q", r.Header.Get(HeaderSignature))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var wb WebhookBody
		if err := json.Unmarshal(b, &wb); err != nil || r.Header.Get(HeaderDedupKey) != wb.DedupKey {
			t.Errorf("body %s: %v", b, err)
		}
		mu.Lock()
		bodies = append(bodies, wb)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	r := start(t, env.config(mustPolicy(t, `version: 1
defaults: {resolve_after: 1s}
receivers:
  - {name: pd, type: pagerduty, url: "`+pd.URL+`"}
  - {name: soc, type: webhook, url: "`+hook.URL+`/hook"}
routes:
  - match: {shadow: true}
    receivers: [soc]
  - match: {tags: [exfiltration]}
    receivers: [soc, pd]
`)))
	live := newFinding("outbound.pii_external", "u-1", "high")
	shadow := newFinding("outbound.pii_external", "u-2", "critical")
	shadow.Shadow = true
	untagged := newFinding("outbound.pii_external", "u-3", "critical")
	b, _ := json.Marshal(wireFinding{Finding: live, Tags: []string{"exfiltration"}})
	env.produceRaw(t, live.FindingID, b)
	b, _ = json.Marshal(wireFinding{Finding: shadow, Tags: []string{"exfiltration"}})
	env.produceRaw(t, shadow.FindingID, b)
	env.produce(t, untagged)
	eventually(t, 20*time.Second, "live incident resolved at the webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range bodies {
			if b.DedupKey == live.FindingID && b.Status == "resolved" {
				return true
			}
		}
		return false
	})
	mu.Lock()
	defer mu.Unlock()
	kinds := map[string]string{}
	for _, b := range bodies {
		kinds[b.DedupKey] += b.Kind + ","
	}
	if kinds[live.FindingID] != "new,resolve," || kinds[shadow.FindingID] != "shadow," || kinds[untagged.FindingID] != "" {
		t.Errorf("webhook kinds by incident: %v", kinds)
	}
	for _, b := range bodies {
		if b.DedupKey == shadow.FindingID && (!b.Page.Shadow || b.Receiver != "soc") {
			t.Errorf("shadow body %+v", b)
		}
	}
	if incs := pd.incidents(); len(incs) != 1 || incs[live.FindingID] == nil {
		t.Errorf("PagerDuty incidents %v, want only the live one", keys(incs))
	}
	if m := r.p.Metrics(); m.Pages("soc", OutcomeRecorded) != 1 || m.Unrouted.Load() != 1 {
		t.Errorf("recorded %d unrouted %d", m.Pages("soc", OutcomeRecorded), m.Unrouted.Load())
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "key")
	if err := os.WriteFile(short, []byte("too-short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pol := mustPolicy(t, `version: 1
receivers:
  - {name: am, type: alertmanager}
  - {name: pd, type: pagerduty, routing_key_file: `+short+`}
  - {name: hook, type: webhook, url: "http://h/x", secret_file: /nonexistent/secret}
routes:
  - receivers: [am, pd, hook]
`)
	_, err := New(Config{Kafka: kafkaio.Config{Brokers: []string{"127.0.0.1:1"}}, Topics: kafkaio.DefaultTopics(), Policy: pol, GrafanaURL: "grafana"})
	for _, want := range []string{"receiver am (line 3): no Alertmanager URL", "receiver pd (line 4): the PagerDuty routing key has 9 characters, want 32",
		"receiver hook (line 5): webhook secret", "grafana url"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v\nwant %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "too-short") {
		t.Error("the error shows the secret")
	}
}

func TestMetricsLabels(t *testing.T) {
	m := newMetrics([]string{"am", "pd"})
	m.add("pd", OutcomeTriggered)
	m.add("pd", OutcomeTriggered)
	m.add("nobody", OutcomeTriggered)
	n := 0
	m.Each(func(receiver, outcome string, v uint64) {
		n++
		if receiver == "pd" && outcome == OutcomeTriggered && v != 2 {
			t.Errorf("pd triggered = %d", v)
		}
	})
	if n != 2*len(Outcomes) {
		t.Errorf("%d series", n)
	}
}

func TestPageNamesKnownCustomers(t *testing.T) {
	f := newFinding("outbound.pii_external", "u-1", "critical")
	f.EDMCustomers, f.EDMReadByActor = 120, 117
	p := NewPage(&f, nil, "", "")
	for _, s := range []string{p.Summary, p.Description} {
		if !strings.Contains(s, "120 known customers") || !strings.Contains(s, "117") {
			t.Errorf("page text does not name the customers: %q", s)
		}
	}
	none := newFinding("crm.bulk_read_no_ticket", "u-1", "high")
	if p := NewPage(&none, nil, "", ""); strings.Contains(p.Description, "known customers") {
		t.Errorf("customers mentioned without an exact data match: %q", p.Description)
	}
}
