package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) Getenv { return func(k string) string { return m[k] } }

func TestResolveFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "hmac.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := Register(fs, env(map[string]string{
		"LEAKLINE_KAFKA_BROKERS":            "k1:9092, k2:9092",
		"LEAKLINE_CLICKHOUSE_PASSWORD_FILE": pwFile,
		"LEAKLINE_HMAC_KEY_FILE":            keyFile,
		"LEAKLINE_ALLOWED_LATENESS":         "2m",
		"LEAKLINE_COMPANY_DOMAINS":          "corp.example,corp.example.net",
	}))
	if err := fs.Parse([]string{"-sink-batch", "10"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Resolve(true)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Kafka.Brokers, ","); got != "k1:9092,k2:9092" {
		t.Errorf("brokers %q", got)
	}
	if cfg.Store.Password != "s3cret" {
		t.Error("password file not read (or newline kept)")
	}
	if len(cfg.HMACKey) != 32 {
		t.Errorf("hmac key of %d bytes", len(cfg.HMACKey))
	}
	if cfg.Engine.AllowedLateness != 2*time.Minute || cfg.Sink.BatchSize != 10 {
		t.Errorf("lateness %v batch %d", cfg.Engine.AllowedLateness, cfg.Sink.BatchSize)
	}
	if len(cfg.Engine.CompanyDomains) != 2 {
		t.Errorf("domains %v", cfg.Engine.CompanyDomains)
	}
}

func TestResolveReportsEveryError(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := Register(fs, env(map[string]string{
		"LEAKLINE_PARTITIONS":       "many",
		"LEAKLINE_ALLOWED_LATENESS": "soon",
		"LEAKLINE_KAFKA_BROKERS":    " ",
		"LEAKLINE_LOG_LEVEL":        "loud",
		"LEAKLINE_HMAC_KEY":         "abcd",
	}))
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	_, err := f.Resolve(true)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"LEAKLINE_PARTITIONS", "LEAKLINE_ALLOWED_LATENESS", "log level", "hmac key", "broker"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "abcd") {
		t.Error("error echoes the secret")
	}
}

func TestHMACKeyRequiredOnlyWhenNeeded(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := Register(fs, env(nil))
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Resolve(false); err != nil {
		t.Fatalf("sink config needs no key: %v", err)
	}
	if _, err := f.Resolve(true); err == nil || !strings.Contains(err.Error(), "LEAKLINE_HMAC_KEY_FILE") {
		t.Fatalf("detector config without a key: %v", err)
	}
}
