// Package config turns flags and environment variables into the pipeline's
// configuration. Every flag has an environment variable (LEAKLINE_*); a flag
// given on the command line wins. Secrets (ClickHouse password, Kafka SASL
// password, HMAC key) are read from files or the environment and never
// logged. Kafka TLS/SASL (RegisterKafkaSecurity) and ClickHouse TLS flags
// are in security.go; every Kafka client of a service gets the same
// settings through kafkaio.Config.Dialer.
package config

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/edm"
	"github.com/leakline/leakline/pkg/inspect"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/pipeline"
	"github.com/leakline/leakline/pkg/privacy"
	"github.com/leakline/leakline/pkg/ruledeploy"
	"github.com/leakline/leakline/pkg/rules"
)

// Getenv looks up an environment variable (os.Getenv in production).
type Getenv func(string) string

// Flags holds the registered flags until Resolve turns them into a Config.
type Flags struct {
	brokers, clientID                          *string
	tCRM, tOutbound, tEvents, tFindings, tDead *string
	tEventMeta                                 *string
	partitions                                 *int
	chAddr, chDB, chUser, chPasswordFile       *string
	chTimeout                                  *time.Duration
	rulesDir, edmIndex, edmTopic, rulesPubKey  *string
	hmacKeyFile                                *string
	companyDomains                             *string
	allowValues, exclude, custom, minCount     *string
	lateness                                   *time.Duration
	sinkBatch                                  *int
	sinkFlush                                  *time.Duration
	logLevel                                   *string
	kafkaSec                                   *KafkaSecurityFlags
	chTLS                                      *tlsFlags
	// MetricsAddr is where /metrics, /healthz and /readyz listen.
	MetricsAddr *string
	getenv      Getenv
	envErrs     []error
}

// Register adds the pipeline's flags to fs, with defaults from getenv and
// then from the configuration file named by LEAKLINE_CONFIG_FILE (see
// ParseFile; ArgsWithFile turns a -config argument into that variable).
func Register(fs *flag.FlagSet, getenv Getenv) *Flags {
	if getenv == nil {
		getenv = os.Getenv
	}
	s := func(name, env, def, usage string) *string {
		if v := getenv(env); v != "" {
			def = v
		}
		return fs.String(name, def, usage+" (env "+env+")")
	}
	fs.String("config", getenv(ConfigFileEnv), "file of LEAKLINE_*=VALUE lines, below the environment and the flags; no secrets in it (env "+ConfigFileEnv+")")
	getenv, fileErr := WithFile(getenv)
	t := kafkaio.DefaultTopics()
	f := &Flags{getenv: getenv}
	if fileErr != nil {
		f.envErrs = append(f.envErrs, fileErr)
	}
	f.brokers = s("kafka-brokers", "LEAKLINE_KAFKA_BROKERS", "127.0.0.1:9092", "comma-separated Kafka bootstrap brokers")
	f.clientID = s("kafka-client-id", "LEAKLINE_KAFKA_CLIENT_ID", "leakline", "Kafka client id")
	f.kafkaSec = RegisterKafkaSecurity(fs, getenv)
	f.tCRM = s("topic-crm", "LEAKLINE_TOPIC_CRM", t.CRMAccess, "raw CRM access topic")
	f.tOutbound = s("topic-outbound", "LEAKLINE_TOPIC_OUTBOUND", t.Outbound, "raw outbound traffic topic")
	f.tEvents = s("topic-events", "LEAKLINE_TOPIC_EVENTS", t.Events, "normalized events topic")
	f.tFindings = s("topic-findings", "LEAKLINE_TOPIC_FINDINGS", t.Findings, "findings topic")
	f.tEventMeta = s("topic-eventmeta", "LEAKLINE_TOPIC_EVENTMETA", t.EventMeta, "per-event metadata topic (detector to the events table; empty disables)")
	f.tDead = s("topic-deadletter", "LEAKLINE_TOPIC_DEADLETTER", t.DeadLetter, "dead-letter topic")
	f.partitions = fs.Int("partitions", f.envInt("LEAKLINE_PARTITIONS", 6), "partitions of topics created at start (env LEAKLINE_PARTITIONS)")
	f.chAddr = s("clickhouse-addr", "LEAKLINE_CLICKHOUSE_ADDR", "127.0.0.1:9000", "ClickHouse native protocol address")
	f.chDB = s("clickhouse-database", "LEAKLINE_CLICKHOUSE_DATABASE", "leakline", "ClickHouse database")
	f.chUser = s("clickhouse-user", "LEAKLINE_CLICKHOUSE_USER", "default", "ClickHouse user")
	f.chPasswordFile = s("clickhouse-password-file", "LEAKLINE_CLICKHOUSE_PASSWORD_FILE", "", "file holding the ClickHouse password (or env LEAKLINE_CLICKHOUSE_PASSWORD)")
	f.chTimeout = fs.Duration("clickhouse-timeout", f.envDuration("LEAKLINE_CLICKHOUSE_TIMEOUT", chstore.DefaultReadTimeout), "bound on each read from ClickHouse, e.g. an insert's answer: a frozen server fails the attempt after this and the sink retries (env LEAKLINE_CLICKHOUSE_TIMEOUT)")
	f.chTLS = registerTLS(fs, getenv, "clickhouse", "LEAKLINE_CLICKHOUSE", "ClickHouse")
	f.hmacKeyFile = s("hmac-key-file", "LEAKLINE_HMAC_KEY_FILE", "", "file holding the HMAC key for evidence tokens, ≥32 bytes raw or hex (or env LEAKLINE_HMAC_KEY, hex)")
	f.companyDomains = s("company-domains", "LEAKLINE_COMPANY_DOMAINS", strings.Join(detect.DefaultConfig().CompanyDomains, ","), "comma-separated company mail domains and hosts (internal destinations)")
	f.allowValues = s("inspect-allow-values", "LEAKLINE_INSPECT_ALLOW_VALUES", "", "comma-separated values never reported, e.g. published test card numbers (detector)")
	f.exclude = s("inspect-exclude", "LEAKLINE_INSPECT_EXCLUDE", "", "exclusions TYPE=REGEX;… matched against normalized values, TYPE * for every type (detector)")
	f.custom = s("inspect-custom", "LEAKLINE_INSPECT_CUSTOM", "", "custom detectors NAME=REGEX[:luhn|mod97];…, e.g. support ticket numbers (detector)")
	f.minCount = s("inspect-min-count", "LEAKLINE_INSPECT_MIN_COUNT", "", "minimum detections per type TYPE=N,… below which none of that type is reported (detector)")
	f.lateness = fs.Duration("allowed-lateness", f.envDuration("LEAKLINE_ALLOWED_LATENESS", detect.DefaultConfig().AllowedLateness), "how late an event may arrive and still count (env LEAKLINE_ALLOWED_LATENESS)")
	f.sinkBatch = fs.Int("sink-batch", f.envInt("LEAKLINE_SINK_BATCH", 5000), "ClickHouse insert batch size in rows (env LEAKLINE_SINK_BATCH)")
	f.sinkFlush = fs.Duration("sink-flush", f.envDuration("LEAKLINE_SINK_FLUSH", 500*time.Millisecond), "ClickHouse flush interval (env LEAKLINE_SINK_FLUSH)")
	f.edmIndex = s("edm-index", "LEAKLINE_EDM_INDEX", "", "exact-data-match index file built by `leakline edm build` with the same HMAC key (detector)")
	f.edmTopic = s("edm-topic", "LEAKLINE_EDM_TOPIC", "", "load the newest exact-data-match index from this compacted topic at start, e.g. dlp.edm (detector)")
	f.rulesDir = s("rules", "LEAKLINE_RULES_DIR", "", "rule pack directory (default: the embedded default pack)")
	f.rulesPubKey = s("rules-public-key-file", ruledeploy.EnvPublicKeyFile, "", "public key (PEM) of signed rule packs: with it the detector follows dlp.rules and hot-swaps deployed packs")
	f.logLevel = s("log-level", "LEAKLINE_LOG_LEVEL", "info", "debug, info, warn or error")
	f.MetricsAddr = s("metrics-addr", "LEAKLINE_METRICS_ADDR", ":9464", "listen address of /metrics, /healthz and /readyz (empty disables)")
	return f
}

// Resolve validates the flags and returns the pipeline configuration; it
// reports every error at once. needKey says whether the HMAC key is required
// (the detector needs it; the sink does not).
func (f *Flags) Resolve(needKey bool) (pipeline.Config, error) {
	errs := multierror.Append(nil, f.envErrs...)
	cfg := pipeline.Config{
		Kafka: kafkaio.Config{Brokers: SplitList(*f.brokers), ClientID: *f.clientID},
		Topics: kafkaio.Topics{
			CRMAccess: *f.tCRM, Outbound: *f.tOutbound, Events: *f.tEvents, Findings: *f.tFindings, EventMeta: *f.tEventMeta, DeadLetter: *f.tDead,
		},
		Partitions: *f.partitions,
		Store:      chstore.Config{Addr: *f.chAddr, Database: *f.chDB, User: *f.chUser, ReadTimeout: *f.chTimeout},
		Engine:     detect.DefaultConfig(),
	}
	cfg.Sink.BatchSize, cfg.Sink.FlushInterval = *f.sinkBatch, *f.sinkFlush
	cfg.Engine.CompanyDomains = SplitList(*f.companyDomains)
	cfg.Engine.AllowedLateness = *f.lateness
	for _, err := range f.resolveInspect(&cfg) {
		errs = multierror.Append(errs, err)
	}
	if err := cfg.Kafka.Validate(); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := f.kafkaSec.Apply(&cfg.Kafka); err != nil {
		errs = multierror.Append(errs, err)
	}
	for _, tp := range cfg.Topics.All() {
		if tp == "" {
			errs = multierror.Append(errs, errors.New("a topic name is empty"))
		}
	}
	if *f.rulesDir != "" {
		p, err := rules.LoadDir(*f.rulesDir)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("rule pack %s: %w", *f.rulesDir, err))
		} else {
			cfg.Engine.Pack = p
		}
	}
	if cfg.RulesPublicKeyFile = *f.rulesPubKey; cfg.RulesPublicKeyFile != "" {
		if _, err := ruledeploy.LoadPublicKey(cfg.RulesPublicKeyFile); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("rules public key: %w", err))
		}
	}
	if err := cfg.Engine.Validate(); err != nil {
		errs = multierror.Append(errs, err)
	}
	pw, err := Secret(f.getenv, *f.chPasswordFile, "LEAKLINE_CLICKHOUSE_PASSWORD")
	if err != nil {
		errs = multierror.Append(errs, fmt.Errorf("clickhouse password: %w", err))
	}
	cfg.Store.Password = string(pw)
	if cfg.Store.TLS, err = f.chTLS.config(); err != nil {
		errs = multierror.Append(errs, err)
	}
	if needKey {
		key, err := HMACKey(f.getenv, *f.hmacKeyFile)
		if err != nil {
			errs = multierror.Append(errs, err)
		}
		cfg.HMACKey = key
		cfg.EDMTopic = *f.edmTopic
		if *f.edmIndex != "" && err == nil {
			idx, err := loadEDM(*f.edmIndex, key)
			if err != nil {
				errs = multierror.Append(errs, err)
			}
			cfg.Engine.EDM = idx
		}
	}
	if _, err := ParseLevel(*f.logLevel); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := errs.ErrorOrNil(); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// Logger returns a JSON slog logger at the configured level, on stderr.
func (f *Flags) Logger() *slog.Logger { return f.LoggerTo(os.Stderr) }

// LoggerTo returns a JSON slog logger at the configured level writing to w.
func (f *Flags) LoggerTo(w io.Writer) *slog.Logger {
	lvl, _ := ParseLevel(*f.logLevel)
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl}))
}

// ParseLevel parses a log level name.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// HMACKey loads the evidence-token key from file (raw or hex) or, when no
// file is named, from LEAKLINE_HMAC_KEY (hex).
func HMACKey(getenv Getenv, file string) ([]byte, error) {
	if file != "" {
		k, err := privacy.LoadKey(file)
		if err != nil {
			return nil, fmt.Errorf("hmac key: %w", err)
		}
		return k, nil
	}
	if v := getenv("LEAKLINE_HMAC_KEY"); v != "" {
		k, err := hex.DecodeString(strings.TrimSpace(v))
		if err != nil || len(k) < 32 {
			return nil, errors.New("hmac key: LEAKLINE_HMAC_KEY must be ≥ 32 bytes, hex-encoded")
		}
		return k, nil
	}
	return nil, errors.New("hmac key: set LEAKLINE_HMAC_KEY_FILE (or LEAKLINE_HMAC_KEY); generate one with `head -c 32 /dev/urandom | xxd -p -c 64`")
}

// Secret reads a secret from file when one is named (a trailing newline is
// dropped), else from the environment variable env. It never logs the value.
func Secret(getenv Getenv, file, env string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		return []byte(strings.TrimRight(string(b), "\r\n")), nil
	}
	return []byte(getenv(env)), nil
}

// resolveInspect fills cfg.Inspect from the inspect-* flags and the company
// domains, and returns every parse error plus those inspect.New finds.
func (f *Flags) resolveInspect(cfg *pipeline.Config) []error {
	var errs []error
	in := &cfg.Inspect
	in.AllowDomains = cfg.Engine.CompanyDomains
	in.AllowValues = SplitList(*f.allowValues)
	for _, item := range splitItems(*f.exclude, ";") {
		typ, re, ok := strings.Cut(item, "=")
		typ = strings.TrimSpace(typ)
		if !ok || typ == "" || re == "" {
			errs = append(errs, fmt.Errorf("inspect-exclude: %q is not TYPE=REGEX", item))
			continue
		}
		if typ == "*" {
			typ = ""
		}
		in.Exclude = append(in.Exclude, inspect.Exclusion{Type: inspect.Type(typ), Pattern: re})
	}
	for _, item := range splitItems(*f.custom, ";") {
		name, re, ok := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || re == "" {
			errs = append(errs, fmt.Errorf("inspect-custom: %q is not NAME=REGEX[:luhn|mod97]", item))
			continue
		}
		cd := inspect.CustomDetector{Name: name, Pattern: re}
		for _, sum := range []string{"luhn", "mod97"} {
			if p, found := strings.CutSuffix(re, ":"+sum); found {
				cd.Pattern, cd.Checksum = p, sum
				break
			}
		}
		in.Custom = append(in.Custom, cd)
	}
	for _, item := range SplitList(*f.minCount) {
		typ, ns, ok := strings.Cut(item, "=")
		n, err := strconv.Atoi(strings.TrimSpace(ns))
		typ = strings.TrimSpace(typ)
		if !ok || typ == "" || err != nil {
			errs = append(errs, fmt.Errorf("inspect-min-count: %q is not TYPE=N", item))
			continue
		}
		if in.MinCount == nil {
			in.MinCount = make(map[inspect.Type]int)
		}
		in.MinCount[inspect.Type(typ)] = n
	}
	// Compile once with a throwaway key so that bad patterns, unknown
	// types and limits are reported now, with every other error.
	if _, err := inspect.NewWithKey(cfg.Inspect, make([]byte, 32)); err != nil {
		errs = append(errs, fmt.Errorf("detector configuration: %w", err))
	}
	return errs
}

// splitItems splits s at sep, trimming blanks around items and dropping
// empty ones.
func splitItems(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// SplitList splits a comma-separated list, trimming blanks and dropping
// empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (f *Flags) envInt(name string, def int) int {
	s := f.getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		f.envErrs = append(f.envErrs, fmt.Errorf("%s: %q is not an integer", name, s))
		return def
	}
	return v
}

func (f *Flags) envDuration(name string, def time.Duration) time.Duration {
	s := f.getenv(name)
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		f.envErrs = append(f.envErrs, fmt.Errorf("%s: %q is not a duration such as 5m", name, s))
		return def
	}
	return v
}

func loadEDM(path string, key []byte) (*edm.Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("edm index: %w", err)
	}
	defer f.Close()
	idx, err := edm.Load(f, key)
	if err != nil {
		return nil, fmt.Errorf("edm index %s: %w", path, err)
	}
	return idx, nil
}
