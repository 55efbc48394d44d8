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
	"time"

	"github.com/leakline/leakline/pkg/serverproc"
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
	stdout  io.Writer
	readyTO time.Duration
	port    int

	inst serverproc.Instance // the runs, from Start to Stop
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
	s := &Server{binary: bin, stdout: opt.Stdout, readyTO: opt.ReadyTimeout}
	if s.readyTO <= 0 {
		s.readyTO = DefaultReadyTimeout
	}
	s.inst = serverproc.Instance{
		Name:       "amserver",
		Server:     "Alertmanager",
		ErrStopped: ErrStopped,
		Grace:      stopTimeout,
		Launch:     s.launch,
	}
	if s.dir, err = s.inst.MakeDir(opt.Dir, "amserver-"); err != nil {
		return nil, err
	}
	fail := func(err error) (*Server, error) {
		_ = s.inst.Stop() // nothing runs; removes the directory if ours
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "data"), 0o755); err != nil {
		return fail(fmt.Errorf("amserver: %w", err))
	}
	if err := os.WriteFile(s.configFile(), []byte(opt.Config), 0o644); err != nil {
		return fail(fmt.Errorf("amserver: write config: %w", err))
	}
	for attempt := 1; ; attempt++ {
		ports, err := serverproc.FreePorts(1)
		if err != nil {
			return fail(fmt.Errorf("amserver: pick port: %w", err))
		}
		s.port = ports[0]
		err = s.inst.Run(ctx)
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
func (s *Server) PID() int { return s.inst.PID() }

// Output returns the last bytes the server printed.
func (s *Server) Output() string { return s.inst.Output() }

// Stop terminates the server (SIGTERM, then SIGKILL after 10 s) and removes
// its directory if Start created it. Stop is idempotent.
func (s *Server) Stop() error { return s.inst.Stop() }

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
// Restart starts it again on the same port and storage.
func (s *Server) Kill() error { return s.inst.Kill() }

// Restart starts the server again on the same port, config and storage
// (stopping it gracefully first if it runs) and waits until it is ready.
func (s *Server) Restart(ctx context.Context) error { return s.inst.Run(ctx) }

// launch starts a run of Alertmanager and waits until it is ready; if that
// fails, it kills the run.
func (s *Server) launch(ctx context.Context) (*serverproc.Process, error) {
	cmd := exec.Command(s.binary,
		"--config.file="+s.configFile(),
		"--storage.path="+filepath.Join(s.dir, "data"),
		"--web.listen-address="+s.Addr(),
		"--cluster.listen-address=",
		"--log.level=info",
	)
	cmd.Dir = s.dir
	p, err := serverproc.Start(cmd, s.stdout)
	if err != nil {
		return nil, fmt.Errorf("amserver: start %s: %w", s.binary, err)
	}
	if err := s.waitReady(ctx, p); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

// waitReady polls /-/ready until it answers 200, the process exits or time
// is up.
func (s *Server) waitReady(ctx context.Context, p *serverproc.Process) error {
	ctx, cancel := context.WithTimeout(ctx, s.readyTO)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	done, exited, last := p.Poll(ctx, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		err := probe(ctx, client, s.URL()+"/-/ready")
		return err == nil, err
	})
	switch {
	case exited, done && p.Exited(): // done and exited: someone else answered on our port
		return s.exitError(p)
	case done:
		return nil
	}
	return fmt.Errorf("amserver: Alertmanager on %s not ready within %v: %v\n--- output tail ---\n%s",
		s.Addr(), s.readyTO, last, strings.TrimSpace(p.Output()))
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

func (s *Server) exitError(p *serverproc.Process) error {
	out := strings.TrimSpace(p.Output())
	err := fmt.Errorf("amserver: Alertmanager exited during startup (%v)\n--- output tail ---\n%s", p.Err(), out)
	if strings.Contains(out, "address already in use") {
		return fmt.Errorf("%w: %w", errPortTaken, err)
	}
	return err
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
	if p := serverproc.FindExecutable([]string{"prometheus-alertmanager", "alertmanager"}, []string{"/usr/bin"}); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("%w: no prometheus-alertmanager or alertmanager on PATH or in /usr/bin (Debian: apt-get install prometheus-alertmanager)", ErrNoBinary)
}
