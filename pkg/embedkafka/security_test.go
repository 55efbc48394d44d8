package embedkafka_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/embedkafka"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/testcert"
)

// TestSecuredBrokerRestartCreatesSeedTopics: a TLS + SASL broker restarted
// on its DataDir creates the seed topics that were added meanwhile without
// client credentials of its own, keeps the old ones, and still refuses
// kfake's default superuser admin/admin.
func TestSecuredBrokerRestartCreatesSeedTopics(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "restart")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("broker", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	users := []embedkafka.SASLUser{{Mechanism: "SCRAM-SHA-256", User: "svc", Password: "svc-pw-8e2d"}}
	opt := embedkafka.Options{DataDir: dir + "/data", TLS: ca.ServerConfig(srv, false), SASL: users, Topics: map[string]int{"persisted": 2}}
	b1 := start(t, opt)
	opt.Addr = b1.Addrs()[0]
	b1.Close()

	opt.Topics = map[string]int{"persisted": 2, "added-later": 3}
	b2 := start(t, opt)
	sec := kafkaio.Security{TLS: &tls.Config{RootCAs: ca.Pool()}, SASLMechanism: "SCRAM-SHA-256", Username: "svc", Password: "svc-pw-8e2d"}
	d, err := sec.Dialer("t")
	if err != nil {
		t.Fatal(err)
	}
	cfg := kafkaio.Config{Brokers: b2.Addrs(), Dialer: d}
	ctx := ctxT(t, 20*time.Second)
	if err := kafkaio.Ping(ctx, cfg, "persisted", "added-later"); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if _, err := kafkaio.EndOffset(ctx, cfg, "added-later", 2); err != nil {
		t.Errorf("added-later has no partition 2: %v", err)
	}

	sec.Username, sec.Password = "admin", "admin"
	if d, err = sec.Dialer("t"); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := kafkaio.Ping(pctx, kafkaio.Config{Brokers: b2.Addrs(), Dialer: d}); err == nil {
		t.Error("kfake's default admin/admin was accepted")
	}
}

func TestSASLOptionsValidated(t *testing.T) {
	cases := []struct {
		name string
		user embedkafka.SASLUser
		want string
	}{
		{"unknown mechanism", embedkafka.SASLUser{Mechanism: "GSSAPI", User: "u", Password: "p"}, `unknown mechanism "GSSAPI"`},
		{"no password", embedkafka.SASLUser{Mechanism: "PLAIN", User: "u"}, "without a name or a password"},
		{"no user", embedkafka.SASLUser{Mechanism: "SCRAM-SHA-512", Password: "p"}, "without a name or a password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := embedkafka.Start(embedkafka.Options{SASL: []embedkafka.SASLUser{tc.user}})
			if err == nil {
				b.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
