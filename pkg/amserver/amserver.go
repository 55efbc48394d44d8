// Package amserver runs a private Prometheus Alertmanager for tests and the
// local demo: its own config, storage directory and loopback port, HA
// clustering disabled, in its own process group. It works with Alertmanager
// 0.25 (the Debian package prometheus-alertmanager) and later releases.
package amserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure Start.
type Options struct {
	// Binary is the Alertmanager executable. Default: prometheus-alertmanager
	// (Debian), then alertmanager, looked up on PATH and in /usr/bin.
	Binary string
	// Dir holds the config and the storage. Default: a new temporary
	// directory, removed by Stop. A given Dir is kept.
	Dir string
	// Config is the alertmanager.yml text. Required; Config(Route{...})
	// writes one.
	Config string
	// Stdout receives the server's output. Default: discarded (the last
	// few KiB are kept for error messages either way).
	Stdout io.Writer
	// ReadyTimeout bounds how long Start and Restart wait for /-/ready.
	// Default DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// DefaultReadyTimeout is the ReadyTimeout used when Options leaves it zero.
const DefaultReadyTimeout = 30 * time.Second

const (
	stopTimeout   = 10 * time.Second
	startAttempts = 3
)

// ErrNoBinary is returned by Start when no Alertmanager executable exists.
var ErrNoBinary = errors.New("amserver: no Alertmanager binary")

// ErrStopped is returned by operations on a stopped server.
var ErrStopped = errors.New("amserver: server stopped")

// Route describes the single route of a test configuration.
type Route struct {
	// WebhookURL receives the notifications. Required.
	WebhookURL string
	// GroupBy labels; empty groups everything together. Default
	// [rule_id, actor_uid], as in the production alertmanager.yml.
	GroupBy []string
	// GroupWait, GroupInterval and RepeatInterval of the route. Defaults
	// 1s, 1s and 1h.
	GroupWait, GroupInterval, RepeatInterval time.Duration
	// ResolveTimeout is the global resolve_timeout. Default 5m.
	ResolveTimeout time.Duration
}

// Config returns an alertmanager.yml with one route to one webhook
// receiver named "webhook" that is also told about resolved alerts.
func Config(r Route) string {
	if len(r.GroupBy) == 0 {
		r.GroupBy = []string{"rule_id", "actor_uid"}
	}
	def := func(d, v time.Duration) time.Duration {
		if v <= 0 {
			return d
		}
		return v
	}
	q := make([]string, len(r.GroupBy))
	for i, l := range r.GroupBy {
		q[i] = strconv.Quote(l)
	}
	return fmt.Sprintf(`global:
  resolve_timeout: %s
route:
  receiver: webhook
  group_by: [%s]
  group_wait: %s
  group_interval: %s
  repeat_interval: %s
receivers:
  - name: webhook
    webhook_configs:
      - url: %s
        send_resolved: true
`, promDuration(def(5*time.Minute, r.ResolveTimeout)), strings.Join(q, ", "),
		promDuration(def(time.Second, r.GroupWait)), promDuration(def(time.Second, r.GroupInterval)),
		promDuration(def(time.Hour, r.RepeatInterval)), strconv.Quote(r.WebhookURL))
}

// promDuration formats d as a Prometheus duration (ms precision).
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// Server is a running private Alertmanager. Its methods are safe for
// concurrent use.
type Server struct {
	binary  string
	dir     string
	ownDir  bool
	stdout  io.Writer
	readyTO time.Duration
	port    int

	mu      sync.Mutex
	proc    *process
	stopped bool
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	out  *tailBuffer
}

// Start writes the config into opt.Dir (or a new temporary directory),
// starts Alertmanager on a free loopback port with clustering disabled and
// waits until /-/ready answers 200. If another process took the port before
// Alertmanager bound it, Start retries with a new port.
func Start(ctx context.Context, opt Options) (*Server, error) {
	bin, err := findBinary(opt.Binary)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(opt.Config) == "" {
		return nil, errors.New("amserver: Options.Config is required")
	}
	s := &Server{binary: bin, dir: opt.Dir, stdout: opt.Stdout, readyTO: opt.ReadyTimeout}
	if s.readyTO <= 0 {
		s.readyTO = DefaultReadyTimeout
	}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "amserver-")
		if err != nil {
			return nil, fmt.Errorf("amserver: create dir: %w", err)
		}
		s.dir, s.ownDir = d, true
	} else if s.dir, err = filepath.Abs(s.dir); err != nil {
		return nil, fmt.Errorf("amserver: dir: %w", err)
	}
	fail := func(err error) (*Server, error) {
		if s.ownDir {
			os.RemoveAll(s.dir)
		}
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "data"), 0o755); err != nil {
		return fail(fmt.Errorf("amserver: %w", err))
	}
	if err := os.WriteFile(s.configFile(), []byte(opt.Config), 0o644); err != nil {
		return fail(fmt.Errorf("amserver: write config: %w", err))
	}
	for attempt := 1; ; attempt++ {
		s.port, err = freePort()
		if err != nil {
			return fail(fmt.Errorf("amserver: pick port: %w", err))
		}
		err = s.launch(ctx)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortTaken) || attempt >= startAttempts {
			return fail(err)
		}
	}
}

var errPortTaken = errors.New("port taken")

func (s *Server) configFile() string { return filepath.Join(s.dir, "alertmanager.yml") }

// URL is the base URL of the API, http://127.0.0.1:PORT.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Addr is host:port of the web listener.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Dir holds the config and the storage.
func (s *Server) Dir() string { return s.dir }

// PID is the server's process id, or 0 if it is not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.exited() {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Output returns the last bytes the server printed.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return ""
	}
	return s.proc.out.String()
}

// Stop terminates the server (SIGTERM, then SIGKILL after 10 s) and removes
// its directory if Start created it. Stop is idempotent.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	var errs []error
	if p := s.proc; p != nil {
		s.proc = nil
		if err := p.terminate(stopTimeout); err != nil {
			errs = append(errs, err)
		}
	}
	if s.ownDir {
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("amserver: remove dir: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
// Restart starts it again on the same port and storage.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if p := s.proc; p != nil {
		s.proc = nil
		p.kill()
	}
	return nil
}

// Restart starts the server again on the same port, config and storage
// (stopping it gracefully first if it runs) and waits until it is ready.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if p := s.proc; p != nil {
		s.proc = nil
		_ = p.terminate(stopTimeout)
	}
	return s.launchLocked(ctx)
}

func (s *Server) launch(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.launchLocked(ctx)
}

func (s *Server) launchLocked(ctx context.Context) error {
	cmd := exec.Command(s.binary,
		"--config.file="+s.configFile(),
		"--storage.path="+filepath.Join(s.dir, "data"),
		"--web.listen-address="+s.Addr(),
		"--cluster.listen-address=",
		"--log.level=info",
	)
	cmd.Dir = s.dir
	out := &tailBuffer{max: 8192}
	var w io.Writer = out
	if s.stdout != nil {
		w = io.MultiWriter(out, s.stdout)
	}
	cmd.Stdout, cmd.Stderr = w, w
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("amserver: start %s: %w", s.binary, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), out: out}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := s.waitReady(ctx, p); err != nil {
		p.kill()
		return err
	}
	s.proc = p
	return nil
}

// waitReady polls /-/ready until it answers 200, the process exits or time
// is up.
func (s *Server) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, s.readyTO)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-p.done:
			return s.exitError(p)
		default:
		}
		last = probe(ctx, client, s.URL()+"/-/ready")
		if last == nil {
			select {
			case <-p.done: // someone else answered on our port
				return s.exitError(p)
			default:
				return nil
			}
		}
		select {
		case <-p.done:
			return s.exitError(p)
		case <-ctx.Done():
			return fmt.Errorf("amserver: Alertmanager on %s not ready within %v: %v\n--- output tail ---\n%s",
				s.Addr(), s.readyTO, last, strings.TrimSpace(p.out.String()))
		case <-tick.C:
		}
	}
}

func probe(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

func (s *Server) exitError(p *process) error {
	out := strings.TrimSpace(p.out.String())
	err := fmt.Errorf("amserver: Alertmanager exited during startup (%v)\n--- output tail ---\n%s", p.err, out)
	if strings.Contains(out, "address already in use") {
		return fmt.Errorf("%w: %w", errPortTaken, err)
	}
	return err
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) terminate(timeout time.Duration) error {
	if p.exited() {
		return nil
	}
	_ = signalGroup(p.cmd.Process.Pid, syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		p.kill()
		return fmt.Errorf("amserver: Alertmanager did not stop within %v of SIGTERM; killed", timeout)
	}
}

func (p *process) kill() {
	_ = signalGroup(p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// findBinary resolves Options.Binary.
func findBinary(bin string) (string, error) {
	if bin != "" {
		p, err := exec.LookPath(bin)
		if err != nil {
			return "", fmt.Errorf("%w: %q: %w", ErrNoBinary, bin, err)
		}
		return p, nil
	}
	for _, name := range []string{"prometheus-alertmanager", "alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		p := filepath.Join("/usr/bin", name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no prometheus-alertmanager or alertmanager on PATH or in /usr/bin (Debian: apt-get install prometheus-alertmanager)", ErrNoBinary)
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
