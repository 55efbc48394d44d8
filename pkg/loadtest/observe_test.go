package loadtest

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/leakline/leakline/pkg/fleet"
)

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tloadtest\nVmPeak:\t 2048 kB\nVmHWM:\t    5120 kB\nVmRSS:\t    4096 kB\nVmRSSX:\t 1 kB\nThreads:\t9\n"
	tests := []struct {
		status, key string
		want        int64
		wantErr     bool
	}{
		{status, "VmHWM", 5120 << 10, false},
		{status, "VmRSS", 4096 << 10, false},
		{"VmRSSX:\t1 kB\nVmRSS:\t7 kB", "VmRSS", 7 << 10, false}, // a longer key with the same prefix is not it
		{"VmRSS:\t0 kB", "VmRSS", 0, false},
		{"VmRSS:\t4096 kB", "VmHWM", 0, true},             // missing
		{"VmRSS:\t4096 MB", "VmRSS", 0, true},             // unit
		{"VmRSS:\t-1 kB", "VmRSS", 0, true},               // negative
		{"VmRSS:\t9007199254740992 kB", "VmRSS", 0, true}, // overflows int64 in bytes
		{"VmRSS:", "VmRSS", 0, true},
		{"", "VmRSS", 0, true},
	}
	for _, tc := range tests {
		got, err := parseStatusKB([]byte(tc.status), tc.key)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseStatusKB(%q, %s) = %d, %v; want %d, error %v", tc.status, tc.key, got, err, tc.want, tc.wantErr)
		}
	}
}

// FuzzParseStatusKB: whatever the input, parseStatusKB either fails or
// returns the non-negative whole number of KiB that the first "key:" line
// of the input states.
func FuzzParseStatusKB(f *testing.F) {
	f.Add([]byte("Name:\tx\nVmHWM:\t    5120 kB\nVmRSS:\t    4096 kB\n"))
	f.Add([]byte("VmRSS: 12 kB extra\n"))
	f.Add([]byte("VmRSS:\t\t+7 kB"))
	f.Fuzz(func(t *testing.T, status []byte) {
		for _, key := range []string{"VmHWM", "VmRSS"} {
			v, err := parseStatusKB(status, key)
			if err != nil {
				continue
			}
			if v < 0 || v%1024 != 0 {
				t.Fatalf("%s = %d", key, v)
			}
			found := false
			for _, ln := range strings.Split(string(status), "\n") {
				rest, ok := strings.CutPrefix(ln, key+":")
				if !ok {
					continue
				}
				f := strings.Fields(rest)
				if len(f) == 2 && f[1] == "kB" {
					n, err := strconv.ParseInt(f[0], 10, 64)
					found = err == nil && n<<10 == v
				}
				break
			}
			if !found {
				t.Fatalf("%s = %d is not the first %s line of %q", key, v, key, status)
			}
		}
	})
}

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
