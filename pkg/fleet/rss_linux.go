package fleet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
)

// readHWM returns VmHWM (the peak resident set size) of process pid in
// bytes, from /proc/PID/status.
func readHWM(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	return parseHWM(b)
}

// parseHWM finds the "VmHWM:   1234 kB" line of a /proc/PID/status file.
func parseHWM(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("peak RSS: malformed VmHWM line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 || kb > math.MaxInt64>>10 {
			return 0, fmt.Errorf("peak RSS: malformed VmHWM line %q", sc.Text())
		}
		return kb << 10, nil
	}
	return 0, errors.New("peak RSS: no VmHWM in /proc/PID/status (process exited?)")
}
