// Command leakline is Leakline's command-line tool. It only wires: the
// commands live in pkg/demo and pkg/clicmd.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/leakline/leakline/pkg/clicmd"
	"github.com/leakline/leakline/pkg/config"
	"github.com/leakline/leakline/pkg/demo"
)

const usage = `usage: leakline <command> [flags]

commands:
  demo      run the whole pipeline on embedded defaults (in-process Kafka, a
            private ClickHouse) over a scripted day with one insider, and
            print the findings read back from ClickHouse
  rules     validate and test rule packs: leakline rules validate|test DIR
  inspect   print the PII detections in files or stdin as JSON lines
  edm       build, describe and publish exact-data-match indexes
  loadtest  run a synthetic organisation through the pipeline and the pager
            (time-compressed days or -rate N -duration D) and score detection,
            paging, throughput, latency, lag and memory
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "demo":
		err = runDemo(ctx, os.Args[2:])
	case "rules":
		os.Exit(clicmd.Rules(ctx, os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	case "inspect":
		os.Exit(clicmd.Inspect(ctx, os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	case "edm":
		os.Exit(clicmd.EDM(ctx, os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	case "loadtest":
		os.Exit(clicmd.Loadtest(ctx, os.Args[2:], os.Stdout, os.Stderr))
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "leakline: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "leakline:", err)
		os.Exit(1)
	}
}

func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	keep := fs.Bool("keep", false, "leave the pipeline running after printing the findings (Ctrl-C stops it)")
	timeout := fs.Duration("timeout", 90*time.Second, "how long to wait for the findings")
	verbose := fs.Bool("v", false, "log the services' structured logs to stderr")
	level := fs.String("log-level", "info", "log level with -v")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if *verbose {
		lvl, err := config.ParseLevel(*level)
		if err != nil {
			return err
		}
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	}
	return demo.Run(ctx, demo.Options{Out: os.Stdout, Log: log, Keep: *keep, Timeout: *timeout})
}
