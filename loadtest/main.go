// Command loadtest is `leakline loadtest` on its own: it runs a synthetic
// organisation's traffic through the whole Leakline pipeline and the pager
// and scores the outcome against labelled insider scenarios. It only wires:
// the flags are pkg/clicmd's, the load test pkg/loadtest's.
//
//	go run ./loadtest -employees 200 -customers 20000 -days 14 -report out.json
//	go run ./loadtest -rate 20000 -duration 1m -report out.json -chart out.html
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/leakline/leakline/pkg/clicmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := clicmd.Loadtest(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
