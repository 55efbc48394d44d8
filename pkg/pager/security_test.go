package pager_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/embedkafka"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/pager"
	"github.com/leakline/leakline/pkg/testcert"
	"github.com/leakline/leakline/pkg/testenv"
)

// TestPagerKafkaSecurity: the pager takes the Kafka TLS and SASL settings
// from its environment like the other services, and its Kafka configuration
// then reaches a broker that accepts only mutual TLS + SCRAM-SHA-512; a
// wrong password is refused without being echoed.
func TestPagerKafkaSecurity(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "kafka")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("broker", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Client("pager", "pager")
	if err != nil {
		t.Fatal(err)
	}
	const user, password = "pager", "pager-pw-81d3"
	tp := kafkaio.DefaultTopics()
	b, err := embedkafka.Start(embedkafka.Options{
		TLS:    ca.ServerConfig(srv, true),
		SASL:   []embedkafka.SASLUser{{Mechanism: kafkaio.SASLScramSHA512, User: user, Password: password}},
		Topics: map[string]int{tp.Findings: 1, tp.DeadLetter: 1},
	})
	if err != nil {
		testenv.Unavailable(t, "Kafka broker", err)
		return
	}
	t.Cleanup(func() { b.Close() })
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(password), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, password string
		ok             bool
	}{{"right password", "", true}, {"wrong password", "not-" + password, false}} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{
				"LEAKLINE_KAFKA_BROKERS":            strings.Join(b.Addrs(), ","),
				"LEAKLINE_KAFKA_TLS_CA_FILE":        ca.CertFile,
				"LEAKLINE_KAFKA_TLS_CERT_FILE":      client.CertFile,
				"LEAKLINE_KAFKA_TLS_KEY_FILE":       client.KeyFile,
				"LEAKLINE_KAFKA_SASL_MECHANISM":     "SCRAM-SHA-512",
				"LEAKLINE_KAFKA_SASL_USERNAME":      user,
				"LEAKLINE_KAFKA_SASL_PASSWORD_FILE": pwFile,
				"LEAKLINE_WEBHOOK_URL":              "http://127.0.0.1:1/hook",
			}
			if tc.password != "" {
				delete(env, "LEAKLINE_KAFKA_SASL_PASSWORD_FILE")
				env["LEAKLINE_KAFKA_SASL_PASSWORD"] = tc.password
			}
			fs := flag.NewFlagSet("pager", flag.ContinueOnError)
			f := pager.RegisterFlags(fs, func(k string) string { return env[k] })
			if err := fs.Parse(nil); err != nil {
				t.Fatal(err)
			}
			cfg, err := f.Resolve()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = kafkaio.Ping(ctx, cfg.Kafka, tp.Findings, tp.DeadLetter)
			if tc.ok && err != nil {
				t.Fatalf("Ping: %v", err)
			}
			if !tc.ok {
				if err == nil {
					t.Fatal("a wrong password was accepted")
				}
				if strings.Contains(err.Error(), password) {
					t.Errorf("error holds the password: %v", err)
				}
			}
		})
	}
}
