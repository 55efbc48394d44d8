package chserver_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/leakline/leakline/pkg/chserver"
	"github.com/leakline/leakline/pkg/testenv"
)

// start starts a server, skipping (or failing under CI) if none is
// installed, and failing if an installed one does not start.
func start(t *testing.T, opt chserver.Options) *chserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := chserver.Start(ctx, opt)
	if errors.Is(err, chserver.ErrNoBinary) {
		testenv.Unavailable(t, "ClickHouse", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

func connect(t *testing.T, s *chserver.Server) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{s.Addr()},
		DialTimeout: time.Second,
		ReadTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func queryUInt64(ctx context.Context, conn driver.Conn, q string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var n uint64
	err := conn.QueryRow(ctx, q).Scan(&n)
	return n, err
}

// TestLifecycle walks one server through everything a fault test does with
// it: query, pause/resume, kill, halt, restart on the same data, stop.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	s := start(t, chserver.Options{})
	dir, addr, httpAddr := s.Dir(), s.Addr(), s.HTTPAddr()
	if s.PID() == 0 || addr == httpAddr || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("PID %d Addr %q HTTPAddr %q", s.PID(), addr, httpAddr)
	}
	for _, f := range []string{"config.xml", "users.xml", "users.d/chserver.xml", "data", "log"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("server dir: %v", err)
		}
	}
	v, err := s.Version(ctx)
	if err != nil || v == "" || v[0] < '1' || v[0] > '9' {
		t.Fatalf("Version = %q, %v", v, err)
	}
	t.Logf("ClickHouse %s on %s", v, addr)

	conn := connect(t, s)
	if n, err := queryUInt64(ctx, conn, "SELECT toUInt64(1)"); err != nil || n != 1 {
		t.Fatalf("SELECT 1 = %d, %v", n, err)
	}
	// The users.d override is in effect (it keeps Stop fast with idle
	// pooled connections).
	var poll string
	if err := conn.QueryRow(ctx, "SELECT value FROM system.settings WHERE name = 'poll_interval'").Scan(&poll); err != nil || poll != "1" {
		t.Errorf("poll_interval = %q, %v; want 1", poll, err)
	}
	for _, q := range []string{
		"CREATE TABLE default.kept (n UInt64) ENGINE = MergeTree() ORDER BY n",
		"INSERT INTO default.kept SELECT number FROM system.numbers LIMIT 1000",
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	// Paused: connections are accepted but nothing answers.
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := queryUInt64(ctx, conn, "SELECT toUInt64(1)"); err == nil {
		t.Fatal("query on a paused server succeeded")
	} else if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("query on a paused server took %v to fail", d)
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if n, err := queryUInt64(ctx, conn, "SELECT count() FROM default.kept"); err != nil || n != 1000 {
		t.Fatalf("after Resume: count = %d, %v", n, err)
	}

	// Killed: gone until restarted on the same ports and data.
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if s.PID() != 0 {
		t.Errorf("PID after Kill = %d", s.PID())
	}
	if _, err := queryUInt64(ctx, conn, "SELECT toUInt64(1)"); err == nil {
		t.Fatal("query on a killed server succeeded")
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Addr() != addr || s.HTTPAddr() != httpAddr || s.Dir() != dir || s.PID() == 0 {
		t.Fatalf("after Restart: Addr %s HTTPAddr %s Dir %s PID %d", s.Addr(), s.HTTPAddr(), s.Dir(), s.PID())
	}
	var n uint64
	for range 3 { // the pool may hand out a connection from before the kill
		if n, err = queryUInt64(ctx, conn, "SELECT count() FROM default.kept"); err == nil {
			break
		}
	}
	if err != nil || n != 1000 {
		t.Fatalf("after Kill+Restart: count = %d, %v", n, err)
	}

	// Halted: stopped gracefully, its data kept for Restart.
	if err := s.Halt(); err != nil {
		t.Fatal(err)
	}
	if s.PID() != 0 {
		t.Errorf("PID after Halt = %d", s.PID())
	}
	if _, err := queryUInt64(ctx, conn, "SELECT toUInt64(1)"); err == nil {
		t.Fatal("query on a halted server succeeded")
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 { // the pool may hand out a connection from before the halt
		if n, err = queryUInt64(ctx, conn, "SELECT count() FROM default.kept"); err == nil {
			break
		}
	}
	if err != nil || n != 1000 {
		t.Fatalf("after Halt+Restart: count = %d, %v", n, err)
	}

	// Restart of a running server (graceful) with an idle pooled connection.
	t0 = time.Now()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("graceful restart with an open pool: %v", time.Since(t0))

	// Stop, with an idle pooled connection still open, is prompt, removes
	// the directory and is idempotent.
	t0 = time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("Stop took %v", d)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir after Stop: %v", err)
	}
	if s.PID() != 0 {
		t.Errorf("PID after Stop = %d", s.PID())
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	for name, f := range map[string]func() error{
		"Restart": func() error { return s.Restart(ctx) },
		"Kill":    s.Kill,
		"Halt":    s.Halt,
		"Pause":   s.Pause,
	} {
		if err := f(); !errors.Is(err, chserver.ErrStopped) {
			t.Errorf("%s after Stop = %v, want ErrStopped", name, err)
		}
	}
}

// TestGivenDirAndMinimalUsers covers a caller-provided directory (kept by
// Stop) and a machine without a system users.xml.
func TestGivenDirAndMinimalUsers(t *testing.T) {
	t.Cleanup(chserver.SetSystemUsersConfig(filepath.Join(t.TempDir(), "absent.xml")))
	dir := t.TempDir()
	s := start(t, chserver.Options{Dir: dir})
	if fi, err := os.Lstat(filepath.Join(dir, "users.xml")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("users.xml: %v %v", fi, err)
	}
	if n, err := queryUInt64(context.Background(), connect(t, s), "SELECT toUInt64(7)"); err != nil || n != 7 {
		t.Fatalf("SELECT 7 = %d, %v", n, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "config.xml")); err != nil {
		t.Errorf("given dir not kept: %v", err)
	}
}

// TestPortTaken simulates another process binding a picked port before the
// server does: Start retries with fresh ports, and gives up after 3 tries
// with the server's error log in the error.
func TestPortTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	for _, tc := range []struct {
		name      string
		takenFor  int // how many attempts get the taken port
		wantError bool
	}{
		{"retry succeeds", 1, false},
		{"gives up", 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			t.Cleanup(chserver.SetPickPorts(func(n int) ([]int, error) {
				calls++
				ports, err := chserver.PickPorts(n)
				if err == nil && calls <= tc.takenFor {
					ports[0] = takenPort
				}
				return ports, err
			}))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := chserver.Start(ctx, chserver.Options{})
			if errors.Is(err, chserver.ErrNoBinary) {
				testenv.Unavailable(t, "ClickHouse", err)
			}
			if s != nil {
				defer s.Stop()
			}
			if tc.wantError {
				if err == nil || !strings.Contains(err.Error(), "Address already in use") || !strings.Contains(err.Error(), "3 attempts") {
					t.Fatalf("Start = %v; want an address-in-use error after 3 attempts", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if calls != 2 || s.Addr() == taken.Addr().String() {
				t.Fatalf("picker calls %d, Addr %s (taken %s)", calls, s.Addr(), taken.Addr())
			}
		})
	}
}

// TestStartFailures: Start reports a missing binary, a server that exits,
// and one that never answers, promptly and without leaving a directory.
func TestStartFailures(t *testing.T) {
	scripts := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(scripts, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name    string
		binary  string
		ctxTO   time.Duration
		wantErr []string
		noBin   bool
	}{
		{name: "missing binary", binary: filepath.Join(scripts, "nope"), wantErr: []string{"no ClickHouse server binary"}, noBin: true},
		{name: "exits", binary: script("exits", "echo 'config is bad' >&2; exit 3"), wantErr: []string{"exited during startup", "exit status 3", "config is bad"}},
		{name: "never ready", binary: script("hangs", "exec sleep 60"), wantErr: []string{"not ready within 500ms"}},
		{name: "context cancelled", binary: script("hangs2", "exec sleep 60"), ctxTO: 300 * time.Millisecond, wantErr: []string{"not ready", "context deadline exceeded"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.ctxTO > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxTO)
				defer cancel()
			}
			t0 := time.Now()
			s, err := chserver.Start(ctx, chserver.Options{Binary: tc.binary, ReadyTimeout: 500 * time.Millisecond})
			if err == nil {
				s.Stop()
				t.Fatal("Start succeeded")
			}
			if d := time.Since(t0); d > 5*time.Second {
				t.Errorf("Start took %v to fail", d)
			}
			if errors.Is(err, chserver.ErrNoBinary) != tc.noBin {
				t.Errorf("errors.Is(err, ErrNoBinary) = %v", !tc.noBin)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
