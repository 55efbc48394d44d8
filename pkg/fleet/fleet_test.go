package fleet_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/fleet"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/testenv"
)

func newLogWriter(t testing.TB, name string) io.Writer { return fleet.LineLogger(t.Logf, name) }

// builds compiles the services once per test binary.
var builds struct {
	once sync.Once
	bins map[string]string
	err  error
	dir  string
}

// binaries builds the normalizer, detector and chsink into a directory
// shared by the package's tests (removed by TestMain).
func binaries(t *testing.T) map[string]string {
	t.Helper()
	builds.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		builds.bins, builds.err = fleet.Build(ctx, builds.dir, "normalizer", "detector", "chsink")
	})
	if builds.err != nil {
		t.Fatal(builds.err)
	}
	return builds.bins
}

func TestBuildRejectsBadNames(t *testing.T) {
	for _, tc := range []struct {
		name     string
		services []string
	}{
		{"none", nil},
		{"path", []string{"../pkg/fleet"}},
		{"absolute", []string{"/bin/sh"}},
		{"upper case", []string{"Detector"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := fleet.Build(context.Background(), t.TempDir(), tc.services...); err == nil {
				t.Fatalf("Build(%q) succeeded", tc.services)
			}
		})
	}
	if _, err := fleet.Build(context.Background(), t.TempDir(), "no-such-service"); err == nil || !strings.Contains(err.Error(), "no-such-service") {
		t.Fatalf("building a missing service: %v", err)
	}
}

// TestProcLifecycle runs a real normalizer against the embedded broker:
// ready, metrics, peak memory while running and after exit, graceful stop
// and SIGKILL.
func TestProcLifecycle(t *testing.T) {
	bins := binaries(t)
	broker := testenv.Kafka(t, nil)
	kc := kafkaio.Config{Brokers: broker.Addrs(), ClientID: "fleet-test"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kafkaio.EnsureTopics(ctx, kc, 2, kafkaio.DefaultTopics().All()...); err != nil {
		t.Fatal(err)
	}
	start := func(name string) *fleet.Proc {
		p, err := fleet.Start(ctx, fleet.Spec{
			Name: name, Bin: bins["normalizer"],
			Env:    []string{"LEAKLINE_KAFKA_BROKERS=" + broker.Addrs()[0]},
			Stdout: newLogWriter(t, name),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Kill() })
		if err := p.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		return p
	}

	p := start("normalizer-1")
	m, err := p.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rss := m["process_resident_memory_bytes"]
	if m["go_goroutines"] <= 0 || rss <= 0 {
		t.Fatalf("metrics without go_goroutines or process_resident_memory_bytes: %d series", len(m))
	}
	running, err := p.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	// VmHWM is the peak of what the process reported as resident.
	if float64(running) < rss/2 || running < 1<<20 {
		t.Fatalf("peak RSS %d bytes while running, process_resident_memory_bytes %g", running, rss)
	}
	if err := p.Stop(20 * time.Second); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if !strings.Contains(p.Output(), "stopped") {
		t.Errorf("no graceful shutdown in the log:\n%s", p.Output())
	}
	after, err := p.PeakRSS()
	if err != nil || after < running {
		t.Fatalf("peak RSS after exit %d (%v), %d while running", after, err, running)
	}

	k := start("normalizer-2")
	if err := k.Kill(); err != nil {
		t.Fatal(err)
	}
	if !k.Exited() {
		t.Fatal("Kill returned before the process exited")
	}
	if peak, err := k.PeakRSS(); err != nil || peak < 1<<20 {
		t.Fatalf("peak RSS of a killed process: %d, %v", peak, err)
	}
	if err := k.Stop(time.Second); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Stop of a process that was killed: %v, want its exit status", err)
	}
}

// TestReadyFailsWhenTheProcessExits starts a service with a configuration
// it refuses: Ready reports the exit and the output at once, Stop the
// non-zero status.
func TestReadyFailsWhenTheProcessExits(t *testing.T) {
	bins := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := fleet.Start(ctx, fleet.Spec{Name: "bad", Bin: bins["detector"], Args: []string{"-log-level=loud"}})
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	err = p.Ready(ctx)
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "log level") {
		t.Fatalf("Ready of a failing service: %v", err)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("Ready took %v to notice the exit", d)
	}
	if err := p.Stop(time.Second); err == nil || !strings.Contains(err.Error(), "exit status 2") {
		t.Fatalf("Stop after a failed start: %v", err)
	}
}

func TestStartNeedsABinary(t *testing.T) {
	if _, err := fleet.Start(context.Background(), fleet.Spec{Name: "x"}); err == nil {
		t.Fatal("Start without a binary succeeded")
	}
	if _, err := fleet.Start(context.Background(), fleet.Spec{Name: "x", Bin: "/nonexistent/leakline"}); err == nil {
		t.Fatal("Start of a missing binary succeeded")
	}
}
