// Package chserver runs a private ClickHouse server for tests and the local
// demo: its own config, data directory and loopback ports, in its own process
// group, with helpers to inject faults (pause, kill, halt, restart on the
// same data).
//
// It works with ClickHouse 18.16 (the Debian package) and current releases:
// the config uses only settings 18.16 knows, the root element <yandex> that
// every release still accepts, and readiness is checked over the Native
// protocol, the only one clickhouse-go speaks to 18.16.
package chserver

import (
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
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/leakline/leakline/pkg/serverproc"
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
	// Users are added to the server's users (next to default and
	// readonly), each with a password, for tests of authentication.
	Users []User
	// TLS, when set, also opens the secure Native port (tcp_port_secure,
	// see SecureAddr) with this certificate. The plain port stays open.
	TLS *TLSFiles
}

// User is a ClickHouse user with a password (stored as its SHA-256 in the
// generated users.d file), reachable from loopback only.
type User struct {
	// Name: letters, digits and underscores, not starting with a digit.
	Name     string
	Password string
	// ReadOnly gives the user the readonly profile instead of default.
	ReadOnly bool
}

func (opt Options) validate() error {
	var errs []error
	for _, u := range opt.Users {
		if !userNameRE.MatchString(u.Name) || u.Name == "default" || u.Name == "readonly" {
			errs = append(errs, fmt.Errorf("user name %q: letters, digits and _, not default or readonly", u.Name))
		}
	}
	if opt.TLS != nil && (opt.TLS.CertFile == "" || opt.TLS.KeyFile == "") {
		errs = append(errs, errors.New("TLS needs a certificate file and a key file"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("chserver: options: %w", err)
	}
	return nil
}

// TLSFiles name the server certificate and key (PEM) of the secure port
// and, when ClientCAFile is set, the CA (PEM) whose client certificates it
// demands: a client without one, or with one of another CA, is refused at
// the TLS handshake (mutual TLS; openSSL.server verificationMode strict).
type TLSFiles struct {
	CertFile, KeyFile string
	ClientCAFile      string
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

var userNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ErrStopped is returned by operations on a server that Stop has stopped.
var ErrStopped = errors.New("chserver: server stopped")

// Server is a running private ClickHouse server. Its methods are safe for
// concurrent use.
type Server struct {
	binary     string
	args       []string // before --config-file
	dir        string
	stdout     io.Writer
	readyTO    time.Duration
	tcpPort    int
	httpPort   int
	securePort int // 0 without Options.TLS
	users      []User
	tls        *TLSFiles
	instanceID string // a macro in the config, to recognise our own server

	inst serverproc.Instance // the runs, from Start to Stop
}

// process is one run of the server binary.
type process struct {
	*serverproc.Process
	// logOffset is the error log's size when this run started.
	logOffset int64
}

// Start writes a config into opt.Dir (or a new temporary directory), starts
// the server on free loopback ports and waits until it answers a query over
// the Native protocol. If the server exits during startup, the error carries
// the tail of its error log. If another process took a picked port before the
// server bound it, Start retries with new ports (up to 3 attempts).
func Start(ctx context.Context, opt Options) (*Server, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	binary, args, err := findBinary(opt.Binary)
	if err != nil {
		return nil, err
	}
	s := &Server{
		binary:  binary,
		args:    args,
		stdout:  opt.Stdout,
		readyTO: opt.ReadyTimeout,
		users:   opt.Users,
		tls:     opt.TLS,
	}
	if s.readyTO <= 0 {
		s.readyTO = DefaultReadyTimeout
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("chserver: instance id: %w", err)
	}
	s.instanceID = hex.EncodeToString(id[:])
	s.inst = serverproc.Instance{
		Name:       "chserver",
		Server:     "server",
		ErrStopped: ErrStopped,
		Grace:      stopTimeout,
		Launch:     s.launch,
	}
	if s.dir, err = s.inst.MakeDir(opt.Dir, "chserver-"); err != nil {
		return nil, err
	}

	fail := func(err error) (*Server, error) {
		_ = s.inst.Stop() // nothing runs; removes the directory if ours
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		n := 2
		if s.tls != nil {
			n = 3
		}
		ports, err := pickPorts(n)
		if err != nil {
			return fail(fmt.Errorf("chserver: pick ports: %w", err))
		}
		s.tcpPort, s.httpPort = ports[0], ports[1]
		if s.tls != nil {
			s.securePort = ports[2]
		}
		if err := s.writeConfig(); err != nil {
			return fail(err)
		}
		err = s.inst.Run(ctx)
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

// SecureAddr is the TLS Native protocol address, host:port; empty without
// Options.TLS.
func (s *Server) SecureAddr() string {
	if s.securePort == 0 {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.securePort))
}

// HTTPAddr is the HTTP interface address, host:port.
func (s *Server) HTTPAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.httpPort))
}

// Dir is the directory holding config, data and logs.
func (s *Server) Dir() string { return s.dir }

// PID is the server's process id, or 0 if it is not running.
func (s *Server) PID() int { return s.inst.PID() }

// ErrorLogTail returns the last bytes of the server's error log, to explain
// a failure in a test message.
func (s *Server) ErrorLogTail() string {
	return serverproc.TailFile(s.errorLog(), 0, 4096)
}

func (s *Server) errorLog() string {
	return filepath.Join(s.dir, "log", "clickhouse-server.err.log")
}

// Stop terminates the server (SIGTERM, then SIGKILL after 10 s), and removes
// its directory if Start created it. Stop is idempotent; later calls return
// nil.
func (s *Server) Stop() error { return s.inst.Stop() }

// Pause stops the server's processes with SIGSTOP: connections stay open but
// nothing answers, like a hung or partitioned server.
func (s *Server) Pause() error { return s.inst.Signal((*serverproc.Process).Pause) }

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() error { return s.inst.Signal((*serverproc.Process).Resume) }

// Kill ends the server with SIGKILL, as a crash would, and waits until it
// has exited. The data directory stays; Restart starts it again.
func (s *Server) Kill() error { return s.inst.Kill() }

// Halt stops the server gracefully (SIGTERM, then SIGKILL after 10 s) and
// keeps its data directory; Restart starts it again on the same data.
func (s *Server) Halt() error { return s.inst.Halt() }

// Restart starts the server again on the same ports and data directory and
// waits until it is ready. A running server is first stopped gracefully
// (SIGTERM); after Kill it is simply started. Restart after Stop fails with
// ErrStopped.
func (s *Server) Restart(ctx context.Context) error { return s.inst.Run(ctx) }

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

// launch starts a run of the server and waits until it is ready; if that
// fails, it kills the run.
func (s *Server) launch(ctx context.Context) (*serverproc.Process, error) {
	args := append(append([]string(nil), s.args...), "--config-file="+filepath.Join(s.dir, "config.xml"))
	cmd := exec.Command(s.binary, args...)
	cmd.Dir = s.dir
	// A watchdog parent process would make PID and signals refer to the
	// wrong process; current releases only start one when daemonised, but
	// say so explicitly.
	cmd.Env = append(os.Environ(), "CLICKHOUSE_WATCHDOG_ENABLE=0")
	// A failure reports this run's part of the error log only.
	p := &process{}
	if fi, err := os.Stat(s.errorLog()); err == nil {
		p.logOffset = fi.Size()
	}
	var err error
	if p.Process, err = serverproc.Start(cmd, s.stdout); err != nil {
		return nil, fmt.Errorf("chserver: start %s: %w", s.binary, err)
	}
	if err := s.waitReady(ctx, p); err != nil {
		p.Kill()
		return nil, err
	}
	return p.Process, nil
}

// waitReady polls until the server answers as itself, exits, or time is up.
func (s *Server) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, s.readyTO)
	defer cancel()
	done, exited, lastErr := p.Poll(ctx, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		err := s.probe(ctx, p)
		var be *bindError
		return err == nil || errors.As(err, &be), err
	})
	switch {
	case exited:
		return s.exitError(p)
	case done:
		return lastErr
	}
	return fmt.Errorf("chserver: server on %s not ready within %v (%v): last probe: %v%s",
		s.Addr(), s.readyTO, context.Cause(ctx), lastErr, s.logs(p))
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
		case <-p.Done():
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
	msg := fmt.Sprintf("chserver: server exited during startup (%v)%s", p.Err(), s.logs(p))
	if strings.Contains(msg, "Address already in use") {
		return &bindError{msg: msg}
	}
	return errors.New(msg)
}

// logs formats the tails of the error log and of the console output.
func (s *Server) logs(p *process) string {
	var b strings.Builder
	if t := strings.TrimSpace(serverproc.TailFile(s.errorLog(), p.logOffset, 4096)); t != "" {
		b.WriteString("\n--- error log tail ---\n")
		b.WriteString(t)
	}
	if t := strings.TrimSpace(p.Output()); t != "" {
		b.WriteString("\n--- output tail ---\n")
		b.WriteString(t)
	}
	return b.String()
}

// bindError marks a start that failed because a port was taken.
type bindError struct{ msg string }

func (e *bindError) Error() string { return e.msg }

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
	if p := serverproc.FindExecutable([]string{"clickhouse-server", "clickhouse"}, []string{"/usr/sbin", "/usr/bin"}); p != "" {
		return p, argsFor(p), nil
	}
	return "", nil, fmt.Errorf("%w: no clickhouse-server or clickhouse on PATH, in /usr/sbin or /usr/bin (Debian: apt-get install clickhouse-server)", ErrNoBinary)
}

// pickPorts returns n distinct free loopback ports. They are free when
// returned; someone may take them before the server binds them, which Start
// detects and retries. A variable so tests can simulate the race.
var pickPorts = serverproc.FreePorts
