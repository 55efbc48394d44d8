package fleet

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"
)

// StatusBytes returns one "Key:   1234 kB" value of /proc/PID/status in
// bytes (pid 0: this process), e.g. VmHWM (the peak resident set size) or
// VmRSS (the resident set size now): one small file read, cheap enough to
// sample every second.
func StatusBytes(pid int, key string) (int64, error) {
	p := "/proc/self/status"
	if pid > 0 {
		p = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	v, err := parseStatusKB(b, key)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p, err)
	}
	return v, nil
}

// parseStatusKB finds the line "key:   1234 kB" of a /proc/PID/status file
// and returns its value in bytes.
func parseStatusKB(status []byte, key string) (int64, error) {
	for rest := status; len(rest) > 0; {
		var ln []byte
		ln, rest, _ = bytes.Cut(rest, []byte{'\n'})
		v, ok := bytes.CutPrefix(ln, []byte(key))
		if !ok || len(v) == 0 || v[0] != ':' {
			continue
		}
		f := bytes.Fields(v[1:])
		if len(f) == 2 && string(f[1]) == "kB" {
			if kb, err := strconv.ParseInt(string(f[0]), 10, 64); err == nil && kb >= 0 && kb <= math.MaxInt64>>10 {
				return kb << 10, nil
			}
		}
		return 0, fmt.Errorf("malformed %s line %q", key, ln)
	}
	return 0, fmt.Errorf("no %s line (process exited?)", key)
}
