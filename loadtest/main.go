// Command loadtest runs a synthetic organisation's days through the whole
// Leakline pipeline in one process — the embedded Kafka-protocol broker, a
// private ClickHouse server, the normalizer, detector and sink, exactly as
// `leakline demo` composes them — and scores the result against the labelled
// insider scenarios: detected or missed, time to detect, false-positive
// findings per 1,000 employee-days, throughput and latency.
//
// Time-compressed mode (the only mode so far): the org's days are replayed
// with their event times preserved, one five-minute slice of event time at a
// time, each slice waiting until the normalizer took the previous one in
// (-unpaced: without waiting, to see the capacity).
//
//	go run ./loadtest -employees 200 -customers 20000 -days 14 -report out.json
//
// Paging is not in the loop yet: every scenario reports paged=false.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var opt Options
	var report string
	var verbose bool
	flag.IntVar(&opt.Employees, "employees", 200, "employees of the synthetic organisation")
	flag.IntVar(&opt.Customers, "customers", 20000, "CRM customers")
	flag.IntVar(&opt.Days, "days", 14, "simulated working days (the last one is the day before yesterday, UTC)")
	flag.Uint64Var(&opt.Seed, "seed", 1, "generator seed (same seed, same events)")
	flag.DurationVar(&opt.Progress, "progress", 2*time.Second, "interval of progress lines")
	flag.DurationVar(&opt.Timeout, "timeout", 10*time.Minute, "bound on the whole run")
	flag.BoolVar(&opt.Unpaced, "unpaced", false, "write slices back to back without waiting for the normalizer (capacity; detection may suffer)")
	flag.StringVar(&report, "report", "", "write the JSON report to this file")
	flag.BoolVar(&verbose, "v", false, "show the services' logs")
	flag.Parse()

	opt.Out = os.Stdout
	opt.Log = slog.New(slog.DiscardHandler)
	if verbose {
		opt.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := Run(ctx, opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
	PrintReport(os.Stdout, rep)
	if report != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(report, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest: report:", err)
			os.Exit(1)
		}
		fmt.Printf("report written to %s\n", report)
	}
}
