package serverproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Instance is the lifecycle a private server shares with the others: one
// run (Process) at a time, killed and restarted at will on the same
// directory, until Stop ends it for good and removes the directory if asked
// to. Set the exported fields before the first call and do not copy an
// Instance after that. Its methods are safe for concurrent use.
type Instance struct {
	// Name starts every error message, e.g. "chserver".
	Name string
	// Server names the server in error messages, e.g. "server" or
	// "Alertmanager".
	Server string
	// Dir is the server's directory; Stop removes it if RemoveDir is set.
	// MakeDir sets both.
	Dir       string
	RemoveDir bool
	// ErrStopped is what Kill, Run and Signal return after Stop.
	ErrStopped error
	// Grace is how long Stop and Run wait after SIGTERM before SIGKILL.
	Grace time.Duration
	// Launch starts a run and waits until it is ready. If that fails, it
	// leaves nothing running and returns the error.
	Launch func(ctx context.Context) (*Process, error)

	mu      sync.Mutex
	proc    *Process // nil after Kill, or a failed Run, until the next Run
	stopped bool
}

// MakeDir sets Dir to the absolute form of dir or, if dir is empty, to a
// new temporary directory named after pattern (as os.MkdirTemp) that Stop
// removes, and returns Dir.
func (in *Instance) MakeDir(dir, pattern string) (string, error) {
	in.RemoveDir = false
	if dir == "" {
		d, err := os.MkdirTemp("", pattern)
		if err != nil {
			return "", fmt.Errorf("%s: create dir: %w", in.Name, err)
		}
		in.Dir, in.RemoveDir = d, true
		return d, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("%s: dir: %w", in.Name, err)
	}
	in.Dir = abs
	return abs, nil
}

// PID is the running server's process id, or 0 if none is running.
func (in *Instance) PID() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.proc == nil || in.proc.Exited() {
		return 0
	}
	return in.proc.PID()
}

// Output returns the last bytes the current run printed, or "" if there is
// none.
func (in *Instance) Output() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.proc == nil {
		return ""
	}
	return in.proc.Output()
}

// Run starts the server with Launch, first stopping a running one with
// SIGTERM (and SIGKILL after Grace; the directory survives either way, so
// Run starts regardless). After Stop it returns ErrStopped.
func (in *Instance) Run(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped {
		return in.ErrStopped
	}
	if p := in.proc; p != nil {
		in.proc = nil
		_ = p.Stop(in.Grace)
	}
	p, err := in.Launch(ctx)
	if err != nil {
		return err
	}
	in.proc = p
	return nil
}

// Kill ends the running server with SIGKILL, as a crash would, and waits
// until it has exited; Run starts it again. After Stop it returns
// ErrStopped.
func (in *Instance) Kill() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped {
		return in.ErrStopped
	}
	if p := in.proc; p != nil {
		in.proc = nil
		p.Kill()
	}
	return nil
}

// Halt stops the running server gracefully (SIGTERM, then SIGKILL after
// Grace), as an operator's stop would, and keeps its directory; Run starts
// it again on the same data. After Stop it returns ErrStopped.
func (in *Instance) Halt() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped {
		return in.ErrStopped
	}
	if p := in.proc; p != nil {
		in.proc = nil
		if !p.Stop(in.Grace) {
			return fmt.Errorf("%s: %s did not stop within %v of SIGTERM; killed", in.Name, in.Server, in.Grace)
		}
	}
	return nil
}

// Signal applies send (such as (*Process).Pause) to the running server. It
// returns ErrStopped after Stop and an error if no server is running.
func (in *Instance) Signal(send func(*Process) error) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped {
		return in.ErrStopped
	}
	if in.proc == nil || in.proc.Exited() {
		return fmt.Errorf("%s: %s not running", in.Name, in.Server)
	}
	if err := send(in.proc); err != nil {
		return fmt.Errorf("%s: %w", in.Name, err)
	}
	return nil
}

// Stop ends the running server (SIGTERM, then SIGKILL after Grace) and
// removes Dir if RemoveDir is set. It is idempotent; later calls return nil.
func (in *Instance) Stop() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped {
		return nil
	}
	in.stopped = true
	var errs []error
	if p := in.proc; p != nil {
		in.proc = nil
		if !p.Stop(in.Grace) {
			errs = append(errs, fmt.Errorf("%s: %s did not stop within %v of SIGTERM; killed", in.Name, in.Server, in.Grace))
		}
	}
	if in.RemoveDir {
		if err := os.RemoveAll(in.Dir); err != nil {
			errs = append(errs, fmt.Errorf("%s: remove dir: %w", in.Name, err))
		}
	}
	return errors.Join(errs...)
}
