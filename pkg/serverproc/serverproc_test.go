package serverproc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestTailBuffer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max    int
		writes []string
		want   string
	}{
		{"empty", 4, nil, ""},
		{"under max", 4, []string{"ab"}, "ab"},
		{"exactly max", 4, []string{"ab", "cd"}, "abcd"},
		{"drops front", 4, []string{"abc", "def"}, "cdef"},
		{"one long write", 3, []string{"abcdefg"}, "efg"},
		{"zero max", 0, []string{"abc"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &TailBuffer{Max: tc.max}
			for _, w := range tc.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := b.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTailFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	const content = "one\ntwo\nthree\nfour\n" // lines start at 0, 4, 8, 14
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		path    string
		from, n int64
		want    string
	}{
		{"whole file", path, 0, 100, content},
		{"cut to a line", path, 0, 8, "four\n"},
		{"cut mid line drops it", path, 0, 12, "three\nfour\n"},
		{"from an offset", path, 8, 100, "three\nfour\n"},
		{"tail begins at from", path, 14, 5, "four\n"},
		{"from beyond end is 0", path, 1000, 100, content},
		{"from at end", path, int64(len(content)), 100, ""},
		{"cut inside the last line", path, 0, 3, ""},
		{"missing file", filepath.Join(t.TempDir(), "none"), 0, 100, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := TailFile(tc.path, tc.from, tc.n); got != tc.want {
				t.Errorf("TailFile(%d, %d) = %q, want %q", tc.from, tc.n, got, tc.want)
			}
		})
	}
}

func TestFindExecutable(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"exe": 0o755, "plain": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", "")
	for _, tc := range []struct {
		name  string
		names []string
		dirs  []string
		want  string
	}{
		{"found in dir", []string{"exe"}, []string{dir}, filepath.Join(dir, "exe")},
		{"first name wins", []string{"missing", "exe"}, []string{dir}, filepath.Join(dir, "exe")},
		{"not executable", []string{"plain"}, []string{dir}, ""},
		{"directory", []string{"subdir"}, []string{dir}, ""},
		{"no dirs", []string{"exe"}, nil, ""},
		{"nothing", nil, []string{dir}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FindExecutable(tc.names, tc.dirs); got != tc.want {
				t.Errorf("FindExecutable(%q, %q) = %q, want %q", tc.names, tc.dirs, got, tc.want)
			}
		})
	}
}

func TestMakeDir(t *testing.T) {
	in := &Instance{Name: "test"}
	dir, err := in.MakeDir("", "serverproc-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || dir != in.Dir || !in.RemoveDir ||
		!strings.HasPrefix(filepath.Base(dir), "serverproc-test-") {
		t.Errorf("MakeDir(\"\") = %q; Dir %q RemoveDir %v; stat: %v", dir, in.Dir, in.RemoveDir, err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dir, want string }{
		{"rel", filepath.Join(wd, "rel")},
		{"/abs/x/../y", "/abs/y"},
	} {
		if got, err := in.MakeDir(tc.dir, "unused-"); got != tc.want || in.Dir != tc.want || in.RemoveDir || err != nil {
			t.Errorf("MakeDir(%q) = %q, %v; Dir %q RemoveDir %v; want %q", tc.dir, got, err, in.Dir, in.RemoveDir, tc.want)
		}
	}
}

func TestFreePorts(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		ports, err := FreePorts(n)
		if err != nil || len(ports) != n {
			t.Fatalf("FreePorts(%d) = %v, %v", n, ports, err)
		}
		seen := map[int]bool{}
		for _, p := range ports {
			if p <= 0 || seen[p] {
				t.Errorf("FreePorts(%d) = %v: bad or repeated port", n, ports)
			}
			seen[p] = true
		}
	}
}

// TestProcess runs small shell scripts through Stop, Kill and Poll.
func TestProcess(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs /bin/sh and process groups")
	}
	start := func(t *testing.T, script string) *Process {
		t.Helper()
		var out TailBuffer
		out.Max = 100
		p, err := Start(exec.Command("/bin/sh", "-c", script), &out)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Kill)
		return p
	}
	t.Run("stop", func(t *testing.T) {
		p := start(t, "echo hi; exec sleep 60")
		if !p.Stop(10 * time.Second) {
			t.Error("Stop killed a process that obeys SIGTERM")
		}
		if !p.Exited() || p.Err() == nil {
			t.Errorf("after Stop: Exited %v, Err %v", p.Exited(), p.Err())
		}
	})
	t.Run("stop paused", func(t *testing.T) {
		p := start(t, "exec sleep 60")
		if err := p.Pause(); err != nil {
			t.Fatal(err)
		}
		if !p.Stop(10 * time.Second) {
			t.Error("Stop killed a paused process instead of resuming it")
		}
	})
	t.Run("stop ignoring SIGTERM", func(t *testing.T) {
		p := start(t, `trap "" TERM; echo ready; while :; do sleep 0.05; done`)
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.Output(), "ready"); { // the trap is set
			if time.Now().After(deadline) {
				t.Fatal("script did not start")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if p.Stop(200 * time.Millisecond) {
			t.Error("Stop reported a graceful exit for a process ignoring SIGTERM")
		}
		if !p.Exited() {
			t.Error("still running after Stop")
		}
	})
	t.Run("poll", func(t *testing.T) {
		ctx := context.Background()
		p := start(t, "exec sleep 60")
		calls := 0
		done, exited, last := p.Poll(ctx, time.Millisecond, func(context.Context) (bool, error) {
			calls++
			return calls == 3, errors.New("probe")
		})
		if !done || exited || last == nil || calls != 3 {
			t.Errorf("ready: done %v exited %v last %v calls %d", done, exited, last, calls)
		}
		tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		done, exited, _ = p.Poll(tctx, time.Millisecond, func(context.Context) (bool, error) { return false, nil })
		if done || exited {
			t.Errorf("timeout: done %v exited %v", done, exited)
		}
		p.Kill()
		done, exited, _ = p.Poll(ctx, time.Millisecond, func(context.Context) (bool, error) { return true, nil })
		if done || !exited {
			t.Errorf("exit: done %v exited %v", done, exited)
		}
		if p.Err() == nil {
			t.Error("Err after Kill is nil")
		}
	})
}

// TestInstance walks an Instance of a sleeping shell through its lifecycle.
func TestInstance(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs /bin/sh and process groups")
	}
	errStopped := errors.New("stopped")
	launches := 0
	in := &Instance{Name: "test", Server: "sleeper", ErrStopped: errStopped, Grace: 10 * time.Second}
	in.Launch = func(context.Context) (*Process, error) {
		launches++
		return Start(exec.Command("/bin/sh", "-c", "echo up; exec sleep 60"), nil)
	}
	dir, err := in.MakeDir("", "serverproc-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	if in.PID() != 0 || in.Output() != "" {
		t.Errorf("before Run: PID %d Output %q", in.PID(), in.Output())
	}
	if err := in.Signal((*Process).Pause); err == nil || err.Error() != "test: sleeper not running" {
		t.Errorf("Signal before Run = %v", err)
	}
	for _, step := range []struct {
		name    string
		do      func() error
		running bool
	}{
		{"run", func() error { return in.Run(ctx) }, true},
		{"pause", func() error { return in.Signal((*Process).Pause) }, true},
		{"resume", func() error { return in.Signal((*Process).Resume) }, true},
		{"restart paused", func() error {
			if err := in.Signal((*Process).Pause); err != nil {
				return err
			}
			return in.Run(ctx)
		}, true},
		{"kill", in.Kill, false},
		{"kill again", in.Kill, false},
		{"run after kill", func() error { return in.Run(ctx) }, true},
		{"halt", in.Halt, false},
		{"halt again", in.Halt, false},
		{"run after halt", func() error { return in.Run(ctx) }, true},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if pid := in.PID(); (pid != 0) != step.running {
			t.Errorf("after %s: PID %d, want running %v", step.name, pid, step.running)
		}
	}
	if launches != 4 {
		t.Errorf("Launch called %d times, want 4", launches)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("dir after Halt and Run: %v", err)
	}
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("dir after Stop: %v", err)
	}
	if err := in.Stop(); err != nil {
		t.Errorf("second Stop = %v", err)
	}
	for name, f := range map[string]func() error{
		"Run":    func() error { return in.Run(ctx) },
		"Kill":   in.Kill,
		"Halt":   in.Halt,
		"Signal": func() error { return in.Signal((*Process).Resume) },
	} {
		if err := f(); err != errStopped {
			t.Errorf("%s after Stop = %v, want ErrStopped", name, err)
		}
	}
	if in.PID() != 0 || launches != 4 {
		t.Errorf("after Stop: PID %d, launches %d", in.PID(), launches)
	}
}
