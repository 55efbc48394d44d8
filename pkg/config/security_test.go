package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leakline/leakline/pkg/testcert"
)

func TestKafkaAndClickHouseSecurity(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Client("client", "leakline")
	if err != nil {
		t.Fatal(err)
	}
	const secret = "sasl-secret-5e1b"
	pwFile := filepath.Join(dir, "sasl.pw")
	if err := os.WriteFile(pwFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}

	type want struct {
		tls, clientCert bool
		serverName      string
		mech, user      string
		chTLS           bool
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want want
		// errs: substrings of the error; empty: no error.
		errs []string
	}{
		{name: "defaults: plaintext, no SASL", want: want{}},
		{
			name: "environment: TLS with CA and client certificate, SCRAM-SHA-512 from a password file",
			env: map[string]string{
				"LEAKLINE_KAFKA_TLS_CA_FILE":        ca.CertFile,
				"LEAKLINE_KAFKA_TLS_CERT_FILE":      client.CertFile,
				"LEAKLINE_KAFKA_TLS_KEY_FILE":       client.KeyFile,
				"LEAKLINE_KAFKA_TLS_SERVER_NAME":    "kafka.internal",
				"LEAKLINE_KAFKA_SASL_MECHANISM":     "SCRAM-SHA-512",
				"LEAKLINE_KAFKA_SASL_USERNAME":      "leakline",
				"LEAKLINE_KAFKA_SASL_PASSWORD_FILE": pwFile,
			},
			want: want{tls: true, clientCert: true, serverName: "kafka.internal", mech: "SCRAM-SHA-512", user: "leakline"},
		},
		{
			name: "flags win; password from the environment; lower-case mechanism",
			env:  map[string]string{"LEAKLINE_KAFKA_SASL_MECHANISM": "PLAIN", "LEAKLINE_KAFKA_SASL_PASSWORD": secret},
			args: []string{"-kafka-tls", "-kafka-sasl-mechanism", "scram-sha-256", "-kafka-sasl-username", "svc"},
			want: want{tls: true, mech: "SCRAM-SHA-256", user: "svc"},
		},
		{
			name: "LEAKLINE_KAFKA_TLS=true alone: system roots",
			env:  map[string]string{"LEAKLINE_KAFKA_TLS": "true"},
			want: want{tls: true},
		},
		{
			name: "ClickHouse TLS by flags",
			args: []string{"-clickhouse-tls-ca-file", ca.CertFile, "-clickhouse-tls-server-name", "ch.internal"},
			want: want{chTLS: true},
		},
		{
			name: "every error at once, no secret echoed",
			env: map[string]string{
				"LEAKLINE_KAFKA_TLS":              "maybe",
				"LEAKLINE_KAFKA_SASL_MECHANISM":   "GSSAPI",
				"LEAKLINE_KAFKA_SASL_PASSWORD":    secret,
				"LEAKLINE_CLICKHOUSE_TLS_CA_FILE": notPEM,
			},
			args: []string{"-kafka-sasl-username", "svc"},
			errs: []string{"LEAKLINE_KAFKA_TLS", `"GSSAPI" unknown`, "no PEM certificate"},
		},
		{
			name: "missing files and half a client certificate",
			args: []string{"-kafka-tls-ca-file", filepath.Join(dir, "missing.pem"), "-kafka-tls-cert-file", client.CertFile,
				"-kafka-sasl-mechanism", "PLAIN", "-kafka-sasl-username", "svc", "-kafka-sasl-password-file", filepath.Join(dir, "missing.pw")},
			errs: []string{"missing.pem", "both the certificate file and the key file", "kafka SASL password"},
		},
		{
			name: "SASL without credentials",
			args: []string{"-kafka-sasl-mechanism", "SCRAM-SHA-256"},
			errs: []string{"needs a username", "needs a password"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			f := Register(fs, env(tc.env))
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := f.Resolve(false)
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tc.errs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error does not mention %q:\n%v", w, err)
					}
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error echoes the password:\n%v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := cfg.Kafka.Dialer
			if d == nil {
				t.Fatal("no Kafka dialer")
			}
			if got := d.TLS != nil; got != tc.want.tls {
				t.Errorf("Kafka TLS %v, want %v", got, tc.want.tls)
			}
			if d.TLS != nil {
				if got := len(d.TLS.Certificates) > 0; got != tc.want.clientCert {
					t.Errorf("client certificate %v, want %v", got, tc.want.clientCert)
				}
				if d.TLS.ServerName != tc.want.serverName {
					t.Errorf("server name %q, want %q", d.TLS.ServerName, tc.want.serverName)
				}
				if d.TLS.InsecureSkipVerify {
					t.Error("certificate verification off")
				}
			}
			mech := ""
			if d.SASLMechanism != nil {
				mech = d.SASLMechanism.Name()
			}
			if mech != tc.want.mech {
				t.Errorf("SASL %q, want %q", mech, tc.want.mech)
			}
			if got := cfg.Store.TLS != nil; got != tc.want.chTLS {
				t.Errorf("ClickHouse TLS %v, want %v", got, tc.want.chTLS)
			}
			sec, err := f.kafkaSec.Security()
			if err != nil {
				t.Fatal(err)
			}
			if sec.Username != tc.want.user {
				t.Errorf("user %q, want %q", sec.Username, tc.want.user)
			}
			if mech != "" && sec.Password != secret {
				t.Error("password not read (or newline kept)")
			}
		})
	}
}
