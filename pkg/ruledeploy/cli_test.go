package ruledeploy_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/clicmd"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/ruledeploy"
	"github.com/leakline/leakline/pkg/testenv"
)

// copyPack copies the default pack (with its fixtures) to a temp dir.
func copyPack(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "rules", "packs", "default")
	dst := t.TempDir()
	for _, sub := range []string{"", "tests"} {
		entries, err := os.ReadDir(filepath.Join(src, sub))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dst, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(src, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, sub, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dst
}

func edit(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s: %q not found", path, old)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

type cliResult struct {
	code           int
	stdout, stderr string
}

func rulesCLI(args ...string) cliResult {
	var out, errb bytes.Buffer
	code := clicmd.Rules(context.Background(), args, strings.NewReader(""), &out, &errb)
	return cliResult{code, out.String(), errb.String()}
}

// extraRule is a rule added by a second deploy.
const extraRule = `
  - id: crm.any_export
    title: Any CRM export
    description: Every CRM export.
    severity: low
    match: kind == "crm_access" && crm.ticket_id == "T-never"
    window: {kind: count, over: 1h, threshold: 1}
`

func TestRulesDeployCLI(t *testing.T) {
	b := testenv.Kafka(t, nil)
	if b == nil {
		return
	}
	brokers := strings.Join(b.Addrs(), ",")
	tmp := t.TempDir()
	key := filepath.Join(tmp, "rules.key")
	if r := rulesCLI("keygen", "-o", key); r.code != 0 || !strings.Contains(r.stdout, "key id") {
		t.Fatalf("keygen: %+v", r)
	}
	pub, err := ruledeploy.LoadPublicKey(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if r := rulesCLI("keygen", "-o", key); r.code != 1 {
		t.Fatalf("keygen over an existing key: %+v", r)
	}
	dir := copyPack(t)

	// Refusals: usage, no key, invalid pack, failing fixtures.
	broken := copyPack(t)
	edit(t, filepath.Join(broken, "crm.yaml"), "severity: high", "severity: extreme")
	failing := copyPack(t)
	edit(t, filepath.Join(failing, "crm.yaml"), "threshold: 200", "threshold: 9000")
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no message", []string{"deploy", dir, "--key-file", key, "--brokers", brokers}, 2, "-m MESSAGE"},
		{"no brokers", []string{"deploy", dir, "-m", "x", "--key-file", key, "--brokers", ""}, 2, "--brokers"},
		{"no key", []string{"deploy", dir, "-m", "x", "--key-file", filepath.Join(tmp, "none"), "--brokers", brokers}, 1, "key file"},
		{"invalid pack", []string{"deploy", broken, "-m", "x", "--key-file", key, "--brokers", brokers}, 1, "does not validate"},
		{"failing fixtures", []string{"deploy", failing, "-m", "x", "--key-file", key, "--brokers", brokers}, 1, "fixtures fail"},
		{"rollback nothing", []string{"rollback", "1", "--key-file", key, "--brokers", brokers}, 1, "no deploy with seq 1"},
		{"rollback bad seq", []string{"rollback", "x", "--key-file", key, "--brokers", brokers}, 2, "not a deploy number"},
	} {
		if r := rulesCLI(c.args...); r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", c.name, r.code, r.stderr, c.code, c.want)
		}
	}
	if r := rulesCLI("history", "--brokers", brokers); r.code != 0 || !strings.Contains(r.stdout, "no pack deployed") {
		t.Fatalf("empty history: %+v", r)
	}

	// First deploy.
	r := rulesCLI("deploy", dir, "-m", "initial", "--key-file", key, "--brokers", brokers, "--author", "alice")
	if r.code != 0 || !strings.Contains(r.stdout, "deployed seq 1") {
		t.Fatalf("deploy 1: %+v", r)
	}
	if r := rulesCLI("deploy", dir, "-m", "again", "--key-file", key, "--brokers", brokers); r.code != 0 || !strings.Contains(r.stdout, "unchanged") {
		t.Fatalf("redeploy: %+v", r)
	}
	if r := rulesCLI("diff", dir, "--brokers", brokers); r.code != 0 || !strings.Contains(r.stdout, "no changes") {
		t.Fatalf("diff unchanged: %+v", r)
	}

	// Second deploy: a new rule, a retitled rule, a new threshold.
	edit(t, filepath.Join(dir, "crm.yaml"), "rules:\n", "rules:"+extraRule+"\n")
	edit(t, filepath.Join(dir, "crm.yaml"), "title: Bulk read of customer records without a ticket", "title: Bulk CRM read without a ticket")
	edit(t, filepath.Join(dir, "crm.yaml"), "threshold: 300", "threshold: 250")
	edit(t, filepath.Join(dir, "pack.yaml"), `version: "2026.11.0"`, `version: "2026.11.1"`)
	r = rulesCLI("diff", dir, "--brokers", brokers)
	for _, want := range []string{"+ crm.any_export", "~ crm.bulk_read_no_ticket\n", `title: "Bulk read of customer records without a ticket" -> "Bulk CRM read without a ticket"`,
		"~ crm.low_and_slow (restart: new version)", `window.threshold: "300" -> "250"`, `pack version: "2026.11.0" -> "2026.11.1"`, "+1 -0 ~2"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("diff lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := rulesCLI("deploy", dir, "-m", "add crm.any_export", "--key-file", key, "--brokers", brokers, "--author", "bob"); r.code != 0 || !strings.Contains(r.stdout, "deployed seq 2") {
		t.Fatalf("deploy 2: %+v", r)
	}

	// Rollback to 1: a new deploy (3) with seq 1's files.
	if r := rulesCLI("rollback", "1", "--key-file", key, "--brokers", brokers, "--author", "carol"); r.code != 0 || !strings.Contains(r.stdout, "deployed seq 3") || !strings.Contains(r.stdout, "+0 -1 ~2") {
		t.Fatalf("rollback: %+v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := ruledeploy.History(ctx, kafkaio.Config{Brokers: b.Addrs()}, ruledeploy.DefaultTopic)
	if err != nil || len(h) != 3 {
		t.Fatalf("history: %d %v", len(h), err)
	}
	for i, e := range h {
		if err := ruledeploy.Verify(e.Message, pub); err != nil {
			t.Errorf("deploy %d: %v", i+1, err)
		}
	}
	if h[2].Message.Checksum != h[0].Message.Checksum || h[2].Message.Message != "rollback to seq 1" || h[2].Message.Author != "carol" {
		t.Errorf("rollback deploy %+v", h[2].Message)
	}
	r = rulesCLI("history", "--brokers", brokers)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 || !strings.Contains(lines[0], "seq 1") || !strings.Contains(lines[0], "alice") ||
		!strings.Contains(lines[1], "+1 -0 ~2  add crm.any_export") || !strings.Contains(lines[2], "rollback to seq 1") {
		t.Fatalf("history: %+v", r)
	}

	// A deploy signed by another key is refused, or re-signed with
	// --trust-other-key.
	other := filepath.Join(tmp, "other.key")
	if r := rulesCLI("keygen", "-o", other); r.code != 0 {
		t.Fatal(r)
	}
	if r := rulesCLI("rollback", "2", "--key-file", other, "--brokers", brokers); r.code != 1 || !strings.Contains(r.stderr, "refused") {
		t.Fatalf("rollback of a deploy signed by another key: %+v", r)
	}
	if r := rulesCLI("rollback", "2", "--key-file", other, "--brokers", brokers, "--trust-other-key"); r.code != 0 || !strings.Contains(r.stderr, "re-signing") {
		t.Fatalf("rollback with another key: %+v", r)
	}
	l, err := ruledeploy.Latest(ctx, kafkaio.Config{Brokers: b.Addrs()}, ruledeploy.DefaultTopic)
	if err != nil || l.Seq != 4 || ruledeploy.Verify(l, pub) == nil {
		t.Fatalf("latest after rollback with another key: %+v %v", l, err)
	}
}

// TestDeployRecordsInClickHouse: `rules deploy --clickhouse` records the
// deploy; `rules history --from-clickhouse` reads it back.
func TestDeployRecordsInClickHouse(t *testing.T) {
	b := testenv.Kafka(t, nil)
	if b == nil {
		return
	}
	srv := testenv.ClickHouse(t)
	if srv == nil {
		return
	}
	st := testenv.ClickHouseStore(t, srv)
	dir := t.TempDir()
	key := filepath.Join(dir, "k")
	_, priv, err := ruledeploy.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := ruledeploy.WriteKeyPair(key, priv); err != nil {
		t.Fatal(err)
	}
	pack := copyPack(t)
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := clicmd.Rules(context.Background(), args, strings.NewReader(""), &out, &errb)
		return code, out.String() + errb.String()
	}
	brokers := strings.Join(b.Addrs(), ",")
	if code, out := run("deploy", pack, "-m", "first", "--key-file", key, "--brokers", brokers, "--author", "alice",
		"--clickhouse", srv.Addr(), "--clickhouse-database", st.Database()); code != 0 || strings.Contains(out, "warning") {
		t.Fatalf("deploy: %d %s", code, out)
	}
	code, out := run("history", "--from-clickhouse", "--clickhouse", srv.Addr(), "--clickhouse-database", st.Database())
	if code != 0 || !strings.Contains(out, "seq 1") || !strings.Contains(out, "alice") || !strings.Contains(out, "first") {
		t.Fatalf("history --from-clickhouse: %d %s", code, out)
	}

	// A second pack version, then a rollback to the first (--signing-key-file,
	// the flag's current name): the history in ClickHouse keeps all three
	// deployments, in order, though the rollback redeploys version 2026.11.0.
	edit(t, filepath.Join(pack, "pack.yaml"), `version: "2026.11.0"`, `version: "2026.11.1"`)
	if code, out := run("deploy", pack, "-m", "second", "--signing-key-file", key, "--brokers", brokers, "--author", "bob",
		"--clickhouse", srv.Addr(), "--clickhouse-database", st.Database()); code != 0 || strings.Contains(out, "warning") {
		t.Fatalf("deploy 2: %d %s", code, out)
	}
	if code, out := run("rollback", "1", "--signing-key-file", key, "--brokers", brokers, "--author", "carol",
		"--clickhouse", srv.Addr(), "--clickhouse-database", st.Database()); code != 0 || strings.Contains(out, "warning") || !strings.Contains(out, "deployed seq 3") {
		t.Fatalf("rollback: %d %s", code, out)
	}
	code, out = run("history", "--from-clickhouse", "--clickhouse", srv.Addr(), "--clickhouse-database", st.Database())
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("history --from-clickhouse after a rollback: %d\n%s", code, out)
	}
	for i, want := range [][]string{
		{"seq 1 ", "alice", "pack 2026.11.0", "first"},
		{"seq 2 ", "bob", "pack 2026.11.1", "second"},
		{"seq 3 ", "carol", "pack 2026.11.0", "rollback to seq 1"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("history line %d lacks %q: %s", i+1, w, lines[i])
			}
		}
	}
	// The ClickHouse history is the topic's.
	if code, kout := run("history", "--brokers", brokers); code != 0 || kout != out {
		t.Errorf("history from Kafka:\n%s\nfrom ClickHouse:\n%s", kout, out)
	}
}
