package config

import (
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFile(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want map[string]string
		errs []string // substrings; nil: valid
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{name: "comments, blanks, CRLF, spaces around", in: "# Leakline\n\n  LEAKLINE_KAFKA_BROKERS = k1:9092,k2:9092 \r\nLEAKLINE_SINK_BATCH=10\n",
			want: map[string]string{"LEAKLINE_KAFKA_BROKERS": "k1:9092,k2:9092", "LEAKLINE_SINK_BATCH": "10"}},
		{name: "value with = and #", in: "LEAKLINE_INSPECT_EXCLUDE=email=.*@corp\\.example#x\n",
			want: map[string]string{"LEAKLINE_INSPECT_EXCLUDE": "email=.*@corp\\.example#x"}},
		{name: "empty value", in: "LEAKLINE_TOPIC_EVENTMETA=\n", want: map[string]string{"LEAKLINE_TOPIC_EVENTMETA": ""}},
		{name: "every error with its line, no secret value",
			in:   "LEAKLINE_KAFKA_SASL_PASSWORD=hunter2-secret\nnot a pair\nkafka_brokers=x\nLEAKLINE_A=1\nLEAKLINE_A=2\nLEAKLINE_HMAC_KEY=abcdef0123\n",
			errs: []string{"line 1: LEAKLINE_KAFKA_SASL_PASSWORD is a secret", "LEAKLINE_KAFKA_SASL_PASSWORD_FILE", "line 2: not NAME=VALUE", `line 3: "kafka_brokers" is not`, "line 5: LEAKLINE_A given twice", "line 6: LEAKLINE_HMAC_KEY is a secret"}},
		{name: "too large", in: strings.Repeat("#", maxConfigFile+1), errs: []string{"larger than"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFile([]byte(tc.in))
			if tc.errs != nil {
				if err == nil {
					t.Fatalf("no error, got %v", got)
				}
				for _, w := range tc.errs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error does not mention %q:\n%v", w, err)
					}
				}
				for _, secret := range []string{"hunter2-secret", "abcdef0123"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error echoes a secret:\n%v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestConfigFilePrecedence: defaults < file < environment < flags, the file
// named by LEAKLINE_CONFIG_FILE or by -config, and a bad file reported with
// every other configuration error.
func TestConfigFilePrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "leakline.env")
	if err := os.WriteFile(file, []byte(strings.Join([]string{
		"LEAKLINE_KAFKA_BROKERS=file:9092",
		"LEAKLINE_KAFKA_CLIENT_ID=from-file",
		"LEAKLINE_SINK_BATCH=7",
		"LEAKLINE_ALLOWED_LATENESS=3m",
		"LEAKLINE_KAFKA_SASL_MECHANISM=SCRAM-SHA-256",
		"LEAKLINE_KAFKA_SASL_USERNAME=svc",
		"LEAKLINE_PAGER_POLICY=/etc/leakline/policy.yaml", // another service's: accepted
	}, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.env")
	if err := os.WriteFile(bad, []byte("LEAKLINE_CLICKHOUSE_PASSWORD=pw-in-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		env      map[string]string
		args     []string
		brokers  string
		clientID string
		batch    int
		errs     []string
	}{
		{name: "file by environment", env: map[string]string{ConfigFileEnv: file, "LEAKLINE_KAFKA_SASL_PASSWORD": "pw"},
			brokers: "file:9092", clientID: "from-file", batch: 7},
		{name: "environment wins over the file", env: map[string]string{ConfigFileEnv: file, "LEAKLINE_KAFKA_CLIENT_ID": "from-env", "LEAKLINE_KAFKA_SASL_PASSWORD": "pw"},
			brokers: "file:9092", clientID: "from-env", batch: 7},
		{name: "-config FILE, flags win", env: map[string]string{"LEAKLINE_KAFKA_SASL_PASSWORD": "pw"},
			args:    []string{"-sink-batch", "9", "-config", file, "-kafka-brokers", "flag:9092"},
			brokers: "flag:9092", clientID: "from-file", batch: 9},
		{name: "--config=FILE", env: map[string]string{"LEAKLINE_KAFKA_SASL_PASSWORD": "pw"}, args: []string{"--config=" + file},
			brokers: "file:9092", clientID: "from-file", batch: 7},
		{name: "secret in the file and a bad value elsewhere", env: map[string]string{ConfigFileEnv: bad, "LEAKLINE_PARTITIONS": "many"},
			errs: []string{"config file " + bad + ": line 1: LEAKLINE_CLICKHOUSE_PASSWORD is a secret", "LEAKLINE_PARTITIONS"}},
		{name: "missing file", env: map[string]string{ConfigFileEnv: filepath.Join(dir, "missing.env")}, errs: []string{"config file", "missing.env"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			f := Register(fs, ArgsWithFile(tc.args, env(tc.env)))
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := f.Resolve(false)
			if tc.errs != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tc.errs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error does not mention %q:\n%v", w, err)
					}
				}
				if strings.Contains(err.Error(), "pw-in-file") {
					t.Errorf("error echoes the secret:\n%v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(cfg.Kafka.Brokers, ","); got != tc.brokers {
				t.Errorf("brokers %q, want %q", got, tc.brokers)
			}
			if cfg.Kafka.ClientID != tc.clientID || cfg.Sink.BatchSize != tc.batch {
				t.Errorf("client id %q batch %d, want %q %d", cfg.Kafka.ClientID, cfg.Sink.BatchSize, tc.clientID, tc.batch)
			}
			if cfg.Engine.AllowedLateness != 3*time.Minute {
				t.Errorf("lateness %v from the file", cfg.Engine.AllowedLateness)
			}
			if d := cfg.Kafka.Dialer; d == nil || d.SASLMechanism == nil || d.SASLMechanism.Name() != "SCRAM-SHA-256" {
				t.Errorf("SASL from the file not applied")
			}
		})
	}
}

func FuzzParseFile(f *testing.F) {
	for _, s := range []string{
		"", "# c\nLEAKLINE_A=1\n", "LEAKLINE_A = x=y \r\n", "x", "LEAKLINE_A=1\nLEAKLINE_A=2",
		"LEAKLINE_HMAC_KEY=00", "=\n=", "LEAKLINE_\xff=1", "\n\n#\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vals, err := ParseFile(data)
		if err != nil {
			return
		}
		// Every accepted name is a LEAKLINE_* name and not a secret;
		// values are trimmed single lines; printing and parsing again
		// gives the same map.
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(vals)) {
			v := vals[k]
			if !configKeyRE.MatchString(k) || isSecretKey(k) {
				t.Fatalf("accepted name %q", k)
			}
			if strings.ContainsAny(v, "\n") || strings.TrimSpace(v) != v {
				t.Fatalf("value %q of %s not a trimmed line", v, k)
			}
			b.WriteString(k + "=" + v + "\n")
		}
		again, err := ParseFile([]byte(b.String()))
		if err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if !maps.Equal(vals, again) {
			t.Fatalf("reparse: %v != %v", again, vals)
		}
	})
}

func TestArgsWithFile(t *testing.T) {
	base := env(map[string]string{ConfigFileEnv: "from-env", "X": "x"})
	cases := []struct {
		args []string
		want string
	}{
		{nil, "from-env"},
		{[]string{"-config", "a"}, "a"},
		{[]string{"-metrics-addr", ":1", "--config", "b"}, "b"},
		{[]string{"-config=c"}, "c"},
		{[]string{"--", "-config", "d"}, "from-env"},
		{[]string{"-config"}, "from-env"},
	}
	for _, tc := range cases {
		g := ArgsWithFile(tc.args, base)
		if got := g(ConfigFileEnv); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.args, got, tc.want)
		}
		if g("X") != "x" {
			t.Errorf("%q: other variables lost", tc.args)
		}
	}
}
