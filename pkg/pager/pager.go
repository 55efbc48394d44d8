// Package pager owns the paging stage: findings from dlp.findings are routed
// by a policy to on-call receivers — Alertmanager (API v2), PagerDuty
// (Events API v2) and signed generic webhooks — so that an exfiltration in
// progress wakes someone once, with everything needed to act, and noise
// never does.
//
// Guarantees:
//
//   - One page per incident. An incident is a finding id; its new revisions
//     update the same incident (same PagerDuty dedup_key, same Alertmanager
//     labels, same webhook dedup_key), never a new page. Receivers treat a
//     repeat as the same incident, so a redelivery is harmless.
//   - No floods. Each receiver may have a token-bucket rate limit on new
//     incidents; incidents beyond it are folded into one summary page per
//     flood (its own dedup key, updated as the count grows, resolved when
//     the bucket has refilled). Shadow findings never page: a route may
//     send them only to webhooks, marked as recorded shadow findings.
//   - No lost page. Each receiver is a lane with its own consumer group
//     (GroupID + "." + receiver name) on the findings topic, so a receiver
//     that is down delays only itself. A lane commits a batch's offsets only
//     after its receiver accepted (2xx) every event of the batch. Failures
//     are retried with exponential backoff and jitter, without a time
//     limit; a 429 waits as long as its Retry-After says; 5xx, 408 and
//     network errors are retried; any other 4xx is final: the finding is
//     written to the dead-letter topic with the reason, never retried.
//   - Incidents resolve when no new revision arrived for the route's
//     resolve_after (set it to the rule's cool-down): Alertmanager gets
//     endsAt, PagerDuty a resolve event, webhooks a resolved body. Open
//     incidents are re-sent to Alertmanager every resend_interval, since
//     Alertmanager forgets alerts that are not re-sent (and on restart).
//   - Open incidents survive a restart. The state of open incidents lives
//     in memory and is rebuilt whenever a lane is assigned partitions (on
//     start and after a rebalance): from each partition's committed offset
//     it re-reads the findings of the last resolve_after (the longest of
//     the receiver's routes) before the last committed finding, replays
//     the lane's decisions over them — including its rate limit, with the
//     messages' timestamps as the clock — and restores the incidents that
//     may still be open without sending anything (they were delivered
//     before the commit). Then incidents overdue are resolved, those
//     Alertmanager forgets are re-sent, and consumption resumes at the
//     committed offset; uncommitted findings are delivered again with the
//     same dedup keys, which creates no duplicate incident. See restore.go.
//   - Every page carries the actor's risk score, Grafana's top_users score
//     (finding.SeverityWeight × 2^(−age/half-life), shadow findings
//     excluded) over the findings that opened the lane's incidents, each
//     finding id once, with the policy's risk_half_life. See risk.go.
package pager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/hashicorp/go-multierror"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/kafkaio"
)

// Defaults of Config.
const (
	DefaultGroupID          = "leakline-pager"
	DefaultMinRetryInterval = 200 * time.Millisecond
	DefaultMaxRetryInterval = 30 * time.Second
	DefaultMaxBatch         = 100
)

// MaxFindingBytes bounds one encoded finding.
const MaxFindingBytes = 1 << 20

// Dead-letter reasons.
const (
	ReasonBadFinding = "pager_bad_finding"
	ReasonRejected   = "pager_rejected"
)

// Config configures a Pager.
type Config struct {
	Kafka kafkaio.Config
	// Topics: Findings is consumed, DeadLetter receives findings a
	// receiver refused and undecodable ones.
	Topics kafkaio.Topics
	// GroupID prefixes the lanes' consumer groups. Default DefaultGroupID.
	GroupID string
	// Policy routes findings to receivers. Required.
	Policy *Policy
	// GrafanaURL overrides Policy.GrafanaURL when set.
	GrafanaURL string
	// AlertmanagerURL is the URL of Alertmanager receivers whose spec has
	// none.
	AlertmanagerURL string
	// PagerDutyRoutingKey is the routing key of PagerDuty receivers whose
	// spec names no routing_key_file. A secret: never logged.
	PagerDutyRoutingKey string
	// WebhookSecret is the HMAC secret of webhook receivers whose spec
	// names no secret_file (at least 16 bytes). A secret: never logged.
	WebhookSecret []byte
	// MaxAge: findings detected longer ago than this are not paged (a
	// first start on a topic with days of history must not page all of
	// it). Zero pages every finding.
	MaxAge time.Duration
	// MinRetryInterval and MaxRetryInterval bound the exponential backoff
	// between delivery attempts. Defaults DefaultMinRetryInterval and
	// DefaultMaxRetryInterval.
	MinRetryInterval time.Duration
	MaxRetryInterval time.Duration
	// MaxBatch is the most findings a lane handles per commit. Default
	// DefaultMaxBatch.
	MaxBatch int
	// HTTPClient sends the requests; per-request timeouts come from the
	// receivers' specs. Default: a client of its own.
	HTTPClient *http.Client
	// Logger; nil discards.
	Logger *slog.Logger

	// afterDeliver, for tests, runs after a receiver accepted an event of
	// a batch and before the batch is committed; an error fails the batch
	// as a crash there would.
	afterDeliver func(receiver string, ev Event) error
	// now, for tests; default time.Now.
	now func() time.Time
}

// Pager runs the paging stage.
type Pager struct {
	cfg     Config
	log     *slog.Logger
	grafana string
	lanes   []*lane
	metrics *Metrics
	dead    *kafkaio.Writer
}

// New validates cfg, reads the receivers' secrets and builds a Pager; Run
// starts it. Every problem is reported at once.
func New(cfg Config) (*Pager, error) {
	var errs *multierror.Error
	if err := cfg.Kafka.Validate(); err != nil {
		errs = multierror.Append(errs, err)
	}
	if cfg.Topics.Findings == "" || cfg.Topics.DeadLetter == "" {
		errs = multierror.Append(errs, errors.New("the findings and dead-letter topics are required"))
	}
	if cfg.Policy == nil {
		errs = multierror.Append(errs, errors.New("a policy is required"))
		return nil, fmt.Errorf("pager: %w", errs)
	}
	if cfg.GroupID == "" {
		cfg.GroupID = DefaultGroupID
	}
	if cfg.MinRetryInterval <= 0 {
		cfg.MinRetryInterval = DefaultMinRetryInterval
	}
	if cfg.MaxRetryInterval <= 0 {
		cfg.MaxRetryInterval = DefaultMaxRetryInterval
	}
	cfg.MaxRetryInterval = max(cfg.MaxRetryInterval, cfg.MinRetryInterval)
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxAge < 0 {
		errs = multierror.Append(errs, fmt.Errorf("MaxAge %v is negative", cfg.MaxAge))
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := cfg.HTTPClient
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 4
		client = &http.Client{Transport: tr}
	}
	grafana := cfg.GrafanaURL
	if grafana == "" {
		grafana = cfg.Policy.GrafanaURL
	}
	if grafana != "" {
		if err := checkHTTPURL(grafana); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("grafana url: %w", err))
		}
	}
	p := &Pager{cfg: cfg, log: log, grafana: strings.TrimRight(grafana, "/")}
	names := make([]string, 0, len(cfg.Policy.Receivers))
	for _, spec := range cfg.Policy.Receivers {
		names = append(names, spec.Name)
	}
	p.metrics = newMetrics(names)
	for i, spec := range cfg.Policy.Receivers {
		recv, err := buildReceiver(spec, cfg, client)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("receiver %s (line %d): %w", spec.Name, spec.Line, err))
			continue
		}
		l := &lane{
			pg:     p,
			recv:   recv,
			spec:   spec,
			first:  i == 0,
			bucket: newTokenBucket(spec.RateLimit, cfg.now()),
			open:   map[string]*incident{},
			risk:   newRiskTracker(cfg.Policy.riskHalfLife()),
			ctr:    p.metrics.Receiver(spec.Name),
			log:    log.With("receiver", spec.Name),
		}
		l.tick = l.tickInterval()
		l.maxResolve = l.maxResolveAfter()
		p.lanes = append(p.lanes, l)
	}
	if err := errs.ErrorOrNil(); err != nil {
		return nil, fmt.Errorf("pager: %w", err)
	}
	return p, nil
}

func buildReceiver(spec ReceiverSpec, cfg Config, client *http.Client) (Receiver, error) {
	switch spec.Type {
	case TypeAlertmanager:
		u := spec.URL
		if u == "" {
			u = cfg.AlertmanagerURL
		}
		if u == "" {
			return nil, errors.New("no Alertmanager URL (set url in the policy or LEAKLINE_ALERTMANAGER_URL)")
		}
		if err := checkHTTPURL(u); err != nil {
			return nil, err
		}
		return newAlertmanager(spec.Name, u, client), nil
	case TypePagerDuty:
		key := cfg.PagerDutyRoutingKey
		if spec.RoutingKeyFile != "" {
			b, err := os.ReadFile(spec.RoutingKeyFile)
			if err != nil {
				return nil, fmt.Errorf("routing key: %w", err)
			}
			key = strings.TrimSpace(string(b))
		}
		if key == "" {
			return nil, errors.New("no PagerDuty routing key (set routing_key_file in the policy or LEAKLINE_PAGERDUTY_ROUTING_KEY_FILE)")
		}
		if len(key) != PDRoutingKeyLen {
			return nil, fmt.Errorf("the PagerDuty routing key has %d characters, want %d", len(key), PDRoutingKeyLen)
		}
		u := spec.URL
		if u == "" {
			u = DefaultPagerDutyURL
		}
		return newPagerDuty(spec.Name, u, key, spec.SeverityMap, client), nil
	case TypeWebhook:
		secret := cfg.WebhookSecret
		if spec.SecretFile != "" {
			b, err := os.ReadFile(spec.SecretFile)
			if err != nil {
				return nil, fmt.Errorf("webhook secret: %w", err)
			}
			secret = []byte(strings.TrimRight(string(b), "\r\n"))
		}
		if len(secret) < 16 {
			return nil, errors.New("the webhook secret must have at least 16 bytes (set secret_file in the policy or LEAKLINE_WEBHOOK_SECRET_FILE)")
		}
		if spec.URL == "" {
			return nil, errors.New("a webhook receiver needs a url")
		}
		return newWebhook(spec.Name, spec.URL, secret, client), nil
	}
	return nil, fmt.Errorf("unknown receiver type %q", spec.Type)
}

// Metrics returns the pager's counters.
func (p *Pager) Metrics() *Metrics { return p.metrics }

// Open returns how many incidents are open at the named receiver (paged
// ones and ones folded into a flood summary).
func (p *Pager) Open(receiver string) int {
	if c := p.metrics.Receiver(receiver); c != nil {
		return int(c.Open.Load())
	}
	return 0
}

// Ready reports whether the pager can work now: its policy is loaded and
// the Kafka cluster answers, with the findings topic. It backs /readyz.
func (p *Pager) Ready(ctx context.Context) error {
	if p.cfg.Policy == nil {
		return errors.New("no routing policy loaded")
	}
	return kafkaio.Ping(ctx, p.cfg.Kafka, p.cfg.Topics.Findings)
}

// Run consumes findings until ctx ends (then it returns nil) or a lane
// fails. A failed lane's batch is not committed: the next start redelivers
// it, with the same dedup keys. Run must be called once.
func (p *Pager) Run(ctx context.Context) error {
	p.dead = kafkaio.NewWriter(p.cfg.Kafka, p.cfg.Topics.DeadLetter)
	defer func() { _ = p.dead.Close() }()
	g, gctx := errgroup.WithContext(ctx)
	for _, l := range p.lanes {
		g.Go(func() error { return l.run(gctx) })
	}
	p.log.Info("pager started", "topic", p.cfg.Topics.Findings, "group", p.cfg.GroupID, "receivers", len(p.lanes))
	err := g.Wait()
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return nil
	}
	return err
}

// lane is one receiver's consumer, state and rate limit.
type lane struct {
	pg    *Pager
	recv  Receiver
	spec  ReceiverSpec
	first bool // also counts pager-wide metrics and dead-letters bad findings
	ctr   *ReceiverCounters
	log   *slog.Logger
	tick  time.Duration
	// maxResolve is the longest resolve_after of the receiver's routes:
	// how far back a restore reads.
	maxResolve time.Duration

	// gc is the lane's group consumer, set by run before it consumes.
	gc *kafkaio.GroupConsumer

	// restoreMu serialises rebuilds of the open incidents: one per
	// consumer-group generation (restoredGen), whichever of the
	// generation's partition workers comes first.
	restoreMu   sync.Mutex
	restoredGen int32
	restores    int // rebuilds done

	// mu serialises the lane's deliveries and guards its state.
	mu     sync.Mutex
	bucket *tokenBucket
	open   map[string]*incident
	flood  *flood
	// risk holds the actors' risk scores over the findings that opened
	// the lane's incidents (each finding id once, while it is open).
	risk *riskTracker
}

// incident is an open incident at one receiver.
type incident struct {
	page     Page
	route    *Route
	started  time.Time // when it was first paged
	lastSeen time.Time // when the newest revision arrived
	lastSent time.Time
	// summarized incidents were folded into a flood summary.
	summarized bool
	// partition is the findings partition the incident's revisions arrive
	// on; generation the consumer-group generation that last handled or
	// restored it. When a partition is revoked its incidents are forgotten:
	// its next owner rebuilds them from the log.
	partition  int
	generation int32
}

// flood is a rate-limit episode of one receiver and its summary page.
type flood struct {
	key        string
	since      time.Time
	suppressed int
	severity   string
	lastSent   time.Time
	dirty      bool
}

func (l *lane) group() string { return l.pg.cfg.GroupID + "." + l.spec.Name }

// floodKey is the dedup key of a receiver's flood summary. It is the same
// for every flood of the receiver, so that a restarted pager can resolve a
// summary it rebuilt, and a summary left open is taken over by the next
// flood (receivers open a new incident for a key whose last one was
// resolved).
func floodKey(receiver string) string { return "leakline-flood-" + receiver }

// count counts one outcome of the lane's receiver.
func (l *lane) count(outcome string) { l.pg.metrics.add(l.spec.Name, outcome) }

// setOpen publishes the number of open incidents; l.mu must be held.
func (l *lane) setOpen() { l.pg.metrics.setOpen(l.spec.Name, len(l.open)) }

// maxResolveAfter is the longest resolve_after that applies to the
// receiver: the policy's default and its routes'.
func (l *lane) maxResolveAfter() time.Duration {
	pol := l.pg.cfg.Policy
	d := pol.ResolveAfter
	for _, r := range pol.Routes {
		if slices.Contains(r.Receivers, l.spec.Name) {
			d = max(d, r.ResolveAfter)
		}
	}
	return d
}

// tickInterval is how often the lane checks for re-sends and resolutions.
func (l *lane) tickInterval() time.Duration {
	d := 5 * time.Second
	pol := l.pg.cfg.Policy
	consider := func(resend, resolve time.Duration) {
		if l.recv.Forgets() {
			d = min(d, resend)
		}
		d = min(d, resolve/4)
	}
	consider(pol.ResendInterval, pol.ResolveAfter)
	for _, r := range pol.Routes {
		if slices.Contains(r.Receivers, l.spec.Name) {
			consider(r.ResendInterval, r.ResolveAfter)
		}
	}
	if l.spec.RateLimit != nil {
		d = min(d, l.spec.RateLimit.Per/4)
	}
	return max(d, 50*time.Millisecond)
}

// run consumes the findings topic as a member of the lane's consumer
// group until ctx ends or something fails. Each generation's partitions
// get workers from newWorker (restore.go), which first rebuild the open
// incidents.
func (l *lane) run(ctx context.Context) error {
	gc, err := kafkaio.NewGroupConsumer(kafkaio.ConsumerConfig{
		Config:   l.pg.cfg.Kafka,
		GroupID:  l.group(),
		Topics:   []string{l.pg.cfg.Topics.Findings},
		MaxBatch: l.pg.cfg.MaxBatch,
	})
	if err != nil {
		return fmt.Errorf("pager: lane %s: %w", l.spec.Name, err)
	}
	l.gc = gc
	defer func() { _ = gc.Close() }()
	tctx, stopTicker := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { l.ticker(tctx) })
	defer wg.Wait()
	defer stopTicker()
	err = gc.Run(ctx, l.newWorker)
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return fmt.Errorf("pager: lane %s: %w", l.spec.Name, err)
}

func (l *lane) ticker(ctx context.Context) {
	t := time.NewTicker(l.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.maintain(ctx)
		}
	}
}

// wireFinding is a finding as it travels on Kafka; Tags is optional (rule
// tags, when the rule engine sets them).
type wireFinding struct {
	finding.Finding
	Tags []string `json:"tags,omitempty"`
}

// detectedAt is when f was detected (its window end if it does not say).
func detectedAt(f *finding.Finding) time.Time {
	if f.DetectedAt.IsZero() {
		return f.WindowEnd
	}
	return f.DetectedAt
}

func decodeFinding(b []byte) (*finding.Finding, []string, error) {
	if len(b) > MaxFindingBytes {
		return nil, nil, fmt.Errorf("finding of %d bytes exceeds %d", len(b), MaxFindingBytes)
	}
	var w wireFinding
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, nil, fmt.Errorf("decode finding: %w", err)
	}
	if w.FindingID == "" || w.RuleID == "" || w.ActorUID == "" {
		return nil, nil, errors.New("finding lacks finding_id, rule_id or actor_uid")
	}
	if len(w.FindingID) > MaxDedupKey {
		return nil, nil, fmt.Errorf("finding_id of %d bytes exceeds %d", len(w.FindingID), MaxDedupKey)
	}
	return &w.Finding, w.Tags, nil
}

// handleOne delivers what one finding means to the lane's receiver; gen is
// the consumer-group generation of the partition worker. A nil return lets
// the batch go on (and be committed).
func (l *lane) handleOne(ctx context.Context, m kafka.Message, gen int32) error {
	pg := l.pg
	f, tags, err := decodeFinding(m.Value)
	if err != nil {
		if l.first {
			pg.metrics.BadFindings.Add(1)
			return pg.deadLetter(ctx, m, ReasonBadFinding, err.Error())
		}
		return nil
	}
	decisions := pg.cfg.Policy.Route(f, tags)
	if l.first {
		pg.metrics.Consumed.Add(1)
		if len(decisions) == 0 {
			pg.metrics.unrouted(f.Shadow)
		}
	}
	i := slices.IndexFunc(decisions, func(d Decision) bool { return d.Receiver == l.spec.Name })
	if i < 0 {
		return nil
	}
	route := decisions[i].Route
	now := pg.cfg.now()
	if pg.cfg.MaxAge > 0 {
		if now.Sub(detectedAt(f)) > pg.cfg.MaxAge {
			l.count(OutcomeStale)
			return nil
		}
	}
	page := NewPage(f, tags, pg.grafana, route.RunbookURL)

	l.mu.Lock()
	defer l.mu.Unlock()
	hl := l.risk.halfLife
	if f.Shadow { // validation allows this for webhooks only: recorded, not paged
		page.setRisk(l.risk.score(f.ActorUID, now), hl) // shadow findings do not count
		ev := Event{Action: ActionTrigger, Page: page, Kind: "shadow", Time: now}
		_, err := l.send(ctx, m, ev, OutcomeRecorded)
		return err
	}
	inc := l.open[f.FindingID]
	if inc != nil && f.Revision <= inc.page.Revision {
		l.count(OutcomeDuplicate)
		return nil
	}
	// A finding adds its weight to its actor's risk once, when its
	// incident opens: a new revision of an open incident does not.
	var weight float64
	if inc == nil {
		weight = l.risk.weight(f, now)
	}
	page.setRisk(l.risk.score(f.ActorUID, now)+weight, hl)
	if inc != nil && inc.summarized && l.flood != nil {
		inc.page, inc.route, inc.lastSeen = page, route, now
		inc.partition, inc.generation = m.Partition, gen
		return nil
	}
	if inc != nil && !inc.summarized {
		ev := Event{Action: ActionTrigger, Page: page, Kind: "update", Time: now, StartsAt: inc.started, EndsAt: now.Add(route.ResolveAfter)}
		if ok, err := l.send(ctx, m, ev, OutcomeUpdated); !ok {
			return err
		}
		inc.page, inc.route, inc.lastSeen, inc.lastSent = page, route, now, now
		inc.partition, inc.generation = m.Partition, gen
		return l.afterDeliver(ev)
	}
	if l.bucket.take(now) {
		ev := Event{Action: ActionTrigger, Page: page, Kind: "new", Time: now, StartsAt: now, EndsAt: now.Add(route.ResolveAfter)}
		if ok, err := l.send(ctx, m, ev, OutcomeTriggered); !ok {
			return err
		}
		l.open[f.FindingID] = &incident{page: page, route: route, started: now, lastSeen: now, lastSent: now, partition: m.Partition, generation: gen}
		if inc == nil {
			l.risk.add(f.ActorUID, now, weight)
		}
		l.setOpen()
		return l.afterDeliver(ev)
	}
	// Over the rate limit: fold the incident into the flood's summary.
	if l.flood == nil {
		fl := &flood{key: floodKey(l.spec.Name), since: now, suppressed: 1, severity: f.Severity}
		ev := l.summaryEvent(fl, now)
		if ok, err := l.send(ctx, m, ev, OutcomeSummary); !ok {
			return err
		}
		fl.lastSent = now
		l.flood = fl
		l.log.Warn("rate limit reached: further incidents are summarised", "summary_key", fl.key)
	} else {
		l.flood.suppressed++
		l.flood.dirty = true
		if severityRank(f.Severity) > severityRank(l.flood.severity) {
			l.flood.severity = f.Severity
		}
	}
	l.count(OutcomeSuppressed)
	l.open[f.FindingID] = &incident{page: page, route: route, lastSeen: now, summarized: true, partition: m.Partition, generation: gen}
	if inc == nil {
		l.risk.add(f.ActorUID, now, weight)
	}
	l.setOpen()
	return nil
}

func severityRank(s string) int { return slices.Index(severities, s) }

func (l *lane) summaryEvent(fl *flood, now time.Time) Event {
	pol := l.pg.cfg.Policy
	page := summaryPage(l.spec.Name, fl.key, fl.since, fl.suppressed, fl.severity, l.pg.grafana, pol.RunbookURL)
	return Event{Action: ActionTrigger, Page: page, Kind: "summary", Time: now, StartsAt: fl.since, EndsAt: now.Add(pol.ResolveAfter)}
}

func (l *lane) afterDeliver(ev Event) error {
	if h := l.pg.cfg.afterDeliver; h != nil {
		return h(l.spec.Name, ev)
	}
	return nil
}

// send delivers ev for message m and reports whether the receiver accepted
// it. A refusal is dead-lettered: then ok is false and err nil, unless the
// dead letter could not be written. The end of ctx is returned as err.
func (l *lane) send(ctx context.Context, m kafka.Message, ev Event, outcome string) (ok bool, err error) {
	err = l.deliver(ctx, ev)
	if err == nil {
		l.count(outcome)
		return true, nil
	}
	var rej *RejectedError
	if errors.As(err, &rej) {
		l.count(OutcomeRejected)
		l.log.Error("receiver refused a page; dead-lettered", "finding_id", ev.Page.FindingID, "kind", ev.Kind, "status", rej.Status)
		return false, l.pg.deadLetter(ctx, m, ReasonRejected, fmt.Sprintf("receiver %s (%s), %s event: %v", l.spec.Name, l.spec.Type, ev.Kind, rej))
	}
	return false, err
}

// deliver sends ev until the receiver accepts it, refuses it, or ctx ends.
func (l *lane) deliver(ctx context.Context, ev Event) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = l.pg.cfg.MinRetryInterval
	bo.MaxInterval = l.pg.cfg.MaxRetryInterval
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		rctx, cancel := context.WithTimeout(ctx, l.spec.Timeout)
		defer cancel()
		return struct{}{}, l.recv.Send(rctx, ev)
	},
		backoff.WithBackOff(bo),
		backoff.WithMaxElapsedTime(0), // wait for the receiver as long as it takes
		backoff.WithNotify(func(err error, next time.Duration) {
			l.count(OutcomeRetried)
			l.log.Warn("delivery failed; retrying", "dedup_key", ev.Page.DedupKey, "kind", ev.Kind, "retry_in", next, "err", err)
		}),
	)
	if err == nil {
		l.pg.metrics.delivered(l.pg.cfg.now())
	}
	return err
}

// maintain re-sends open incidents to receivers that forget them, resolves
// incidents without a new revision for their resolve_after, and updates or
// resolves the flood summary.
func (l *lane) maintain(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.pg.cfg.now()
	l.risk.sweep(now)
	ids := make([]string, 0, len(l.open))
	for id := range l.open {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		inc := l.open[id]
		switch {
		case now.Sub(inc.lastSeen) >= inc.route.ResolveAfter:
			if !inc.summarized {
				ev := Event{Action: ActionResolve, Page: inc.page, Kind: "resolve", Time: now, StartsAt: inc.started}
				if !l.sendMaintenance(ctx, ev, OutcomeResolved) {
					return
				}
			}
			delete(l.open, id)
		case l.recv.Forgets() && !inc.summarized && now.Sub(inc.lastSent) >= inc.route.ResendInterval:
			ev := Event{Action: ActionTrigger, Page: inc.page, Kind: "resend", Time: now, StartsAt: inc.started, EndsAt: inc.lastSeen.Add(inc.route.ResolveAfter)}
			if !l.sendMaintenance(ctx, ev, OutcomeResent) {
				return
			}
			inc.lastSent = now
		}
	}
	l.setOpen()
	fl := l.flood
	if fl == nil {
		return
	}
	pol := l.pg.cfg.Policy
	switch {
	case l.bucket.full(now):
		ev := l.summaryEvent(fl, now)
		ev.Action, ev.Kind = ActionResolve, "resolve"
		if l.sendMaintenance(ctx, ev, OutcomeResolved) {
			l.flood = nil
		}
	case fl.dirty || (l.recv.Forgets() && now.Sub(fl.lastSent) >= pol.ResendInterval):
		if l.sendMaintenance(ctx, l.summaryEvent(fl, now), OutcomeSummary) {
			fl.dirty, fl.lastSent = false, now
		}
	}
}

// sendMaintenance delivers an event that no Kafka message carries. It
// reports whether the lane may go on: false only when ctx ended. A refusal
// is logged and counted and the event dropped.
func (l *lane) sendMaintenance(ctx context.Context, ev Event, outcome string) bool {
	err := l.deliver(ctx, ev)
	var rej *RejectedError
	switch {
	case err == nil:
		l.count(outcome)
	case errors.As(err, &rej):
		l.count(OutcomeRejected)
		l.log.Error("receiver refused an event; dropped", "dedup_key", ev.Page.DedupKey, "kind", ev.Kind, "status", rej.Status)
	default:
		return false
	}
	return true
}

// deadLetter writes m to the dead-letter topic with a reason.
func (p *Pager) deadLetter(ctx context.Context, m kafka.Message, reason, detail string) error {
	if err := p.dead.Write(ctx, kafkaio.DeadLetter(m, reason, detail)); err != nil {
		return fmt.Errorf("pager: write dead letter: %w", err)
	}
	p.metrics.deadLettered(reason)
	return nil
}
