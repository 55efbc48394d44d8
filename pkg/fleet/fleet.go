// Package fleet runs Leakline's service binaries (services/<name>) as child
// processes, for tests and the load test: it builds them with `go build`,
// starts each with its own observability port, waits for /readyz, scrapes
// /metrics, reads the peak resident memory, and ends them with SIGTERM (a
// graceful shutdown) or SIGKILL (a crash). The process handling itself —
// a process group of its own, killed with the starting process, the tail of
// its output kept — is pkg/serverproc's.
package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/leakline/leakline/pkg/serverproc"
)

// Module is the import path prefix of the service commands Build builds.
const Module = "github.com/leakline/leakline/services/"

// serviceName is what a services/ directory may be called.
var serviceName = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Build compiles services/<name> for every name with one `go build` into
// dir and returns name → binary path. It runs the go command found on PATH
// from the current directory, which must lie inside the Leakline module (a
// test's directory does).
func Build(ctx context.Context, dir string, services ...string) (map[string]string, error) {
	if len(services) == 0 {
		return nil, errors.New("fleet: build: no services named")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fleet: build: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("fleet: build: %w", err)
	}
	out := make(map[string]string, len(services))
	args := []string{"build", "-o", abs + string(filepath.Separator)}
	for _, s := range services {
		if !serviceName.MatchString(s) {
			return nil, fmt.Errorf("fleet: build: %q is not a service name", s)
		}
		if _, dup := out[s]; dup {
			continue
		}
		out[s] = filepath.Join(abs, s)
		args = append(args, Module+s)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("fleet: build: %w", err)
	}
	cmd := exec.CommandContext(ctx, gobin, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("fleet: go build %s: %w\n%s", strings.Join(services, " "), err, b)
	}
	for s, bin := range out {
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("fleet: build %s: %w", s, err)
		}
	}
	return out, nil
}

// Spec describes one process to start.
type Spec struct {
	// Name names the process in errors, e.g. "detector-2".
	Name string
	// Bin is the executable, e.g. from Build.
	Bin string
	// Args are the command-line arguments (flags).
	Args []string
	// Env is added to the environment of the current process (later
	// entries win), e.g. LEAKLINE_KAFKA_BROKERS=…. Start adds
	// LEAKLINE_METRICS_ADDR last, from MetricsAddr.
	Env []string
	// MetricsAddr is where the service serves /metrics, /healthz and
	// /readyz (host:port). Empty: a free loopback port, chosen by Start.
	MetricsAddr string
	// Stdout receives the service's stdout and stderr (its logs); nil
	// discards them. The tail is kept for errors either way.
	Stdout io.Writer
}

// Proc is one running service process. Its methods are safe for concurrent
// use.
type Proc struct {
	spec Spec
	cmd  *exec.Cmd
	proc *serverproc.Process
	http *http.Client

	mu   sync.Mutex
	peak int64 // the largest VmHWM read, in bytes
}

// Start starts the service described by s. It does not wait for it to be
// ready (see Ready). ctx bounds the start only: the process runs until Stop
// or Kill, or until the current process dies (the kernel then kills it).
func Start(ctx context.Context, s Spec) (*Proc, error) {
	if s.Bin == "" {
		return nil, fmt.Errorf("fleet: start %s: no binary", s.Name)
	}
	if s.Name == "" {
		s.Name = filepath.Base(s.Bin)
	}
	if s.MetricsAddr == "" {
		ports, err := serverproc.FreePorts(1)
		if err != nil {
			return nil, fmt.Errorf("fleet: start %s: free port: %w", s.Name, err)
		}
		s.MetricsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	}
	cmd := exec.Command(s.Bin, s.Args...)
	cmd.Env = append(append(os.Environ(), s.Env...), "LEAKLINE_METRICS_ADDR="+s.MetricsAddr)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fleet: start %s: %w", s.Name, err)
	}
	p, err := serverproc.Start(cmd, s.Stdout)
	if err != nil {
		return nil, fmt.Errorf("fleet: start %s: %w", s.Name, err)
	}
	return &Proc{spec: s, cmd: cmd, proc: p, http: &http.Client{Timeout: 5 * time.Second}}, nil
}

// Name is the process's name from its Spec.
func (p *Proc) Name() string { return p.spec.Name }

// MetricsAddr is the address of the process's observability endpoint.
func (p *Proc) MetricsAddr() string { return p.spec.MetricsAddr }

// PID is the process id.
func (p *Proc) PID() int { return p.proc.PID() }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool { return p.proc.Exited() }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.proc.Done() }

// Output returns the last bytes the process printed.
func (p *Proc) Output() string { return p.proc.Output() }

// LineLogger returns a writer for Spec.Stdout that hands each complete
// line of output to logf, prefixed with name — e.g. testing.T.Logf, so
// that a child's logs appear with the test's.
func LineLogger(logf func(format string, args ...any), name string) io.Writer {
	return &lineLogger{logf: logf, name: name}
}

type lineLogger struct {
	logf func(format string, args ...any)
	name string
	mu   sync.Mutex
	buf  []byte
}

func (w *lineLogger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.logf("%s: %s", w.name, w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

// Ready polls http://MetricsAddr/readyz until it answers 200, the process
// exits, or ctx ends.
func (p *Proc) Ready(ctx context.Context) error {
	url := "http://" + p.spec.MetricsAddr + "/readyz"
	done, exited, last := p.proc.Poll(ctx, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := p.http.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("readyz: %s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
		return true, nil
	})
	switch {
	case done:
		return nil
	case exited:
		return fmt.Errorf("fleet: %s exited before it was ready (%v):\n%s", p.spec.Name, p.proc.Err(), p.proc.Output())
	default:
		return fmt.Errorf("fleet: %s not ready: %w (last: %v)", p.spec.Name, ctx.Err(), last)
	}
}

// Kill ends the process with SIGKILL, as a crash would, and waits until it
// has exited. Killing an exited process does nothing.
func (p *Proc) Kill() error {
	p.sample()
	p.proc.Kill()
	return nil
}

// Stop asks the process to shut down with SIGTERM and waits; after timeout
// it kills it with SIGKILL. It returns an error if the process had to be
// killed or exited with a non-zero status (a failed graceful shutdown, or
// an earlier crash).
func (p *Proc) Stop(timeout time.Duration) error {
	p.sample()
	if !p.proc.Stop(timeout) {
		return fmt.Errorf("fleet: %s did not stop within %v of SIGTERM; killed:\n%s", p.spec.Name, timeout, p.proc.Output())
	}
	if err := p.proc.Err(); err != nil {
		return fmt.Errorf("fleet: %s: %w:\n%s", p.spec.Name, err, p.proc.Output())
	}
	return nil
}

// PeakRSS is the peak resident set size of the process in bytes: VmHWM
// from /proc/PID/status while it runs; after it exited, the last value read
// (Kill and Stop read it just before they signal). wait4's ru_maxrss is not
// used: for a child started by fork+exec it can report the parent's RSS at
// the fork. Linux only.
func (p *Proc) PeakRSS() (int64, error) {
	if !p.proc.Exited() {
		if err := p.sample(); err == nil || !p.proc.Exited() {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.peak, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.peak == 0 {
		return 0, fmt.Errorf("fleet: %s: peak RSS unknown (exited before it was read)", p.spec.Name)
	}
	return p.peak, nil
}

// sample reads VmHWM of the running process and keeps the largest value.
func (p *Proc) sample() error {
	hwm, err := StatusBytes(p.proc.PID(), "VmHWM")
	if err != nil {
		return fmt.Errorf("fleet: %s: peak RSS: %w", p.spec.Name, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peak = max(p.peak, hwm)
	return nil
}

// Metrics scrapes http://MetricsAddr/metrics and returns every sample by
// its series: the metric name, then its labels sorted by name, in the text
// format's notation (`leakline_consumer_lag_records{group="g",partition="3",topic="t"}`,
// `go_goroutines`). Histograms and summaries give their _sum, _count and
// _bucket{le=…} or {quantile=…} series.
func (p *Proc) Metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.spec.MetricsAddr+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("fleet: %s: metrics: %w", p.spec.Name, err)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fleet: %s: metrics: %w", p.spec.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fleet: %s: metrics: %s", p.spec.Name, resp.Status)
	}
	m, err := ParseMetrics(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("fleet: %s: %w", p.spec.Name, err)
	}
	return m, nil
}

// ParseMetrics parses the Prometheus text exposition format into samples
// keyed as Metrics describes.
func ParseMetrics(r io.Reader) (map[string]float64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := make(map[string]float64)
	for name, fam := range fams {
		for _, m := range fam.GetMetric() {
			labels := m.GetLabel()
			switch fam.GetType() {
			case dto.MetricType_COUNTER:
				out[series(name, labels)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[series(name, labels)] = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				out[series(name, labels)] = m.GetUntyped().GetValue()
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				out[series(name+"_sum", labels)] = s.GetSampleSum()
				out[series(name+"_count", labels)] = float64(s.GetSampleCount())
				for _, q := range s.GetQuantile() {
					out[series(name, labels, "quantile", strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64))] = q.GetValue()
				}
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				out[series(name+"_sum", labels)] = h.GetSampleSum()
				out[series(name+"_count", labels)] = float64(h.GetSampleCount())
				for _, b := range h.GetBucket() {
					out[series(name+"_bucket", labels, "le", strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return out, nil
}

// Series is the key of one sample in Metrics' result: name, then the
// label pairs (name, value, name, value, …) sorted by label name, values
// quoted as Go strings; an odd trailing item is ignored.
func Series(name string, labels ...string) string {
	pairs := make([][2]string, 0, len(labels)/2)
	for i := 0; i+1 < len(labels); i += 2 {
		pairs = append(pairs, [2]string{labels[i], labels[i+1]})
	}
	if len(pairs) == 0 {
		return name
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i][0] < pairs[j][0] })
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, kv := range pairs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[0])
		b.WriteString("=")
		b.WriteString(strconv.Quote(kv[1]))
	}
	b.WriteByte('}')
	return b.String()
}

// series is Series of a parsed sample, plus extra label pairs.
func series(name string, labels []*dto.LabelPair, extra ...string) string {
	kv := make([]string, 0, 2*len(labels)+len(extra))
	for _, l := range labels {
		kv = append(kv, l.GetName(), l.GetValue())
	}
	return Series(name, append(kv, extra...)...)
}
