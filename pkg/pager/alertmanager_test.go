package pager

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/amserver"
	"github.com/leakline/leakline/pkg/testenv"
)

// amNotification is the part of Alertmanager's webhook payload the tests
// read.
type amNotification struct {
	Status      string            `json:"status"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

type amRecorder struct {
	mu  sync.Mutex
	got []amNotification
}

func (r *amRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	var n amNotification
	if err := json.Unmarshal(b, &n); err == nil {
		r.mu.Lock()
		r.got = append(r.got, n)
		r.mu.Unlock()
	}
}

func (r *amRecorder) notifications() []amNotification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]amNotification(nil), r.got...)
}

// TestAlertmanagerOneNotificationPerIncident runs findings through Kafka
// and the pager into a real Alertmanager 0.25 whose webhook receiver
// records notifications. Incident A grows through three revisions;
// incidents B and C are two incidents of one rule and actor, so the
// route's group_by [rule_id, actor_uid] puts them into one group. Expected:
// one firing notification per group (A alone; B and C together), none
// for A's updates although they are re-sent, then one resolved
// notification per group once the incidents have had no new revision for
// resolve_after.
func TestAlertmanagerOneNotificationPerIncident(t *testing.T) {
	rec := &amRecorder{}
	hook := httptest.NewServer(rec)
	defer hook.Close()
	am := testenv.Alertmanager(t, amserver.Options{Config: amserver.Config(amserver.Route{
		WebhookURL: hook.URL, GroupBy: []string{"rule_id", "actor_uid"},
		GroupWait: time.Second, GroupInterval: time.Second,
	})})
	env := kafkaEnv(t)
	pol := mustPolicy(t, `version: 1
defaults:
  resolve_after: 3s
  resend_interval: 500ms
  runbook_url: https://wiki.test/runbooks/{rule_id}
receivers:
  - name: am
    type: alertmanager
routes:
  - receivers: [am]
`)
	cfg := env.config(pol)
	cfg.AlertmanagerURL = am.URL()
	r := start(t, cfg)

	a := newFinding("crm.bulk_read_no_ticket", "u-1001", "critical")
	b := newFinding("outbound.pii_external", "u-2002", "high")
	c := newFinding("outbound.pii_external", "u-2002", "high")
	env.produceKeyed(t, "same-partition", a, b, c) // B and C reach Alertmanager within group_wait
	for range 2 {
		time.Sleep(700 * time.Millisecond)
		a = next(a)
		env.produce(t, a)
	}
	eventually(t, 30*time.Second, "two resolved notifications", func() bool {
		n := 0
		for _, x := range rec.notifications() {
			if x.Status == "resolved" {
				n++
			}
		}
		return n == 2
	})
	time.Sleep(1500 * time.Millisecond) // nothing more may follow

	firing := map[string][]string{} // group -> finding ids
	resolved := map[string]int{}
	for _, n := range rec.notifications() {
		g := n.GroupLabels["rule_id"] + "/" + n.GroupLabels["actor_uid"]
		switch n.Status {
		case "firing":
			if len(firing[g]) > 0 {
				t.Errorf("group %s notified twice while firing", g)
			}
			for _, al := range n.Alerts {
				firing[g] = append(firing[g], al.Labels["finding_id"])
			}
		case "resolved":
			resolved[g]++
		}
	}
	ga, gbc := "crm.bulk_read_no_ticket/u-1001", "outbound.pii_external/u-2002"
	if len(firing) != 2 || len(firing[ga]) != 1 || firing[ga][0] != a.FindingID || len(firing[gbc]) != 2 {
		t.Errorf("firing notifications by group: %v", firing)
	}
	if resolved[ga] != 1 || resolved[gbc] != 1 {
		t.Errorf("resolved notifications by group: %v", resolved)
	}
	// The alert carries the documented labels and annotations.
	for _, n := range rec.notifications() {
		for _, al := range n.Alerts {
			if al.Labels["finding_id"] != a.FindingID {
				continue
			}
			want := map[string]string{"alertname": "crm.bulk_read_no_ticket", "severity": "critical", "actor_uid": "u-1001", "rule_id": "crm.bulk_read_no_ticket", "finding_id": a.FindingID}
			if fmt.Sprint(al.Labels) != fmt.Sprint(want) {
				t.Errorf("labels %v, want %v", al.Labels, want)
			}
			if !strings.Contains(al.Annotations["summary"], "[CRITICAL]") || al.Annotations["runbook_url"] != "https://wiki.test/runbooks/crm.bulk_read_no_ticket" ||
				!strings.Contains(al.Annotations["dashboard_url"], "var-actor=u-1001") || !strings.Contains(al.Annotations["description"], "Samples (masked): email a***@example.com") {
				t.Errorf("annotations %v", al.Annotations)
			}
		}
	}
	m := r.p.Metrics()
	if m.Pages("am", OutcomeTriggered) != 3 || m.Pages("am", OutcomeUpdated) != 2 || m.Pages("am", OutcomeResolved) != 3 || m.Pages("am", OutcomeResent) == 0 {
		t.Errorf("am counters: triggered %d updated %d resolved %d resent %d", m.Pages("am", OutcomeTriggered),
			m.Pages("am", OutcomeUpdated), m.Pages("am", OutcomeResolved), m.Pages("am", OutcomeResent))
	}
}
