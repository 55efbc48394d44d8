package clicmd

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/edm"
	"github.com/leakline/leakline/pkg/embedkafka"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/privacy"
	"github.com/leakline/leakline/pkg/testcert"
	"github.com/leakline/leakline/pkg/testenv"
)

// TestEDMPublishOverTLSAndSASL: `leakline edm publish` takes the same
// -kafka-tls-* and -kafka-sasl-* flags as the services and publishes to a
// broker that accepts only TLS + SCRAM-SHA-256; with a wrong password it
// fails without printing it.
func TestEDMPublishOverTLSAndSASL(t *testing.T) {
	e := newEnv(t)
	ca, err := testcert.NewCA(e.dir, "kafka")
	must(t, err)
	srv, err := ca.Server("broker", "127.0.0.1")
	must(t, err)
	const user, password = "edm-publisher", "edm-pw-2c7a"
	b, err := embedkafka.Start(embedkafka.Options{
		TLS:  ca.ServerConfig(srv, false),
		SASL: []embedkafka.SASLUser{{Mechanism: kafkaio.SASLScramSHA256, User: user, Password: password}},
	})
	if err != nil {
		testenv.Unavailable(t, "Kafka broker", err)
		return
	}
	t.Cleanup(func() { b.Close() })
	pw, wrong := filepath.Join(e.dir, "pw"), filepath.Join(e.dir, "wrong")
	must(t, os.WriteFile(pw, []byte(password+"\n"), 0o600))
	must(t, os.WriteFile(wrong, []byte("not-"+password+"\n"), 0o600))
	if r := run(edmCmd, "", "build", "--key-file", e.key, "--columns", "email,phone", "--id-column", "customer_id", "-o", e.index, e.csv); r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	args := func(pwFile string) []string {
		return []string{"publish", e.index, "--brokers", strings.Join(b.Addrs(), ","), "--topic", "dlp.edm", "--timeout", "15s",
			"-kafka-tls-ca-file", ca.CertFile, "-kafka-sasl-mechanism", "SCRAM-SHA-256", "-kafka-sasl-username", user, "-kafka-sasl-password-file", pwFile}
	}
	r := run(edmCmd, "", args(wrong)...)
	if r.code == 0 {
		t.Fatal("published with a wrong password")
	}
	t.Logf("refused: %s", strings.TrimSpace(r.stderr))
	if !strings.Contains(r.stderr, `SASL SCRAM-SHA-256 login as user "`+user+`" refused`) {
		t.Errorf("the error does not say what to check: %s", r.stderr)
	}
	if strings.Contains(r.stderr+r.stdout, password) {
		t.Errorf("output holds the password: %s", r.stderr)
	}
	r = run(edmCmd, "", args(pw)...)
	if r.code != 0 {
		t.Fatalf("publish: %d %s", r.code, r.stderr)
	}
	var res map[string]any
	must(t, json.Unmarshal([]byte(r.stdout), &res))
	key, err := privacy.LoadKey(e.key)
	must(t, err)
	d, err := kafkaio.Security{TLS: &tls.Config{RootCAs: ca.Pool()}, SASLMechanism: kafkaio.SASLScramSHA256, Username: user, Password: password}.Dialer("t")
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	x, err := edm.LoadFromKafka(ctx, kafkaio.Config{Brokers: b.Addrs(), Dialer: d}, "dlp.edm", key)
	if err != nil || x.ID() != res["id"] {
		t.Fatalf("LoadFromKafka: %v", err)
	}
}
