package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/leakline/leakline/pkg/chsink"
	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/embedkafka"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/pipeline"
	"github.com/leakline/leakline/pkg/scenario"
	"github.com/leakline/leakline/pkg/testenv"
)

var (
	benchEvents  = flag.Int("pipeline.events", 100_000, "BenchmarkPipelineCapacity: raw events to pre-produce (at least)")
	benchProfile = flag.String("pipeline.cpuprofile", "", "BenchmarkPipelineCapacity: write a CPU profile of the processing phase only (samples labelled stage=normalizer|detector|chsink; unlabelled = broker and runtime)")
	benchSink    = flag.Int("pipeline.sinkbatch", 0, "BenchmarkPipelineCapacity: chsink batch size (0: the sink's default)")
)

// BenchmarkPipelineCapacity measures the stages' capacity together: it
// pre-produces a synthetic organisation's raw events (pkg/scenario, ~0.5 KB
// each) into the raw topics of the embedded broker, then runs normalizer →
// detector → chsink → private ClickHouse in this process and stops the clock
// when every valid event's summary row was acknowledged by ClickHouse (the
// row count is then checked with a query). It reports events/s, the CPU
// seconds this process (stages + broker) and the ClickHouse server used per
// event, and the heap at the end. With -pipeline.cpuprofile it writes a CPU
// profile of the processing phase whose samples carry a "stage" label:
//
//	go test ./pkg/pipeline -run '^$' -bench PipelineCapacity -benchtime=1x \
//	    -pipeline.events=200000 -pipeline.cpuprofile=/tmp/pipe.prof
//	go tool pprof -tags /tmp/pipe.prof
func BenchmarkPipelineCapacity(b *testing.B) {
	if chServer == nil {
		testenv.Unavailable(b, "ClickHouse", errors.New("the server did not start in TestMain"))
	}
	srv := chServer
	org, err := scenario.NewOrg(scenario.OrgOptions{
		Seed: 1, Employees: max(20, *benchEvents/200), Customers: 20_000,
		Days: 10, Start: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		b.Fatal(err)
	}
	var rawBytes int
	for _, e := range org.Events {
		rawBytes += len(e.Value)
	}
	b.Logf("%d raw events, %d bytes on average", len(org.Events), rawBytes/len(org.Events))

	for b.Loop() {
		runCapacity(b, srv.PID(), org.Events)
	}
}

// benchConfig is the pipeline the capacity benchmarks run: six
// partitions, the default engine, the -sink-batch flag's batch size.
func benchConfig(brokers []string, topics kafkaio.Topics, db string) pipeline.Config {
	return pipeline.Config{
		Kafka:      kafkaio.Config{Brokers: brokers, ClientID: "bench"},
		Topics:     topics,
		Partitions: 6,
		Store:      chstore.Config{Addr: chServer.Addr(), Database: db},
		Engine:     detect.DefaultConfig(),
		HMACKey:    testKey,
		Sink:       chsink.Config{BatchSize: *benchSink},
	}
}

func runCapacity(b *testing.B, chPID int, raws []scenario.Raw) {
	broker := testenv.Kafka(b, nil)
	store := testenv.ClickHouseStore(b, chServer)
	cfg := benchConfig(broker.Addrs(), kafkaio.DefaultTopics(), store.Database())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := pipeline.Prepare(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	produceRaw(b, ctx, cfg, raws)

	// One pipeline per stage, so that each runs under its own profiler label.
	stages := map[string]*pipeline.Pipeline{}
	for _, s := range []string{pipeline.StageNormalizer, pipeline.StageDetector, pipeline.StageChsink} {
		c := cfg
		c.Stages = []string{s}
		p, err := pipeline.New(ctx, c, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		stages[s] = p
	}
	if *benchProfile != "" {
		f, err := os.Create(*benchProfile)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	runtime.GC()
	cpu0, ch0 := selfCPU(b), procCPU(b, chPID)
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for name, p := range stages {
		g.Go(func() error {
			var err error
			pprof.Do(gctx, pprof.Labels("stage", name), func(ctx context.Context) { err = p.Run(ctx) })
			return err
		})
	}
	norm, det, sink := stages[pipeline.StageNormalizer].Normalizer, stages[pipeline.StageDetector].Detector, stages[pipeline.StageChsink].Sink
	deadline := time.Now().Add(10 * time.Minute)
	var normDone, detDone time.Duration // when each stage had seen every event
	for {
		ns := norm.Stats()
		if normDone == 0 && ns.Consumed >= uint64(len(raws)) {
			normDone = time.Since(start)
		}
		if detDone == 0 && normDone != 0 && det.Stats().Events >= ns.Normalized {
			detDone = time.Since(start)
		}
		if ns.Consumed >= uint64(len(raws)) && sink.Stats().EventsInserted >= ns.Normalized {
			break
		}
		if time.Now().After(deadline) || gctx.Err() != nil {
			cancel()
			b.Fatalf("not done: normalizer %+v, sink %+v, stages: %v", ns, sink.Stats(), g.Wait())
		}
		time.Sleep(20 * time.Millisecond)
	}
	el := time.Since(start)
	cpu, ch := selfCPU(b)-cpu0, procCPU(b, chPID)-ch0
	if *benchProfile != "" {
		pprof.StopCPUProfile()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cancel()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		b.Fatal(err)
	}
	ns := norm.Stats()
	var rows uint64
	qctx, qcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer qcancel()
	if err := store.Conn().QueryRow(qctx, "SELECT uniqExact(event_id) FROM "+store.Database()+".events").Scan(&rows); err != nil {
		b.Fatal(err)
	}
	if rows != ns.Normalized || ns.Normalized == 0 {
		b.Fatalf("ClickHouse holds %d distinct events, the normalizer produced %d", rows, ns.Normalized)
	}
	n := float64(len(raws))
	b.ReportMetric(n/el.Seconds(), "events/s")
	b.ReportMetric(cpu.Seconds()/n*1e6, "go-cpu-µs/event")
	b.ReportMetric(ch.Seconds()/n*1e6, "ch-cpu-µs/event")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	b.Logf("normalizer done after %v, detector after %v, sink after %v", normDone.Round(time.Millisecond), detDone.Round(time.Millisecond), el.Round(time.Millisecond))
	b.Logf("%d events in %v: normalized %d, dead-lettered %d, duplicates %d; rows %d; sink batches %d; CPU: this process %v, ClickHouse %v",
		len(raws), el.Round(time.Millisecond), ns.Normalized, ns.DeadLettered, ns.Duplicates, rows, sink.Stats().EventBatches, cpu.Round(time.Millisecond), ch.Round(time.Millisecond))
}

// produceRaw writes the raw events to their topics before the clock starts.
func produceRaw(b *testing.B, ctx context.Context, cfg pipeline.Config, raws []scenario.Raw) {
	crm, out := kafkaio.NewWriter(cfg.Kafka, cfg.Topics.CRMAccess), kafkaio.NewWriter(cfg.Kafka, cfg.Topics.Outbound)
	defer crm.Close()
	defer out.Close()
	var crmMsgs, outMsgs []kafka.Message
	for _, r := range raws {
		m := kafka.Message{Key: r.Key, Value: r.Value, Time: r.Time}
		if r.Kind == event.KindCRMAccess {
			crmMsgs = append(crmMsgs, m)
		} else {
			outMsgs = append(outMsgs, m)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, job := range []struct {
		w    *kafkaio.Writer
		msgs []kafka.Message
	}{{crm, crmMsgs}, {out, outMsgs}} {
		g.Go(func() error {
			for i := 0; i < len(job.msgs); i += 5000 {
				if err := job.w.Write(gctx, job.msgs[i:min(i+5000, len(job.msgs))]...); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// selfCPU is the user+system CPU time this process used so far.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the user+system CPU time process pid used so far (Linux).
func procCPU(b *testing.B, pid int) time.Duration {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which is in parentheses): state is
	// field 3, utime 14, stime 15, in clock ticks (100 Hz on Linux).
	rest := string(st[strings.LastIndexByte(string(st), ')')+2:])
	f := strings.Fields(rest)
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	stt, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("parse /proc/%d/stat", pid)
	}
	return time.Duration(ut+stt) * 10 * time.Millisecond
}

var (
	sustainRate      = flag.Int("pipeline.rate", 20_000, "BenchmarkPipelineSustained: offered events/s")
	sustainDuration  = flag.Duration("pipeline.duration", time.Minute, "BenchmarkPipelineSustained: how long events are offered")
	sustainRetention = flag.Int64("pipeline.retention", 32<<20, "BenchmarkPipelineSustained: broker retention, bytes per partition (0 keeps everything)")
)

// BenchmarkPipelineSustained offers -pipeline.rate raw events/s for
// -pipeline.duration to the whole pipeline (embedded broker with
// -pipeline.retention bytes per partition, never past the stages'
// commits; normalizer, detector, chsink, private ClickHouse) and
// samples every second the lag (offered − rows acknowledged by ClickHouse),
// the RSS of this process and of ClickHouse and the bytes the broker holds.
// The offered events cycle through a generated organisation's, each cycle
// with fresh event ids (so that none is a duplicate) and the same event
// times (later cycles are late events for the detector's windows, which
// it still inspects and summarizes).
//
//	go test ./pkg/pipeline -run '^$' -bench PipelineSustained -benchtime=1x -timeout 30m \
//	    -pipeline.rate=20000 -pipeline.duration=5m -v
func BenchmarkPipelineSustained(b *testing.B) {
	if chServer == nil {
		testenv.Unavailable(b, "ClickHouse", errors.New("the server did not start in TestMain"))
	}
	org, err := scenario.NewOrg(scenario.OrgOptions{Seed: 1, Employees: 500, Customers: 20_000, Days: 10,
		Start: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		runSustained(b, org.Events)
	}
}

func runSustained(b *testing.B, raws []scenario.Raw) {
	topics := kafkaio.DefaultTopics()
	broker, err := embedkafka.Start(embedkafka.Options{Retention: embedkafka.Retention{
		Bytes: *sustainRetention, Topics: topics.All(),
		// the stages' consumer groups: nothing is cut before they committed it
		Groups: []string{"leakline-normalizer", "leakline-detector", "leakline-chsink", "leakline-chsink-events"},
	}})
	if err != nil {
		testenv.Unavailable(b, "Kafka broker", err)
	}
	b.Cleanup(func() { broker.Close() })
	store := testenv.ClickHouseStore(b, chServer)
	cfg := benchConfig(broker.Addrs(), topics, store.Database())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := pipeline.Prepare(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	p, err := pipeline.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.Run(gctx) })

	var offered atomic.Int64
	prodCtx, stopProducing := context.WithCancel(gctx)
	defer stopProducing()
	g.Go(func() error { return offer(prodCtx, cfg, raws, *sustainRate, &offered) })

	var samples []sample
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	cpu0, ch0 := selfCPU(b), procCPU(b, chServer.PID())
	for time.Since(start) < *sustainDuration+10*time.Minute {
		select {
		case <-tick.C:
		case <-gctx.Done():
			b.Fatalf("pipeline stopped: %v", g.Wait())
		}
		s := sample{at: time.Since(start), offered: offered.Load(), stored: int64(p.Sink.Stats().EventsInserted),
			rssSelf: rss(b, os.Getpid()), rssCH: rss(b, chServer.PID()), brokerBytes: broker.StoredBytes(topics.All()...),
			normalized: p.Normalizer.Stats().Normalized, detect: p.Detector.Stats().Events}
		samples = append(samples, s)
		if testing.Verbose() && len(samples)%5 == 0 {
			fmt.Fprintln(os.Stderr, s.line())
		}
		if s.at >= *sustainDuration {
			stopProducing()
			if s.stored >= s.offered {
				break
			}
		}
	}
	cpu, ch := selfCPU(b)-cpu0, procCPU(b, chServer.PID())-ch0
	last := samples[len(samples)-1]
	if last.stored < last.offered {
		b.Fatalf("not drained 10 minutes after the end: offered %d, stored %d", last.offered, last.stored)
	}
	var maxLag, maxRSS, maxCH, maxBroker int64
	for _, s := range samples {
		maxLag, maxRSS, maxCH, maxBroker = max(maxLag, s.offered-s.stored), max(maxRSS, s.rssSelf), max(maxCH, s.rssCH), max(maxBroker, s.brokerBytes)
	}
	for i, s := range samples {
		if i%10 == 9 || i == len(samples)-1 {
			b.Log(s.line())
		}
	}
	el := last.at
	b.ReportMetric(float64(last.stored)/el.Seconds(), "events/s")
	b.ReportMetric(float64(maxLag), "max-lag-events")
	b.ReportMetric(float64(maxRSS>>20), "max-RSS-MiB")
	b.ReportMetric(float64(maxCH>>20), "max-CH-RSS-MiB")
	b.ReportMetric(float64(maxBroker>>20), "max-broker-MiB")
	b.ReportMetric(cpu.Seconds()/float64(last.stored)*1e6, "go-cpu-µs/event")
	b.ReportMetric(ch.Seconds()/float64(last.stored)*1e6, "ch-cpu-µs/event")
	cancel()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		b.Fatal(err)
	}
}

// sample is one second of BenchmarkPipelineSustained.
type sample struct {
	at                 time.Duration
	offered, stored    int64
	rssSelf, rssCH     int64
	brokerBytes        int64
	normalized, detect uint64
}

func (s sample) line() string {
	return fmt.Sprintf("t=%3.0fs offered %9d normalized %9d detected %9d stored %9d lag %8d | RSS %4d MiB, ClickHouse %4d MiB, broker holds %4d MiB",
		s.at.Seconds(), s.offered, s.normalized, s.detect, s.stored, s.offered-s.stored, s.rssSelf>>20, s.rssCH>>20, s.brokerBytes>>20)
}

// offer produces raw events at rate per second (in 10 ms slices; a slice
// that falls behind is caught up at once) until ctx ends, cycling through
// raws with fresh event ids.
func offer(ctx context.Context, cfg pipeline.Config, raws []scenario.Raw, rate int, offered *atomic.Int64) error {
	crm, out := kafkaio.NewWriter(cfg.Kafka, cfg.Topics.CRMAccess), kafkaio.NewWriter(cfg.Kafka, cfg.Topics.Outbound)
	defer crm.Close()
	defer out.Close()
	const slice = 10 * time.Millisecond
	perSlice := max(rate/100, 1)
	start := time.Now()
	var n int64
	var crmMsgs, outMsgs []kafka.Message
	for ctx.Err() == nil {
		due := int64(time.Since(start)/slice+1) * int64(perSlice)
		if n >= due {
			time.Sleep(slice - time.Since(start)%slice)
			continue
		}
		crmMsgs, outMsgs = crmMsgs[:0], outMsgs[:0]
		for ; n < due && len(crmMsgs)+len(outMsgs) < 5000; n++ {
			r := raws[n%int64(len(raws))]
			cycle := n / int64(len(raws))
			v := r.Value
			if cycle > 0 {
				v = bytes.Replace(v, []byte(`"event_id":"`), []byte(`"event_id":"c`+strconv.FormatInt(cycle, 10)+"-"), 1)
			}
			m := kafka.Message{Key: r.Key, Value: v, Time: r.Time}
			if r.Kind == event.KindCRMAccess {
				crmMsgs = append(crmMsgs, m)
			} else {
				outMsgs = append(outMsgs, m)
			}
		}
		wg, wctx := errgroup.WithContext(ctx)
		wg.Go(func() error { return crm.Write(wctx, crmMsgs...) })
		wg.Go(func() error { return out.Write(wctx, outMsgs...) })
		if err := wg.Wait(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		offered.Store(n)
	}
	return nil
}

// rss is the resident set size of process pid in bytes (Linux).
func rss(b *testing.B, pid int) int64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	return 0
}
