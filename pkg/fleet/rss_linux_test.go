package fleet

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tloadtest\nVmPeak:\t 2048 kB\nVmHWM:\t    5120 kB\nVmRSS:\t    4096 kB\nVmRSSX:\t 1 kB\nThreads:\t9\n"
	tests := []struct {
		name, status, key string
		want              int64
		wantErr           bool
	}{
		{"kernel format", "Name:\tdetector\nVmPeak:\t  812344 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n", "VmHWM", 51200 << 10, false},
		{"peak", status, "VmHWM", 5120 << 10, false},
		{"resident", status, "VmRSS", 4096 << 10, false},
		{"a longer key with the same prefix is not it", "VmRSSX:\t1 kB\nVmRSS:\t7 kB", "VmRSS", 7 << 10, false},
		{"zero", "VmRSS:\t0 kB", "VmRSS", 0, false},
		{"zombie has no VmHWM", "Name:\tdetector\nState:\tZ (zombie)\n", "VmHWM", 0, true},
		{"missing", "VmRSS:\t4096 kB", "VmHWM", 0, true},
		{"no unit", "VmHWM:\t 51200\n", "VmHWM", 0, true},
		{"other unit", "VmRSS:\t4096 MB", "VmRSS", 0, true},
		{"not a number", "VmHWM:\t lots kB\n", "VmHWM", 0, true},
		{"negative", "VmRSS:\t-1 kB", "VmRSS", 0, true},
		{"overflows int64 in bytes", "VmRSS:\t9007199254740992 kB", "VmRSS", 0, true},
		{"empty value", "VmRSS:", "VmRSS", 0, true},
		{"empty", "", "VmRSS", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatusKB([]byte(tc.status), tc.key)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseStatusKB(%q, %s) = %d, %v; want %d, error %v", tc.status, tc.key, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestStatusBytesOfThisProcess(t *testing.T) {
	for _, pid := range []int{0, os.Getpid()} {
		// RSS first: the peak read after it is at least that, give or take
		// the kernel's per-CPU counters, which are approximate.
		rss, err := StatusBytes(pid, "VmRSS")
		if err != nil || rss <= 0 {
			t.Fatalf("StatusBytes(%d, VmRSS) = %d, %v", pid, rss, err)
		}
		hwm, err := StatusBytes(pid, "VmHWM")
		if err != nil || hwm < 1<<20 || rss > hwm+4<<20 {
			t.Fatalf("StatusBytes(%d, VmHWM) = %d, %v (resident %d before)", pid, hwm, err, rss)
		}
	}
	if _, err := StatusBytes(1<<30, "VmHWM"); err == nil {
		t.Fatal("a process that does not exist has a VmHWM")
	}
}

// FuzzParseStatusKB: whatever the input, parseStatusKB either fails or
// returns the non-negative whole number of KiB that the first "key:" line
// of the input states.
func FuzzParseStatusKB(f *testing.F) {
	f.Add([]byte("Name:\tx\nVmHWM:\t    5120 kB\nVmRSS:\t    4096 kB\n"))
	f.Add([]byte("VmRSS: 12 kB extra\n"))
	f.Add([]byte("VmRSS:\t\t+7 kB"))
	f.Add([]byte("VmHWM:"))
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
