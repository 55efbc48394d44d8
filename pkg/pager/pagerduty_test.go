package pager

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/kafkaio"
)

func pdPolicy(url string, extra string) string {
	return fmt.Sprintf(`version: 1
defaults:
  resolve_after: 1500ms
  runbook_url: https://wiki.test/runbooks/{rule_id}
receivers:
  - name: pd
    type: pagerduty
    url: %s
    timeout: 2s
%sroutes:
  - match: {min_severity: low}
    receivers: [pd]
`, url, extra)
}

// TestPagerDutyOnePagePerIncident sends several revisions of one incident,
// another incident with an oversized title and a shadow finding through
// Kafka to a PagerDuty stand-in that checks every event against the
// Events API v2 documentation: one incident per finding, updated in place,
// resolved after resolve_after; the shadow finding never arrives.
func TestPagerDutyOnePagePerIncident(t *testing.T) {
	env := kafkaEnv(t)
	pd := newPDServer(t)
	cfg := env.config(mustPolicy(t, pdPolicy(pd.URL, "")))
	cfg.MaxAge = 24 * time.Hour
	r := start(t, cfg)

	old := newFinding("crm.bulk_read_no_ticket", "u-0", "critical")
	old.DetectedAt = old.DetectedAt.Add(-48 * time.Hour) // history: never paged
	env.produce(t, old)
	a1 := newFinding("crm.bulk_read_no_ticket", "u-1001", "critical")
	a2, b := next(a1), newFinding("outbound.pii_external", "u-2002", "low")
	b.Title = strings.Repeat("Very long title ", 200)
	a3 := next(a2)
	shadow := newFinding("crm.bulk_read_no_ticket", "u-3003", "critical")
	shadow.Shadow = true
	env.produce(t, a1, shadow, b)
	eventually(t, 30*time.Second, "both incidents triggered", func() bool { return len(pd.incidents()) == 2 })
	env.produce(t, a2)
	env.produce(t, a3, a2) // a2 again: a redelivered older revision is skipped
	eventually(t, 10*time.Second, "both incidents resolved", func() bool {
		incs := pd.incidents()
		return len(incs) == 2 && incs[a1.FindingID].Resolved && incs[b.FindingID].Resolved
	})
	// The stand-in records a resolve when it receives it; the pager counts
	// it once it has the response.
	eventually(t, 10*time.Second, "the pager's own books closed", func() bool {
		return r.p.Open("pd") == 0 && r.p.Metrics().Pages("pd", OutcomeResolved) == 2
	})

	incs := pd.incidents()
	if len(incs) != 2 || incs[shadow.FindingID] != nil {
		t.Fatalf("incidents %v, want exactly %s and %s", keys(incs), a1.FindingID, b.FindingID)
	}
	a := incs[a1.FindingID]
	if a.Triggers != 3 {
		t.Errorf("incident A: %d triggers, want 3 (new + 2 updates)", a.Triggers)
	}
	last := a.Last
	if last.Payload.Severity != "critical" || last.Payload.Component != "crm.bulk_read_no_ticket" || last.Payload.Group != "Support" {
		t.Errorf("payload %+v", last.Payload)
	}
	cd := last.Payload.CustomDetails
	if cd["revision"].(float64) != 3 || cd["pii_counts"].(map[string]any)["email"].(float64) != 48 {
		t.Errorf("custom_details of the last update: %v", cd)
	}
	samples, _ := json.Marshal(cd["masked_samples"])
	if string(samples) != `["email a***@example.com","card ************1111"]` {
		t.Errorf("masked_samples %s", samples)
	}
	for _, want := range []string{"[CRITICAL]", "actor u-1001 (Support)", "1800 of threshold 200", "PII card 3, email 48", "via email to j***@gmail.com"} {
		if !strings.Contains(last.Payload.Summary, want) {
			t.Errorf("summary %q lacks %q", last.Payload.Summary, want)
		}
	}
	if len(last.Links) != 2 || last.Links[1].Href != "https://wiki.test/runbooks/crm.bulk_read_no_ticket" ||
		!strings.HasPrefix(last.Links[0].Href, "https://grafana.test/d/leakline-investigation/investigation?var-actor=u-1001&from=") {
		t.Errorf("links %+v", last.Links)
	}
	bl := incs[b.FindingID].Last
	if bl.Payload.Severity != "info" || len(bl.Payload.Summary) != MaxSummary {
		t.Errorf("incident B: severity %q, summary of %d bytes (want info, %d)", bl.Payload.Severity, len(bl.Payload.Summary), MaxSummary)
	}

	m := r.p.Metrics()
	if got := [4]uint64{m.Pages("pd", OutcomeTriggered), m.Pages("pd", OutcomeUpdated), m.Pages("pd", OutcomeResolved), m.Pages("pd", OutcomeDuplicate)}; got != [4]uint64{2, 2, 2, 1} {
		t.Errorf("triggered, updated, resolved, duplicate = %v, want [2 2 2 1]", got)
	}
	if m.Shadow.Load() != 1 || r.p.Open("pd") != 0 || m.Pages("pd", OutcomeStale) != 1 {
		t.Errorf("shadow %d, open %d, stale %d", m.Shadow.Load(), r.p.Open("pd"), m.Pages("pd", OutcomeStale))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestReceiverDownThenBack: PagerDuty is unreachable when the findings
// arrive and for seconds after; when it comes back every incident is paged
// exactly once, and nothing was committed before it accepted.
func TestReceiverDownThenBack(t *testing.T) {
	env := kafkaEnv(t)
	// Reserve a port, and keep it closed while the receiver is "down".
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	pd := &pdServer{t: t, URL: "http://" + addr + "/v2/enqueue"}
	r := start(t, env.config(mustPolicy(t, pdPolicy(pd.URL, ""))))

	var fs []string
	for i := range 5 {
		f := newFinding("crm.bulk_read_no_ticket", fmt.Sprintf("u-%d", i), "high")
		env.produce(t, f)
		fs = append(fs, f.FindingID)
	}
	c := r.p.Metrics().Receiver("pd")
	eventually(t, 30*time.Second, "retries while down", func() bool { return c.Retried.Load() >= 5 })
	time.Sleep(time.Second) // down for a while longer

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port %s taken meanwhile: %v", addr, err)
	}
	pd.serve(ln)
	eventually(t, 15*time.Second, "all incidents paged after recovery", func() bool { return len(pd.incidents()) == 5 })
	for _, id := range fs {
		if n := pd.incidents()[id].Triggers; n != 1 {
			t.Errorf("incident %s: %d triggers, want 1", id, n)
		}
	}
	// The batch was committed after the 2xx: a new pager of the same group
	// gets nothing again.
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	before := len(pd.all())
	r2 := start(t, env.config(mustPolicy(t, strings.Replace(pdPolicy(pd.URL, ""), "1500ms", "1h", 1))))
	time.Sleep(2 * time.Second)
	if got := len(pd.all()) - before; got != 0 || r2.p.Metrics().Consumed.Load() != 0 {
		t.Errorf("after restart: %d more requests, %d findings consumed; want none", got, r2.p.Metrics().Consumed.Load())
	}
}

// TestSlowReceiverAndTimeout: a receiver that answers slowly still gets
// every page; one slower than the timeout is retried, and the repeat
// carries the same dedup_key, so it creates no second incident.
func TestSlowReceiverAndTimeout(t *testing.T) {
	env := kafkaEnv(t)
	pd := newPDServer(t)
	pd.setBehaviour(func(n int, _ PDEvent) (int, http.Header, time.Duration) {
		if n == 0 {
			return 0, nil, 1500 * time.Millisecond // beyond the 1s timeout: accepted, but too late
		}
		return 0, nil, 300 * time.Millisecond
	})
	r := start(t, env.config(mustPolicy(t, strings.Replace(pdPolicy(pd.URL, ""), "timeout: 2s", "timeout: 1s", 1))))
	a, b := newFinding("crm.bulk_read_no_ticket", "u-1", "high"), newFinding("crm.bulk_read_no_ticket", "u-2", "high")
	env.produce(t, a, b)
	eventually(t, 20*time.Second, "both paged", func() bool {
		incs := pd.incidents()
		return len(incs) == 2 && incs[a.FindingID].Resolved && incs[b.FindingID].Resolved
	})
	incs := pd.incidents()
	if n := incs[a.FindingID].Triggers + incs[b.FindingID].Triggers; n != 3 {
		t.Errorf("%d triggers, want 3 (one repeated after the timeout)", n)
	}
	if got := r.p.Metrics().Pages("pd", OutcomeRetried); got != 1 {
		t.Errorf("%d retries, want 1", got)
	}
}

// TestRetryAfterHonoured: a 429 with Retry-After: 1 delays the next attempt
// by at least a second, however short the backoff is.
func TestRetryAfterHonoured(t *testing.T) {
	env := kafkaEnv(t)
	pd := newPDServer(t)
	pd.setBehaviour(func(n int, _ PDEvent) (int, http.Header, time.Duration) {
		if n == 0 {
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}, 0
		}
		return 0, nil, 0
	})
	start(t, env.config(mustPolicy(t, pdPolicy(pd.URL, ""))))
	f := newFinding("crm.bulk_read_no_ticket", "u-1", "high")
	env.produce(t, f)
	eventually(t, 20*time.Second, "paged", func() bool { return len(pd.accepted()) >= 1 })
	rec := pd.all()
	if rec[0].Status != http.StatusTooManyRequests || rec[1].Status != http.StatusAccepted || rec[1].Event.DedupKey != f.FindingID {
		t.Fatalf("requests %+v", rec[:2])
	}
	if gap := rec[1].At.Sub(rec[0].At); gap < time.Second || gap > 3*time.Second {
		t.Errorf("retried after %v, want Retry-After's 1s (backoff alone would wait ~50ms)", gap)
	}
}

// Test5xxBurst: a burst of 5xx is retried with backoff until accepted.
func Test5xxBurst(t *testing.T) {
	env := kafkaEnv(t)
	pd := newPDServer(t)
	codes := []int{500, 502, 503, 504, 503, 500}
	pd.setBehaviour(func(n int, _ PDEvent) (int, http.Header, time.Duration) {
		if n < len(codes) {
			return codes[n], nil, 0
		}
		return 0, nil, 0
	})
	r := start(t, env.config(mustPolicy(t, pdPolicy(pd.URL, ""))))
	fs := []string{}
	for i := range 3 {
		f := newFinding("crm.bulk_read_no_ticket", fmt.Sprintf("u-%d", i), "high")
		fs = append(fs, f.FindingID)
		env.produce(t, f)
	}
	eventually(t, 20*time.Second, "all paged", func() bool { return len(pd.incidents()) == 3 })
	for _, id := range fs {
		if n := pd.incidents()[id].Triggers; n != 1 {
			t.Errorf("incident %s: %d triggers, want 1", id, n)
		}
	}
	if got := r.p.Metrics().Pages("pd", OutcomeRetried); got != uint64(len(codes)) {
		t.Errorf("%d retries, want %d", got, len(codes))
	}
}

// Test4xxDeadLettered: a 400 is final: one attempt, the finding goes to the
// dead-letter topic with the reason, and the findings after it are paged.
func Test4xxDeadLettered(t *testing.T) {
	env := kafkaEnv(t)
	pd := newPDServer(t)
	bad := newFinding("crm.bulk_read_no_ticket", "u-bad", "high")
	pd.setBehaviour(func(_ int, ev PDEvent) (int, http.Header, time.Duration) {
		if ev.DedupKey == bad.FindingID {
			return http.StatusBadRequest, nil, 0
		}
		return 0, nil, 0
	})
	r := start(t, env.config(mustPolicy(t, pdPolicy(pd.URL, ""))))
	good := newFinding("crm.bulk_read_no_ticket", "u-good", "high")
	env.produce(t, bad)
	env.produce(t, good)
	env.produceRaw(t, "junk", []byte(`{"not": "a finding"`))
	eventually(t, 20*time.Second, "the good finding paged", func() bool { return pd.incidents()[good.FindingID] != nil })

	dl := env.deadLetters(t, 2, 15*time.Second)
	if len(dl) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dl))
	}
	reasons := map[string]kafkaio.DLQInfo{}
	for _, m := range dl {
		info, _ := kafkaio.DeadLetterInfo(m)
		reasons[info.Reason] = info
	}
	rej := reasons[ReasonRejected]
	if !strings.Contains(rej.Detail, "receiver pd (pagerduty), new event") || !strings.Contains(rej.Detail, "HTTP 400") || rej.SourceTopic != env.topic.Findings {
		t.Errorf("rejection dead letter %+v", rej)
	}
	if _, ok := reasons[ReasonBadFinding]; !ok {
		t.Errorf("no %s dead letter: %v", ReasonBadFinding, reasons)
	}
	n := 0
	for _, rec := range pd.all() {
		if rec.Event.DedupKey == bad.FindingID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the refused event was sent %d times, want once", n)
	}
	if m := r.p.Metrics(); m.Pages("pd", OutcomeRejected) != 1 || m.BadFindings.Load() != 1 || m.DeadLettered.Load() != 2 {
		t.Errorf("rejected %d, bad %d, dead-lettered %d", m.Pages("pd", OutcomeRejected), m.BadFindings.Load(), m.DeadLettered.Load())
	}
}

// TestCrashBetweenAcceptAndCommit: the pager dies after PagerDuty accepted
// a page and before the offset was committed. The next pager of the group
// sends it again with the same dedup_key: PagerDuty still has one incident.
func TestCrashBetweenAcceptAndCommit(t *testing.T) {
	env := kafkaEnv(t)
	pd := newPDServer(t)
	pol := mustPolicy(t, strings.Replace(pdPolicy(pd.URL, ""), "1500ms", "1h", 1))
	cfg := env.config(pol)
	crash := errors.New("simulated crash after the 2xx")
	crashed := false
	cfg.afterDeliver = func(string, Event) error {
		if !crashed {
			crashed = true
			return crash
		}
		return nil
	}
	f := newFinding("crm.bulk_read_no_ticket", "u-1", "critical")
	env.produce(t, f)
	r := start(t, cfg)
	select {
	case err := <-r.done:
		close(r.done)
		if !errors.Is(err, crash) {
			t.Fatalf("Run: %v, want the simulated crash", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the pager did not crash")
	}
	if n := len(pd.accepted()); n != 1 {
		t.Fatalf("%d accepted before the crash, want 1", n)
	}

	start(t, env.config(pol))
	eventually(t, 30*time.Second, "the page repeated", func() bool { return len(pd.accepted()) == 2 })
	time.Sleep(500 * time.Millisecond)
	incs := pd.incidents()
	if len(incs) != 1 || incs[f.FindingID] == nil || incs[f.FindingID].Triggers != 2 {
		t.Fatalf("incidents %v, want one incident %s triggered twice with the same dedup_key", keys(incs), f.FindingID)
	}
}

// TestRateLimitSummary: ten new incidents against a limit of three pages:
// three are paged, the other seven become one summary page (updated, not
// repeated), which resolves once the bucket has refilled. A new revision of
// a summarised incident does not page either.
func TestRateLimitSummary(t *testing.T) {
	env := kafkaEnv(t)
	pd := newPDServer(t)
	r := start(t, env.config(mustPolicy(t, pdPolicy(pd.URL, "    rate_limit: {pages: 3, per: 2s}\n"))))
	var fs []string
	var last = newFinding("outbound.pii_external", "u-0", "high")
	for i := range 10 {
		f := newFinding("outbound.pii_external", fmt.Sprintf("u-%d", i), "high")
		if i == 9 {
			f.Severity = "critical"
			last = f
		}
		fs = append(fs, f.FindingID)
		// One partition, so that the order in which the lane sees them,
		// and so which three are paged, is fixed.
		env.produceKeyed(t, "one-partition", f)
	}
	env.produceKeyed(t, "one-partition", next(last))
	var flood string
	eventually(t, 20*time.Second, "3 pages and a summary with 7 incidents", func() bool {
		for k, inc := range pd.incidents() {
			if k == "leakline-flood-pd" { // one key per receiver, see floodKey
				flood = k
				return inc.Last.Payload.CustomDetails["suppressed_incidents"] == float64(7)
			}
		}
		return false
	})
	incs := pd.incidents()
	if len(incs) != 4 {
		t.Fatalf("%d incidents at PagerDuty (%v), want 3 pages + 1 summary", len(incs), keys(incs))
	}
	for _, id := range fs[:3] {
		if incs[id] == nil {
			t.Errorf("incident %s not paged", id)
		}
	}
	sum := incs[flood].Last
	if sum.Payload.Severity != "critical" || !strings.Contains(sum.Payload.Summary, "7 more incidents") {
		t.Errorf("summary page %+v", sum.Payload)
	}
	eventually(t, 10*time.Second, "summary resolved", func() bool { return pd.incidents()[flood].Resolved })
	m := r.p.Metrics()
	if m.Pages("pd", OutcomeTriggered) != 3 || m.Pages("pd", OutcomeSuppressed) != 7 {
		t.Errorf("triggered %d suppressed %d", m.Pages("pd", OutcomeTriggered), m.Pages("pd", OutcomeSuppressed))
	}
}
