// Package chserver runs a private ClickHouse server for tests and the local
// demo: its own config, data directory and loopback ports, in its own process
// group, with helpers to inject faults (pause, kill, restart on the same data).
//
// It works with ClickHouse 18.16 (the Debian package) and current releases:
// the config uses only settings 18.16 knows, the root element <yandex> that
// every release still accepts, and readiness is checked over the Native
// protocol, the only one clickhouse-go speaks to 18.16.
package chserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Options configure Start. The zero value is usable.
type Options struct {
	// Binary is the server executable. Default: clickhouse-server, then
	// clickhouse (run as "clickhouse server"), looked up on PATH and in
	// /usr/sbin and /usr/bin.
	Binary string
	// Dir holds config, data and logs. Default: a new temporary directory,
	// removed by Stop. A given Dir is kept.
	Dir string
	// Stdout receives the server's stdout and stderr. Default: discarded
	// (the last few KiB are kept for error messages either way).
	Stdout io.Writer
	// ReadyTimeout bounds how long Start (and Restart) wait for the server
	// to answer a query. Default 30 s.
	ReadyTimeout time.Duration
}

// DefaultReadyTimeout is the ReadyTimeout used when Options leaves it zero.
const DefaultReadyTimeout = 30 * time.Second

// stopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const stopTimeout = 10 * time.Second

// startAttempts is how often Start tries fresh ports when a port it picked
// was taken by someone else before the server could bind it.
const startAttempts = 3

// ErrNoBinary is returned by Start when no server executable can be found;
// tests use it to tell "not installed" from "broken".
var ErrNoBinary = errors.New("chserver: no ClickHouse server binary")

// ErrStopped is returned by operations on a server that Stop has stopped.
var ErrStopped = errors.New("chserver: server stopped")

// Server is a running private ClickHouse server. Its methods are safe for
// concurrent use.
type Server struct {
	binary     string
	args       []string // before --config-file
	dir        string
	ownDir     bool
	stdout     io.Writer
	readyTO    time.Duration
	tcpPort    int
	httpPort   int
	instanceID string // a macro in the config, to recognise our own server

	mu      sync.Mutex
	proc    *process // nil after Kill/exit until Restart
	stopped bool
}

// process is one run of the server binary.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait returned
	err  error         // cmd.Wait's result, valid after done
	out  *tailBuffer
	// logOffset is the error log's size when this run started.
	logOffset int64
}

// Start writes a config into opt.Dir (or a new temporary directory), starts
// the server on free loopback ports and waits until it answers a query over
// the Native protocol. If the server exits during startup, the error carries
// the tail of its error log. If another process took a picked port before the
// server bound it, Start retries with new ports (up to 3 attempts).
func Start(ctx context.Context, opt Options) (*Server, error) {
	binary, args, err := findBinary(opt.Binary)
	if err != nil {
		return nil, err
	}
	s := &Server{
		binary:  binary,
		args:    args,
		dir:     opt.Dir,
		stdout:  opt.Stdout,
		readyTO: opt.ReadyTimeout,
	}
	if s.readyTO <= 0 {
		s.readyTO = DefaultReadyTimeout
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("chserver: instance id: %w", err)
	}
	s.instanceID = hex.EncodeToString(id[:])
	if s.dir == "" {
		d, err := os.MkdirTemp("", "chserver-")
		if err != nil {
			return nil, fmt.Errorf("chserver: create dir: %w", err)
		}
		s.dir, s.ownDir = d, true
	} else if s.dir, err = filepath.Abs(s.dir); err != nil {
		return nil, fmt.Errorf("chserver: dir: %w", err)
	}

	fail := func(err error) (*Server, error) {
		if s.ownDir {
			os.RemoveAll(s.dir)
		}
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		ports, err := pickPorts(2)
		if err != nil {
			return fail(fmt.Errorf("chserver: pick ports: %w", err))
		}
		s.tcpPort, s.httpPort = ports[0], ports[1]
		if err := s.writeConfig(); err != nil {
			return fail(err)
		}
		err = s.launch(ctx)
		if err == nil {
			return s, nil
		}
		var be *bindError
		if !errors.As(err, &be) || attempt >= startAttempts {
			if be != nil {
				err = fmt.Errorf("%w (gave up after %d attempts with fresh ports)", err, attempt)
			}
			return fail(err)
		}
	}
}

// Addr is the Native protocol address, host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.tcpPort))
}

// HTTPAddr is the HTTP interface address, host:port.
func (s *Server) HTTPAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.httpPort))
}

// Dir is the directory holding config, data and logs.
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

// ErrorLogTail returns the last bytes of the server's error log, to explain
// a failure in a test message.
func (s *Server) ErrorLogTail() string {
	return tailFile(s.errorLog(), 0, 4096)
}

func (s *Server) errorLog() string {
	return filepath.Join(s.dir, "log", "clickhouse-server.err.log")
}

// Stop terminates the server (SIGTERM, then SIGKILL after 10 s), and removes
// its directory if Start created it. Stop is idempotent; later calls return
// nil.
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
			errs = append(errs, fmt.Errorf("chserver: remove dir: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Pause stops the server's processes with SIGSTOP: connections stay open but
// nothing answers, like a hung or partitioned server.
func (s *Server) Pause() error { return s.signal(sigStop) }

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() error { return s.signal(sigCont) }

// Kill ends the server with SIGKILL, as a crash would, and waits until it
// has exited. The data directory stays; Restart starts it again.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	p.kill()
	return nil
}

// Restart starts the server again on the same ports and data directory and
// waits until it is ready. A running server is first stopped gracefully
// (SIGTERM); after Kill it is simply started. Restart after Stop fails with
// ErrStopped.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if p := s.proc; p != nil {
		s.proc = nil
		// If SIGTERM is not enough, terminate kills the server; the data
		// directory survives either way, so start regardless.
		_ = p.terminate(stopTimeout)
	}
	return s.launchLocked(ctx)
}

// Version asks the running server for its version, e.g. "18.16.1".
func (s *Server) Version(ctx context.Context) (string, error) {
	conn, err := s.open(5 * time.Second)
	if err != nil {
		return "", fmt.Errorf("chserver: version: %w", err)
	}
	defer conn.Close()
	var v string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return "", fmt.Errorf("chserver: version: %w", err)
	}
	return v, nil
}

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if s.proc == nil || s.proc.exited() {
		return errors.New("chserver: server not running")
	}
	if err := signalGroup(s.proc.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("chserver: signal %v: %w", sig, err)
	}
	return nil
}

// launch starts the process and waits until it is ready.
func (s *Server) launch(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.launchLocked(ctx)
}

func (s *Server) launchLocked(ctx context.Context) error {
	args := append(append([]string(nil), s.args...), "--config-file="+filepath.Join(s.dir, "config.xml"))
	cmd := exec.Command(s.binary, args...)
	cmd.Dir = s.dir
	// A watchdog parent process would make PID and signals refer to the
	// wrong process; current releases only start one when daemonised, but
	// say so explicitly.
	cmd.Env = append(os.Environ(), "CLICKHOUSE_WATCHDOG_ENABLE=0")
	out := &tailBuffer{max: 8192}
	var w io.Writer = out
	if s.stdout != nil {
		w = io.MultiWriter(out, s.stdout)
	}
	cmd.Stdout, cmd.Stderr = w, w
	setProcAttr(cmd)
	// A failure reports this run's part of the error log only.
	var logOffset int64
	if fi, err := os.Stat(s.errorLog()); err == nil {
		logOffset = fi.Size()
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("chserver: start %s: %w", s.binary, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), out: out, logOffset: logOffset}
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

// waitReady polls until the server answers as itself, exits, or time is up.
func (s *Server) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, s.readyTO)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		select {
		case <-p.done:
			return s.exitError(p)
		default:
		}
		lastErr = s.probe(ctx, p)
		var be *bindError
		if lastErr == nil || errors.As(lastErr, &be) {
			return lastErr
		}
		select {
		case <-p.done:
			return s.exitError(p)
		case <-ctx.Done():
			return fmt.Errorf("chserver: server on %s not ready within %v (%v): last probe: %v%s",
				s.Addr(), s.readyTO, context.Cause(ctx), lastErr, s.logs(p))
		case <-tick.C:
		}
	}
}

// probe runs a query that only our own server answers correctly: if another
// server grabbed our port in the meantime, its macros differ. The probe's
// connection is closed as soon as the process exits, so a probe stuck on a
// port held by another process does not delay the exit error.
func (s *Server) probe(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.Addr())
	if err != nil {
		return err
	}
	defer c.Close()
	go func() {
		select {
		case <-p.done:
		case <-ctx.Done():
		}
		c.Close()
	}()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol:     clickhouse.Native,
		Addr:         []string{s.Addr()},
		DialContext:  func(context.Context, string) (net.Conn, error) { return c, nil },
		DialTimeout:  2 * time.Second,
		ReadTimeout:  2 * time.Second,
		MaxOpenConns: 1,
		MaxIdleConns: 1,
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	var id string
	err = conn.QueryRow(ctx, "SELECT substitution FROM system.macros WHERE macro = 'chserver_instance'").Scan(&id)
	if err != nil {
		return err
	}
	if id != s.instanceID {
		return &bindError{msg: fmt.Sprintf("port %d answered by another ClickHouse server", s.tcpPort)}
	}
	return nil
}

func (s *Server) open(timeout time.Duration) (clickhouse.Conn, error) {
	return clickhouse.Open(&clickhouse.Options{
		Protocol:     clickhouse.Native,
		Addr:         []string{s.Addr()},
		DialTimeout:  timeout,
		ReadTimeout:  timeout,
		MaxOpenConns: 1,
		MaxIdleConns: 1,
	})
}

func (s *Server) exitError(p *process) error {
	msg := fmt.Sprintf("chserver: server exited during startup (%v)%s", p.err, s.logs(p))
	if strings.Contains(msg, "Address already in use") {
		return &bindError{msg: msg}
	}
	return errors.New(msg)
}

// logs formats the tails of the error log and of the console output.
func (s *Server) logs(p *process) string {
	var b strings.Builder
	if t := strings.TrimSpace(tailFile(s.errorLog(), p.logOffset, 4096)); t != "" {
		b.WriteString("\n--- error log tail ---\n")
		b.WriteString(t)
	}
	if t := strings.TrimSpace(p.out.String()); t != "" {
		b.WriteString("\n--- output tail ---\n")
		b.WriteString(t)
	}
	return b.String()
}

// bindError marks a start that failed because a port was taken.
type bindError struct{ msg string }

func (e *bindError) Error() string { return e.msg }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// terminate sends SIGTERM (and SIGCONT, in case the server is paused) to the
// process group and waits; after timeout it kills the group.
func (p *process) terminate(timeout time.Duration) error {
	if p.exited() {
		return nil
	}
	pid := p.cmd.Process.Pid
	_ = signalGroup(pid, syscall.SIGTERM)
	_ = signalGroup(pid, sigCont)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		p.kill()
		return fmt.Errorf("chserver: server did not stop within %v of SIGTERM; killed", timeout)
	}
}

// kill sends SIGKILL to the process group and waits for the exit.
func (p *process) kill() {
	_ = signalGroup(p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// findBinary resolves Options.Binary into an executable and its leading
// arguments ("server" for the multi-tool clickhouse binary).
func findBinary(bin string) (string, []string, error) {
	argsFor := func(path string) []string {
		if filepath.Base(path) == "clickhouse" {
			return []string{"server"}
		}
		return nil
	}
	if bin != "" {
		p, err := exec.LookPath(bin)
		if err != nil {
			return "", nil, fmt.Errorf("%w: %q: %w", ErrNoBinary, bin, err)
		}
		return p, argsFor(p), nil
	}
	for _, name := range []string{"clickhouse-server", "clickhouse"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, argsFor(p), nil
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p, argsFor(p), nil
			}
		}
	}
	return "", nil, fmt.Errorf("%w: no clickhouse-server or clickhouse on PATH, in /usr/sbin or /usr/bin (Debian: apt-get install clickhouse-server)", ErrNoBinary)
}

// pickPorts returns n distinct free loopback ports. They are free when
// returned; someone may take them before the server binds them, which Start
// detects and retries. A variable so tests can simulate the race.
var pickPorts = func(n int) ([]int, error) {
	ports := make([]int, 0, n)
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
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

// tailFile returns up to the last n bytes of a file after offset from,
// starting at a line.
func tailFile(path string, from, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	if from > fi.Size() { // truncated or rotated
		from = 0
	}
	off := max(fi.Size()-n, from)
	b := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	if off > from {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
