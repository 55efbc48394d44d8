package pager

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/leakline/leakline/pkg/config"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/service"
)

// ShutdownTimeout bounds the graceful shutdown after SIGINT/SIGTERM.
const ShutdownTimeout = 20 * time.Second

// DefaultMetricsAddr is where the service serves /metrics, /healthz and
// /readyz unless told otherwise.
const DefaultMetricsAddr = ":9464"

// Flags are the pager service's flags; each has a LEAKLINE_* environment
// variable, and a flag given on the command line wins.
type Flags struct {
	fs                         *flag.FlagSet
	getenv                     func(string) string
	brokers, clientID          *string
	kafkaSec                   *config.KafkaSecurityFlags
	topicFindings, topicDead   *string
	group                      *string
	policy                     *string
	pdKeyFile                  *string
	amURL, grafanaURL          *string
	webhookURL, webhookSecFile *string
	maxAge                     *time.Duration
	logLevel                   *string
	metricsAddr                *string
	check                      *bool
	envErrs                    []error
}

// RegisterFlags adds the pager's flags to fs, with defaults from getenv.
func RegisterFlags(fs *flag.FlagSet, getenv func(string) string) *Flags {
	if getenv == nil {
		getenv = os.Getenv
	}
	getenv, fileErr := config.WithFile(getenv)
	f := &Flags{fs: fs, getenv: getenv}
	if fileErr != nil {
		f.envErrs = append(f.envErrs, fileErr)
	}
	s := func(name, env, def, usage string) *string {
		if v := getenv(env); v != "" {
			def = v
		}
		return fs.String(name, def, usage+" (env "+env+")")
	}
	t := kafkaio.DefaultTopics()
	f.brokers = s("kafka-brokers", "LEAKLINE_KAFKA_BROKERS", "127.0.0.1:9092", "comma-separated Kafka bootstrap brokers")
	f.clientID = s("kafka-client-id", "LEAKLINE_KAFKA_CLIENT_ID", "leakline", "Kafka client id")
	f.kafkaSec = config.RegisterKafkaSecurity(fs, getenv)
	f.topicFindings = s("topic-findings", "LEAKLINE_TOPIC_FINDINGS", t.Findings, "findings topic")
	f.topicDead = s("topic-deadletter", "LEAKLINE_TOPIC_DEADLETTER", t.DeadLetter, "dead-letter topic")
	f.group = s("group", "LEAKLINE_PAGER_GROUP", DefaultGroupID, "consumer group prefix (one group per receiver: PREFIX.RECEIVER)")
	f.policy = s("policy", "LEAKLINE_PAGER_POLICY", "", "routing policy file (YAML); without one, every high and critical finding goes to each receiver configured by flags")
	f.pdKeyFile = s("pagerduty-routing-key-file", "LEAKLINE_PAGERDUTY_ROUTING_KEY_FILE", "", "file holding the PagerDuty routing key (or env LEAKLINE_PAGERDUTY_ROUTING_KEY)")
	f.amURL = s("alertmanager-url", "LEAKLINE_ALERTMANAGER_URL", "", "Alertmanager base URL, e.g. http://alertmanager:9093")
	f.grafanaURL = s("grafana-url", "LEAKLINE_GRAFANA_URL", "", "Grafana base URL for the Investigation deep links (overrides the policy's grafana_url)")
	f.webhookURL = s("webhook-url", "LEAKLINE_WEBHOOK_URL", "", "generic webhook URL (used when no policy file is given)")
	f.webhookSecFile = s("webhook-secret-file", "LEAKLINE_WEBHOOK_SECRET_FILE", "", "file holding the webhook HMAC secret, ≥16 bytes (or env LEAKLINE_WEBHOOK_SECRET)")
	maxAge := 24 * time.Hour
	if v := getenv("LEAKLINE_PAGER_MAX_AGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.envErrs = append(f.envErrs, fmt.Errorf("LEAKLINE_PAGER_MAX_AGE: %q is not a duration such as 24h", v))
		} else {
			maxAge = d
		}
	}
	f.maxAge = fs.Duration("max-age", maxAge, "findings detected longer ago are not paged; 0 pages all (env LEAKLINE_PAGER_MAX_AGE)")
	f.logLevel = s("log-level", "LEAKLINE_LOG_LEVEL", "info", "debug, info, warn or error")
	f.metricsAddr = s("metrics-addr", "LEAKLINE_METRICS_ADDR", DefaultMetricsAddr, "listen address of /metrics, /healthz and /readyz (empty disables)")
	f.check = fs.Bool("check", false, "validate the configuration and the policy, print the routes and exit")
	return f
}

// Resolve validates the flags, loads the policy and the secrets, and returns
// the pager's configuration (without Logger). Every problem is reported at
// once.
func (f *Flags) Resolve() (Config, error) {
	errs := multierror.Append(nil, f.envErrs...)
	cfg := Config{
		Kafka:           kafkaio.Config{Brokers: config.SplitList(*f.brokers), ClientID: *f.clientID},
		Topics:          kafkaio.Topics{Findings: *f.topicFindings, DeadLetter: *f.topicDead},
		GroupID:         *f.group,
		GrafanaURL:      strings.TrimSpace(*f.grafanaURL),
		AlertmanagerURL: strings.TrimSpace(*f.amURL),
		MaxAge:          *f.maxAge,
	}
	if err := cfg.Kafka.Validate(); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := f.kafkaSec.Apply(&cfg.Kafka); err != nil {
		errs = multierror.Append(errs, err)
	}
	if cfg.Topics.Findings == "" || cfg.Topics.DeadLetter == "" {
		errs = multierror.Append(errs, errors.New("a topic name is empty"))
	}
	if cfg.MaxAge < 0 {
		errs = multierror.Append(errs, fmt.Errorf("max-age %v is negative", cfg.MaxAge))
	}
	if _, err := config.ParseLevel(*f.logLevel); err != nil {
		errs = multierror.Append(errs, err)
	}
	key, err := config.Secret(f.getenv, *f.pdKeyFile, "LEAKLINE_PAGERDUTY_ROUTING_KEY")
	if err != nil {
		errs = multierror.Append(errs, fmt.Errorf("pagerduty routing key: %w", err))
	}
	cfg.PagerDutyRoutingKey = strings.TrimSpace(string(key))
	cfg.WebhookSecret, err = config.Secret(f.getenv, *f.webhookSecFile, "LEAKLINE_WEBHOOK_SECRET")
	if err != nil {
		errs = multierror.Append(errs, fmt.Errorf("webhook secret: %w", err))
	}
	if *f.policy != "" {
		cfg.Policy, err = LoadPolicy(*f.policy)
	} else {
		cfg.Policy, err = DefaultPolicy(cfg.AlertmanagerURL != "", cfg.PagerDutyRoutingKey != "", strings.TrimSpace(*f.webhookURL))
	}
	if err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := errs.ErrorOrNil(); err != nil {
		errs.ErrorFormat = listErrors
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// DefaultPolicy is the policy without a policy file: every high and
// critical live finding goes to each receiver that is configured
// (Alertmanager by URL, PagerDuty by routing key, a webhook by URL),
// resolving after an hour without a new revision.
func DefaultPolicy(alertmanager, pagerduty bool, webhookURL string) (*Policy, error) {
	var recv, names []string
	if alertmanager {
		recv, names = append(recv, "  - {name: alertmanager, type: alertmanager}"), append(names, "alertmanager")
	}
	if pagerduty {
		recv, names = append(recv, "  - {name: pagerduty, type: pagerduty}"), append(names, "pagerduty")
	}
	if webhookURL != "" {
		recv, names = append(recv, "  - {name: webhook, type: webhook, url: "+strconv.Quote(webhookURL)+"}"), append(names, "webhook")
	}
	if len(recv) == 0 {
		return nil, errors.New("no receiver: give a policy file (LEAKLINE_PAGER_POLICY) or at least one of LEAKLINE_ALERTMANAGER_URL, LEAKLINE_PAGERDUTY_ROUTING_KEY_FILE, LEAKLINE_WEBHOOK_URL")
	}
	src := "version: 1\nreceivers:\n" + strings.Join(recv, "\n") + "\nroutes:\n  - match: {min_severity: high}\n    receivers: [" + strings.Join(names, ", ") + "]\n"
	p, err := ParsePolicy([]byte(src))
	if err != nil {
		return nil, fmt.Errorf("default policy: %w", err)
	}
	return p, nil
}

// Logger returns a JSON slog logger at the configured level.
func (f *Flags) Logger(w io.Writer) *slog.Logger {
	lvl, _ := config.ParseLevel(*f.logLevel)
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl}))
}

// Main runs the pager service with args until SIGINT or SIGTERM and
// returns the process exit code: 0 after a clean stop, 1 on a failure, 2 on
// a configuration error.
func Main(args []string, getenv func(string) string, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, getenv, stderr)
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("pager", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := RegisterFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := flags.Resolve()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if *flags.check {
		if _, err := New(cfg); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		describe(stderr, cfg.Policy)
		return 0
	}
	log := flags.Logger(stderr).With("service", "pager")
	cfg.Logger = log
	p, err := New(cfg)
	if err != nil {
		log.Error("start failed", "err", err)
		return 2
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	go func() {
		if err := service.Serve(runCtx, *flags.metricsAddr, p.Ready, log); err != nil {
			log.Error("observability endpoint failed", "err", err)
		}
	}()
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		log.Info("shutting down", "deadline", ShutdownTimeout)
		cancel()
		select {
		case err = <-done:
		case <-time.After(ShutdownTimeout):
			log.Error("shutdown deadline exceeded")
			return 1
		}
	}
	if err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// describe prints a policy's receivers and routes.
func describe(w io.Writer, p *Policy) {
	fmt.Fprintf(w, "policy OK: %d receivers, %d routes\n", len(p.Receivers), len(p.Routes))
	for _, r := range p.Receivers {
		limit := "unlimited"
		if r.RateLimit != nil {
			limit = fmt.Sprintf("%d pages per %v", r.RateLimit.Pages, r.RateLimit.Per)
		}
		fmt.Fprintf(w, "  receiver %s: %s, %s\n", r.Name, r.Type, limit)
	}
	for i, r := range p.Routes {
		fmt.Fprintf(w, "  route %d (line %d): severity %v, rule %v, tags %v, shadow %v -> %v (resolve after %v)\n",
			i, r.Line, orAll(r.Match.Severities), orAll(r.Match.Rules), orAll(r.Match.Tags),
			[]string{"false", "true", "any"}[r.Match.Shadow], r.Receivers, r.ResolveAfter)
	}
}

func orAll(s []string) string {
	if len(s) == 0 {
		return "any"
	}
	return strings.Join(s, ",")
}
