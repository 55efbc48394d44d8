package pager

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/finding"
)

// TestRiskTrackerDecay checks the score against Grafana's formula: the sum
// of weight × 2^(−age/half-life), age from the window end, and that actors
// whose score decayed below 0.01 are forgotten.
func TestRiskTrackerDecay(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	type add struct {
		actor, sev string
		at, ended  time.Duration // handled at t0+at, window ending at t0+ended
	}
	for _, tt := range []struct {
		name     string
		halfLife time.Duration
		adds     []add
		at       time.Duration // score asked at t0+at
		want     float64       // score of actor "u" then
		actors   int           // actors kept after a sweep then
	}{
		{"one critical, fresh", 24 * time.Hour, []add{{"u", "critical", 0, 0}}, 0, 25, 1},
		{"one half-life later", 24 * time.Hour, []add{{"u", "critical", 0, 0}}, 24 * time.Hour, 12.5, 1},
		{"an old window weighs less", 24 * time.Hour, []add{{"u", "critical", 0, -24 * time.Hour}}, 0, 12.5, 1},
		{"a window ending later weighs in full", 24 * time.Hour, []add{{"u", "high", 0, time.Hour}}, 0, 10, 1},
		{"sum of decayed weights", 24 * time.Hour,
			[]add{{"u", "critical", 0, 0}, {"u", "high", 24 * time.Hour, 24 * time.Hour}, {"u", "medium", 48 * time.Hour, 36 * time.Hour}, {"u", "low", 48 * time.Hour, 48 * time.Hour}},
			48 * time.Hour, 25/4.0 + 10/2.0 + 3/math.Sqrt2 + 1, 1},
		{"half-life from the policy", time.Hour, []add{{"u", "high", 0, 0}}, 2 * time.Hour, 2.5, 1},
		{"unknown severity weighs nothing", 24 * time.Hour, []add{{"u", "info", 0, 0}}, 0, 0, 0},
		{"actors apart", 24 * time.Hour, []add{{"u", "low", 0, 0}, {"v", "critical", 0, 0}}, 0, 1, 2},
		{"decayed below 0.01: forgotten", 24 * time.Hour, []add{{"u", "low", 0, 0}, {"v", "critical", 0, 0}}, 7 * 24 * time.Hour, 1.0 / 128, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRiskTracker(tt.halfLife)
			for _, a := range tt.adds {
				f := &finding.Finding{ActorUID: a.actor, Severity: a.sev, WindowEnd: t0.Add(a.ended)}
				r.add(a.actor, t0.Add(a.at), r.weight(f, t0.Add(a.at)))
			}
			at := t0.Add(tt.at)
			if got := r.score("u", at); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("score %v, want %v", got, tt.want)
			}
			r.sweep(at)
			if len(r.actors) != tt.actors {
				t.Errorf("%d actors kept, want %d", len(r.actors), tt.actors)
			}
		})
	}
}

// riskRecorder is a receiver that records what it is sent.
type riskRecorder struct{ events []Event }

func (r *riskRecorder) Name() string       { return "wh" }
func (r *riskRecorder) Type() ReceiverType { return TypeWebhook }
func (r *riskRecorder) Forgets() bool      { return false }
func (r *riskRecorder) Send(_ context.Context, ev Event) error {
	r.events = append(r.events, ev)
	return nil
}

const riskPolicy = `version: 1
risk_half_life: 24h
defaults:
  resolve_after: 1h
receivers:
  - name: wh
    type: webhook
    url: https://hooks.test/leakline
routes:
  - match: {shadow: any}
    receivers: [wh]
`

// TestRiskScoreOnPages drives a lane with findings and checks the risk
// score of each page: weights decay, a finding id counts once across its
// revisions, shadow findings do not count, an incident that resolved counts
// again when it reopens. Then it rebuilds the lane's state from the same
// findings, as a restart does, and checks the same scores come out.
func TestRiskScoreOnPages(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	type step struct {
		id     string
		rev    uint64
		actor  string
		sev    string
		at     time.Duration // handled (and produced) at t0+at; window ends then
		shadow bool
		want   float64 // risk score on the page sent
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"decay", []step{
			{"A", 1, "u", "critical", 0, false, 25},
			{"B", 1, "u", "high", 30 * time.Minute, false, 34.6}, // 25×2^(−1/48) + 10
		}},
		{"one count per finding id across revisions", []step{
			{"A", 1, "u", "critical", 0, false, 25},
			{"A", 2, "u", "critical", 20 * time.Minute, false, 24.8},
			{"A", 3, "u", "critical", 40 * time.Minute, false, 24.5},
			{"A", 3, "u", "critical", 41 * time.Minute, false, 24.5}, // a repeat: no page
			{"B", 1, "u", "low", 50 * time.Minute, false, 25.4},
		}},
		{"shadow excluded", []step{
			{"S", 1, "u", "critical", 0, true, 0},
			{"A", 1, "u", "medium", 0, false, 3},
			{"S", 2, "u", "critical", time.Minute, true, 3},
		}},
		{"actors apart", []step{
			{"A", 1, "u", "critical", 0, false, 25},
			{"B", 1, "v", "high", 0, false, 10},
			{"C", 1, "u", "low", 0, false, 26},
		}},
		{"reopened after resolving counts again", []step{
			{"A", 1, "u", "critical", 0, false, 25},
			{"A", 2, "u", "critical", 2 * time.Hour, false, 48.6}, // 25×2^(−1/12) + 25
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pol := mustPolicy(t, riskPolicy)
			now := t0
			rec := &riskRecorder{}
			pg := &Pager{cfg: Config{Policy: pol, now: func() time.Time { return now }, MinRetryInterval: time.Millisecond, MaxRetryInterval: time.Millisecond},
				log: slog.New(slog.DiscardHandler), metrics: newMetrics([]string{"wh"})}
			l := &lane{pg: pg, recv: rec, spec: pol.Receivers[0], bucket: newTokenBucket(nil, t0), open: map[string]*incident{},
				risk: newRiskTracker(pol.riskHalfLife()), ctr: pg.metrics.Receiver("wh"), log: pg.log}
			var recs []replayed
			for i, s := range tt.steps {
				now = t0.Add(s.at)
				f := finding.Finding{FindingID: s.id, Revision: s.rev, RuleID: "crm.bulk_read", ActorUID: s.actor, Severity: s.sev,
					Shadow: s.shadow, WindowStart: now.Add(-time.Minute), WindowEnd: now, DetectedAt: now}
				b, err := json.Marshal(wireFinding{Finding: f})
				if err != nil {
					t.Fatal(err)
				}
				l.maintain(context.Background()) // resolves what is overdue
				sent := len(rec.events)
				if err := l.handleOne(context.Background(), kafka.Message{Value: b, Offset: int64(i), Time: now}, 1); err != nil {
					t.Fatal(err)
				}
				if len(rec.events) == sent {
					continue // a repeat
				}
				p := rec.events[len(rec.events)-1].Page
				if p.RiskScore != s.want {
					t.Errorf("step %d (%s r%d): risk %v, want %v", i, s.id, s.rev, p.RiskScore, s.want)
				}
				if want := fmt.Sprintf(", risk %s,", num(s.want)); !strings.Contains(p.Summary, want) {
					t.Errorf("step %d: summary %q lacks %q", i, p.Summary, want)
				}
				if want := fmt.Sprintf("How bad: %s, actor risk score %s (24 h half-life)", s.sev, num(s.want)); !strings.Contains(p.Description, want) {
					t.Errorf("step %d: description lacks %q:\n%s", i, want, p.Description)
				}
				if !s.shadow { // replay reads back live findings only
					recs = append(recs, replayed{at: now, offset: int64(i), f: &f, route: &pol.Routes[0]})
				}
			}

			// A restart rebuilds the same scores from the same findings.
			st := rebuild(recs, rebuildInput{receiver: "wh", halfLife: pol.riskHalfLife(), cutoffs: map[int]time.Time{0: now.Add(-time.Second)}})
			for _, actor := range []string{"u", "v"} {
				if got, want := st.risk.score(actor, now), l.risk.score(actor, now); math.Abs(got-want) > 1e-9 {
					t.Errorf("actor %s: rebuilt score %v, live %v", actor, got, want)
				}
			}
			for id, inc := range l.open {
				r := st.open[id]
				if r == nil {
					t.Errorf("incident %s not rebuilt", id)
					continue
				}
				if r.page.RiskScore != inc.page.RiskScore || r.page.Description != inc.page.Description {
					t.Errorf("incident %s: rebuilt risk %v, live %v", id, r.page.RiskScore, inc.page.RiskScore)
				}
			}
			// Adopting the rebuilt state keeps the score: never counted twice.
			before := l.risk.score("u", now)
			l.mu.Lock()
			l.adopt(st, 2)
			l.mu.Unlock()
			if got := l.risk.score("u", now); math.Abs(got-before) > 1e-9 {
				t.Errorf("after adopt: score %v, want %v", got, before)
			}
		})
	}
}

// TestRiskScoreAtReceivers checks that the score reaches every receiver:
// PagerDuty custom_details, Alertmanager annotations, the webhook body.
func TestRiskScoreAtReceivers(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	f := finding.Finding{FindingID: "A", Revision: 1, RuleID: "crm.bulk_read", ActorUID: "u", Severity: "critical", WindowStart: t0, WindowEnd: t0}
	p := NewPage(&f, nil, "", "")
	p.setRisk(37.4837, 24*time.Hour)
	if p.RiskScore != 37.5 {
		t.Fatalf("risk %v, want 37.5", p.RiskScore)
	}
	ev := Event{Action: ActionTrigger, Page: p, Kind: "new", Time: t0, StartsAt: t0, EndsAt: t0.Add(time.Hour)}

	pd := PagerDutyEvent("k", nil, ev)
	if got := pd.Payload.CustomDetails["risk_score"]; got != 37.5 {
		t.Errorf("PagerDuty custom_details.risk_score = %v", got)
	}
	if got := pd.Payload.CustomDetails["risk_half_life_hours"]; got != 24.0 {
		t.Errorf("PagerDuty custom_details.risk_half_life_hours = %v", got)
	}

	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	if err := newAlertmanager("am", srv.URL, srv.Client()).Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	var alerts []amAlert
	if err := json.Unmarshal(body, &alerts); err != nil || len(alerts) != 1 {
		t.Fatalf("alerts %s: %v", body, err)
	}
	if got := alerts[0].Annotations["risk_score"]; got != "37.5" {
		t.Errorf("Alertmanager annotation risk_score = %q", got)
	}
	if !strings.Contains(alerts[0].Annotations["summary"], "risk 37.5") {
		t.Errorf("Alertmanager summary %q", alerts[0].Annotations["summary"])
	}

	if err := newWebhook("wh", srv.URL, []byte("0123456789abcdef"), srv.Client()).Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	var wb struct {
		Page struct {
			RiskScore    float64 `json:"risk_score"`
			RiskHalfLife float64 `json:"risk_half_life_hours"`
		} `json:"page"`
	}
	if err := json.Unmarshal(body, &wb); err != nil {
		t.Fatal(err)
	}
	if wb.Page.RiskScore != 37.5 || wb.Page.RiskHalfLife != 24 {
		t.Errorf("webhook body page risk %+v", wb.Page)
	}
}

// TestRiskHalfLifePolicy checks risk_half_life: default, set, validated.
func TestRiskHalfLifePolicy(t *testing.T) {
	for _, tt := range []struct {
		line string
		want time.Duration
		err  string
	}{
		{"", DefaultRiskHalfLife, ""},
		{"risk_half_life: 168h\n", 168 * time.Hour, ""},
		{"risk_half_life: 30m\n", 30 * time.Minute, ""},
		{"risk_half_life: 1s\n", 0, "line 2: risk_half_life: 1s is out of range"},
		{"risk_half_life: soon\n", 0, "line 2: risk_half_life: want a duration"},
	} {
		src := strings.Replace(minimal, "version: 1\n", "version: 1\n"+tt.line, 1)
		p, err := ParsePolicy([]byte(src))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.line, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.line, err)
			continue
		}
		if p.RiskHalfLife != tt.want {
			t.Errorf("%q: half-life %v, want %v", tt.line, p.RiskHalfLife, tt.want)
		}
	}
}
