package pager

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/testenv"
)

// TestRebuild replays a lane's decisions over findings read back from the
// topic: what is restored as paged, as folded into a flood summary, or not
// at all.
func TestRebuild(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	route := &Route{ResolveAfter: 10 * time.Minute, ResendInterval: time.Minute}
	short := &Route{ResolveAfter: time.Minute, ResendInterval: time.Minute}
	// rec is revision rev of incident id, produced at t0+at on partition 0.
	rec := func(id string, rev uint64, at time.Duration, sev string) replayed {
		f := &finding.Finding{FindingID: id, Revision: rev, RuleID: "r", ActorUID: "u", Severity: sev, DetectedAt: t0.Add(at)}
		return replayed{at: t0.Add(at), offset: int64(at / time.Second), f: f, route: route}
	}
	on := func(r replayed, p int, rt *Route) replayed { r.partition, r.route = p, rt; return r }
	stale := rec("S", 1, time.Minute, "high")
	stale.f.DetectedAt = t0.Add(-48 * time.Hour)
	cut := func(at time.Duration) map[int]time.Time { return map[int]time.Time{0: t0.Add(at), 1: t0.Add(at)} }
	limit := func(pages int, per time.Duration) *RateLimit { return &RateLimit{Pages: pages, Per: per} }

	for _, tt := range []struct {
		name    string
		recs    []replayed
		limit   *RateLimit
		cutoffs map[int]time.Time
		want    string // sorted incidents, then the flood
	}{
		{"nothing to replay", nil, nil, nil, "-"},
		{"open incident", []replayed{rec("A", 1, 0, "high")}, nil, cut(time.Minute),
			"A r1 paged started+0s seen+0s sent+0s p0"},
		{"newest revision wins", []replayed{rec("A", 1, 0, "high"), rec("A", 2, time.Minute, "high")}, nil, cut(time.Minute),
			"A r2 paged started+0s seen+1m0s sent+1m0s p0"},
		{"a repeat of an older revision is skipped", []replayed{rec("A", 2, 0, "high"), rec("A", 1, time.Minute, "high")}, nil, cut(time.Minute),
			"A r2 paged started+0s seen+0s sent+0s p0"},
		{"resolved before the last commit: not restored", []replayed{rec("A", 1, 0, "high"), rec("B", 1, 15*time.Minute, "high")}, nil, cut(15 * time.Minute),
			"B r1 paged started+15m0s seen+15m0s sent+15m0s p0"},
		{"overdue after the last commit: restored, to be resolved", []replayed{rec("A", 1, 0, "high")}, nil, cut(9 * time.Minute),
			"A r1 paged started+0s seen+0s sent+0s p0"},
		{"cutoffs are per partition", []replayed{on(rec("A", 1, 0, "high"), 1, route), on(rec("B", 1, 0, "high"), 0, route)},
			nil, map[int]time.Time{0: t0.Add(9 * time.Minute), 1: t0.Add(11 * time.Minute)},
			"B r1 paged started+0s seen+0s sent+0s p0"},
		{"resolve_after of the route", []replayed{on(rec("A", 1, 0, "high"), 0, short), rec("B", 1, 0, "high")}, nil, cut(5 * time.Minute),
			"B r1 paged started+0s seen+0s sent+0s p0"},
		{"resolved, then a new revision pages again", []replayed{rec("A", 1, 0, "high"), rec("A", 2, 11*time.Minute, "high")}, nil, cut(11 * time.Minute),
			"A r2 paged started+11m0s seen+11m0s sent+11m0s p0"},
		{"stale findings were not paged", []replayed{stale}, nil, cut(time.Minute), "-"},
		{"opened before the range: paged, no token taken",
			[]replayed{rec("A", 3, 0, "high"), rec("B", 1, time.Second, "high"), rec("C", 1, 2*time.Second, "high")},
			limit(1, time.Hour), cut(time.Minute),
			"A r3 paged started+0s seen+0s sent+0s p0; B r1 paged started+1s seen+1s sent+1s p0; C r1 folded seen+2s p0; flood 1 high since+2s"},
		{"rate limit: the rest folded into one flood summary",
			[]replayed{rec("A", 1, 0, "high"), rec("B", 1, time.Second, "high"), rec("C", 1, 2*time.Second, "critical"),
				rec("D", 1, 3*time.Second, "medium"), rec("C", 2, 4*time.Second, "critical")},
			limit(2, 10*time.Minute), cut(time.Minute),
			"A r1 paged started+0s seen+0s sent+0s p0; B r1 paged started+1s seen+1s sent+1s p0; C r2 folded seen+4s p0; D r1 folded seen+3s p0; flood 2 critical since+2s"},
		{"the flood ended when the limit recovered",
			[]replayed{rec("A", 1, 0, "high"), rec("B", 1, time.Second, "high"), rec("C", 1, 5*time.Minute, "high"), rec("B", 2, 6*time.Minute, "high")},
			limit(1, time.Minute), cut(6 * time.Minute),
			"A r1 paged started+0s seen+0s sent+0s p0; B r2 paged started+6m0s seen+6m0s sent+6m0s p0; C r1 paged started+5m0s seen+5m0s sent+5m0s p0"},
		{"a flood the last committer resolved is not restored",
			[]replayed{rec("A", 1, 0, "high"), rec("B", 1, time.Second, "high")},
			limit(1, time.Minute), cut(5 * time.Minute),
			"A r1 paged started+0s seen+0s sent+0s p0; B r1 folded seen+1s p0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := rebuild(slices.Clone(tt.recs), rebuildInput{receiver: "pd", rateLimit: tt.limit, maxAge: 24 * time.Hour, cutoffs: tt.cutoffs})
			if got := describeRebuilt(st, t0); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if st.flood != nil && st.flood.key != "leakline-flood-pd" {
				t.Errorf("flood key %q", st.flood.key)
			}
		})
	}
}

func describeRebuilt(st rebuilt, t0 time.Time) string {
	var parts []string
	for id, inc := range st.open {
		if inc.summarized {
			parts = append(parts, fmt.Sprintf("%s r%d folded seen+%v p%d", id, inc.page.Revision, inc.lastSeen.Sub(t0), inc.partition))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s r%d paged started+%v seen+%v sent+%v p%d", id, inc.page.Revision,
			inc.started.Sub(t0), inc.lastSeen.Sub(t0), inc.lastSent.Sub(t0), inc.partition))
	}
	slices.Sort(parts)
	if fl := st.flood; fl != nil {
		parts = append(parts, fmt.Sprintf("flood %d %s since+%v", fl.suppressed, fl.severity, fl.since.Sub(t0)))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// TestForgetRevokedPartition: a revoked partition's incidents are
// forgotten, unless a newer generation already took them over.
func TestForgetRevokedPartition(t *testing.T) {
	l := &lane{pg: &Pager{metrics: newMetrics([]string{"pd"})}, spec: ReceiverSpec{Name: "pd"}, open: map[string]*incident{
		"a": {partition: 0, generation: 1},
		"b": {partition: 1, generation: 1},
		"c": {partition: 0, generation: 2},
	}}
	for _, tt := range []struct {
		partition int
		gen       int32
		left      string
	}{
		{2, 1, "a,b,c"}, {0, 1, "b,c"}, {1, 1, "c"}, {0, 2, ""},
	} {
		l.forget(tt.partition, tt.gen)
		ids := keys(l.open)
		slices.Sort(ids)
		if got := strings.Join(ids, ","); got != tt.left {
			t.Fatalf("after forget(%d, %d): %q, want %q", tt.partition, tt.gen, got, tt.left)
		}
		if got := l.pg.Open("pd"); got != len(ids) {
			t.Fatalf("Open = %d", got)
		}
	}
}

// amStandIn records the alerts posted to Alertmanager's v2 API.
type amStandIn struct {
	mu     sync.Mutex
	alerts []amPosted
}

type amPosted struct {
	At     time.Time
	Labels map[string]string `json:"labels"`
	EndsAt time.Time         `json:"endsAt"`
}

func (s *amStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var as []amPosted
	if r.URL.Path != "/api/v2/alerts" || json.Unmarshal(b, &as) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	for _, a := range as {
		a.At = time.Now()
		s.alerts = append(s.alerts, a)
	}
	s.mu.Unlock()
}

// posted returns the alerts of one incident posted since a time.
func (s *amStandIn) posted(id string, since time.Time) []amPosted {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []amPosted
	for _, a := range s.alerts {
		if a.Labels["finding_id"] == id && !a.At.Before(since) {
			out = append(out, a)
		}
	}
	return out
}

// TestRestartRestoresOpenIncidents runs a pager against an embedded broker
// of its own, a PagerDuty stand-in and an Alertmanager stand-in, stops it
// while two incidents are open, and starts a new one. The new pager sends
// no trigger for revisions delivered before the restart, re-sends the open
// alerts to Alertmanager, pages a new revision as an update of the same
// incident, and resolves both incidents resolve_after after their last
// revision, with the same dedup_key.
func TestRestartRestoresOpenIncidents(t *testing.T) {
	broker := testenv.Kafka(t, map[string]int{"findings": 3, "dead": 1})
	env := &kenv{cfg: kafkaio.Config{Brokers: broker.Addrs()}, topic: kafkaio.Topics{Findings: "findings", DeadLetter: "dead"}}
	env.w = kafkaio.NewWriter(env.cfg, env.topic.Findings)
	t.Cleanup(func() { env.w.Close() })
	pd := newPDServer(t)
	am := &amStandIn{}
	amSrv := httptest.NewServer(am)
	t.Cleanup(amSrv.Close)
	const resolveAfter = 5 * time.Second
	cfg := env.config(mustPolicy(t, fmt.Sprintf(`version: 1
defaults: {resolve_after: %v, resend_interval: 1s}
receivers:
  - {name: pd, type: pagerduty, url: %q}
  - {name: am, type: alertmanager, url: %q}
routes:
  - receivers: [pd, am]
`, resolveAfter, pd.URL, amSrv.URL)))

	r1 := start(t, cfg)
	a, b := newFinding("crm.bulk_read_no_ticket", "u-1", "critical"), newFinding("outbound.pii_external", "u-2", "high")
	env.produce(t, a, b)
	eventually(t, 20*time.Second, "both paged", func() bool { return len(pd.incidents()) == 2 })
	a = next(a)
	env.produce(t, a)
	lastA := time.Now()
	eventually(t, 10*time.Second, "A updated", func() bool { return pd.incidents()[a.FindingID].Triggers == 2 })
	if err := r1.stop(t); err != nil {
		t.Fatal(err)
	}
	restart := time.Now()
	before := len(pd.all())

	r2 := start(t, cfg)
	eventually(t, 20*time.Second, "both incidents restored at both receivers", func() bool { return r2.p.Open("pd") == 2 && r2.p.Open("am") == 2 })
	eventually(t, 5*time.Second, "open alerts re-sent to Alertmanager", func() bool {
		return len(am.posted(a.FindingID, restart)) > 0 && len(am.posted(b.FindingID, restart)) > 0
	})
	if got := pd.all()[before:]; len(got) != 0 {
		t.Fatalf("PagerDuty got %d events for revisions delivered before the restart: %+v", len(got), got)
	}
	b = next(b)
	env.produce(t, b)
	lastB := time.Now()
	eventually(t, 10*time.Second, "B updated", func() bool { return pd.incidents()[b.FindingID].Triggers == 2 })
	eventually(t, 3*resolveAfter, "both resolved", func() bool {
		incs := pd.incidents()
		return incs[a.FindingID].Resolved && incs[b.FindingID].Resolved
	})

	var after []string
	for _, rec := range pd.all()[before:] {
		after = append(after, rec.Event.EventAction+" "+rec.Event.DedupKey)
		if rec.Event.EventAction == "resolve" {
			last := map[string]time.Time{a.FindingID: lastA, b.FindingID: lastB}[rec.Event.DedupKey]
			if early := last.Add(resolveAfter - 500*time.Millisecond); rec.At.Before(early) {
				t.Errorf("%s resolved %v after its last revision, want ≥ %v", rec.Event.DedupKey, rec.At.Sub(last), resolveAfter)
			}
		}
	}
	slices.Sort(after)
	want := []string{"resolve " + a.FindingID, "resolve " + b.FindingID, "trigger " + b.FindingID}
	slices.Sort(want)
	if !slices.Equal(after, want) {
		t.Errorf("PagerDuty events after the restart:\n%v\nwant\n%v", after, want)
	}
	eventually(t, 5*time.Second, "no incident open", func() bool { return r2.p.Open("pd") == 0 && r2.p.Open("am") == 0 })
	m := r2.p.Metrics()
	if got := [3]uint64{m.Pages("pd", OutcomeTriggered), m.Pages("pd", OutcomeUpdated), m.Pages("pd", OutcomeResolved)}; got != [3]uint64{0, 1, 2} {
		t.Errorf("pd triggered, updated, resolved after the restart = %v, want [0 1 2]", got)
	}
	if m.Pages("am", OutcomeResent) == 0 || m.Pages("am", OutcomeResolved) != 2 || m.Pages("am", OutcomeTriggered) != 0 {
		t.Errorf("am resent %d, resolved %d, triggered %d", m.Pages("am", OutcomeResent), m.Pages("am", OutcomeResolved), m.Pages("am", OutcomeTriggered))
	}
	ends := am.posted(a.FindingID, restart)
	if last := ends[len(ends)-1]; last.EndsAt.After(last.At) {
		t.Errorf("last Alertmanager alert of A ends at %v, after it was posted (%v): not resolved", last.EndsAt, last.At)
	}
}

// TestRestartAfterResolveTime: the pager is down for longer than
// resolve_after. Incident F, open when it stopped, is resolved as soon as a
// new pager starts; incident G, which the old pager had resolved before the
// last finding it committed on G's partition, is not resolved again.
func TestRestartAfterResolveTime(t *testing.T) {
	env := kafkaEnv(t)
	pd := newPDServer(t)
	// The outbound route's longer resolve_after makes the restore read back
	// as far as G.
	cfg := env.config(mustPolicy(t, fmt.Sprintf(`version: 1
defaults: {resolve_after: 1s}
receivers:
  - {name: pd, type: pagerduty, url: %q}
routes:
  - {match: {rule: outbound.*}, receivers: [pd], resolve_after: 4s}
  - receivers: [pd]
`, pd.URL)))
	r1 := start(t, cfg)
	g := newFinding("crm.bulk_read_no_ticket", "u-1", "high")
	env.produceKeyed(t, "one-partition", g)
	eventually(t, 20*time.Second, "G paged and resolved", func() bool { inc := pd.incidents()[g.FindingID]; return inc != nil && inc.Resolved })
	time.Sleep(time.Second) // G's resolve time is well before F
	f := newFinding("crm.bulk_read_no_ticket", "u-2", "high")
	env.produceKeyed(t, "one-partition", f)
	producedF := time.Now()
	eventually(t, 10*time.Second, "F paged", func() bool { return pd.incidents()[f.FindingID] != nil })
	if err := r1.stop(t); err != nil {
		t.Fatal(err)
	}
	if pd.incidents()[f.FindingID].Resolved {
		t.Fatal("F resolved before the stop; the test needs it open")
	}
	time.Sleep(time.Until(producedF.Add(1500 * time.Millisecond))) // F is overdue
	before := len(pd.all())

	r2 := start(t, cfg)
	eventually(t, 20*time.Second, "F resolved after the restart", func() bool { return pd.incidents()[f.FindingID].Resolved })
	time.Sleep(500 * time.Millisecond)
	var after []string
	for _, rec := range pd.all()[before:] {
		after = append(after, rec.Event.EventAction+" "+rec.Event.DedupKey)
	}
	if want := []string{"resolve " + f.FindingID}; !slices.Equal(after, want) {
		t.Errorf("PagerDuty events after the restart %v, want %v", after, want)
	}
	if m := r2.p.Metrics(); m.Pages("pd", OutcomeResolved) != 1 || r2.p.Open("pd") != 0 {
		t.Errorf("resolved %d, open %d", m.Pages("pd", OutcomeResolved), r2.p.Open("pd"))
	}
}
