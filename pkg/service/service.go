// Package service owns a stage's process lifecycle: flags and environment,
// logging, signal handling and graceful shutdown within a deadline.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
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
	fs := flag.NewFlagSet(stage, flag.ContinueOnError)
	flags := config.Register(fs, os.Getenv)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := flags.Resolve(stage == pipeline.StageDetector)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg.Stages = []string{stage}
	log := flags.Logger().With("service", stage)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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
