// Package testenv gives integration tests the real servers they need: an
// in-process Kafka-protocol broker and a private ClickHouse server. When a
// server cannot be had, a test skips on a developer machine but fails under
// CI=true, where skipping would hide a defect.
package testenv

import (
	"os"
	"strconv"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where every server a
// test needs must be present.
func InCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// Unavailable handles a server a test needs but cannot have: a failure under
// CI, a skip elsewhere. what names the server, err says why.
func Unavailable(tb testing.TB, what string, err error) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("%s is required under CI=true but unavailable: %v", what, err)
	}
	tb.Skipf("%s unavailable (set CI=true to make this a failure): %v", what, err)
}

// Long marks a long test (why says what makes it long): go test -short
// skips it on a developer machine, but CI=true runs it whatever the flags.
func Long(tb testing.TB, why string) {
	tb.Helper()
	if testing.Short() && !InCI() {
		tb.Skip(why + " (-short; CI=true runs it)")
	}
}
