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
		"LEAKLINE_CLICKHOUSE_TIMEOUT":       "7s",
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
	if cfg.Store.ReadTimeout != 7*time.Second {
		t.Errorf("clickhouse timeout %v, want 7s", cfg.Store.ReadTimeout)
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

func TestResolveInspect(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := Register(fs, env(map[string]string{
		"LEAKLINE_COMPANY_DOMAINS":      "corp.example",
		"LEAKLINE_INSPECT_ALLOW_VALUES": "4111111111111111, 4242424242424242",
		"LEAKLINE_INSPECT_EXCLUDE":      "PHONE_NUMBER=^\\+14155550132$; *=^5555",
		"LEAKLINE_INSPECT_CUSTOM":       `TICKET=TKT-\d{6};ACCT=AC\d{8}:luhn`,
	}))
	if err := fs.Parse([]string{"-inspect-min-count", "US_SSN=3, TICKET=2"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Resolve(false)
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Inspect
	if len(in.AllowDomains) != 1 || in.AllowDomains[0] != "corp.example" {
		t.Errorf("allow domains %v", in.AllowDomains)
	}
	if len(in.AllowValues) != 2 || in.AllowValues[1] != "4242424242424242" {
		t.Errorf("allow values %v", in.AllowValues)
	}
	if len(in.Exclude) != 2 || in.Exclude[0].Type != "PHONE_NUMBER" || in.Exclude[0].Pattern != `^\+14155550132$` ||
		in.Exclude[1].Type != "" || in.Exclude[1].Pattern != "^5555" {
		t.Errorf("exclude %+v", in.Exclude)
	}
	if len(in.Custom) != 2 || in.Custom[0].Name != "TICKET" || in.Custom[0].Checksum != "" ||
		in.Custom[1].Pattern != `AC\d{8}` || in.Custom[1].Checksum != "luhn" {
		t.Errorf("custom %+v", in.Custom)
	}
	if in.MinCount["US_SSN"] != 3 || in.MinCount["TICKET"] != 2 || len(in.MinCount) != 2 {
		t.Errorf("min count %v", in.MinCount)
	}
}

func TestResolveInspectErrors(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		wants []string
	}{
		{"syntax", map[string]string{
			"LEAKLINE_INSPECT_EXCLUDE":   "CREDIT_CARD",
			"LEAKLINE_INSPECT_CUSTOM":    "=x",
			"LEAKLINE_INSPECT_MIN_COUNT": "US_SSN=many",
		}, []string{"inspect-exclude", "inspect-custom", "inspect-min-count"}},
		{"semantics", map[string]string{
			"LEAKLINE_INSPECT_EXCLUDE":   "CREDIT_CARD=(;NOPE=x",
			"LEAKLINE_INSPECT_CUSTOM":    "lower=x",
			"LEAKLINE_INSPECT_MIN_COUNT": "US_SSN=-1",
			"LEAKLINE_LOG_LEVEL":         "loud",
		}, []string{"exclusion 1", `unknown type "NOPE"`, "negative", "log level"}},
		{"custom first error with exclusions", map[string]string{
			"LEAKLINE_INSPECT_CUSTOM":  "TICKET=(",
			"LEAKLINE_INSPECT_EXCLUDE": "*=x*",
		}, []string{"custom detector TICKET", "empty string"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			f := Register(fs, env(tc.env))
			if err := fs.Parse(nil); err != nil {
				t.Fatal(err)
			}
			_, err := f.Resolve(false)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}
