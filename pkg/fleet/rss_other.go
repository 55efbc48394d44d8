//go:build !linux

package fleet

import "errors"

// StatusBytes needs /proc/PID/status, which only Linux has.
func StatusBytes(int, string) (int64, error) {
	return 0, errors.New("only Linux has /proc/PID/status")
}
