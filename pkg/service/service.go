// Package service owns a stage's process lifecycle: flags and environment,
// logging, signal handling and graceful shutdown within a deadline.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/config"
	"github.com/leakline/leakline/pkg/pipeline"
)

// ShutdownTimeout bounds the graceful shutdown after SIGINT/SIGTERM.
const ShutdownTimeout = 20 * time.Second

// Main runs one pipeline stage as a process and returns its exit code.
func Main(stage string, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, stage, args, os.Getenv, os.Stderr)
}

// Run runs one pipeline stage until ctx ends (a graceful shutdown within
// ShutdownTimeout) or the stage fails, and returns the process exit code:
// 2 for a configuration error, 1 for a failure. Configuration comes from
// args and getenv; errors and JSON logs go to stderr.
func Run(ctx context.Context, stage string, args []string, getenv config.Getenv, stderr io.Writer) int {
	fs := flag.NewFlagSet(stage, flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := config.Register(fs, config.ArgsWithFile(args, getenv))
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := flags.Resolve(stage == pipeline.StageDetector)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cfg.Stages = []string{stage}
	log := flags.LoggerTo(stderr).With("service", stage)

	if stage == pipeline.StageChsink {
		if err := migrate(ctx, cfg.Store); err != nil {
			log.Error("migrations failed", "err", err)
			return 1
		}
	}
	p, err := pipeline.New(ctx, cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	go func() {
		if err := Serve(ctx, *flags.MetricsAddr, p.Ready, log); err != nil {
			log.Error("observability endpoint failed", "err", err)
		}
	}()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		log.Info("shutting down", "deadline", ShutdownTimeout)
		select {
		case err = <-done:
		case <-time.After(ShutdownTimeout):
			log.Error("shutdown deadline exceeded")
			return 1
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("stopped with error", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func migrate(ctx context.Context, cfg chstore.Config) error {
	st, err := chstore.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.Migrate(ctx)
}
