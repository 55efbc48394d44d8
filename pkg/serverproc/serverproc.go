// Package serverproc runs a private server process for tests and the local
// demo, as pkg/chserver (ClickHouse) and pkg/amserver (Alertmanager) do: in a
// process group of its own that the kernel kills when the starting process
// dies (on Linux), with the group signalled as a whole to pause, resume,
// stop (SIGTERM, then SIGKILL after a grace period) or kill it, the tail of
// its output kept for error messages, and helpers to pick free loopback
// ports, find the server executable and read the tail of its log file.
package serverproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// OutputTail is how many bytes of a process's output Process.Output keeps.
const OutputTail = 8192

// Process is one run of a server executable. Its methods are safe for
// concurrent use.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait returned
	err  error         // cmd.Wait's result, valid after done
	out  *TailBuffer
}

// Start starts cmd in a process group of its own, so that signals reach
// every process the server may spawn and none from the terminal reach it;
// on Linux the kernel also kills the server when the process that started
// it dies (e.g. a test binary killed by its -timeout). The server's stdout
// and stderr go to out if it is not nil; their last OutputTail bytes are kept
// either way. Start sets cmd.Stdout, cmd.Stderr and cmd.SysProcAttr; the
// error is cmd.Start's.
func Start(cmd *exec.Cmd, out io.Writer) (*Process, error) {
	tail := &TailBuffer{Max: OutputTail}
	var w io.Writer = tail
	if out != nil {
		w = io.MultiWriter(tail, out)
	}
	cmd.Stdout, cmd.Stderr = w, w
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan struct{}), out: tail}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id of the server, which leads its process group.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the server has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the server has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the server exited (exec.Cmd.Wait's result); valid once Done is
// closed.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Output returns the last OutputTail bytes the server printed.
func (p *Process) Output() string { return p.out.String() }

// Signal sends sig to the server's process group.
func (p *Process) Signal(sig syscall.Signal) error {
	if err := signalGroup(p.PID(), sig); err != nil {
		return fmt.Errorf("signal %v: %w", sig, err)
	}
	return nil
}

// Pause stops the process group with SIGSTOP: connections stay open but
// nothing answers, like a hung or partitioned server.
func (p *Process) Pause() error { return p.Signal(sigStop) }

// Resume continues a paused process group with SIGCONT.
func (p *Process) Resume() error { return p.Signal(sigCont) }

// Kill sends SIGKILL to the process group, as a crash would, and waits until
// the server has exited.
func (p *Process) Kill() {
	_ = signalGroup(p.PID(), syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM to the process group, and SIGCONT so that a paused
// group acts on it (a running one ignores it), and waits for the server to
// exit. After grace it kills the group and returns false; it returns true
// when the server exited by itself, or had already.
func (p *Process) Stop(grace time.Duration) bool {
	if p.Exited() {
		return true
	}
	_ = signalGroup(p.PID(), syscall.SIGTERM)
	_ = signalGroup(p.PID(), sigCont)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		p.Kill()
		return false
	}
}

// FindExecutable returns the first of names found on PATH or, failing that,
// as an executable file in one of dirs, trying the names in order. It
// returns "" if there is none.
func FindExecutable(names, dirs []string) string {
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, dir := range dirs {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p
			}
		}
	}
	return ""
}

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago. Another process may take one before the server binds it; callers
// detect that and retry with new ports.
func FreePorts(n int) ([]int, error) {
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

// TailBuffer is an io.Writer that keeps the last Max bytes written to it.
// It is safe for concurrent use.
type TailBuffer struct {
	// Max is how many bytes to keep.
	Max int

	mu  sync.Mutex
	buf []byte
}

// Write appends p, dropping what exceeds Max from the front.
func (t *TailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.Max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.Max:]...)
	}
	return len(p), nil
}

// String returns the bytes kept.
func (t *TailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// TailFile returns up to the last n bytes of a file after offset from,
// starting at a line unless the tail begins at from. A from beyond the end
// (the file was truncated or rotated) counts as 0. It returns "" if the file
// cannot be read.
func TailFile(path string, from, n int64) string {
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

// Poll calls probe at once and then every interval until probe reports
// done, the server exits, or ctx is done, checking for an exit before each
// call and while it waits. It returns which of the three happened (neither
// done nor exited: ctx is done) and probe's last error.
func (p *Process) Poll(ctx context.Context, interval time.Duration, probe func(context.Context) (done bool, err error)) (done, exited bool, last error) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return false, true, last
		default:
		}
		if done, last = probe(ctx); done {
			return true, false, last
		}
		select {
		case <-p.done:
			return false, true, last
		case <-ctx.Done():
			return false, false, last
		case <-tick.C:
		}
	}
}
