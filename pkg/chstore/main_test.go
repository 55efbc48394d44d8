package chstore_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/leakline/leakline/pkg/chserver"
	"github.com/leakline/leakline/pkg/testenv"
)

// srv is the package's ClickHouse server; nil if it could not be started
// (tests then skip, or fail under CI=true).
var srv *chserver.Server

func TestMain(m *testing.M) {
	s, stop, err := testenv.StartClickHouseMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	srv = s
	code := m.Run()
	stop()
	os.Exit(code)
}
