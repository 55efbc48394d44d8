package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/leakline/leakline/pkg/chserver"
	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/demo"
	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/edm"
	"github.com/leakline/leakline/pkg/embedkafka"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/pipeline"
	"github.com/leakline/leakline/pkg/scenario"
)

// Options configures a load run.
type Options struct {
	Employees, Customers, Days int
	Seed                       uint64
	// Out receives progress lines; nil discards them.
	Out io.Writer
	Log *slog.Logger
	// Progress is the interval of progress lines (default 2 s).
	Progress time.Duration
	// Timeout bounds the whole run (default 10 min).
	Timeout time.Duration
	// CH, when set, is a running ClickHouse server to use (a test's); nil
	// starts a private one.
	CH *chserver.Server
	// Database is the ClickHouse database (default "leakline").
	Database string
	// Unpaced writes every slice as soon as the previous one was acknowledged
	// by the broker, without waiting for the normalizer: a capacity
	// measurement. Stages then run behind and the interleaving of the two
	// source topics on dlp.events is no longer bounded by one slice, so
	// events may be late and detections may be lost — which the scores show.
	Unpaced bool
	// Now is the wall clock used to place the simulated days (the last one
	// is the day before yesterday, so no event is future-dated); zero means
	// time.Now().
	Now time.Time
}

// LatencyMS holds latency percentiles in milliseconds.
type LatencyMS struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// ScenarioResult is one scenario's score.
type ScenarioResult struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Detected: for an attack, one of its expected rules fired (live) for
	// its actor at or after its start; for a benign look-alike, any live
	// rule fired for its actor at or after its start (a false alarm).
	Detected bool `json:"detected"`
	// Paged is always false: the pager is not in the loop yet.
	Paged bool `json:"paged"`
	// TimeToDetectS is event time from the scenario's first exfiltration
	// event to the window end of the first revision (as published on
	// dlp.findings) of the earliest matching finding; null when not
	// detected. Negative: the finding came
	// from the collection step, before anything left.
	TimeToDetectS *float64 `json:"time_to_detect_s"`
	// FirstFinding is the rule, window start and first window end of the
	// finding TimeToDetectS is measured to.
	FirstFinding string   `json:"first_finding,omitempty"`
	Actor        string   `json:"actor"`
	RulesFired   []string `json:"rules_fired"`
	ExpectRules  []string `json:"expect_rules,omitempty"`
	Note         string   `json:"note,omitempty"`
}

// Report is the result of a run; the first four fields are the issue's
// report format, the rest say what was measured.
type Report struct {
	Scenarios                      []ScenarioResult `json:"scenarios"`
	ThroughputEPS                  float64          `json:"throughput_eps"`
	Latency                        LatencyMS        `json:"latency_ms"`
	FalsePositivesPer1kEmployeeDay float64          `json:"false_positives_per_1k_employee_days"`

	Employees      int      `json:"employees"`
	Customers      int      `json:"customers"`
	Days           int      `json:"days"`
	Seed           uint64   `json:"seed"`
	Events         int      `json:"events"`
	EmployeeDays   int      `json:"employee_days"`
	Findings       int      `json:"findings"`
	ShadowFindings int      `json:"shadow_findings"`
	FalsePositives int      `json:"false_positives"`
	FalsePosRules  []string `json:"false_positive_rules,omitempty"`
	ReplaySeconds  float64  `json:"replay_s"`
	Mode           string   `json:"mode"`
	// LateEvents counts events the detector received behind its watermark
	// (not applied to windows).
	LateEvents    uint64 `json:"late_events"`
	LatencyMethod string `json:"latency_method"`
	PagedNote     string `json:"paged_note"`
}

const latencyMethod = "produced → processed by the detector: each event's produce time is the start of the Replay slice that wrote it; " +
	"its processing time is the first 1 ms poll of the detector's processed-events counter (detect.Stats) that covers its index in produce order. " +
	"Counts are aggregated over partitions, so it is an approximation at slice granularity; the path detector → dlp.findings → ClickHouse row is not included."

// partitions is the partition count of every topic.
const partitions = 6

// step is one Replay slice: events [previous end, end) were produced from at.
type step struct {
	end int
	at  time.Time
}

// sample is a poll of the detector's processed-events counter.
type sample struct {
	at time.Time
	n  uint64
}

// Run generates the organisation, runs it through the pipeline and scores
// the findings.
func Run(ctx context.Context, opt Options) (*Report, error) {
	if opt.Out == nil {
		opt.Out = io.Discard
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Progress <= 0 {
		opt.Progress = 2 * time.Second
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Minute
	}
	if opt.Database == "" {
		opt.Database = "leakline"
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	out := opt.Out

	start := opt.Now.UTC().AddDate(0, 0, -opt.Days-1)
	org, err := scenario.NewOrg(scenario.OrgOptions{Seed: opt.Seed, Employees: opt.Employees, Customers: opt.Customers, Days: opt.Days, Start: start})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "loadtest: %d employees, %d customers, %d days from %s: %d events, %d scenarios\n",
		opt.Employees, opt.Customers, opt.Days, org.Opt.Start.Format("2006-01-02"), len(org.Events), len(org.Scenarios))

	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("loadtest: hmac key: %w", err)
	}
	broker, err := embedkafka.Start(embedkafka.Options{Logger: opt.Log})
	if err != nil {
		return nil, fmt.Errorf("loadtest: kafka: %w", err)
	}
	defer broker.Close()
	ch := opt.CH
	if ch == nil {
		if ch, err = chserver.Start(ctx, chserver.Options{}); err != nil {
			return nil, fmt.Errorf("loadtest: clickhouse (install it with `apt-get install -y clickhouse-server`): %w", err)
		}
		defer ch.Stop()
	}
	cfg := pipeline.Config{
		Kafka:   kafkaio.Config{Brokers: broker.Addrs(), ClientID: "leakline-loadtest"},
		Topics:  kafkaio.DefaultTopics(),
		Store:   chstore.Config{Addr: ch.Addr(), Database: opt.Database},
		Engine:  detect.DefaultConfig(),
		HMACKey: key,
		// Partitions of every topic.
		Partitions: partitions,
	}
	idx, err := edm.Build(bytes.NewReader(org.CRMExport()), edm.BuildOptions{
		Columns:  map[string]string{"email": "email", "phone": "phone", "name": "name"},
		IDColumn: "customer_id",
	}, key)
	if err != nil {
		return nil, fmt.Errorf("loadtest: edm index: %w", err)
	}
	cfg.Engine.EDM = idx
	fmt.Fprintf(out, "  kafka %s, clickhouse %s, edm index %d customers\n", strings.Join(broker.Addrs(), ","), ch.Addr(), idx.Rows())
	if err := pipeline.Prepare(ctx, cfg); err != nil {
		return nil, err
	}
	p, err := pipeline.New(ctx, cfg, opt.Log)
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return p.Run(gctx) })
	fail := func(err error) (*Report, error) {
		stop()
		if werr := g.Wait(); werr != nil && !errors.Is(werr, context.Canceled) {
			err = errors.Join(err, werr)
		}
		return nil, err
	}
	processed := func() uint64 { s := p.Detector.Stats(); return s.Events + s.Duplicates }

	// The sampler polls the detector's counter for the latency estimate.
	var (
		mu      sync.Mutex
		samples []sample
		steps   []step
	)
	sampCtx, stopSampler := context.WithCancel(gctx)
	var bg sync.WaitGroup
	bg.Go(func() {
		var last uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sampCtx.Done():
				return
			case <-tick.C:
			}
			n := processed()
			if n > last {
				last = n
				mu.Lock()
				samples = append(samples, sample{at: time.Now(), n: n})
				mu.Unlock()
			}
		}
	})
	total := len(org.Events)
	t0 := time.Now()
	bg.Go(func() { progress(sampCtx, out, opt.Progress, t0, total, &mu, &steps, p) })
	defer func() { stopSampler(); bg.Wait() }()

	settled := demo.NormalizerSettled(p.Normalizer)
	stepStart := t0
	settle := func(ctx context.Context, written int) error {
		mu.Lock()
		steps = append(steps, step{end: written, at: stepStart})
		mu.Unlock()
		var err error
		if !opt.Unpaced {
			err = settled(ctx, written)
		}
		stepStart = time.Now()
		return err
	}
	if err := demo.Replay(gctx, cfg.Kafka, cfg.Topics, org.Events, cfg.Engine.AllowedLateness, settle); err != nil {
		return fail(err)
	}
	for processed() < uint64(total) {
		if err := sleep(gctx, 2*time.Millisecond); err != nil {
			return fail(fmt.Errorf("loadtest: waiting for the detector: %w", err))
		}
	}
	done := time.Now()
	stopSampler()
	bg.Wait()

	// Every finding revision the detector emitted must be in ClickHouse.
	for p.Sink.Stats().Inserted < p.Detector.Stats().Findings {
		if err := sleep(gctx, 20*time.Millisecond); err != nil {
			return fail(fmt.Errorf("loadtest: waiting for the sink (%d of %d findings inserted): %w", p.Sink.Stats().Inserted, p.Detector.Stats().Findings, err))
		}
	}
	store, err := chstore.Open(ctx, cfg.Store)
	if err != nil {
		return fail(err)
	}
	defer store.Close()
	fs, err := store.Findings(ctx, chstore.FindingFilter{})
	if err != nil {
		return fail(fmt.Errorf("loadtest: read findings: %w", err))
	}
	firstEnd, err := firstWindowEnds(ctx, cfg.Kafka.Brokers, cfg.Topics.Findings, partitions)
	if err != nil {
		return fail(err)
	}
	rep := score(org, fs, firstEnd)
	rep.LateEvents = p.Detector.Stats().LateEvents // before the engines close
	stop()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return nil, err
	}

	rep.Seed = opt.Seed
	rep.Mode = "time-compressed, paced: each 5-minute slice of event time waits until the normalizer consumed the previous one"
	if opt.Unpaced {
		rep.Mode = "time-compressed, unpaced: slices written back to back, stages run behind"
	}
	rep.Events = total
	rep.ReplaySeconds = done.Sub(t0).Seconds()
	rep.ThroughputEPS = float64(total) / done.Sub(t0).Seconds()
	rep.Latency = latency(steps, samples)
	return rep, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// progress prints a line every interval: events produced and processed,
// rate, lag, findings, ETA.
func progress(ctx context.Context, out io.Writer, every time.Duration, t0 time.Time, total int, mu *sync.Mutex, steps *[]step, p *pipeline.Pipeline) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var lastN uint64
	lastT := t0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			mu.Lock()
			produced := 0
			if n := len(*steps); n > 0 {
				produced = (*steps)[n-1].end
			}
			mu.Unlock()
			ds := p.Detector.Stats()
			n := ds.Events + ds.Duplicates
			rate := float64(n-lastN) / now.Sub(lastT).Seconds()
			eta := "-"
			if avg := float64(n) / now.Sub(t0).Seconds(); avg > 0 {
				eta = (time.Duration(float64(uint64(total)-min(n, uint64(total)))/avg) * time.Second).Round(time.Second).String()
			}
			fmt.Fprintf(out, "  %6s  produced %d/%d  detected-on %d  %.0f ev/s  lag %d  findings %d (in ClickHouse %d)  eta %s\n",
				now.Sub(t0).Round(time.Second), produced, total, n, rate, int64(produced)-int64(n), ds.Findings, p.Sink.Stats().Inserted, eta)
			lastN, lastT = n, now
		}
	}
}

// firstWindowEnds maps each finding id to the window end of its first
// revision (window ends only grow across revisions), read from every
// revision the detector published on the findings topic: ClickHouse keeps
// only the latest once ReplacingMergeTree merged the parts.
func firstWindowEnds(ctx context.Context, brokers []string, topic string, partitions int) (map[string]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	m := map[string]time.Time{}
	for part := 0; part < partitions; part++ {
		conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, part)
		if err != nil {
			return nil, fmt.Errorf("loadtest: findings partition %d: %w", part, err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			return nil, fmt.Errorf("loadtest: findings partition %d: %w", part, err)
		}
		if last <= 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: part, MaxWait: 100 * time.Millisecond})
		for {
			msg, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("loadtest: findings partition %d: %w", part, err)
			}
			var f finding.Finding
			if err := json.Unmarshal(msg.Value, &f); err == nil {
				if t, ok := m[f.FindingID]; !ok || f.WindowEnd.Before(t) {
					m[f.FindingID] = f.WindowEnd.UTC()
				}
			}
			if msg.Offset >= last-1 {
				break
			}
		}
		r.Close()
	}
	return m, nil
}

// score compares the findings with the ground truth.
func score(org *scenario.Org, fs []finding.Finding, firstEnd map[string]time.Time) *Report {
	rep := &Report{
		Employees: len(org.Employees), Customers: len(org.Customers), Days: org.Opt.Days,
		EmployeeDays: org.EmployeeDays(), Findings: len(fs), LatencyMethod: latencyMethod,
		PagedNote: "the pager is not in the loop of the load test yet: paged is false for every scenario",
	}
	end := func(f finding.Finding) time.Time {
		if t, ok := firstEnd[f.FindingID]; ok {
			return t
		}
		return f.WindowEnd
	}
	attackers := org.AttackActors()
	fpRules := map[string]bool{}
	for _, f := range fs {
		if f.Shadow {
			rep.ShadowFindings++
			continue
		}
		if !attackers[f.ActorUID] {
			rep.FalsePositives++
			fpRules[f.RuleID] = true
		}
	}
	for r := range fpRules {
		rep.FalsePosRules = append(rep.FalsePosRules, r)
	}
	slices.Sort(rep.FalsePosRules)
	if rep.EmployeeDays > 0 {
		rep.FalsePositivesPer1kEmployeeDay = float64(rep.FalsePositives) * 1000 / float64(rep.EmployeeDays)
	}
	for _, s := range org.Scenarios {
		res := ScenarioResult{Name: s.Name, Kind: s.Kind, Actor: s.Actor, ExpectRules: s.ExpectRules, Note: s.Note, RulesFired: []string{}}
		var first time.Time
		for _, f := range fs {
			if f.Shadow || f.ActorUID != s.Actor || end(f).Before(s.Start) {
				continue
			}
			if !slices.Contains(res.RulesFired, f.RuleID) {
				res.RulesFired = append(res.RulesFired, f.RuleID)
			}
			if s.Kind == scenario.KindAttack && !slices.Contains(s.ExpectRules, f.RuleID) {
				continue
			}
			res.Detected = true
			if first.IsZero() || end(f).Before(first) {
				first = end(f)
				res.FirstFinding = fmt.Sprintf("%s %s–%s", f.RuleID, f.WindowStart.Format(time.RFC3339), first.Format(time.RFC3339))
			}
		}
		slices.Sort(res.RulesFired)
		if res.Detected && s.Kind == scenario.KindAttack {
			ttd := first.Sub(s.Exfil).Seconds()
			res.TimeToDetectS = &ttd
		}
		rep.Scenarios = append(rep.Scenarios, res)
	}
	return rep
}

// latency estimates produced → processed-by-detector per event (see
// latencyMethod).
func latency(steps []step, samples []sample) LatencyMS {
	var ms []float64
	j, prev := 0, 0
	for _, s := range steps {
		for i := prev; i < s.end; i++ {
			for j < len(samples) && samples[j].n <= uint64(i) {
				j++
			}
			if j == len(samples) {
				break
			}
			ms = append(ms, float64(samples[j].at.Sub(s.at))/float64(time.Millisecond))
		}
		prev = s.end
	}
	if len(ms) == 0 {
		return LatencyMS{}
	}
	slices.Sort(ms)
	pct := func(q float64) float64 { return ms[min(len(ms)-1, int(q*float64(len(ms))))] }
	return LatencyMS{P50: pct(0.50), P95: pct(0.95), P99: pct(0.99)}
}

// PrintReport renders a report as a table.
func PrintReport(w io.Writer, r *Report) {
	fmt.Fprintf(w, "\n%d employees × %d days (%d employee-days), %d customers, %d events in %.1f s\n",
		r.Employees, r.Days, r.EmployeeDays, r.Customers, r.Events, r.ReplaySeconds)
	fmt.Fprintf(w, "mode: %s; late events at the detector: %d\n", r.Mode, r.LateEvents)
	fmt.Fprintf(w, "\n%-30s %-7s %-9s %-6s %-14s %s\n", "SCENARIO", "KIND", "DETECTED", "PAGED", "TIME TO DETECT", "LIVE RULES FIRED FOR THE ACTOR")
	for _, s := range r.Scenarios {
		ttd := "-"
		if s.TimeToDetectS != nil {
			ttd = (time.Duration(*s.TimeToDetectS) * time.Second).String()
		}
		verdict := "no"
		if s.Detected {
			verdict = "yes"
		}
		if s.Kind == scenario.KindBenign {
			verdict = map[bool]string{true: "FALSE+", false: "quiet"}[s.Detected]
		}
		fmt.Fprintf(w, "%-30s %-7s %-9s %-6v %-14s %s\n", s.Name, s.Kind, verdict, s.Paged, ttd, strings.Join(s.RulesFired, ", "))
	}
	fmt.Fprintf(w, "\nfindings %d (%d shadow); false positives %d = %.2f per 1,000 employee-days (rules: %s)\n",
		r.Findings, r.ShadowFindings, r.FalsePositives, r.FalsePositivesPer1kEmployeeDay, strings.Join(r.FalsePosRules, ", "))
	fmt.Fprintf(w, "throughput %.0f events/s (produced → processed by the detector, whole replay)\n", r.ThroughputEPS)
	fmt.Fprintf(w, "latency produced → detector p50 %.1f ms  p95 %.1f ms  p99 %.1f ms\n", r.Latency.P50, r.Latency.P95, r.Latency.P99)
	fmt.Fprintf(w, "paged: %s\n\n", r.PagedNote)
}
