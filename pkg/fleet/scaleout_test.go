package fleet_test

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/config"
	"github.com/leakline/leakline/pkg/demo"
	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/fleet"
	"github.com/leakline/leakline/pkg/inspect"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/rules"
	"github.com/leakline/leakline/pkg/scenario"
	"github.com/leakline/leakline/pkg/testenv"
)

// Shape of the scale-out run.
const (
	scalePartitions = 12
	scaleDetectors  = 3
	scaleSinks      = 2
	scaleWaves      = 4
)

var scaleKey = []byte("0123456789abcdef0123456789abcdef-scale-out-test-key")

// Consumer groups of the stages (their defaults) and what each consumes.
var scaleGroups = map[string]func(kafkaio.Topics) []string{
	"leakline-normalizer":    func(t kafkaio.Topics) []string { return []string{t.CRMAccess, t.Outbound} },
	"leakline-detector":      func(t kafkaio.Topics) []string { return []string{t.Events} },
	"leakline-chsink":        func(t kafkaio.Topics) []string { return []string{t.Findings} },
	"leakline-chsink-events": func(t kafkaio.Topics) []string { return []string{t.EventMeta} },
}

// scaleRun is the fleet of one scale-out test.
type scaleRun struct {
	t      *testing.T
	ctx    context.Context
	bins   map[string]string
	env    []string
	mu     sync.Mutex
	procs  []*fleet.Proc
	killed map[*fleet.Proc]bool
}

// start starts one service process, waits until it is ready, and stops it
// gracefully when the test ends (a failed graceful stop fails the test).
func (r *scaleRun) start(name, service string) *fleet.Proc {
	r.t.Helper()
	p, err := fleet.Start(r.ctx, fleet.Spec{Name: name, Bin: r.bins[service], Env: r.env, Stdout: newLogWriter(r.t, name)})
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.procs = append(r.procs, p)
	r.mu.Unlock()
	r.t.Cleanup(func() {
		r.mu.Lock()
		killed := r.killed[p]
		r.mu.Unlock()
		if killed {
			return
		}
		if err := p.Stop(30 * time.Second); err != nil {
			r.t.Errorf("graceful stop: %v", err)
		}
	})
	if err := p.Ready(r.ctx); err != nil {
		r.t.Fatal(err)
	}
	return p
}

func (r *scaleRun) kill(p *fleet.Proc) {
	r.t.Helper()
	r.mu.Lock()
	r.killed[p] = true
	r.mu.Unlock()
	if err := p.Kill(); err != nil {
		r.t.Fatal(err)
	}
}

// consumed is what p's stage fetched from topic as group, from its metrics.
func (r *scaleRun) consumed(p *fleet.Proc, group string, topics ...string) float64 {
	r.t.Helper()
	m, err := p.Metrics(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	var n float64
	for _, tp := range topics {
		n += m[fleet.Series("leakline_messages_consumed_total", "group", group, "topic", tp)]
	}
	return n
}

// TestScaleOutKill9MatchesSingleInstance runs the pipeline as separate
// processes — one normalizer, three detectors, two sinks — on a
// 12-partition dlp.events, produces a multi-day organisation's traffic in
// waves, kills one detector with SIGKILL in the middle of a wave and starts
// a new one in a later wave. Once every consumer group has caught up and the
// stored findings stopped changing, ClickHouse (FINAL) holds exactly the
// findings one uninterrupted detector computes from the same dlp.events
// partitions (id, rule, actor, revision, value, event count, PII counts,
// window), each once, and the events table holds every event once.
func TestScaleOutKill9MatchesSingleInstance(t *testing.T) {
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bins := binaries(t)
	t.Logf("services built in %v", time.Since(begin).Round(time.Millisecond))

	broker := testenv.Kafka(t, nil)
	srv := testenv.ClickHouse(t)
	store := testenv.ClickHouseStore(t, srv) // a fresh, migrated database
	kc := kafkaio.Config{Brokers: broker.Addrs(), ClientID: "scaleout-test"}
	topics := kafkaio.DefaultTopics()
	if err := kafkaio.EnsureTopics(ctx, kc, scalePartitions, topics.All()...); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"LEAKLINE_KAFKA_BROKERS=" + broker.Addrs()[0],
		"LEAKLINE_HMAC_KEY=" + hex.EncodeToString(scaleKey),
		"LEAKLINE_CLICKHOUSE_ADDR=" + srv.Addr(),
		"LEAKLINE_CLICKHOUSE_DATABASE=" + store.Database(),
		"LEAKLINE_SINK_FLUSH=100ms",
		"LEAKLINE_LOG_LEVEL=info",
		"LEAKLINE_RULES_DIR=" + scaleoutPack(t),
	}
	org, err := scenario.NewOrg(scenario.OrgOptions{Seed: 9, Employees: 60, Customers: 2400, Days: 2, Start: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	valid := validEventIDs(t, org.Events)

	r := &scaleRun{t: t, ctx: ctx, bins: bins, env: env, killed: map[*fleet.Proc]bool{}}
	norm := r.start("normalizer", "normalizer")
	var sinks, detectors []*fleet.Proc
	for i := range scaleSinks {
		sinks = append(sinks, r.start(fmt.Sprintf("chsink-%d", i+1), "chsink"))
	}
	for i := range scaleDetectors {
		detectors = append(detectors, r.start(fmt.Sprintf("detector-%d", i+1), "detector"))
	}
	t.Logf("%d processes ready after %v", len(r.procs), time.Since(begin).Round(time.Millisecond))

	// Waves of raw traffic, each replayed in event-time steps of the allowed
	// lateness with the normalizer caught up after each step (as the demo
	// does); the victim is killed halfway through wave 1, its replacement
	// starts halfway through wave 2.
	victim := detectors[1]
	var replacement *fleet.Proc
	var victimConsumed float64
	written := 0
	size := (len(org.Events) + scaleWaves - 1) / scaleWaves
	for w := range scaleWaves {
		wave := org.Events[w*size : min((w+1)*size, len(org.Events))]
		base := written
		acted := false
		settle := func(ctx context.Context, n int) error {
			for r.consumed(norm, "leakline-normalizer", topics.CRMAccess, topics.Outbound) < float64(base+n) {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(5 * time.Millisecond):
				}
			}
			if acted || n < len(wave)/2 {
				return nil
			}
			acted = true
			switch w {
			case 1:
				victimConsumed = r.consumed(victim, "leakline-detector", topics.Events)
				r.kill(victim)
				t.Logf("killed %s (pid %d) with SIGKILL after %d events written; it had consumed %g", victim.Name(), victim.PID(), base+n, victimConsumed)
			case 2:
				replacement = r.start(fmt.Sprintf("detector-%d", scaleDetectors+1), "detector")
				t.Logf("started %s after %d events written", replacement.Name(), base+n)
			}
			return nil
		}
		if err := demo.Replay(ctx, kc, topics, wave, detect.DefaultConfig().AllowedLateness, settle); err != nil {
			t.Fatal(err)
		}
		written += len(wave)
		time.Sleep(300 * time.Millisecond)
	}
	if written != len(org.Events) || replacement == nil || !victim.Exited() {
		t.Fatalf("produced %d of %d events; replacement started %v, victim exited %v", written, len(org.Events), replacement != nil, victim.Exited())
	}
	t.Logf("%d raw events produced in %d waves after %v", written, scaleWaves, time.Since(begin).Round(time.Millisecond))

	waitQuiescent(ctx, t, kc, topics, store)
	t.Logf("quiescent after %v", time.Since(begin).Round(time.Millisecond))

	// The oracle: one uninterrupted engine per partition over dlp.events as
	// it stands, configured from the same environment as the processes.
	want, perPartition := oracle(ctx, t, kc, topics, env, valid)
	if len(want) < 20 || len(perPartition) < scalePartitions/2 {
		t.Fatalf("the oracle found %d findings on %d partitions: the run proves nothing", len(want), len(perPartition))
	}

	got, err := store.Findings(ctx, chstore.FindingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if d := diffFindings(want, got); len(d) > 0 {
		t.Errorf("ClickHouse findings (FINAL) differ from the single-instance oracle (%d of %d):\n%v", len(d), len(want), d)
	}
	assertOncePerID(ctx, t, store.Conn(), "SELECT finding_id, count() FROM "+store.Database()+".findings FINAL GROUP BY finding_id", keys(want), "finding")
	assertOncePerID(ctx, t, store.Conn(), "SELECT event_id, count() FROM "+store.Database()+".events FINAL GROUP BY event_id", valid, "event")

	// Every process did part of the work.
	if victimConsumed == 0 {
		t.Errorf("%s consumed nothing before it was killed", victim.Name())
	}
	for _, p := range append(append([]*fleet.Proc{}, detectors...), replacement) {
		if p == victim {
			continue
		}
		if n := r.consumed(p, "leakline-detector", topics.Events); n == 0 {
			t.Errorf("%s consumed no events", p.Name())
		}
	}
	for _, p := range sinks {
		if n := r.consumed(p, "leakline-chsink", topics.Findings) + r.consumed(p, "leakline-chsink-events", topics.EventMeta); n == 0 {
			t.Errorf("%s consumed nothing", p.Name())
		}
	}
	for _, p := range r.procs {
		if p.Exited() && !r.killed[p] {
			t.Errorf("%s exited during the run:\n%s", p.Name(), p.Output())
		}
		if rss, err := p.PeakRSS(); err == nil {
			t.Logf("%s: peak RSS %.1f MiB", p.Name(), float64(rss)/(1<<20))
		}
	}
	revised := 0
	for _, f := range want {
		if f.Revision > 1 {
			revised++
		}
	}
	var findingRows, eventRows uint64
	if err := store.Conn().QueryRow(ctx, "SELECT (SELECT count() FROM "+store.Database()+".findings), (SELECT count() FROM "+store.Database()+".events)").Scan(&findingRows, &eventRows); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d findings (%d with more than one revision) on %d partitions, %d events; %d finding rows and %d event rows before FINAL; total %v",
		len(want), revised, len(perPartition), len(valid), findingRows, eventRows, time.Since(begin).Round(time.Millisecond))
}

// scaleoutPack writes the default rule pack plus testdata/scaleout-rules.yaml
// (shadow rules that fire on ordinary traffic) into a directory and returns
// it.
func scaleoutPack(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := fs.WalkDir(rules.DefaultPack, "packs/default", func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && d.Name() == rules.TestsDir:
			return fs.SkipDir
		case d.IsDir():
			return nil
		}
		b, err := fs.ReadFile(rules.DefaultPack, p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, d.Name()), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("testdata", "scaleout-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "scaleout.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// validEventIDs decodes the raw events as the normalizer would and returns
// the ids of the valid ones (each once).
func validEventIDs(t *testing.T, raws []scenario.Raw) map[string]int {
	t.Helper()
	dec, err := event.NewDecoder(event.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, r := range raws {
		ev, err := dec.DecodeRaw(r.Kind, r.Value, event.Source{}, time.Now())
		if err != nil {
			continue
		}
		ids[ev.EventID] = 1
	}
	if len(ids) < len(raws)*9/10 {
		t.Fatalf("only %d of %d raw events are valid", len(ids), len(raws))
	}
	return ids
}

// waitQuiescent waits until every consumer group has committed the end of
// every partition it reads and the stored findings and events did not
// change between two looks a second apart.
func waitQuiescent(ctx context.Context, t *testing.T, kc kafkaio.Config, topics kafkaio.Topics, store *chstore.Store) {
	t.Helper()
	db := store.Database()
	var last string
	for {
		lag, err := totalLag(ctx, kc, topics)
		state := ""
		if err == nil && len(lag) == 0 {
			var findings, revisions, events, rows uint64
			err = store.Conn().QueryRow(ctx, "SELECT count(), sum(revision) FROM "+db+".findings FINAL").Scan(&findings, &revisions)
			if err == nil {
				err = store.Conn().QueryRow(ctx, "SELECT count(), (SELECT count() FROM "+db+".findings) FROM "+db+".events").Scan(&events, &rows)
			}
			state = fmt.Sprint(findings, revisions, events, rows)
		}
		if err == nil && len(lag) == 0 && state == last {
			return
		}
		last = state
		select {
		case <-ctx.Done():
			t.Fatalf("no quiescence: lag by group %v, %v", lag, err)
		case <-time.After(time.Second):
		}
	}
}

// totalLag is the sum over every stage's consumer group and every
// partition it reads of the end offset minus the committed offset.
func totalLag(ctx context.Context, kc kafkaio.Config, topics kafkaio.Topics) (map[string]int64, error) {
	cl := &kafka.Client{Addr: kafka.TCP(kc.Brokers...), Transport: kc.Transport(), Timeout: 10 * time.Second}
	parts := make([]int, scalePartitions)
	for i := range parts {
		parts[i] = i
	}
	lag := map[string]int64{}
	for group, of := range scaleGroups {
		req := &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{}}
		for _, tp := range of(topics) {
			req.Topics[tp] = parts
		}
		resp, err := cl.OffsetFetch(ctx, req)
		if err == nil {
			err = resp.Error
		}
		if err != nil {
			return nil, fmt.Errorf("committed offsets of %s: %w", group, err)
		}
		for tp, ps := range resp.Topics {
			for _, p := range ps {
				if p.Error != nil {
					return nil, fmt.Errorf("committed offset of %s %s/%d: %w", group, tp, p.Partition, p.Error)
				}
				end, err := kafkaio.EndOffset(ctx, kc, tp, p.Partition)
				if err != nil {
					return nil, err
				}
				if l := end - max(p.CommittedOffset, 0); l != 0 {
					lag[group] += l
				}
			}
		}
	}
	return lag, nil
}

// oracle reads every partition of dlp.events in offset order through one
// engine per partition, built from the processes' environment by
// pkg/config, and returns the latest revision of every finding and the
// number of findings per partition. It also checks the partitions hold
// exactly the valid raw events, each once, on its actor's partition.
func oracle(ctx context.Context, t *testing.T, kc kafkaio.Config, topics kafkaio.Topics, env []string, valid map[string]int) (map[string]finding.Finding, map[int]int) {
	t.Helper()
	vars := map[string]string{}
	for _, kv := range env {
		for i := range kv {
			if kv[i] == '=' {
				vars[kv[:i]] = kv[i+1:]
				break
			}
		}
	}
	flags := config.Register(flag.NewFlagSet("oracle", flag.ContinueOnError), func(k string) string { return vars[k] })
	cfg, err := flags.Resolve(true)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := inspect.NewWithKey(cfg.Inspect, cfg.HMACKey)
	if err != nil {
		t.Fatal(err)
	}
	parts := make([]int, scalePartitions)
	for i := range parts {
		parts[i] = i
	}
	out := map[string]finding.Finding{}
	perPartition := map[int]int{}
	seen := map[string]int{}
	now := time.Now()
	for p := range scalePartitions {
		eng, err := detect.New(cfg.Engine, sc)
		if err != nil {
			t.Fatal(err)
		}
		_, err = kafkaio.ReplayPartition(ctx, kc, topics.Events, p, func(m kafka.Message) error {
			ev, err := event.UnmarshalEvent(m.Value)
			if err != nil {
				return fmt.Errorf("dlp.events/%d@%d: %w", p, m.Offset, err)
			}
			seen[ev.EventID]++
			if want := (&kafka.Hash{}).Balance(kafka.Message{Key: []byte(ev.Actor.UID)}, parts...); want != p {
				t.Errorf("event %s of %s on partition %d, its actor's is %d", ev.EventID, ev.Actor.UID, p, want)
			}
			for _, f := range eng.Process(ev, now) {
				if old, ok := out[f.FindingID]; !ok || f.Revision > old.Revision {
					if !ok {
						perPartition[p]++
					}
					out[f.FindingID] = f
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for id := range valid {
		if seen[id] != 1 {
			t.Errorf("event %s is %d times in dlp.events, want once", id, seen[id])
		}
	}
	for id, n := range seen {
		if valid[id] == 0 {
			t.Errorf("dlp.events holds %d × %s, which is not a valid raw event", n, id)
		}
	}
	return out, perPartition
}

// diffFindings lists how got differs from want, by finding id.
func diffFindings(want map[string]finding.Finding, got []finding.Finding) []string {
	var d []string
	byID := map[string]finding.Finding{}
	for _, g := range got {
		if _, dup := byID[g.FindingID]; dup {
			d = append(d, "read twice: "+g.FindingID[:12])
		}
		byID[g.FindingID] = g
	}
	for id, w := range want {
		g, ok := byID[id]
		switch {
		case !ok:
			d = append(d, fmt.Sprintf("missing %s %s %s rev %d value %g", id[:12], w.RuleID, w.ActorUID, w.Revision, w.Value))
		case g.RuleID != w.RuleID || g.ActorUID != w.ActorUID || g.Revision != w.Revision || g.Value != w.Value ||
			g.EventCount != w.EventCount || !sameCounts(g.PIICounts, w.PIICounts) || g.Shadow != w.Shadow ||
			!g.WindowStart.Equal(w.WindowStart.Truncate(time.Millisecond)) || !g.WindowEnd.Equal(w.WindowEnd.Truncate(time.Millisecond)):
			d = append(d, fmt.Sprintf("%s %s %s: got rev %d value %g events %d pii %v window %s–%s; want rev %d value %g events %d pii %v window %s–%s",
				id[:12], w.RuleID, w.ActorUID, g.Revision, g.Value, g.EventCount, g.PIICounts, g.WindowStart, g.WindowEnd,
				w.Revision, w.Value, w.EventCount, w.PIICounts, w.WindowStart, w.WindowEnd))
		}
	}
	for id, g := range byID {
		if _, ok := want[id]; !ok {
			d = append(d, fmt.Sprintf("unexpected %s %s %s rev %d value %g", id[:12], g.RuleID, g.ActorUID, g.Revision, g.Value))
		}
	}
	sort.Strings(d)
	return d
}

func sameCounts(a, b map[string]uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func keys(m map[string]finding.Finding) map[string]int {
	out := make(map[string]int, len(m))
	for k := range m {
		out[k] = 1
	}
	return out
}

// assertOncePerID runs query (id, count() pairs) and checks it returns
// exactly the ids of want, each with count 1.
func assertOncePerID(ctx context.Context, t *testing.T, conn driver.Conn, query string, want map[string]int, what string) {
	t.Helper()
	rows, err := conn.Query(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]uint64{}
	for rows.Next() {
		var id string
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		got[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for id := range want {
		if got[id] != 1 {
			if bad++; bad <= 10 {
				t.Errorf("%s %s: %d rows under FINAL, want 1", what, id, got[id])
			}
		}
	}
	for id, n := range got {
		if want[id] == 0 {
			if bad++; bad <= 10 {
				t.Errorf("%s %s: %d rows under FINAL, not expected at all", what, id, n)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d %ss stored other than exactly once (of %d)", bad, what, len(want))
	}
}
