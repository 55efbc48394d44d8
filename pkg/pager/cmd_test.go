package pager

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
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
			"LEAKLINE_METRICS_ADDR":               "127.0.0.1:0",
		}), &out)
	}()
	eventually(t, 20*time.Second, "paged", func() bool { return pd.incidents()[f.FindingID] != nil })

	// The observability endpoint: ready, and metrics by receiver and
	// outcome without any user, actor or finding id.
	var addr string
	eventually(t, 5*time.Second, "the observability endpoint", func() bool {
		for _, line := range strings.Split(out.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "observability endpoint" {
				addr = rec.Addr
			}
		}
		return addr != ""
	})
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: %d %s", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	code, body := get("/metrics")
	for _, want := range []string{
		`leakline_pages_total{outcome="triggered",receiver="pd"}`,
		`leakline_pages_total{outcome="rejected",receiver="pd"}`,
		`leakline_pager_open_incidents{receiver="pd"}`,
		`leakline_deadletters_total{reason="pager_rejected",stage="pager"}`,
		`leakline_messages_consumed_total{group="svc-` + env.topic.Findings + `.pd"`,
	} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %s", code, want)
		}
	}
	for _, leak := range []string{"u-1", f.FindingID, testRoutingKey} {
		if strings.Contains(body, leak) {
			t.Errorf("/metrics shows %q", leak)
		}
	}
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

// TestReady: /readyz reports ready only while the broker answers with the
// findings topic.
func TestReady(t *testing.T) {
	env := kafkaEnv(t)
	pol := mustPolicy(t, minimal)
	for _, tt := range []struct {
		name    string
		brokers []string
		topic   string
		want    string // "" for ready
	}{
		{"ready", env.cfg.Brokers, env.topic.Findings, ""},
		{"findings topic missing", env.cfg.Brokers, "no-such-topic", "no-such-topic"},
		{"broker down", []string{"127.0.0.1:1"}, env.topic.Findings, "ping"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := env.config(pol)
			cfg.AlertmanagerURL = "http://am.test:9093"
			cfg.Kafka.Brokers, cfg.Topics.Findings = tt.brokers, tt.topic
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err = p.Ready(ctx)
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Ready = %v, want %q", err, tt.want)
			}
		})
	}
}
