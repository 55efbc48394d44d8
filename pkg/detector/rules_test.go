package detector_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/clicmd"
	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/detector"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/metrics"
	"github.com/leakline/leakline/pkg/ruledeploy"
	"github.com/leakline/leakline/pkg/testenv"
)

const hotRuleExports = `  - id: t.exports
    title: Three exports in an hour
    description: test rule
    severity: high
    match: kind == "crm_access" && crm.action == "export"
    window: {kind: count, over: 1h, threshold: 3}
`

const hotRuleAny = `  - id: t.any_export
    title: Any export
    description: test rule
    severity: low
    match: kind == "crm_access" && crm.action == "export"
    window: {kind: count, over: 1h, threshold: 1}
`

func hotPackFiles(version string, rs ...string) map[string][]byte {
	return map[string][]byte{
		"pack.yaml":  []byte(fmt.Sprintf("version: %q\n", version)),
		"rules.yaml": []byte("rules:\n" + strings.Join(rs, "")),
	}
}

func deploy(t *testing.T, kc kafkaio.Config, priv ed25519.PrivateKey, seq uint64, files map[string][]byte, tamper func(*ruledeploy.Message)) {
	t.Helper()
	m, _, err := ruledeploy.NewMessage(files, seq, "test", fmt.Sprintf("seq %d", seq), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := ruledeploy.Sign(m, priv); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if tamper == nil {
		if err := ruledeploy.Publish(ctx, kc, ruledeploy.DefaultTopic, m); err != nil {
			t.Fatal(err)
		}
		return
	}
	// Publish refuses an unsigned message: write it as an attacker would.
	tamper(m)
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	w := kafkaio.NewWriter(kc, ruledeploy.DefaultTopic)
	defer w.Close()
	if err := w.Write(ctx, kafka.Message{Key: []byte(ruledeploy.MessageKey), Value: b}); err != nil {
		t.Fatal(err)
	}
}

// exports are n CRM exports of actor uid, one minute apart from t0+minute.
func exports(t *testing.T, uid string, minute, n int) []kafka.Message {
	t0 := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	var evs []*event.Event
	for i := range n {
		at := t0.Add(time.Duration(minute+i) * time.Minute)
		id := fmt.Sprintf("e-%s-%d", uid, minute+i)
		actor := event.Actor{UID: uid, Email: uid + "@corp.example"}
		evs = append(evs, &event.Event{Kind: event.KindCRMAccess, EventID: id, Time: at, Actor: actor,
			CRM: &event.CRMAccess{SchemaVersion: 1, ClassUID: event.ClassAPIActivity, ActivityID: 2, EventID: id, Time: at, Actor: actor,
				Action: event.ActionExport, Records: event.Records{IDs: []string{"C-1"}, Count: 1}}})
	}
	return messages(t, evs)
}

// metricValue reads a counter or gauge of metrics.Registry (label value
// "" for none).
func metricValue(t *testing.T, name, label string) float64 {
	t.Helper()
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func findingsOf(c *collector, rule string) []finding.Finding {
	var out []finding.Finding
	for _, f := range c.snapshot() {
		if f.RuleID == rule {
			out = append(out, f)
		}
	}
	return out
}

// TestHotReload deploys v1, runs events, deploys v2 with a new rule (it
// fires on events after the swap only, while the unchanged rule keeps its
// window), then a tampered v3 and a stale repeat (both rejected: v2 keeps
// running).
func TestHotReload(t *testing.T) {
	broker := testenv.Kafka(t, nil)
	if broker == nil {
		return
	}
	kc := kafkaio.Config{Brokers: broker.Addrs(), ClientID: "hotreload"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafkaio.EnsureTopics(ctx, kc, 2, kafkaio.DefaultTopics().All()...); err != nil {
		t.Fatal(err)
	}
	_, priv, err := ruledeploy.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	deploy(t, kc, priv, 1, hotPackFiles("v1", hotRuleExports), nil)
	got := collect(t, kc, kafkaio.DefaultTopics().Findings)

	d, err := detector.New(detector.Config{
		Kafka: kc, Topics: kafkaio.DefaultTopics(), Engine: detect.DefaultConfig(), HMACKey: testKey,
		Consumer: kafkaio.ConsumerConfig{SessionTimeout: 2 * time.Second, HeartbeatInterval: 100 * time.Millisecond, RebalanceTimeout: 4 * time.Second},
		Rules:    detector.RulesConfig{PublicKey: priv.Public().(ed25519.PublicKey), Instance: "det-1", StatusInterval: 200 * time.Millisecond},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	run(t, d)
	waitFor(t, "pack seq 1", func() bool { _, seq := d.RulePack(); return seq == 1 })

	// v1: two exports of u-a; nothing fires yet (threshold 3).
	w := kafkaio.NewWriter(kc, kafkaio.DefaultTopics().Events)
	defer w.Close()
	if err := w.Write(context.Background(), exports(t, "u-a", 0, 2)...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the v1 events to be processed", func() bool { return d.Stats().Events == 2 })

	// v2 adds t.any_export.
	deploy(t, kc, priv, 2, hotPackFiles("v2", hotRuleExports, hotRuleAny), nil)
	waitFor(t, "pack seq 2", func() bool { _, seq := d.RulePack(); return seq == 2 })
	if metricValue(t, "leakline_rule_pack_seq", "") != 2 {
		t.Errorf("leakline_rule_pack_seq = %v", metricValue(t, "leakline_rule_pack_seq", ""))
	}
	if err := w.Write(context.Background(), exports(t, "u-a", 2, 1)...); err != nil {
		t.Fatal(err)
	}
	// t.exports kept u-a's window: the third export fires it.
	waitFor(t, "t.exports", func() bool { return len(findingsOf(got, "t.exports")) == 1 })
	f := findingsOf(got, "t.exports")[0]
	if f.Value != 3 || f.PackVersion != "v2" {
		t.Errorf("t.exports finding: value %v pack %s", f.Value, f.PackVersion)
	}
	// t.any_export fires from the swap on: only on the third event.
	waitFor(t, "t.any_export", func() bool { return len(findingsOf(got, "t.any_export")) == 1 })
	if a := findingsOf(got, "t.any_export")[0]; a.Value != 1 || len(a.EventIDs) != 1 || a.EventIDs[0] != "e-u-a-2" || a.PackVersion != "v2" {
		t.Errorf("t.any_export finding: %+v", a)
	}

	// A tampered v3, an unsigned v3, a v3 signed by another key, and a
	// stale (already running) seq 2 are rejected; v2 keeps running.
	_, other, _ := ruledeploy.GenerateKey()
	before := map[string]float64{}
	for _, r := range []string{"tampered", "unsigned", "wrong_key", "stale"} {
		before[r] = metricValue(t, "leakline_rule_pack_rejected_total", r)
	}
	v3 := hotPackFiles("v3", hotRuleAny)
	deploy(t, kc, priv, 3, v3, func(m *ruledeploy.Message) { m.Files["rules.yaml"] += hotRuleExports })
	deploy(t, kc, priv, 3, v3, func(m *ruledeploy.Message) { m.Signature = "" })
	deploy(t, kc, other, 3, v3, nil)
	deploy(t, kc, priv, 2, v3, nil)
	waitFor(t, "the rejections", func() bool {
		for r, v := range before {
			if metricValue(t, "leakline_rule_pack_rejected_total", r) != v+1 {
				return false
			}
		}
		return true
	})
	if p, seq := d.RulePack(); seq != 2 || p.Version != "v2" {
		t.Fatalf("running pack %s seq %d after rejections, want v2 seq 2", p.Version, seq)
	}
	// Events keep flowing through v2.
	if err := w.Write(context.Background(), exports(t, "u-b", 10, 1)...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "t.any_export for u-b", func() bool { return len(findingsOf(got, "t.any_export")) == 2 })

	// status: the heartbeat shows seq 2 and the last rejection.
	var st []ruledeploy.Status
	waitFor(t, "a heartbeat with the last rejection", func() bool {
		st, err = ruledeploy.ReadStatus(ctx, kc, ruledeploy.DefaultStatusTopic, time.Time{})
		return err == nil && len(st) == 1 && st[0].LastRejection != nil && st[0].LastRejection.Reason == "stale"
	})
	if s := st[0]; s.Instance != "det-1" || s.PackSeq != 2 || s.PackVersion != "v2" || !s.HotReload || len(s.Partitions) != 2 {
		t.Errorf("status %+v", s)
	}
	keyPath := filepath.Join(t.TempDir(), "rules.key")
	if err := ruledeploy.WriteKeyPair(keyPath, priv); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--public-key", keyPath + ".pub"}, []string{"deployed: seq 2, pack v2", "det-1  group leakline-detector  seq 2  pack v2",
			"last rejected: seq 2 at offset 5, stale"}},
		{nil, []string{"deployed: seq 3, pack v3", "unverified", "seq 2  pack v2", "[not the deployed seq]"}},
	} {
		var out, errb bytes.Buffer
		code := clicmd.Rules(context.Background(), append([]string{"status", "--brokers", strings.Join(kc.Brokers, ",")}, c.args...),
			strings.NewReader(""), &out, &errb)
		for _, w := range c.want {
			if code != 0 || !strings.Contains(out.String(), w) {
				t.Errorf("rules status %v: exit %d, want %q in\n%s%s", c.args, code, w, out.String(), errb.String())
			}
		}
	}

	// Rollback to seq 1 (as seq 4, above the rejected seq 3): v1 runs
	// again, t.any_export is gone, t.exports still fires.
	var out, errb bytes.Buffer
	if code := clicmd.Rules(context.Background(), []string{"rollback", "1", "--key-file", keyPath, "--brokers", strings.Join(kc.Brokers, ",")},
		strings.NewReader(""), &out, &errb); code != 0 || !strings.Contains(out.String(), "deployed seq 4") {
		t.Fatalf("rollback: %d %s%s", code, out.String(), errb.String())
	}
	waitFor(t, "pack seq 4", func() bool { _, seq := d.RulePack(); return seq == 4 })
	if p, _ := d.RulePack(); p.Version != "v1" || p.Rule("t.any_export") != nil {
		t.Fatalf("after rollback the detector runs %s", p.Version)
	}
	if err := w.Write(context.Background(), exports(t, "u-c", 20, 3)...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "t.exports for u-c", func() bool { return len(findingsOf(got, "t.exports")) == 2 })
	if n := len(findingsOf(got, "t.any_export")); n != 2 {
		t.Errorf("t.any_export fired after the rollback: %d findings", n)
	}
}

// TestHotSwapUnderLoadKeepsFindings deploys packs to two detectors while
// events flow: first the default pack itself, then one with retitled rules
// and an added rule that never matches. Rule versions are unchanged, so
// windows and incidents are kept: the findings (revisions, values, event
// counts) equal those of one uninterrupted engine per partition — not one
// event dropped or double-counted by a swap.
func TestHotSwapUnderLoadKeepsFindings(t *testing.T) {
	kc, _, msgs, want, got := setup(t)
	_, priv, err := ruledeploy.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	files, err := ruledeploy.ReadPackFiles(filepath.Join("..", "rules", "packs", "default"))
	if err != nil {
		t.Fatal(err)
	}
	deploy(t, kc, priv, 1, files, nil)
	newDet := func(name string) *detector.Detector {
		d, err := detector.New(detector.Config{
			Kafka: kc, Topics: kafkaio.DefaultTopics(), Engine: engineConfig(), HMACKey: testKey,
			Consumer: kafkaio.ConsumerConfig{SessionTimeout: 2 * time.Second, HeartbeatInterval: 100 * time.Millisecond, RebalanceTimeout: 4 * time.Second},
			Rules:    detector.RulesConfig{PublicKey: priv.Public().(ed25519.PublicKey), Instance: name, StatusTopic: "-"},
		}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := run(t, newDet("a")), run(t, newDet("b"))
	v2 := map[string][]byte{}
	for name, content := range files {
		v2[name] = content
	}
	v2["pack.yaml"] = bytes.Replace(v2["pack.yaml"], []byte(`version: "2026.11.0"`), []byte(`version: "2026.11.0-hot"`), 1)
	v2["crm.yaml"] = bytes.Replace(v2["crm.yaml"], []byte("title: Bulk read of customer records without a ticket"), []byte("title: Bulk CRM read without a ticket"), 1)
	v2["zz_extra.yaml"] = []byte("rules:\n" + strings.Replace(strings.Replace(hotRuleAny, "t.any_export", "t.never", 1),
		`crm.action == "export"`, `crm.ticket_id == "T-never"`, 1))
	if !bytes.Contains(v2["pack.yaml"], []byte("-hot")) {
		t.Fatal("the default pack's version changed: update the test")
	}
	produce(t, kc, msgs, 12, func(i int) {
		if i == 5 {
			deploy(t, kc, priv, 2, v2, nil)
		}
		time.Sleep(100 * time.Millisecond)
	})
	waitEqual(t, got, want)
	for _, r := range []*running{a, b} {
		if p, seq := r.d.RulePack(); seq != 2 || p.Version != "2026.11.0-hot" {
			t.Errorf("a detector runs %s seq %d, want seq 2", p.Version, seq)
		}
	}
	swapped := 0
	for _, f := range got.snapshot() {
		if f.PackVersion == "2026.11.0-hot" {
			swapped++
		}
	}
	if swapped == 0 {
		t.Error("no finding revision came from the new pack")
	}
}
