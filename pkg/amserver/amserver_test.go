package amserver_test

import (
	"bytes"
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

	"github.com/leakline/leakline/pkg/amserver"
	"github.com/leakline/leakline/pkg/testenv"
)

// notification is the part of Alertmanager's webhook payload the test reads.
type notification struct {
	Status string `json:"status"`
	Alerts []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

type recorder struct {
	mu  sync.Mutex
	got []notification
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var n notification
	b, _ := io.ReadAll(req.Body)
	if err := json.Unmarshal(b, &n); err == nil {
		r.mu.Lock()
		r.got = append(r.got, n)
		r.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

func (r *recorder) wait(t *testing.T, n int, timeout time.Duration) []notification {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		got := append([]notification(nil), r.got...)
		r.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func postAlert(t *testing.T, base string, endsAt time.Time) {
	t.Helper()
	body, _ := json.Marshal([]map[string]any{{
		"labels":   map[string]string{"alertname": "test", "rule_id": "r", "actor_uid": "a"},
		"startsAt": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano),
		"endsAt":   endsAt.UTC().Format(time.RFC3339Nano),
	}})
	resp, err := http.Post(base+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v2/alerts: HTTP %d", resp.StatusCode)
	}
}

// TestLifecycle starts a private Alertmanager, has it notify a webhook of a
// firing and then a resolved alert, kills and restarts it, and stops it.
func TestLifecycle(t *testing.T) {
	rec := &recorder{}
	hook := httptest.NewServer(rec)
	defer hook.Close()
	s := testenv.Alertmanager(t, amserver.Options{Config: amserver.Config(amserver.Route{
		WebhookURL: hook.URL, GroupWait: 200 * time.Millisecond, GroupInterval: 500 * time.Millisecond,
	})})
	if s.PID() == 0 || !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("PID %d URL %q", s.PID(), s.URL())
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "alertmanager.yml")); err != nil {
		t.Fatal(err)
	}

	postAlert(t, s.URL(), time.Now().Add(time.Hour))
	got := rec.wait(t, 1, 10*time.Second)
	if len(got) != 1 || got[0].Status != "firing" || len(got[0].Alerts) != 1 || got[0].Alerts[0].Labels["rule_id"] != "r" {
		t.Fatalf("notifications %+v, want one firing", got)
	}
	postAlert(t, s.URL(), time.Now())
	got = rec.wait(t, 2, 10*time.Second)
	if len(got) != 2 || got[1].Status != "resolved" {
		t.Fatalf("notifications %+v, want firing then resolved", got)
	}

	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if s.PID() != 0 {
		t.Fatal("PID after Kill")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.URL() + "/api/v2/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status after restart: HTTP %d", resp.StatusCode)
	}
	dir := s.Dir()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir not removed: %v", err)
	}
	if err := s.Restart(ctx); !errors.Is(err, amserver.ErrStopped) {
		t.Fatalf("Restart after Stop: %v", err)
	}
}

func TestMissingBinary(t *testing.T) {
	_, err := amserver.Start(context.Background(), amserver.Options{Binary: "/nonexistent/alertmanager", Config: "route: {}"})
	if !errors.Is(err, amserver.ErrNoBinary) {
		t.Fatalf("Start: %v, want ErrNoBinary", err)
	}
}

func TestBadConfigFailsFast(t *testing.T) {
	start := time.Now()
	_, err := amserver.Start(context.Background(), amserver.Options{Config: "route: [this is not a route"})
	if errors.Is(err, amserver.ErrNoBinary) {
		testenv.Unavailable(t, "Alertmanager", err)
	}
	if err == nil || !strings.Contains(err.Error(), "exited during startup") {
		t.Fatalf("Start with a bad config: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
}

func TestConfig(t *testing.T) {
	c := amserver.Config(amserver.Route{WebhookURL: "http://127.0.0.1:1/x", GroupWait: 1500 * time.Millisecond})
	for _, want := range []string{`group_by: ["rule_id", "actor_uid"]`, "group_wait: 1500ms", "group_interval: 1s", "repeat_interval: 3600s", `url: "http://127.0.0.1:1/x"`, "send_resolved: true"} {
		if !strings.Contains(c, want) {
			t.Errorf("config lacks %q:\n%s", want, c)
		}
	}
}
