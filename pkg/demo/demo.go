// Package demo runs the whole pipeline on embedded defaults: an in-process
// Kafka-protocol broker, a private ClickHouse server, every stage, and a
// scripted day with one insider. It prints the findings read back from
// ClickHouse.
package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/leakline/leakline/pkg/chserver"
	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/edm"
	"github.com/leakline/leakline/pkg/embedkafka"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/normalizer"
	"github.com/leakline/leakline/pkg/pipeline"
	"github.com/leakline/leakline/pkg/scenario"
)

// Options configures a demo run.
type Options struct {
	Out io.Writer
	Log *slog.Logger
	// Keep leaves everything running after the findings are printed, until
	// ctx ends.
	Keep bool
	// Timeout bounds the wait for the findings.
	Timeout time.Duration
	// Day is the scripted day's start (UTC); zero means 09:00 of the last
	// Monday whose day is over.
	Day  time.Time
	Seed uint64
	// HMACKey keys the evidence tokens; empty means a fresh random key.
	HMACKey []byte
}

// Run executes the demo.
func Run(ctx context.Context, opt Options) error {
	if opt.Out == nil {
		opt.Out = io.Discard
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 90 * time.Second
	}
	if opt.Day.IsZero() {
		opt.Day = lastMonday(time.Now().UTC())
	}
	if len(opt.HMACKey) == 0 {
		opt.HMACKey = make([]byte, 32)
		if _, err := rand.Read(opt.HMACKey); err != nil {
			return fmt.Errorf("demo: hmac key: %w", err)
		}
	}
	out := opt.Out
	fmt.Fprintln(out, "leakline demo: starting an embedded Kafka broker and a private ClickHouse server")

	broker, err := embedkafka.Start(embedkafka.Options{Logger: opt.Log})
	if err != nil {
		return fmt.Errorf("demo: kafka: %w", err)
	}
	defer broker.Close()
	ch, err := chserver.Start(ctx, chserver.Options{})
	if err != nil {
		return fmt.Errorf("demo: clickhouse (install it with `apt-get install -y clickhouse-server`): %w", err)
	}
	defer ch.Stop()

	cfg := pipeline.Config{
		Kafka:   kafkaio.Config{Brokers: broker.Addrs(), ClientID: "leakline-demo"},
		Topics:  kafkaio.DefaultTopics(),
		Store:   chstore.Config{Addr: ch.Addr(), Database: "leakline"},
		Engine:  detect.DefaultConfig(),
		HMACKey: opt.HMACKey,
	}
	fmt.Fprintf(out, "  kafka      %s\n  clickhouse %s (native)\n", strings.Join(broker.Addrs(), ","), ch.Addr())
	day := scenario.DemoDay(opt.Seed, opt.Day)
	// The exact-data-match index of the CRM export, keyed like the tokens:
	// it holds fingerprints only, never a raw value.
	idx, err := edm.Build(bytes.NewReader(day.CRMExport()), edm.BuildOptions{
		Columns:  map[string]string{"email": "email", "phone": "phone", "name": "name"},
		IDColumn: "customer_id",
	}, opt.HMACKey)
	if err != nil {
		return fmt.Errorf("demo: edm index: %w", err)
	}
	cfg.Engine.EDM = idx
	fmt.Fprintf(out, "  edm index  %d customers, %d identifiers (keyed fingerprints only)\n", idx.Rows(), idx.Len())
	if err := pipeline.Prepare(ctx, cfg); err != nil {
		return err
	}
	p, err := pipeline.New(ctx, cfg, opt.Log)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return p.Run(gctx) })

	fmt.Fprintf(out, "producing a scripted day: %d raw events (%d employees, %d customers, insider %s, %d malformed)\n",
		len(day.Events), day.Employees, len(day.Customers), day.Insider, day.Malformed)
	if err := Replay(gctx, cfg.Kafka, cfg.Topics, day.Events, cfg.Engine.AllowedLateness, NormalizerSettled(p.Normalizer)); err != nil {
		stop()
		return errors.Join(err, g.Wait())
	}

	store, err := chstore.Open(ctx, cfg.Store)
	if err != nil {
		stop()
		return errors.Join(err, g.Wait())
	}
	defer store.Close()
	fs, waitErr := WaitForRules(gctx, store, day.Insider, day.ExpectedRules, opt.Timeout)
	if waitErr == nil {
		// Let the incident settle: later revisions of the same findings may follow.
		time.Sleep(time.Second)
		fs, waitErr = store.Findings(gctx, chstore.FindingFilter{})
	}
	if waitErr != nil {
		stop()
		return errors.Join(fmt.Errorf("demo: waiting for findings: %w", waitErr), g.Wait())
	}
	PrintFindings(out, fs)
	if p.Normalizer != nil {
		s := p.Normalizer.Stats()
		fmt.Fprintf(out, "normalizer: %d consumed, %d normalized, %d dead-lettered (topic %s)\n", s.Consumed, s.Normalized, s.DeadLettered, cfg.Topics.DeadLetter)
	}
	if opt.Keep {
		fmt.Fprintf(out, "--keep: pipeline left running; Kafka %s, ClickHouse %s (database leakline). Ctrl-C stops it.\n",
			strings.Join(broker.Addrs(), ","), ch.Addr())
		<-ctx.Done()
	}
	stop()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	fmt.Fprintln(out, "leakline demo: stopped cleanly")
	return nil
}

// Replay writes raw events to their source topics in event-time order, one
// slice of step event time at a time, and after each slice calls settle with
// the number of events written so far; settle returns once the pipeline has
// taken them in. This compresses a day into seconds while keeping the
// disorder a live source has (at most step), so event-time windows see the
// day as they would live. step should not exceed the allowed lateness.
func Replay(ctx context.Context, kc kafkaio.Config, t kafkaio.Topics, evs []scenario.Raw, step time.Duration, settle func(ctx context.Context, written int) error) error {
	crm := kafkaio.NewWriter(kc, t.CRMAccess)
	defer crm.Close()
	ob := kafkaio.NewWriter(kc, t.Outbound)
	defer ob.Close()
	sorted := slices.Clone(evs)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Time.Before(sorted[j].Time) })
	for i := 0; i < len(sorted); {
		end := sorted[i].Time.Add(step)
		var crmMsgs, obMsgs []kafka.Message
		j := i
		for ; j < len(sorted) && sorted[j].Time.Before(end); j++ {
			e := sorted[j]
			m := kafka.Message{Key: e.Key, Value: e.Value, Time: e.Time}
			if e.Kind == event.KindCRMAccess {
				crmMsgs = append(crmMsgs, m)
			} else {
				obMsgs = append(obMsgs, m)
			}
		}
		if len(crmMsgs) > 0 {
			if err := crm.Write(ctx, crmMsgs...); err != nil {
				return fmt.Errorf("demo: produce crm events: %w", err)
			}
		}
		if len(obMsgs) > 0 {
			if err := ob.Write(ctx, obMsgs...); err != nil {
				return fmt.Errorf("demo: produce outbound events: %w", err)
			}
		}
		i = j
		if settle != nil {
			if err := settle(ctx, i); err != nil {
				return err
			}
		}
	}
	return nil
}

// NormalizerSettled returns a settle function for Replay that waits until an
// in-process normalizer consumed n events.
func NormalizerSettled(n *normalizer.Normalizer) func(context.Context, int) error {
	return func(ctx context.Context, written int) error {
		for n.Stats().Consumed < uint64(written) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(2 * time.Millisecond):
			}
		}
		return nil
	}
}

// WaitForRules polls ClickHouse until every rule in rules has a finding for
// actor, or timeout passes.
func WaitForRules(ctx context.Context, st *chstore.Store, actor string, rules []string, timeout time.Duration) ([]finding.Finding, error) {
	deadline := time.Now().Add(timeout)
	for {
		fs, err := st.Findings(ctx, chstore.FindingFilter{ActorUID: actor})
		if err == nil {
			got := map[string]bool{}
			for _, f := range fs {
				got[f.RuleID] = true
			}
			missing := 0
			for _, r := range rules {
				if !got[r] {
					missing++
				}
			}
			if missing == 0 {
				return fs, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no findings for all of %v after %s (last error: %v)", rules, timeout, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// PrintFindings renders findings as a table.
func PrintFindings(w io.Writer, fs []finding.Finding) {
	fmt.Fprintf(w, "\n%d finding(s) in ClickHouse (findings FINAL):\n\n", len(fs))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tRULE\tACTOR\tWINDOW (UTC)\tVALUE/THRESHOLD\tCHANNEL\tDESTINATION\tPII\tCUSTOMERS (READ BY ACTOR)\tEVIDENCE (masked)")
	for _, f := range fs {
		ev := make([]string, 0, 3)
		for i, e := range f.Evidence {
			if i == 3 {
				ev = append(ev, "…")
				break
			}
			ev = append(ev, e.Masked)
		}
		customers := "-"
		if f.EDMCustomers > 0 {
			customers = fmt.Sprintf("%d (%d)", f.EDMCustomers, f.EDMReadByActor)
		}
		sev := f.Severity
		if f.Shadow {
			sev += " (shadow)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s (%s)\t%s–%s\t%g/%g\t%s\t%s\t%s\t%s\t%s\n",
			sev, f.RuleID, f.ActorUID, f.Department,
			f.WindowStart.Format("Jan 02 15:04"), f.WindowEnd.Format("Jan 02 15:04"),
			f.Value, f.Threshold, dash(f.Channel), dash(f.Destination), piiCounts(f.PIICounts), customers, dash(strings.Join(ev, " ")))
	}
	tw.Flush()
	fmt.Fprintln(w)
}

func piiCounts(m map[string]uint32) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func lastMonday(now time.Time) time.Time {
	d := time.Date(now.Year(), now.Month(), now.Day(), 9, 0, 0, 0, time.UTC)
	// The whole scripted day must be over: an event dated after now would
	// be future-dated and counted at its ingestion time instead.
	for d.Weekday() != time.Monday || !d.Add(24*time.Hour).Before(now) {
		d = d.AddDate(0, 0, -1)
	}
	return d
}
