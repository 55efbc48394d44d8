package pager

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envFunc(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestCheckReportsPolicyLines(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte("version: 1\nreceivers:\n  - {name: am, type: alertmanagr}\nroutes:\n  - receivers: [am]\n    continue: maybe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	code := run(context.Background(), []string{"-check"}, envFunc(map[string]string{"LEAKLINE_PAGER_POLICY": pol}), &out)
	if code != 2 || !strings.Contains(out.String(), pol+": 2 problems:") || !strings.Contains(out.String(), "line 3: receivers[0].type") ||
		!strings.Contains(out.String(), "line 6: routes[0].continue") {
		t.Fatalf("exit %d, output:\n%s", code, out.String())
	}
}

func TestCheckSecretsNeverPrinted(t *testing.T) {
	var out syncBuffer
	code := run(context.Background(), []string{"-check", "-max-age", "-1s"}, envFunc(map[string]string{
		"LEAKLINE_PAGERDUTY_ROUTING_KEY": "not-32-characters-secret-value",
	}), &out)
	if code != 2 || !strings.Contains(out.String(), "max-age -1s is negative") {
		t.Fatalf("exit %d, output:\n%s", code, out.String())
	}
	if strings.Contains(out.String(), "secret-value") {
		t.Fatal("the routing key was printed")
	}
}

// TestRunServiceUntilCancelled starts the service the way services/pager
// does, from environment variables, pages one finding and shuts down
// gracefully when its context ends (SIGTERM in production).
func TestRunServiceUntilCancelled(t *testing.T) {
	env := kafkaEnv(t)
	pd := newPDServer(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "pd-key")
	if err := os.WriteFile(keyFile, []byte(testRoutingKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(pdPolicy(pd.URL, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFinding("crm.bulk_read_no_ticket", "u-1", "high")
	env.produce(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, nil, envFunc(map[string]string{
			"LEAKLINE_KAFKA_BROKERS":              strings.Join(env.cfg.Brokers, ","),
			"LEAKLINE_TOPIC_FINDINGS":             env.topic.Findings,
			"LEAKLINE_TOPIC_DEADLETTER":           env.topic.DeadLetter,
			"LEAKLINE_PAGER_POLICY":               pol,
			"LEAKLINE_PAGERDUTY_ROUTING_KEY_FILE": keyFile,
			"LEAKLINE_GRAFANA_URL":                "https://grafana.test",
			"LEAKLINE_PAGER_GROUP":                "svc-" + env.topic.Findings,
		}), &out)
	}()
	eventually(t, 20*time.Second, "paged", func() bool { return pd.incidents()[f.FindingID] != nil })
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out.String())
		}
	case <-time.After(ShutdownTimeout):
		t.Fatal("no graceful stop")
	}
	if !strings.Contains(out.String(), `"msg":"stopped"`) || strings.Contains(out.String(), testRoutingKey) || strings.Contains(out.String(), "u-1") {
		t.Fatalf("log:\n%s", out.String())
	}
}
