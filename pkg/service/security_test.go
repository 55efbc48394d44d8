package service_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/chserver"
	"github.com/leakline/leakline/pkg/embedkafka"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/pipeline"
	"github.com/leakline/leakline/pkg/serverproc"
	"github.com/leakline/leakline/pkg/service"
	"github.com/leakline/leakline/pkg/testcert"
	"github.com/leakline/leakline/pkg/testenv"
)

const (
	svcUser     = "leakline-normalizer"
	svcPassword = "normalizer-scram-pw-31f0"
)

// secured is a TLS + SCRAM-SHA-512 broker with the normalizer's topics and
// the files a service is configured with.
type secured struct {
	b            *embedkafka.Broker
	ca, otherCA  *testcert.CA
	pwFile       string
	wrongPwFile  string
	goodSecurity kafkaio.Security
}

func startSecured(t *testing.T) *secured {
	t.Helper()
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "kafka")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testcert.NewCA(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("broker", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tp := kafkaio.DefaultTopics()
	b, err := embedkafka.Start(embedkafka.Options{
		TLS:    ca.ServerConfig(srv, false),
		SASL:   []embedkafka.SASLUser{{Mechanism: kafkaio.SASLScramSHA512, User: svcUser, Password: svcPassword}},
		Topics: map[string]int{tp.CRMAccess: 2, tp.Outbound: 2, tp.Events: 2, tp.DeadLetter: 1},
	})
	if err != nil {
		testenv.Unavailable(t, "Kafka broker", err)
		return nil
	}
	t.Cleanup(func() { b.Close() })
	s := &secured{b: b, ca: ca, otherCA: other,
		pwFile: filepath.Join(dir, "sasl.pw"), wrongPwFile: filepath.Join(dir, "wrong.pw"),
		goodSecurity: kafkaio.Security{TLS: &tls.Config{RootCAs: ca.Pool()}, SASLMechanism: kafkaio.SASLScramSHA512, Username: svcUser, Password: svcPassword},
	}
	if err := os.WriteFile(s.pwFile, []byte(svcPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.wrongPwFile, []byte("not-"+svcPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *secured) client(t *testing.T) kafkaio.Config {
	t.Helper()
	d, err := s.goodSecurity.Dialer("test-client")
	if err != nil {
		t.Fatal(err)
	}
	return kafkaio.Config{Brokers: s.b.Addrs(), Dialer: d}
}

// syncBuffer collects a service's stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// runService runs stage as service.Run does in a process, with args and
// env, and returns the /readyz URL and a stop func returning the exit code.
func runService(t *testing.T, stage string, args []string, env map[string]string) (readyURL string, logs *syncBuffer, stop func() int) {
	t.Helper()
	ports, err := serverproc.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	args = append([]string{"-metrics-addr", addr}, args...)
	ctx, cancel := context.WithCancel(context.Background())
	logs = &syncBuffer{}
	code := make(chan int, 1)
	go func() { code <- service.Run(ctx, stage, args, func(k string) string { return env[k] }, logs) }()
	var once sync.Once
	exit := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case exit = <-code:
			case <-time.After(service.ShutdownTimeout + 5*time.Second):
				t.Errorf("%s did not stop", stage)
			}
		})
		return exit
	}
	t.Cleanup(func() { stop() })
	return "http://" + addr + "/readyz", logs, stop
}

func readyz(url string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func produceRaw(t *testing.T, cfg kafkaio.Config) string {
	t.Helper()
	raw, err := os.ReadFile("../../schemas/examples/crm_access.view.json")
	if err != nil {
		t.Fatal(err)
	}
	w := kafkaio.NewWriter(cfg, kafkaio.DefaultTopics().CRMAccess)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Write(ctx, kafka.Message{Key: []byte("k"), Value: raw}); err != nil {
		t.Fatalf("produce raw event: %v", err)
	}
	return "crm-7f3c2a90-0001"
}

// normalized counts the messages on dlp.events and dlp.deadletter.
func normalized(t *testing.T, cfg kafkaio.Config) (events, dead int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tp := kafkaio.DefaultTopics()
	for p := range 2 {
		n, err := kafkaio.EndOffset(ctx, cfg, tp.Events, p)
		if err != nil {
			t.Fatalf("end offset: %v", err)
		}
		events += n
	}
	dead, err := kafkaio.EndOffset(ctx, cfg, tp.DeadLetter, 0)
	if err != nil {
		t.Fatalf("end offset: %v", err)
	}
	return events, dead
}

// TestNormalizerOverTLSAndSCRAM runs the normalizer service, configured by
// flags and environment exactly as in production (CA file, SCRAM-SHA-512,
// password from a file), against a broker that accepts nothing else: it
// becomes ready, normalizes a raw CRM event onto dlp.events, and its logs
// never hold the password.
func TestNormalizerOverTLSAndSCRAM(t *testing.T) {
	s := startSecured(t)
	url, logs, stop := runService(t, pipeline.StageNormalizer,
		[]string{"-kafka-tls-ca-file", s.ca.CertFile, "-kafka-sasl-mechanism", "SCRAM-SHA-512"},
		map[string]string{
			"LEAKLINE_KAFKA_BROKERS":            strings.Join(s.b.Addrs(), ","),
			"LEAKLINE_KAFKA_SASL_USERNAME":      svcUser,
			"LEAKLINE_KAFKA_SASL_PASSWORD_FILE": s.pwFile,
			"LEAKLINE_LOG_LEVEL":                "debug",
		})
	waitFor(t, 30*time.Second, "ready", func() (bool, string) {
		code, body := readyz(url)
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
	cfg := s.client(t)
	id := produceRaw(t, cfg)
	waitFor(t, 30*time.Second, "normalized event", func() (bool, string) {
		ev, dead := normalized(t, cfg)
		return ev == 1, fmt.Sprintf("events %d, dead letters %d", ev, dead)
	})
	var found bool
	for p := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := kafkaio.ReplayPartition(ctx, cfg, kafkaio.DefaultTopics().Events, p, func(m kafka.Message) error {
			found = found || bytes.Contains(m.Value, []byte(id))
			return nil
		})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	if !found {
		t.Errorf("event %s not on dlp.events", id)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code %d; logs:\n%s", code, logs)
	}
	if strings.Contains(logs.String(), svcPassword) {
		t.Error("logs contain the SASL password")
	}
}

// TestNormalizerFailsClosed: with a wrong password, a CA that did not sign
// the broker's certificate, or no TLS towards a TLS broker, the normalizer
// processes nothing (a raw event waits unread: no normalized event, no dead
// letter), /readyz answers 503 with an error that says what to check, and
// neither /readyz nor the logs hold a password.
func TestNormalizerFailsClosed(t *testing.T) {
	s := startSecured(t)
	cfg := s.client(t)
	produceRaw(t, cfg)
	cases := []struct {
		name string
		args []string
		hint string
	}{
		{name: "wrong password", args: []string{"-kafka-tls-ca-file", s.ca.CertFile, "-kafka-sasl-password-file", s.wrongPwFile},
			hint: `SASL SCRAM-SHA-512 login as user "` + svcUser + `" refused`},
		{name: "unknown CA", args: []string{"-kafka-tls-ca-file", s.otherCA.CertFile, "-kafka-sasl-password-file", s.pwFile},
			hint: "certificate signed by unknown authority"},
		{name: "plaintext client to TLS broker", args: []string{"-kafka-sasl-password-file", s.pwFile},
			hint: "or the broker expects TLS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url, logs, stop := runService(t, pipeline.StageNormalizer, tc.args, map[string]string{
				"LEAKLINE_KAFKA_BROKERS":        strings.Join(s.b.Addrs(), ","),
				"LEAKLINE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
				"LEAKLINE_KAFKA_SASL_USERNAME":  svcUser,
				"LEAKLINE_LOG_LEVEL":            "debug",
			})
			var code int
			var body string
			waitFor(t, 15*time.Second, "observability endpoint", func() (bool, string) {
				code, body = readyz(url)
				return code != 0, body
			})
			// Stays unready while the event waits.
			for range 3 {
				if code, body = readyz(url); code != http.StatusServiceUnavailable {
					t.Fatalf("/readyz %d %s, want 503", code, body)
				}
				time.Sleep(500 * time.Millisecond)
			}
			t.Logf("/readyz: %s", strings.TrimSpace(body))
			if !strings.Contains(body, tc.hint) {
				t.Errorf("/readyz body %q does not say %q", body, tc.hint)
			}
			if ev, dead := normalized(t, cfg); ev != 0 || dead != 0 {
				t.Errorf("processed over refused settings: %d events, %d dead letters", ev, dead)
			}
			if c := stop(); c != 0 {
				t.Errorf("exit code %d", c)
			}
			for what, text := range map[string]string{"/readyz": body, "logs": logs.String()} {
				if strings.Contains(text, svcPassword) {
					t.Errorf("%s contain the SASL password", what)
				}
			}
		})
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v: %s", what, d, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestChsinkClickHouseCredentials runs the chsink service against a real
// private ClickHouse with a password user and its TLS port, and a TLS +
// SCRAM broker: with the right password (from a file) over TLS it migrates
// and becomes ready; with a wrong one it fails closed — it exits with code 1
// before consuming anything, never answers /readyz with 200, and says
// "Wrong password" without the password.
func TestChsinkClickHouseCredentials(t *testing.T) {
	s := startSecured(t)
	tp := kafkaio.DefaultTopics()
	if err := kafkaio.EnsureTopics(context.Background(), s.client(t), 1, tp.Findings, tp.EventMeta); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	chCA, err := testcert.NewCA(dir, "clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := chCA.Server("clickhouse", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	const chUser, chPassword = "leakline_sink", "ch-sink-pw-6b2e"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch, err := chserver.Start(ctx, chserver.Options{
		Users: []chserver.User{{Name: chUser, Password: chPassword}},
		TLS:   &chserver.TLSFiles{CertFile: pair.CertFile, KeyFile: pair.KeyFile},
	})
	if err != nil {
		testenv.Unavailable(t, "ClickHouse", err)
		return
	}
	t.Cleanup(func() { ch.Stop() })
	goodPw, wrongPw := filepath.Join(dir, "ch.pw"), filepath.Join(dir, "wrong.pw")
	for f, pw := range map[string]string{goodPw: chPassword, wrongPw: "not-" + chPassword} {
		if err := os.WriteFile(f, []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{
		"LEAKLINE_KAFKA_BROKERS":            strings.Join(s.b.Addrs(), ","),
		"LEAKLINE_KAFKA_TLS_CA_FILE":        s.ca.CertFile,
		"LEAKLINE_KAFKA_SASL_MECHANISM":     "SCRAM-SHA-512",
		"LEAKLINE_KAFKA_SASL_USERNAME":      svcUser,
		"LEAKLINE_KAFKA_SASL_PASSWORD_FILE": s.pwFile,
		"LEAKLINE_CLICKHOUSE_ADDR":          ch.SecureAddr(),
		"LEAKLINE_CLICKHOUSE_USER":          chUser,
		"LEAKLINE_CLICKHOUSE_TLS_CA_FILE":   chCA.CertFile,
		"LEAKLINE_CLICKHOUSE_DATABASE":      "sec_sink",
	}

	t.Run("right password over TLS", func(t *testing.T) {
		url, logs, stop := runService(t, pipeline.StageChsink, []string{"-clickhouse-password-file", goodPw}, env)
		waitFor(t, 60*time.Second, "ready", func() (bool, string) {
			code, body := readyz(url)
			return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
		})
		if code := stop(); code != 0 {
			t.Errorf("exit code %d; logs:\n%s", code, logs)
		}
		if strings.Contains(logs.String(), chPassword) || strings.Contains(logs.String(), svcPassword) {
			t.Error("logs contain a password")
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		url, logs, stop := runService(t, pipeline.StageChsink, []string{"-clickhouse-password-file", wrongPw}, env)
		var code int
		waitFor(t, 30*time.Second, "exit", func() (bool, string) {
			if rc, _ := readyz(url); rc == http.StatusOK {
				t.Fatal("/readyz answered 200 with a wrong ClickHouse password")
			}
			return strings.Contains(logs.String(), "migrations failed"), logs.String()
		})
		if code = stop(); code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
		if !strings.Contains(logs.String(), "Wrong password for user "+chUser) {
			t.Errorf("logs do not say why:\n%s", logs)
		}
		if strings.Contains(logs.String(), "not-"+chPassword) || strings.Contains(logs.String(), chPassword) {
			t.Error("logs contain a password")
		}
	})
}
