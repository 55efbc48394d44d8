package fleet

import (
	"os"
	"testing"
)

func TestParseHWM(t *testing.T) {
	tests := []struct {
		name   string
		status string
		want   int64
		ok     bool
	}{
		{"kernel format", "Name:\tdetector\nVmPeak:\t  812344 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n", 51200 << 10, true},
		{"zombie has no VmHWM", "Name:\tdetector\nState:\tZ (zombie)\n", 0, false},
		{"no unit", "VmHWM:\t 51200\n", 0, false},
		{"not a number", "VmHWM:\t lots kB\n", 0, false},
		{"negative", "VmHWM:\t -1 kB\n", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseHWM([]byte(tc.status))
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("parseHWM = %d, %v; want %d, ok %v", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestReadHWMOfThisProcess(t *testing.T) {
	got, err := readHWM(os.Getpid())
	if err != nil || got < 1<<20 {
		t.Fatalf("readHWM(self) = %d, %v", got, err)
	}
}

func FuzzParseHWM(f *testing.F) {
	f.Add([]byte("VmHWM:\t   51200 kB\n"))
	f.Add([]byte("Name:\tx\nVmHWM: 1 kB"))
	f.Add([]byte("VmHWM:"))
	f.Fuzz(func(t *testing.T, status []byte) {
		n, err := parseHWM(status)
		if err == nil && (n < 0 || n%1024 != 0) {
			t.Fatalf("parseHWM(%q) = %d", status, n)
		}
	})
}
