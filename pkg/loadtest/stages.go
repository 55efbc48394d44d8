package loadtest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/demo"
	"github.com/leakline/leakline/pkg/edm"
	"github.com/leakline/leakline/pkg/fleet"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/pager"
	"github.com/leakline/leakline/pkg/pipeline"
)

// stages is the pipeline under test and the pager: in this process
// (pipeline.Pipeline and pager.Pager) or as one child process per service
// (pkg/fleet).
type stages interface {
	// run runs the stages until ctx ends (nil) or one fails.
	run(ctx context.Context) error
	// eventsStored is how many event summaries the sink inserted.
	eventsStored(ctx context.Context) (uint64, error)
	// findings is how many finding revisions the detector emitted.
	findings(ctx context.Context) uint64
	// lateEvents is how many events the detector got behind its watermark.
	lateEvents(ctx context.Context) (uint64, error)
	// settled is the time-compressed replay's wait for the normalizer.
	settled(lag *lagReader) func(context.Context, int) error
	// pollEvery is how often eventsStored may be asked.
	pollEvery() time.Duration
	// memory returns each service process's peak RSS (empty in-process).
	memory() map[string]int64
	// rssMB returns each service process's resident set (VmRSS) now, in
	// MB (nil in-process).
	rssMB() map[string]float64
	// cpu is the CPU time each service process used so far (nil
	// in-process, where it is this process's).
	cpu() map[string]time.Duration
}

// inProcess runs the stages as goroutines of this process.
type inProcess struct {
	p  *pipeline.Pipeline
	pg *pager.Pager
}

func newInProcess(ctx context.Context, cfg pipeline.Config, pcfg pager.Config, log *slog.Logger) (*inProcess, error) {
	p, err := pipeline.New(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	pg, err := pager.New(pcfg)
	if err != nil {
		return nil, err
	}
	return &inProcess{p: p, pg: pg}, nil
}

func (s *inProcess) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return labelled(gctx, "stages", s.p.Run) })
	g.Go(func() error { return labelled(gctx, "pager", s.pg.Run) })
	return g.Wait()
}

// labelled runs fn with the profiler label role=role, which goroutines it
// starts inherit (-cpuprofile: go tool pprof -tags).
func labelled(ctx context.Context, role string, fn func(context.Context) error) error {
	var err error
	pprof.Do(ctx, pprof.Labels("role", role), func(ctx context.Context) { err = fn(ctx) })
	return err
}

func (s *inProcess) eventsStored(context.Context) (uint64, error) {
	return s.p.Sink.Stats().EventsInserted, nil
}
func (s *inProcess) findings(context.Context) uint64 { return s.p.Detector.Stats().Findings }
func (s *inProcess) lateEvents(context.Context) (uint64, error) {
	return s.p.Detector.Stats().LateEvents, nil
}
func (s *inProcess) settled(*lagReader) func(context.Context, int) error {
	return demo.NormalizerSettled(s.p.Normalizer)
}
func (s *inProcess) pollEvery() time.Duration      { return 5 * time.Millisecond }
func (s *inProcess) memory() map[string]int64      { return nil }
func (s *inProcess) rssMB() map[string]float64     { return nil }
func (s *inProcess) cpu() map[string]time.Duration { return nil }

// Services of -processes mode, in start order.
var processServices = []string{"chsink", "detector", "normalizer", "pager"}

// processStopTimeout bounds a service's graceful shutdown.
const processStopTimeout = 30 * time.Second

// processes runs normalizer, detector, chsink and pager as child
// processes built from services/ (pkg/fleet), configured by environment
// like a deployment.
type processes struct {
	procs map[string]*fleet.Proc
	store *chstore.Store
	db    string
	peak  map[string]int64
}

// processConfig is what the service processes are told.
type processConfig struct {
	kafka     kafkaio.Config
	ch        chstore.Config
	key       []byte
	index     *edm.Index
	hookURL   string
	secret    []byte
	dir       string // for the binaries and the EDM index
	logs      io.Writer
	store     *chstore.Store
	partition int
	sinkBatch int           // LEAKLINE_SINK_BATCH when > 0
	sinkFlush time.Duration // LEAKLINE_SINK_FLUSH when > 0
	lateness  time.Duration // the detector's LEAKLINE_ALLOWED_LATENESS
}

func startProcesses(ctx context.Context, pc processConfig) (*processes, error) {
	bins, err := fleet.Build(ctx, filepath.Join(pc.dir, "bin"), processServices...)
	if err != nil {
		return nil, fmt.Errorf("loadtest: -processes builds the services with the go command from inside the Leakline module: %w", err)
	}
	idxPath := filepath.Join(pc.dir, "crm.edm")
	f, err := os.Create(idxPath)
	if err != nil {
		return nil, fmt.Errorf("loadtest: edm index: %w", err)
	}
	if _, err := pc.index.WriteTo(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("loadtest: edm index: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("loadtest: edm index: %w", err)
	}
	common := []string{
		"LEAKLINE_KAFKA_BROKERS=" + strings.Join(pc.kafka.Brokers, ","),
		"LEAKLINE_PARTITIONS=" + strconv.Itoa(pc.partition),
		"LEAKLINE_LOG_LEVEL=warn",
	}
	env := map[string][]string{
		"normalizer": common,
		"detector": append(append([]string(nil), common...), "LEAKLINE_HMAC_KEY="+hex.EncodeToString(pc.key), "LEAKLINE_EDM_INDEX="+idxPath,
			"LEAKLINE_ALLOWED_LATENESS="+pc.lateness.String()),
		"chsink": append(append([]string(nil), common...), "LEAKLINE_CLICKHOUSE_ADDR="+pc.ch.Addr, "LEAKLINE_CLICKHOUSE_DATABASE="+pc.ch.Database),
		"pager":  append(append([]string(nil), common...), "LEAKLINE_WEBHOOK_SECRET="+string(pc.secret)),
	}
	if pc.sinkBatch > 0 {
		env["chsink"] = append(env["chsink"], "LEAKLINE_SINK_BATCH="+strconv.Itoa(pc.sinkBatch))
	}
	if pc.sinkFlush > 0 {
		env["chsink"] = append(env["chsink"], "LEAKLINE_SINK_FLUSH="+pc.sinkFlush.String())
	}
	args := map[string][]string{"pager": {"-webhook-url", pc.hookURL, "-max-age", "0"}}
	s := &processes{procs: map[string]*fleet.Proc{}, store: pc.store, db: pc.ch.Database, peak: map[string]int64{}}
	for _, name := range processServices {
		p, err := fleet.Start(ctx, fleet.Spec{Name: name, Bin: bins[name], Args: args[name], Env: env[name], Stdout: pc.logs})
		if err != nil {
			s.stop()
			return nil, err
		}
		s.procs[name] = p
	}
	for _, name := range processServices {
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := s.procs[name].Ready(rctx)
		cancel()
		if err != nil {
			s.stop()
			return nil, err
		}
	}
	return s, nil
}

// stop records each process's peak RSS and ends it gracefully.
func (s *processes) stop() error {
	s.sampleRSS()
	var errs []error
	for _, name := range processServices {
		if p := s.procs[name]; p != nil {
			if err := p.Stop(processStopTimeout); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// sampleRSS records the peak RSS (VmHWM) of the processes still running.
// Only a running process's VmHWM is used: after exit, the kernel's maximum
// RSS of a child started by a Go program (vfork-style clone) includes the
// parent's resident set at the time of the fork, which would make every
// small service look as big as the load test.
func (s *processes) sampleRSS() {
	for name, p := range s.procs {
		if p.Exited() {
			continue
		}
		if rss, err := p.PeakRSS(); err == nil && !p.Exited() {
			s.peak[name] = max(s.peak[name], rss)
		}
	}
}

func (s *processes) run(ctx context.Context) error {
	exited := make(chan string, len(s.procs))
	for name, p := range s.procs {
		go func() {
			select {
			case <-p.Done():
				exited <- name
			case <-ctx.Done():
			}
		}()
	}
	select {
	case <-ctx.Done():
		return s.stop()
	case name := <-exited:
		p := s.procs[name]
		err := fmt.Errorf("loadtest: service %s exited:\n%s", name, p.Output())
		return errors.Join(err, s.stop())
	}
}

func (s *processes) eventsStored(ctx context.Context) (uint64, error) {
	var n uint64
	if err := s.store.Conn().QueryRow(ctx, "SELECT count() FROM "+s.db+".events").Scan(&n); err != nil {
		return 0, fmt.Errorf("loadtest: count events: %w", err)
	}
	return n, nil
}

// metricSum sums the samples of a counter over its label sets from the
// named service's /metrics.
func (s *processes) metricSum(ctx context.Context, service, name string) (float64, error) {
	m, err := s.procs[service].Metrics(ctx)
	if err != nil {
		return 0, err
	}
	var sum float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			sum += v
		}
	}
	return sum, nil
}

func (s *processes) findings(ctx context.Context) uint64 {
	v, _ := s.metricSum(ctx, "detector", "leakline_findings_total")
	return uint64(v)
}

func (s *processes) lateEvents(ctx context.Context) (uint64, error) {
	v, err := s.metricSum(ctx, "detector", "leakline_late_events_total")
	return uint64(v), err
}

// settled waits until the normalizer's consumer group has committed every
// raw event written so far.
func (s *processes) settled(lag *lagReader) func(context.Context, int) error {
	return func(ctx context.Context, _ int) error {
		for {
			l, err := lag.Lag(ctx)
			if err == nil && l["leakline-normalizer"] == 0 {
				return nil
			}
			if err := sleep(ctx, 5*time.Millisecond); err != nil {
				return err
			}
		}
	}
}

func (s *processes) pollEvery() time.Duration { return 100 * time.Millisecond }

func (s *processes) memory() map[string]int64 {
	s.sampleRSS()
	out := map[string]int64{}
	for name, v := range s.peak {
		out[name] = v
	}
	return out
}

func (s *processes) rssMB() map[string]float64 {
	out := make(map[string]float64, len(s.procs))
	for name, p := range s.procs {
		if p.Exited() {
			continue
		}
		if rss, err := currentRSS(p.PID()); err == nil && !p.Exited() {
			out[name] = float64(rss) / 1e6
		}
	}
	return out
}

func (s *processes) cpu() map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, p := range s.procs {
		if p.Exited() {
			continue
		}
		if d, err := procCPU(p.PID()); err == nil {
			out[name] = d
		}
	}
	return out
}
