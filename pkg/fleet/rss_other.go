//go:build !linux

package fleet

import "errors"

func readHWM(int) (int64, error) {
	return 0, errors.New("peak RSS: only Linux has /proc/PID/status")
}

func parseHWM([]byte) (int64, error) {
	return 0, errors.New("peak RSS: only Linux has /proc/PID/status")
}
