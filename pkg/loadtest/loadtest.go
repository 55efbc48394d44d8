// Package loadtest runs a synthetic organisation's traffic through the
// whole Leakline pipeline — the embedded Kafka-protocol broker, a private
// ClickHouse server, the normalizer, detector and sink exactly as `leakline
// demo` composes them, and the pager with its default routing policy
// posting to an in-process webhook receiver — and scores the result against
// the labelled insider scenarios: detected and paged or missed, time to
// detect (event time of the first exfiltration → finding stored in
// ClickHouse → page sent), false-positive findings and pages per 1,000
// employee-days, throughput, latency produced → row in ClickHouse, consumer
// lag, peak memory. `go run ./loadtest` and `leakline loadtest` both run it
// (pkg/clicmd parses the flags).
//
// Two modes:
//
//   - time-compressed (default): the org's days are replayed with their
//     event times preserved, one five-minute slice of event time at a time,
//     each slice waiting until the normalizer took the previous one in
//     (Unpaced: without waiting);
//   - rate (Rate > 0): an open-loop producer writes Rate events/s for
//     Duration. A fixed population (the org's employees and Cohorts−1
//     copies of them) lives the org's days cycle after cycle, with fresh
//     event ids, so event time runs far ahead of the wall clock and the
//     detector's state reaches its steady state; the scenarios' events
//     are merged into the middle cycle at their own event times.
package loadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/leakline/leakline/pkg/chserver"
	"github.com/leakline/leakline/pkg/chsink"
	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/edm"
	"github.com/leakline/leakline/pkg/embedkafka"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/pager"
	"github.com/leakline/leakline/pkg/pipeline"
	"github.com/leakline/leakline/pkg/scenario"
)

// Options configures a load run.
type Options struct {
	Employees, Customers, Days int
	Seed                       uint64
	// Rate > 0 selects rate mode: Rate baseline events per second for
	// Duration (the scenarios' events come on top).
	Rate     float64
	Duration time.Duration
	// Cohorts (rate mode) is how many copies of the org's employees make
	// the run's population; 0 chooses it so that the run covers about ten
	// times the org's days of event time (see ratePlan).
	Cohorts int
	// Unpaced (time-compressed mode) writes every slice as soon as the
	// previous one was acknowledged by the broker, without waiting for the
	// normalizer: a capacity measurement. Stages then run behind and the
	// interleaving of the two source topics is no longer bounded by one
	// slice, so events may be late and detections lost — the scores show it.
	Unpaced bool
	// Out receives progress lines; nil discards them.
	Out io.Writer
	Log *slog.Logger
	// Progress is the interval of progress lines (default 2 s).
	Progress time.Duration
	// Timeout bounds the whole run (default 10 min + Duration).
	Timeout time.Duration
	// CH, when set, is a running ClickHouse server to use (a test's); nil
	// starts a private one.
	CH *chserver.Server
	// Database is the ClickHouse database (default "leakline").
	Database string
	// Processes runs normalizer, detector, chsink and pager as child
	// processes built from services/ (pkg/fleet) instead of in this
	// process, and reports each one's peak memory. It needs the go command
	// and the Leakline module as the working directory.
	Processes bool
	// ServiceLogs receives the service processes' logs (-processes); nil
	// discards them.
	ServiceLogs io.Writer
	// SinkBatch and SinkFlush are chsink's batch size and flush interval
	// (chsink.Config.BatchSize/FlushInterval; LEAKLINE_SINK_BATCH/_FLUSH
	// with Processes). Zero: in rate mode 20,000 rows and 250 ms — large
	// inserts cost ClickHouse 18.16 less CPU per row (docs/BENCHMARKS.md
	// "Pipeline capacity"), and the flush interval, which every event waits
	// half of on average, bounds the latency (a 1 s flush alone puts the
	// p99 near 1 s) — otherwise the sink's defaults.
	SinkBatch int
	SinkFlush time.Duration
	// Retention bounds the embedded broker's memory (embedkafka.Retention):
	// about this many record bytes kept per partition of the source,
	// normalized and event-metadata topics, never cut past the committed
	// offset of any stage's consumer group. Zero: 8 MiB in rate mode, none
	// (keep everything) in time-compressed mode; negative: none.
	Retention int64
	// CPUProfile, when set, is a file for a CPU profile of this process
	// from the start of production until every event summary is stored;
	// samples carry the label role=stages|pager|loadgen (unlabelled: the
	// embedded broker, the monitor and the runtime).
	CPUProfile string
	// MemProfile, when set, is a file for a heap profile (live objects)
	// taken once every event summary is stored, before the stages stop.
	MemProfile string
	// Now is the wall clock used to place the simulated days (the last
	// one is the day before yesterday, so no event is future-dated; rate
	// mode ends its last cycle there); zero means time.Now().
	Now time.Time
}

// partitions is the partition count of every topic.
const partitions = 6

// Sampling of the run: one Point every SampleInterval; findings in
// ClickHouse polled every PollInterval (the resolution of stored_after_s).
const (
	SampleInterval = time.Second
	PollInterval   = 200 * time.Millisecond
)

const (
	latencyMethod = "produced → row in ClickHouse, per event, for a hash sample of the events (cityHash64(event_id) % N = 0, ≤ 50k): " +
		"produced is the event's scheduled produce time (rate mode, open loop: queueing in the producer counts) or the start of its Replay slice " +
		"(time-compressed mode); stored is the events table's inserted_at_ms of its first row (migration 0007), the client clock when chstore " +
		"assembled the insert batch, just before sending it"
	throughputMethod  = "events produced ÷ (time the last event summary was inserted into ClickHouse − start of production)"
	processMemoryNote = "normalizer, detector, chsink and pager ran as child processes: services_peak_rss_bytes is each one's VmHWM; " +
		"the load-test process (process_peak_rss_bytes, go_heap_peak_bytes) holds the embedded broker, the generator and the webhook receiver"
	memoryNote = "every stage runs in the load-test process, so the stages' memory is not separable: the process's peak RSS, " +
		"peak Go heap (objects, garbage not yet swept included) and the trend of its live heap and RSS cover the broker, normalizer, detector, sink, pager and generator together"
)

// Run generates the organisation, runs it through the pipeline and the
// pager, and scores the outcome.
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
	if opt.Rate > 0 && opt.Duration <= 0 {
		return nil, fmt.Errorf("loadtest: rate mode needs a positive duration, got %v", opt.Duration)
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 10*time.Minute + opt.Duration
	}
	if opt.Database == "" {
		opt.Database = "leakline"
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	if opt.Rate > 0 {
		opt = opt.rateDefaults()
	}
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	out := opt.Out

	start := opt.Now.UTC().AddDate(0, 0, -opt.Days-1)
	org, err := scenario.NewOrg(scenario.OrgOptions{Seed: opt.Seed, Employees: opt.Employees, Customers: opt.Customers, Days: opt.Days, Start: start})
	if err != nil {
		return nil, err
	}
	var plan *ratePlan
	if opt.Rate > 0 {
		if plan, err = newRatePlan(org, opt.Rate, opt.Duration, opt.Cohorts); err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "loadtest: rate mode, %.0f events/s for %v: %d employees (%d × the org's %d), %d customers; the org's %d days (%d baseline events) lived %d times, event time %s → %s (allowed lateness %v); %d scenarios (%d events) in cycle %d\n",
			opt.Rate, opt.Duration, plan.population(opt.Employees), plan.cohorts, opt.Employees, opt.Customers, opt.Days, len(plan.pool), plan.cycles,
			start.Add(plan.shift(0)).Format("2006-01-02"), start.Add(plan.shift(plan.cycles-1)+plan.span).Format("2006-01-02"), plan.lateness,
			len(org.Scenarios), len(plan.inject), plan.injectCycle+1)
	} else {
		fmt.Fprintf(out, "loadtest: time-compressed mode, %d employees, %d customers, %d days from %s: %d events, %d scenarios\n",
			opt.Employees, opt.Customers, opt.Days, org.Opt.Start.Format("2006-01-02"), len(org.Events), len(org.Scenarios))
	}

	key := make([]byte, 32)
	raw := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("loadtest: hmac key: %w", err)
	}
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("loadtest: webhook secret: %w", err)
	}
	// The webhook secret is printable: service processes get it through
	// their environment.
	secret := []byte(hex.EncodeToString(raw))
	topics := kafkaio.DefaultTopics()
	broker, err := embedkafka.Start(embedkafka.Options{Logger: opt.Log, Retention: brokerRetention(opt.Retention, topics)})
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
		Kafka:      kafkaio.Config{Brokers: broker.Addrs(), ClientID: "leakline-loadtest"},
		Topics:     topics,
		Store:      chstore.Config{Addr: ch.Addr(), Database: opt.Database},
		Sink:       chsink.Config{BatchSize: opt.SinkBatch, FlushInterval: opt.SinkFlush},
		Engine:     detect.DefaultConfig(),
		HMACKey:    key,
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
	if plan != nil {
		cfg.Engine.AllowedLateness = plan.lateness
	}
	if err := pipeline.Prepare(ctx, cfg); err != nil {
		return nil, err
	}
	store, err := chstore.Open(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	recv, err := newPageReceiver(secret)
	if err != nil {
		return nil, err
	}
	defer recv.ln.Close() // Serve closes it; this covers the early returns
	var st stages
	where := "in this process"
	if opt.Processes {
		dir, err := os.MkdirTemp("", "leakline-loadtest-")
		if err != nil {
			return nil, fmt.Errorf("loadtest: %w", err)
		}
		defer os.RemoveAll(dir)
		fmt.Fprintf(out, "  building and starting %s as processes\n", strings.Join(processServices, ", "))
		ps, err := startProcesses(ctx, processConfig{kafka: cfg.Kafka, ch: cfg.Store, key: key, index: idx, hookURL: recv.URL(),
			secret: secret, dir: dir, logs: opt.ServiceLogs, store: store, partition: partitions,
			sinkBatch: opt.SinkBatch, sinkFlush: opt.SinkFlush, lateness: cfg.Engine.AllowedLateness})
		if err != nil {
			return nil, err
		}
		defer ps.stop()
		st, where = ps, "as child processes (pkg/fleet)"
	} else {
		policy, err := pager.DefaultPolicy(false, false, recv.URL())
		if err != nil {
			return nil, err
		}
		ip, err := newInProcess(ctx, cfg, pager.Config{
			Kafka: cfg.Kafka, Topics: kafkaio.Topics{Findings: cfg.Topics.Findings, DeadLetter: cfg.Topics.DeadLetter},
			Policy: policy, WebhookSecret: secret, Logger: opt.Log.With("stage", "pager"),
		}, opt.Log)
		if err != nil {
			return nil, err
		}
		st = ip
	}
	fmt.Fprintf(out, "  kafka %s, clickhouse %s, edm index %d customers, stages %s, pager → webhook %s (default policy: high and critical live findings)\n",
		strings.Join(broker.Addrs(), ","), ch.Addr(), idx.Rows(), where, recv.URL())

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return st.run(gctx) })
	g.Go(func() error { return recv.Serve(gctx) })
	fail := func(err error) (*Report, error) {
		stop()
		if werr := g.Wait(); werr != nil && !errors.Is(werr, context.Canceled) {
			err = errors.Join(err, werr)
		}
		return nil, err
	}

	total := len(org.Events)
	if plan != nil {
		total = int(plan.total()) + len(plan.inject)
	}
	var ctr progressCounters
	mon := &monitor{
		out: out, every: opt.Progress, total: total, ctr: &ctr, st: st, recv: recv,
		lag: newLagReader(cfg.Kafka, cfg.Topics, partitions), store: store, db: opt.Database,
		stored: map[string]time.Time{}, maxLag: map[string]int64{},
		brokerBytes:   func() int64 { return broker.StoredBytes(topics.All()...) },
		clickhousePID: ch.PID(),
	}
	if plan != nil {
		mon.duration = opt.Duration
	}
	stopProfile := func() {}
	if opt.CPUProfile != "" {
		if stopProfile, err = startCPUProfile(opt.CPUProfile); err != nil {
			return fail(err)
		}
		defer stopProfile()
	}
	cpu0, err := cpuNow(st, ch.PID())
	if err != nil {
		return fail(err)
	}
	t0 := time.Now()
	mon.t0 = t0
	monCtx, stopMon := context.WithCancel(gctx)
	var bg sync.WaitGroup
	bg.Go(func() { mon.sample(monCtx) })
	bg.Go(func() { mon.pollFindings(monCtx) })
	defer func() { stopMon(); bg.Wait() }()

	// Produce.
	var prod production
	if plan != nil {
		if err := labelled(gctx, "loadgen", func(ctx context.Context) error { return produceRate(ctx, cfg.Kafka, cfg.Topics, plan, t0, &ctr) }); err != nil {
			return fail(err)
		}
		prod = plan.production(t0)
	} else {
		steps, err := produceCompressed(gctx, cfg.Kafka, cfg.Topics, org.Events, cfg.Engine.AllowedLateness, st.settled(mon.lag), opt.Unpaced, &ctr)
		if err != nil {
			return fail(err)
		}
		prod = compressedProduction(org, steps)
	}
	produceDone := time.Now()
	mon.setProduced(produceDone)

	// Drain: every event's summary in ClickHouse; then every consumer
	// group caught up (each commits only after its output was
	// acknowledged: findings in ClickHouse, pages accepted).
	for {
		n, err := st.eventsStored(gctx)
		if err == nil && n >= uint64(total) {
			break
		}
		if err := sleep(gctx, st.pollEvery()); err != nil {
			return fail(fmt.Errorf("loadtest: waiting for the sink (%d of %d event summaries inserted): %w", n, total, err))
		}
	}
	done := time.Now()
	stopProfile()
	if opt.MemProfile != "" {
		if err := writeHeapProfile(opt.MemProfile); err != nil {
			return fail(err)
		}
	}
	cpu1, err := cpuNow(st, ch.PID())
	if err != nil {
		return fail(err)
	}
	var finalLag map[string]int64
	for {
		lag, err := mon.lag.Lag(gctx)
		if err == nil && caughtUp(lag) {
			finalLag = lag
			break
		}
		if err := sleep(gctx, 50*time.Millisecond); err != nil {
			return fail(fmt.Errorf("loadtest: waiting for the stages and the pager to catch up (lag %v): %w", lag, err))
		}
	}
	mon.pollOnce(gctx)
	stopMon()
	bg.Wait()

	fs, err := store.Findings(ctx, chstore.FindingFilter{})
	if err != nil {
		return fail(fmt.Errorf("loadtest: read findings: %w", err))
	}
	firstEnd, err := firstWindowEnds(ctx, cfg.Kafka, cfg.Topics.Findings, partitions)
	if err != nil {
		return fail(err)
	}
	samples, err := readLatency(ctx, store, opt.Database, total, prod.at)
	if err != nil {
		return fail(err)
	}
	pages, _, badPages := recv.Pages()
	if badPages > 0 {
		return fail(fmt.Errorf("loadtest: the receiver refused %d webhook bodies (bad signature or body)", badPages))
	}
	cut, err := mon.lag.firstOffsets(ctx, brokerRetention(1, cfg.Topics).Topics...)
	if err != nil {
		return fail(err)
	}
	late, err := st.lateEvents(ctx) // before the stages stop
	if err != nil {
		return fail(err)
	}
	services := st.memory()
	stop()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return nil, err
	}

	tr := truth{Scenarios: prod.scenarios, ExfilProduced: prod.exfil, EmployeeDays: float64(org.EmployeeDays())}
	if plan != nil {
		tr.EmployeeDays = plan.employeeDays(plan.total())
	}
	rep := score(tr, observed{Findings: fs, FirstEnd: firstEnd, Stored: mon.storedCopy(), Pages: pages})
	rep.Employees, rep.Customers, rep.Days, rep.Seed = opt.Employees, opt.Customers, opt.Days, opt.Seed
	rep.Population, rep.EventTimeDays = int64(opt.Employees), float64(opt.Days)
	rep.AllowedLatenessS = cfg.Engine.AllowedLateness.Seconds()
	rep.Events = total
	rep.LateEvents = late
	rep.PagingPolicy = "pager.DefaultPolicy: every high and critical live finding to one webhook receiver, no rate limit"
	rep.ProduceSeconds = produceDone.Sub(t0).Seconds()
	rep.RunSeconds = done.Sub(t0).Seconds()
	rep.ProducedEPS = float64(total) / rep.ProduceSeconds
	rep.ThroughputEPS = float64(total) / rep.RunSeconds
	rep.ThroughputMethod = throughputMethod
	rep.Latency, rep.LatencySeries = latencyReport(samples, t0, SampleInterval)
	rep.LatencySamples = len(samples)
	rep.LatencyMethod = latencyMethod
	rep.Series, rep.MaxLag = mon.results()
	rep.CPU = cpu1.since(cpu0, total)
	rep.FinalLag = finalLag
	switch {
	case plan != nil:
		rep.Mode = fmt.Sprintf("rate: %.0f events/s for %v, open loop; %d employees live the org's %d days %d times", opt.Rate, opt.Duration, plan.population(opt.Employees), opt.Days, plan.cycles)
		rep.Population, rep.Cohorts = plan.population(opt.Employees), plan.cohorts
		rep.EventTimeDays = plan.eventTimeSpan().Hours() / 24
		rep.TargetEPS = opt.Rate
		rep.ProducerBehindMaxMS = float64(ctr.behindNS.Load()) / 1e6
	case opt.Unpaced:
		rep.Mode = "time-compressed, unpaced: slices written back to back, stages run behind"
	default:
		rep.Mode = "time-compressed, paced: each 5-minute slice of event time waits until the normalizer consumed the previous one"
	}
	rep.Memory = Memory{GoHeapPeakBytes: mon.heapPeak(), BrokerPeakBytes: mon.brokerPeak(), BrokerRetentionBytes: max(opt.Retention, 0), BrokerRecordsCut: cut, Note: memoryNote}
	rep.Memory.Trend = memoryTrend(rep.Series, rep.ProduceSeconds)
	if opt.Processes {
		rep.Memory.Services = services
		rep.Memory.Note = processMemoryNote
	}
	if rep.Memory.ProcessPeakRSSBytes, err = peakRSS(0); err != nil {
		return nil, err
	}
	if rep.Memory.ClickHousePeakRSSBytes, err = peakRSS(ch.PID()); err != nil {
		return nil, err
	}
	return rep, nil
}

// Rate-mode defaults (Options.SinkBatch, SinkFlush, Retention).
const (
	rateSinkBatch = 20_000
	rateSinkFlush = 250 * time.Millisecond
	rateRetention = 8 << 20
)

// rateDefaults fills the rate mode's defaults of the zero fields.
func (o Options) rateDefaults() Options {
	if o.SinkBatch == 0 {
		o.SinkBatch = rateSinkBatch
	}
	if o.SinkFlush == 0 {
		o.SinkFlush = rateSinkFlush
	}
	if o.Retention == 0 {
		o.Retention = rateRetention
	}
	return o
}

// brokerRetention bounds the topics that carry every event (the two
// source topics, normalized events and event metadata) to bytes per
// partition, never past the commits of the stages' consumer groups. The
// findings topic is not bounded: it is small, and the scorer reads it
// back from the start (firstWindowEnds) once the run is over.
func brokerRetention(bytes int64, t kafkaio.Topics) embedkafka.Retention {
	if bytes <= 0 {
		return embedkafka.Retention{}
	}
	var groups []string
	for _, g := range lagGroups {
		groups = append(groups, g.group)
	}
	return embedkafka.Retention{
		Bytes:  bytes,
		Topics: []string{t.CRMAccess, t.Outbound, t.Events, t.EventMeta},
		Groups: groups,
	}
}

// cpuSample is the CPU time used so far by this process, ClickHouse and
// each service process.
type cpuSample struct {
	self, ch time.Duration
	services map[string]time.Duration
}

func cpuNow(st stages, chPID int) (cpuSample, error) {
	self, err := selfCPU()
	if err != nil {
		return cpuSample{}, err
	}
	ch, err := procCPU(chPID)
	if err != nil {
		return cpuSample{}, err
	}
	return cpuSample{self: self, ch: ch, services: st.cpu()}, nil
}

// since is the CPU used between s0 and s, in total and per event.
func (s cpuSample) since(s0 cpuSample, events int) CPU {
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(max(events, 1)) }
	c := CPU{
		ProcessSeconds:    (s.self - s0.self).Seconds(),
		ClickHouseSeconds: (s.ch - s0.ch).Seconds(),
	}
	c.ProcessUSPerEvent, c.ClickHouseUSPerEvent = per(s.self-s0.self), per(s.ch-s0.ch)
	var services time.Duration
	for name, d := range s.services {
		d -= s0.services[name]
		services += d
		if c.ServiceUSPerEvent == nil {
			c.ServiceUSPerEvent = map[string]float64{}
		}
		c.ServiceUSPerEvent[name] = per(d)
	}
	if services > 0 {
		c.ServicesSeconds, c.ServicesUSPerEvent = services.Seconds(), per(services)
	}
	return c
}

// startCPUProfile writes a CPU profile to path until the returned stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("loadtest: cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("loadtest: cpu profile: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}, nil
}

// writeHeapProfile writes the live heap (after a GC) to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("loadtest: heap profile: %w", err)
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("loadtest: heap profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("loadtest: heap profile: %w", err)
	}
	return nil
}

// caughtUp reports whether every consumer group has committed everything.
func caughtUp(lag map[string]int64) bool {
	for _, g := range lagGroups {
		if lag[g.group] != 0 {
			return false
		}
	}
	return true
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
