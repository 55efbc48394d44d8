package backtest_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"gopkg.in/yaml.v3"

	"github.com/leakline/leakline/pkg/backtest"
	"github.com/leakline/leakline/pkg/chserver"
	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/clicmd"
	"github.com/leakline/leakline/pkg/config"
	"github.com/leakline/leakline/pkg/demo"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/inspect"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/pipeline"
	"github.com/leakline/leakline/pkg/rules"
	"github.com/leakline/leakline/pkg/scenario"
	"github.com/leakline/leakline/pkg/testenv"
)

var chServer *chserver.Server

func TestMain(m *testing.M) {
	srv, stop, err := testenv.StartClickHouseMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ClickHouse unavailable (tests needing it skip, or fail under CI=true):", err)
	}
	chServer = srv
	code := m.Run()
	stop()
	os.Exit(code)
}

var testKey = []byte("0123456789abcdef0123456789abcdef-backtest-key")

const defaultPackDir = "../rules/packs/default"

// recorded is a live run of the pipeline over the demo day, stopped.
type recorded struct {
	cfg      pipeline.Config
	store    *chstore.Store
	day      scenario.Day
	from, to time.Time
	findings []finding.Finding // production, as stored
}

// record runs the whole pipeline (normalizer, detector with the default
// pack, sink) over the demo day, configured exactly as the services are
// (config.Register/Resolve), waits until ClickHouse holds the last revision
// of every finding the detector published, and stops it.
func record(t *testing.T) *recorded {
	t.Helper()
	store := testenv.ClickHouseStore(t, chServer)
	broker := testenv.Kafka(t, nil)
	env := map[string]string{"LEAKLINE_HMAC_KEY": hex.EncodeToString(testKey)}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	flags := config.Register(fs, func(k string) string { return env[k] })
	if err := fs.Parse([]string{"-kafka-brokers", strings.Join(broker.Addrs(), ","), "-kafka-client-id", "backtest-test",
		"-clickhouse-addr", chServer.Addr(), "-clickhouse-database", store.Database(),
		"-sink-batch", "200", "-sink-flush", "100ms"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := flags.Resolve(true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := pipeline.Prepare(ctx, cfg); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	pctx, stop := context.WithCancel(context.Background())
	p, err := pipeline.New(pctx, cfg, log)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }()
	stopped := false
	shutdown := func() {
		if stopped {
			return
		}
		stopped = true
		stop()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("pipeline stopped with error: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("pipeline did not stop within 30s")
		}
	}
	t.Cleanup(shutdown)
	if err := p.Ready(ctx); err != nil {
		t.Fatalf("pipeline not ready: %v", err)
	}
	start := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	day := scenario.DemoDay(7, start)
	if err := demo.Replay(ctx, cfg.Kafka, cfg.Topics, day.Events, cfg.Engine.AllowedLateness, demo.NormalizerSettled(p.Normalizer)); err != nil {
		t.Fatal(err)
	}
	if _, err := demo.WaitForRules(ctx, store, day.Insider, day.ExpectedRules, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the detector to process every valid event", func() bool {
		return p.Detector.Stats().Events == uint64(len(day.Events)-day.Malformed)
	})
	// ClickHouse has caught up when it holds exactly the findings on
	// dlp.findings, each at its highest published revision.
	var stored []finding.Finding
	waitFor(t, ctx, "ClickHouse to hold every published finding", func() bool {
		published := publishedRevisions(t, ctx, cfg)
		stored, err = store.Findings(ctx, chstore.FindingFilter{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]uint64{}
		for _, f := range stored {
			got[f.FindingID] = f.Revision
		}
		return len(published) > 0 && maps.Equal(got, published)
	})
	shutdown()
	return &recorded{cfg: cfg, store: store, day: day, from: start.Truncate(24 * time.Hour), to: start.Truncate(24 * time.Hour).Add(24 * time.Hour), findings: stored}
}

// publishedRevisions reads dlp.findings whole: the highest revision of
// each finding id.
func publishedRevisions(t *testing.T, ctx context.Context, cfg pipeline.Config) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for part := 0; part < partitions(cfg); part++ {
		_, err := kafkaio.ReplayPartition(ctx, cfg.Kafka, cfg.Topics.Findings, part, func(m kafka.Message) error {
			var f finding.Finding
			if err := json.Unmarshal(m.Value, &f); err != nil {
				return err
			}
			out[f.FindingID] = max(out[f.FindingID], f.Revision)
			return nil
		})
		if err != nil {
			t.Fatalf("read %s/%d: %v", cfg.Topics.Findings, part, err)
		}
	}
	return out
}

func partitions(cfg pipeline.Config) int {
	if cfg.Partitions > 0 {
		return cfg.Partitions
	}
	return 6
}

// brokerState snapshots what a backtest must not change: the high-water
// mark of every partition of the pipeline's topics, the consumer groups,
// and every group's committed offsets on those topics.
func brokerState(t *testing.T, ctx context.Context, cfg pipeline.Config) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	parts := map[string][]int{}
	for _, topic := range cfg.Topics.All() {
		for part := 0; part < partitions(cfg); part++ {
			end, err := kafkaio.EndOffset(ctx, cfg.Kafka, topic, part)
			if err != nil {
				t.Fatal(err)
			}
			out[fmt.Sprintf("end %s/%d", topic, part)] = end
			parts[topic] = append(parts[topic], part)
		}
	}
	tr := cfg.Kafka.Transport()
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(cfg.Kafka.Brokers...), Transport: tr}
	groups, err := cl.ListGroups(ctx, &kafka.ListGroupsRequest{})
	if err != nil || groups.Error != nil {
		t.Fatalf("list groups: %v %v", err, groups.Error)
	}
	for _, g := range groups.Groups {
		out["group "+g.GroupID] = 0
		offs, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: g.GroupID, Topics: parts})
		if err != nil || offs.Error != nil {
			t.Fatalf("offsets of group %s: %v %v", g.GroupID, err, offs.Error)
		}
		for topic, ps := range offs.Topics {
			for _, p := range ps {
				out[fmt.Sprintf("committed %s %s/%d", g.GroupID, topic, p.Partition)] = p.CommittedOffset
			}
		}
	}
	if len(groups.Groups) == 0 {
		t.Fatal("no consumer group: the live run's groups should be listed")
	}
	return out
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// run backtests pack over the recorded day through the library.
func (r *recorded) run(t *testing.T, ctx context.Context, pack *rules.Pack) *backtest.Report {
	t.Helper()
	bc, rep := r.replay(t, ctx, pack)
	if rep.Partitions != partitions(r.cfg) || rep.Events != len(r.day.Events)-r.day.Malformed {
		t.Errorf("replayed %d events of %d partitions, want %d of %d", rep.Events, rep.Partitions, len(r.day.Events)-r.day.Malformed, partitions(r.cfg))
	}
	prod, err := backtest.Production(ctx, r.store, r.from, r.to, bc.Engine.Horizon())
	if err != nil {
		t.Fatal(err)
	}
	return backtest.NewReport(bc, rep, prod)
}

// cli runs `leakline rules backtest DIR …` against the recorded run:
// its table (logged) and its --json report.
func (r *recorded) cli(t *testing.T, ctx context.Context, dir string) (*backtest.Report, string) {
	t.Helper()
	t.Setenv("LEAKLINE_HMAC_KEY", hex.EncodeToString(r.cfg.HMACKey))
	run := func(extra ...string) string {
		var stdout, stderr bytes.Buffer
		args := append([]string{"backtest", dir, "--from", r.from.Format(time.RFC3339), "--to", r.to.Format(time.DateOnly),
			"--brokers", strings.Join(r.cfg.Kafka.Brokers, ","), "--clickhouse", r.cfg.Store.Addr, "-clickhouse-database", r.cfg.Store.Database}, extra...)
		if code := clicmd.Rules(ctx, args, nil, &stdout, &stderr); code != clicmd.ExitOK {
			t.Fatalf("rules backtest exit %d: %s", code, stderr.String())
		}
		return stdout.String()
	}
	table := run()
	t.Logf("leakline rules backtest %s:\n%s", dir, table)
	out := run("--json")
	var rep backtest.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("rules backtest --json: %v\n%s", err, out)
	}
	return &rep, table
}

func TestBacktest(t *testing.T) {
	rec := record(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	before := brokerState(t, ctx, rec.cfg)

	prodByRule := map[string]int{}
	for _, f := range rec.findings {
		if !backtest.InSpan(&f, rec.from, rec.to) {
			t.Fatalf("recorded finding %s outside the day", f.FindingID)
		}
		prodByRule[f.RuleID]++
	}
	for _, r := range rec.day.ExpectedRules {
		if prodByRule[r] == 0 {
			t.Fatalf("the live run found nothing for %s: %v", r, prodByRule)
		}
	}

	t.Run("the production pack reproduces production exactly", func(t *testing.T) {
		rep := rec.run(t, ctx, rec.cfg.Engine.Pack)
		if !rep.Identical() {
			var buf bytes.Buffer
			_ = rep.WriteTable(&buf)
			t.Fatalf("not identical:\n%s", buf.String())
		}
		if rep.Total.Production != len(rec.findings) || rep.Total.Candidate != len(rec.findings) || rep.Total.Unchanged != len(rec.findings) {
			t.Errorf("total %+v, want %d findings all unchanged", rep.Total, len(rec.findings))
		}
		for _, rr := range rep.Rules {
			want := prodByRule[rr.RuleID]
			if rr.Production != want || rr.Candidate != want || rr.Unchanged != want || !rr.InCandidate {
				t.Errorf("%s: %+v, want %d unchanged", rr.RuleID, rr.Counts, want)
			}
		}
		// Same ids, same rule: replay the candidate's findings themselves.
		_, replayed := rec.replay(t, ctx, rec.cfg.Engine.Pack)
		if got, want := ids(replayed.Findings), ids(rec.findings); !reflect.DeepEqual(got, want) {
			t.Errorf("candidate findings %v, production %v", got, want)
		}

		// The CLI prints the same report.
		cli, table := rec.cli(t, ctx, defaultPackDir)
		if !strings.Contains(table, "identical: the candidate finds exactly what production found") {
			t.Errorf("table does not say identical:\n%s", table)
		}
		if !reflect.DeepEqual(cli.Rules, rep.Rules) || cli.Total != rep.Total || cli.PackChecksum != rep.PackChecksum {
			t.Errorf("CLI report %+v\nlibrary report %+v", cli, rep)
		}
	})

	t.Run("one rule removed, one threshold lowered", func(t *testing.T) {
		const removed, lowered = "outbound.pii_external", "crm.bulk_read_no_ticket"
		dir := candidatePack(t, removed, lowered, 100, "")
		pack, err := rules.LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		rep, table := rec.cli(t, ctx, dir)
		for _, want := range []string{"not in the candidate pack", "new rule version: new finding ids", "gone     " + removed, "new      " + lowered} {
			if !strings.Contains(table, want) {
				t.Errorf("table lacks %q:\n%s", want, table)
			}
		}
		lib := rec.run(t, ctx, pack)
		if !reflect.DeepEqual(lib.Rules, rep.Rules) || lib.Total != rep.Total {
			t.Errorf("CLI report %+v\nlibrary report %+v", rep, lib)
		}
		_, replayed := rec.replay(t, ctx, pack)
		cand := replayed.Findings
		prodIDs := map[string]finding.Finding{}
		for _, f := range rec.findings {
			prodIDs[f.FindingID] = f
		}
		for _, rr := range rep.Rules {
			n := prodByRule[rr.RuleID]
			switch rr.RuleID {
			case removed:
				if rr.InCandidate || rr.Production != n || rr.Gone != n || rr.Candidate != 0 || rr.New != 0 {
					t.Errorf("removed %s: %+v, want all %d gone", rr.RuleID, rr.Counts, n)
				}
				if got, want := rr.GoneIDs, idsOf(rec.findings, removed); !reflect.DeepEqual(got, want) {
					t.Errorf("removed %s: gone %v, want %v", rr.RuleID, got, want)
				}
			case lowered:
				// A lower threshold is a new rule version: new ids; the old
				// version's findings are gone.
				if !rr.VersionChanged() || rr.Production != n || rr.Gone != n || rr.Unchanged != 0 || rr.Changed != 0 ||
					rr.New == 0 || rr.New != rr.Candidate {
					t.Errorf("lowered %s: %+v versions %v→%s", rr.RuleID, rr.Counts, rr.ProductionVersions, rr.CandidateVersion)
				}
				if got, want := rr.NewIDs, idsOf(cand, lowered); !reflect.DeepEqual(got, want) {
					t.Errorf("lowered %s: new %v, want the candidate's %v", rr.RuleID, got, want)
				}
				// The insider's incident is found at the lower threshold:
				// same actor and incident start as production's.
				for _, f := range cand {
					if f.RuleID != lowered {
						continue
					}
					if f.Threshold != 100 || f.Value < 100 {
						t.Errorf("new finding %s: value %g threshold %g", f.FindingID, f.Value, f.Threshold)
					}
					if _, ok := prodIDs[f.FindingID]; ok {
						t.Errorf("new finding %s has a production id", f.FindingID)
					}
				}
				if !sameIncidents(cand, rec.findings, lowered) {
					t.Errorf("lowered %s: candidate incidents differ from production's (actor, start)", lowered)
				}
			default:
				if rr.Production != n || rr.Candidate != n || rr.Unchanged != n {
					t.Errorf("untouched rule %s: %+v, want %d unchanged", rr.RuleID, rr.Counts, n)
				}
			}
		}
		if rep.Total.Gone != prodByRule[removed]+prodByRule[lowered] || rep.Total.Changed != 0 {
			t.Errorf("total %+v", rep.Total)
		}
	})

	t.Run("spans starting inside and after the incidents", func(t *testing.T) {
		// The warm-up rebuilds the windows before --from: incidents still
		// open at --from keep their ids; those over before it are not
		// reported on either side.
		for _, from := range []time.Time{rec.from.Add(10*time.Hour + 30*time.Minute), rec.from.Add(11 * time.Hour), rec.from.Add(20 * time.Hour)} {
			sub := *rec
			sub.from = from
			rep := sub.run(t, ctx, rec.cfg.Engine.Pack)
			want := 0
			for _, f := range rec.findings {
				if backtest.InSpan(&f, from, rec.to) {
					want++
				}
			}
			if !rep.Identical() || rep.Total.Unchanged != want || rep.Total.Production != want {
				t.Errorf("from %s: %+v, want %d unchanged", from.Format(time.RFC3339), rep.Total, want)
			}
			t.Logf("from %s: %d of %d findings in the span, all unchanged", from.Format(time.RFC3339), want, len(rec.findings))
		}
	})

	t.Run("threshold lowered, version pinned: the same incident, changed", func(t *testing.T) {
		const removed, lowered = "outbound.pii_external", "crm.bulk_read_no_ticket"
		var version string
		for _, r := range rec.cfg.Engine.Pack.Rules {
			if r.ID == lowered {
				version = r.Version
			}
		}
		pack, err := rules.LoadDir(candidatePack(t, removed, lowered, 100, version))
		if err != nil {
			t.Fatal(err)
		}
		rep := rec.run(t, ctx, pack)
		for _, rr := range rep.Rules {
			n := prodByRule[rr.RuleID]
			switch rr.RuleID {
			case removed:
				if rr.Gone != n || rr.Candidate != 0 {
					t.Errorf("removed %s: %+v", rr.RuleID, rr.Counts)
				}
			case lowered:
				if rr.VersionChanged() || rr.Changed != n || rr.New != 0 || rr.Gone != 0 || rr.Unchanged != 0 {
					t.Errorf("lowered %s: %+v, want %d changed", rr.RuleID, rr.Counts, n)
				}
				for _, c := range rr.ChangedIDs {
					if !slices.Contains(c.Fields, "threshold") {
						t.Errorf("lowered %s: %s changed in %v, not the threshold", rr.RuleID, c.FindingID, c.Fields)
					}
				}
			default:
				if rr.Unchanged != n || rr.Production != n || rr.Candidate != n {
					t.Errorf("untouched rule %s: %+v", rr.RuleID, rr.Counts)
				}
			}
		}
	})

	// Nothing was written to any topic or committed for any group, no group
	// was created, and ClickHouse is as it was.
	if after := brokerState(t, ctx, rec.cfg); !maps.Equal(before, after) {
		t.Errorf("the backtest changed the broker:\nbefore %v\nafter  %v", before, after)
	}
	stored, err := rec.store.Findings(ctx, chstore.FindingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(revisions(stored), revisions(rec.findings)) {
		t.Error("the findings table changed during the backtest")
	}
}

// replay runs pack over the recorded day, configured as the detector.
func (r *recorded) replay(t *testing.T, ctx context.Context, pack *rules.Pack) (backtest.Config, *backtest.Replayed) {
	t.Helper()
	sc, err := inspect.NewWithKey(r.cfg.Inspect, r.cfg.HMACKey)
	if err != nil {
		t.Fatal(err)
	}
	eng := r.cfg.Engine
	eng.Pack = pack
	bc := backtest.Config{Kafka: r.cfg.Kafka, Topic: r.cfg.Topics.Events, Engine: eng, Scanner: sc, From: r.from, To: r.to}
	rep, err := backtest.Replay(ctx, bc)
	if err != nil {
		t.Fatal(err)
	}
	return bc, rep
}

// ids lists "rule/id" of findings, sorted.
func ids(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.RuleID+"/"+f.FindingID)
	}
	slices.Sort(out)
	return out
}

func idsOf(fs []finding.Finding, rule string) []string {
	var out []string
	for _, f := range fs {
		if f.RuleID == rule {
			out = append(out, f.FindingID)
		}
	}
	slices.Sort(out)
	return out
}

func revisions(fs []finding.Finding) map[string]uint64 {
	out := map[string]uint64{}
	for _, f := range fs {
		out[f.FindingID] = f.Revision
	}
	return out
}

func sameIncidents(a, b []finding.Finding, rule string) bool {
	key := func(fs []finding.Finding) []string {
		var out []string
		for _, f := range fs {
			if f.RuleID == rule {
				out = append(out, f.ActorUID+"@"+f.WindowStart.Format(time.RFC3339Nano))
			}
		}
		slices.Sort(out)
		return out
	}
	return reflect.DeepEqual(key(a), key(b))
}

// candidatePack writes the default pack without rule removed and with
// rule lowered's window threshold set to threshold (fixtures are not
// copied: a backtest does not run them). A non-empty version pins the
// lowered rule's version (`version:`), so its incidents keep their ids.
func candidatePack(t *testing.T, removed, lowered string, threshold float64, version string) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(defaultPackDir)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(defaultPackDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() != "pack.yaml" {
			var doc struct {
				Rules []map[string]any `yaml:"rules"`
			}
			if err := yaml.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			kept := doc.Rules[:0]
			for _, r := range doc.Rules {
				switch r["id"] {
				case removed:
					found++
					continue
				case lowered:
					found++
					r["window"].(map[string]any)["threshold"] = threshold
					if version != "" {
						r["version"] = version
					}
				}
				kept = append(kept, r)
			}
			doc.Rules = kept
			if b, err = yaml.Marshal(doc); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if found != 2 {
		t.Fatalf("default pack lacks %s or %s", removed, lowered)
	}
	return dir
}
