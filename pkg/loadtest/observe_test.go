package loadtest

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/leakline/leakline/pkg/fleet"
)

// TestReadMemory reads this process's real /proc status and Go heap: its
// RSS is at most its peak, the live heap is known after a GC, the
// "ClickHouse" PID (here this process) is read, and no services
// in-process.
func TestReadMemory(t *testing.T) {
	runtime.GC()
	m := &monitor{st: &inProcess{}, clickhousePID: os.Getpid()}
	var pt Point
	objects := m.readMemory(&pt)
	hwm, err := peakRSS(0)
	if err != nil {
		t.Fatal(err)
	}
	// The kernel's RSS counters are per-CPU and approximate: a later
	// VmHWM read may be a little below an earlier VmRSS read.
	if pt.RSSMB <= 0 || pt.RSSMB > float64(hwm+4<<20)/1e6 || pt.LiveHeapMB <= 0 || pt.HeapMB < pt.LiveHeapMB/2 ||
		objects <= 0 || pt.ClickHouseRSSMB <= 0 || pt.ServicesRSSMB != nil {
		t.Errorf("point %+v, heap objects %d B, peak RSS %d B", pt, objects, hwm)
	}
	m.clickhousePID = 0
	if m.readMemory(&pt); pt.ClickHouseRSSMB != -1 {
		t.Errorf("ClickHouse RSS %v without its PID, want -1 (unknown)", pt.ClickHouseRSSMB)
	}
}

// TestProcessesRSS: with -processes, a running child's RSS is sampled by
// its name and an exited one is left out.
func TestProcessesRSS(t *testing.T) {
	bin, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	p, err := fleet.Start(context.Background(), fleet.Spec{Name: "sleeper", Bin: bin, Args: []string{"60"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	s := &processes{procs: map[string]*fleet.Proc{"sleeper": p}}
	if rss := s.rssMB(); rss["sleeper"] <= 0 || len(rss) != 1 {
		t.Errorf("running: %v", rss)
	}
	p.Kill()
	if rss := s.rssMB(); len(rss) != 0 {
		t.Errorf("after exit: %v", rss)
	}
}

// BenchmarkReadMemory is the memory part of one sample in-process: two
// /proc status reads (this process, ClickHouse: here this process too) and
// one runtime/metrics read.
func BenchmarkReadMemory(b *testing.B) {
	m := &monitor{st: &inProcess{}, clickhousePID: os.Getpid()}
	b.ReportAllocs()
	for b.Loop() {
		var pt Point
		m.readMemory(&pt)
	}
}
