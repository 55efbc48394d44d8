package clicmd

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/leakline/leakline/pkg/loadtest"
)

// Loadtest runs `leakline loadtest` (and `go run ./loadtest`): a synthetic
// organisation through the whole pipeline and the pager, scored against
// its labelled insider scenarios (see pkg/loadtest).
//
//	leakline loadtest [-employees N -customers N -days N -seed N]
//	                  [-rate EPS -duration D [-cohorts N] | -unpaced] [-processes]
//	                  [-sink-batch N -sink-flush D -retention BYTES] [-cpuprofile FILE] [-memprofile FILE]
//	                  [-report FILE.json] [-chart FILE.html] [-v]
func Loadtest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opt loadtest.Options
	fs.IntVar(&opt.Employees, "employees", 200, "employees of the synthetic organisation")
	fs.IntVar(&opt.Customers, "customers", 20000, "CRM customers")
	fs.IntVar(&opt.Days, "days", 14, "simulated days (the last one is the day before yesterday, UTC; rate mode: the days the population lives over and over)")
	fs.Uint64Var(&opt.Seed, "seed", 1, "generator seed (same seed, same events)")
	fs.Float64Var(&opt.Rate, "rate", 0, "rate mode: baseline events per second (0: time-compressed mode)")
	fs.DurationVar(&opt.Duration, "duration", time.Minute, "rate mode: how long to produce")
	fs.IntVar(&opt.Cohorts, "cohorts", 0, "rate mode: copies of the org's employees that make the run's population (0: enough for the run to live the org's days about 10 times)")
	fs.BoolVar(&opt.Unpaced, "unpaced", false, "time-compressed mode: write slices back to back without waiting for the normalizer (capacity; detection may suffer)")
	fs.DurationVar(&opt.Progress, "progress", 2*time.Second, "interval of progress lines")
	fs.DurationVar(&opt.Timeout, "timeout", 0, "bound on the whole run (default 10m + duration)")
	fs.IntVar(&opt.SinkBatch, "sink-batch", 0, "chsink insert batch in rows (0: 20000 in rate mode, the sink's default otherwise)")
	fs.DurationVar(&opt.SinkFlush, "sink-flush", 0, "chsink flush interval (0: 250ms in rate mode, the sink's default otherwise)")
	fs.Int64Var(&opt.Retention, "retention", 0, "embedded broker: record bytes kept per partition, never past the stages' commits (0: 8 MiB in rate mode, everything otherwise; -1: everything)")
	fs.StringVar(&opt.CPUProfile, "cpuprofile", "", "write a CPU profile of the load-test process from the start of production until every event is stored (labels role=stages|pager|loadgen; go tool pprof -tags FILE)")
	fs.StringVar(&opt.MemProfile, "memprofile", "", "write a heap profile of the load-test process once every event is stored")
	report := fs.String("report", "", "write the JSON report to this file")
	chart := fs.String("chart", "", "write an HTML page with SVG charts of throughput, lag and latency to this file")
	fs.BoolVar(&opt.Processes, "processes", false, "run normalizer, detector, chsink and pager as child processes built from services/ (needs the go command; run from the Leakline module) and report each one's peak memory")
	verbose := fs.Bool("v", false, "show the services' logs on stderr")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() > 0 {
		return usageError(fs, stderr, "unexpected argument %q", fs.Arg(0))
	}
	if opt.Rate < 0 {
		return usageError(fs, stderr, "-rate must not be negative")
	}
	if opt.Cohorts < 0 {
		return usageError(fs, stderr, "-cohorts must not be negative")
	}
	if opt.Cohorts > 0 && opt.Rate == 0 {
		return usageError(fs, stderr, "-cohorts is for the rate mode (-rate)")
	}
	if opt.Rate > 0 && opt.Unpaced {
		return usageError(fs, stderr, "-unpaced is for the time-compressed mode, not with -rate")
	}
	opt.Out = stdout
	opt.Log = slog.New(slog.DiscardHandler)
	if *verbose {
		opt.Log = slog.New(slog.NewTextHandler(stderr, nil))
		opt.ServiceLogs = stderr
	}
	rep, err := loadtest.Run(ctx, opt)
	if err != nil {
		fmt.Fprintln(stderr, "leakline loadtest:", err)
		return ExitError
	}
	loadtest.PrintReport(stdout, rep)
	if *report != "" {
		if err := loadtest.WriteJSON(*report, rep); err != nil {
			fmt.Fprintln(stderr, "leakline loadtest:", err)
			return ExitError
		}
		fmt.Fprintf(stdout, "report written to %s\n", *report)
	}
	if *chart != "" {
		if err := loadtest.WriteChart(*chart, rep); err != nil {
			fmt.Fprintln(stderr, "leakline loadtest:", err)
			return ExitError
		}
		fmt.Fprintf(stdout, "chart written to %s\n", *chart)
	}
	return ExitOK
}
