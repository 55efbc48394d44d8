package chstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/testenv"
)

var t0 = time.Date(2026, 3, 31, 23, 59, 58, 123456789, time.UTC)

// full is a finding with every field set, and sub-millisecond times.
func full(id string) finding.Finding {
	return finding.Finding{
		FindingID:   id,
		Revision:    7,
		RuleID:      "crm.mass_export",
		RuleVersion: "3",
		PackVersion: "2026.03.1",
		Title:       "Mass export — 1 200 records; \"quoted\" 'and' \\ back\nslashed",
		Severity:    finding.SeverityHigh,
		Shadow:      true,
		ActorUID:    "u-1001",
		ActorEmail:  "a***@example.com",
		Department:  "Sales",
		WindowStart: t0,
		WindowEnd:   t0.Add(90*time.Minute + 987654321),
		Channel:     "email",
		Destination: "j***@gmail.com",
		Value:       1234.5,
		Threshold:   1000,
		PIICounts:   map[string]uint32{"iban": 3, "email": 1200, "phone": 17},
		Evidence: []finding.Evidence{
			{Type: "email", Masked: "j***@example.org", Token: "tok-1"},
			{Type: "iban", Masked: "DE89 **** **** 3000", Token: "tok-2"},
		},
		EventIDs:   []string{"ev-1", "ev-2", "ev-3"},
		EventCount: 1234,
		DetectedAt: t0.Add(2 * time.Hour),
	}
}

// stored is what a finding reads back as: times in UTC, to the millisecond.
func stored(f finding.Finding) finding.Finding {
	ms := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return time.UnixMilli(t.UnixMilli()).UTC()
	}
	f.WindowStart, f.WindowEnd, f.DetectedAt = ms(f.WindowStart), ms(f.WindowEnd), ms(f.DetectedAt)
	return f
}

func mustInsert(t *testing.T, st *chstore.Store, fs ...finding.Finding) {
	t.Helper()
	if err := st.InsertFindings(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
}

func ids(fs []finding.Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.FindingID)
	}
	return out
}

func TestFindingsRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := testenv.ClickHouseStore(t, srv)

	minimal := finding.Finding{FindingID: "f-minimal", RuleID: "r", ActorUID: "u"}
	local := full("f-local")
	loc := time.FixedZone("UTC+5:30", 5*3600+1800)
	local.WindowStart, local.WindowEnd, local.DetectedAt = t0.In(loc), t0.Add(time.Second).In(loc), t0.Add(time.Minute).In(loc)
	local.PIICounts = map[string]uint32{"ssn": 1}
	local.Evidence, local.EventIDs = nil, []string{}
	old := full("f-1960")
	old.WindowStart = time.Date(1960, 1, 2, 3, 4, 5, 6e6, time.UTC) // before DateTime's range
	in := []finding.Finding{full("f-full"), minimal, local, old}
	mustInsert(t, st, in...)

	got, err := st.Findings(ctx, chstore.FindingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]finding.Finding{}
	for _, f := range in {
		f = stored(f)
		if len(f.EventIDs) == 0 {
			f.EventIDs = nil // empty and nil are the same when stored
		}
		want[f.FindingID] = f
	}
	if len(got) != len(in) {
		t.Fatalf("got %d findings, want %d", len(got), len(in))
	}
	for _, g := range got {
		if w := want[g.FindingID]; !reflect.DeepEqual(g, w) {
			t.Errorf("finding %s:\n got %+v\nwant %+v", g.FindingID, g, w)
		}
	}

	// Map order does not leak into storage: types are written sorted.
	var types []string
	if err := st.Conn().QueryRow(ctx, "SELECT pii_types FROM findings FINAL WHERE finding_id = 'f-full'").Scan(&types); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(types, []string{"email", "iban", "phone"}) {
		t.Errorf("pii_types stored as %q", types)
	}
}

func TestFindingsKeepHighestRevision(t *testing.T) {
	ctx := context.Background()
	st := testenv.ClickHouseStore(t, srv)

	rev := func(r uint64, sev string) finding.Finding {
		f := full("f-rev")
		f.Revision, f.Severity, f.EventCount = r, sev, r*10
		f.WindowEnd = f.WindowStart.Add(time.Duration(r) * time.Minute)
		return f
	}
	// Separate inserts (separate parts), duplicates, and a late lower
	// revision, as replays and retries deliver them.
	for _, f := range []finding.Finding{rev(1, "high"), rev(1, "high"), rev(3, "critical"), rev(2, "medium")} {
		mustInsert(t, st, f)
	}
	mustInsert(t, st, rev(2, "medium"), full("f-other"))

	got, err := st.Findings(ctx, chstore.FindingFilter{RuleID: "crm.mass_export", ActorUID: "u-1001"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids(got), []string{"f-other", "f-rev"}) && !reflect.DeepEqual(ids(got), []string{"f-rev", "f-other"}) {
		t.Fatalf("got %v", ids(got))
	}
	for _, g := range got {
		if g.FindingID == "f-rev" && !reflect.DeepEqual(g, stored(rev(3, "critical"))) {
			t.Errorf("f-rev = %+v, want revision 3", g)
		}
	}
	if n, err := st.CountFindings(ctx); err != nil || n != 2 {
		t.Errorf("CountFindings = %d, %v; want 2", n, err)
	}
	// Filters apply to the latest revision only: f-rev was "high" at
	// revision 1 but is "critical" now.
	got, err = st.Findings(ctx, chstore.FindingFilter{Severity: "high"})
	if err != nil || !reflect.DeepEqual(ids(got), []string{"f-other"}) {
		t.Errorf("Severity high: %v, %v; want only f-other", ids(got), err)
	}
	// Merging the parts leaves the same answer.
	if err := st.Conn().Exec(ctx, "OPTIMIZE TABLE findings FINAL"); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, st, "SELECT count() FROM findings"); n != 2 {
		t.Errorf("after OPTIMIZE FINAL: %d rows, want 2", n)
	}
}

func TestFindingsFilter(t *testing.T) {
	ctx := context.Background()
	st := testenv.ClickHouseStore(t, srv)

	base := time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC)
	mk := func(id, rule, actor, sev string, start time.Time) finding.Finding {
		f := full(id)
		f.RuleID, f.ActorUID, f.Severity, f.WindowStart = rule, actor, sev, start
		f.WindowEnd = start.Add(time.Hour)
		return f
	}
	mustInsert(t, st,
		mk("a", "r1", "u1", "high", base),
		mk("b", "r1", "u2", "low", base.Add(1500*time.Millisecond)),
		mk("c", "r2", "u1", "high", base.Add(1500*time.Millisecond)), // same start as b: finding id breaks the tie
		mk("d", "r2", "u2", "critical", base.Add(2*time.Hour)),       // next month's partition
		mk("e", "r3", "u3", "medium", base.Add(40*24*time.Hour)),
	)
	mustInsert(t, st, mk("f", "r1", "u1", "low", base.Add(1501*time.Millisecond)))

	for _, tc := range []struct {
		name string
		f    chstore.FindingFilter
		want []string
	}{
		{"all, ordered by start then id", chstore.FindingFilter{}, []string{"a", "b", "c", "f", "d", "e"}},
		{"rule", chstore.FindingFilter{RuleID: "r1"}, []string{"a", "b", "f"}},
		{"actor", chstore.FindingFilter{ActorUID: "u2"}, []string{"b", "d"}},
		{"severity", chstore.FindingFilter{Severity: "high"}, []string{"a", "c"}},
		{"rule and actor", chstore.FindingFilter{RuleID: "r1", ActorUID: "u1"}, []string{"a", "f"}},
		{"from is inclusive, to the ms", chstore.FindingFilter{From: base.Add(1500 * time.Millisecond)}, []string{"b", "c", "f", "d", "e"}},
		{"to is exclusive, to the ms", chstore.FindingFilter{To: base.Add(1501 * time.Millisecond)}, []string{"a", "b", "c"}},
		{"from and to across partitions", chstore.FindingFilter{From: base.Add(time.Second), To: base.Add(3 * time.Hour)}, []string{"b", "c", "f", "d"}},
		{"window and severity", chstore.FindingFilter{From: base.Add(time.Second), Severity: "low"}, []string{"b", "f"}},
		{"limit", chstore.FindingFilter{Limit: 2}, []string{"a", "b"}},
		{"limit with filter", chstore.FindingFilter{RuleID: "r2", Limit: 1}, []string{"c"}},
		{"no match", chstore.FindingFilter{RuleID: "r1", ActorUID: "u3"}, []string{}},
		{"quote in value", chstore.FindingFilter{ActorUID: "u1' OR '1'='1"}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.Findings(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ids(got), tc.want) {
				t.Errorf("got %v, want %v", ids(got), tc.want)
			}
		})
	}
	if _, err := st.Findings(ctx, chstore.FindingFilter{Limit: -1}); err == nil {
		t.Error("negative limit accepted")
	}
}

// TestQueryLogHasNoFilterValues checks that neither inserted findings nor
// filter values reach the query text the server logs, and documents why
// Findings does not use the driver's "?" binding.
func TestQueryLogHasNoFilterValues(t *testing.T) {
	ctx := context.Background()
	st := testenv.ClickHouseStore(t, srv)
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	marker := "pii-" + hex.EncodeToString(rnd[:])

	f := full("f-" + marker)
	f.ActorUID, f.ActorEmail, f.RuleID, f.Severity = marker+"-actor", marker+"-email", marker+"-rule", marker+"-sev"
	mustInsert(t, st, f)
	got, err := st.Findings(ctx, chstore.FindingFilter{
		RuleID: f.RuleID, ActorUID: f.ActorUID, Severity: f.Severity,
		From: f.WindowStart, To: f.WindowEnd,
	})
	if err != nil || len(got) != 1 {
		t.Fatalf("Findings = %d, %v", len(got), err)
	}

	// What the driver's client-side binding sends, for contrast.
	rows, err := st.Conn().Query(ctx, "SELECT finding_id FROM findings WHERE actor_uid = ?", marker+"-bound")
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()

	if err := st.Conn().Exec(ctx, "SYSTEM FLUSH LOGS"); err != nil {
		t.Fatal(err)
	}
	qrows, err := st.Conn().Query(ctx, "SELECT query FROM system.query_log WHERE event_date >= yesterday()")
	if err != nil {
		t.Fatal(err)
	}
	defer qrows.Close()
	var sawFindings, sawBound bool
	for qrows.Next() {
		var q string
		if err := qrows.Scan(&q); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.Contains(q, marker+"-bound"):
			sawBound = true
		case strings.Contains(q, marker):
			t.Errorf("query_log has a value: %s", q)
		case strings.Contains(q, "FROM _filter") && strings.Contains(q, st.Database()):
			sawFindings = true
		}
	}
	if err := qrows.Err(); err != nil {
		t.Fatal(err)
	}
	if !sawFindings {
		t.Error("the Findings query is not in query_log: the check above proves nothing")
	}
	if !sawBound {
		t.Error(`a "?"-bound value did not reach query_log: clickhouse-go binds on the server now? Revisit the package doc`)
	}
}

func TestReadOnlyUser(t *testing.T) {
	ctx := context.Background() // no deadline: see below
	st := testenv.ClickHouseStore(t, srv)
	mustInsert(t, st, full("f-ro"))

	ro, err := chstore.Open(ctx, chstore.Config{Addr: srv.Addr(), Database: st.Database(), User: "readonly"})
	if err != nil {
		if strings.Contains(err.Error(), "readonly") || strings.Contains(err.Error(), "Unknown user") {
			testenv.Unavailable(t, "a readonly user in the server's users.xml", err)
		}
		t.Fatal(err)
	}
	defer ro.Close()
	got, err := ro.Findings(ctx, chstore.FindingFilter{ActorUID: "u-1001", From: t0.Add(-time.Hour)})
	if err != nil || len(got) != 1 {
		t.Fatalf("read-only Findings (external data) = %d, %v", len(got), err)
	}
	if err := ro.InsertFindings(ctx, []finding.Finding{full("f-ro2")}); err == nil || !strings.Contains(err.Error(), "chstore: insert findings") {
		t.Errorf("read-only insert: %v", err)
	}
	// clickhouse-go turns a context deadline over 1 s into the setting
	// max_execution_time. Current releases refuse that under readonly=1
	// (clickhouse-go#1748); 18.16 accepts it over Native. Logged only.
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err = ro.Findings(dctx, chstore.FindingFilter{})
	t.Logf("readonly=1 with a context deadline: err = %v", err)
}

func TestOpenErrors(t *testing.T) {
	dead := testenv.ClickHouse(t)
	if err := dead.Pause(); err != nil {
		t.Fatal(err)
	}
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	const dial = 700 * time.Millisecond
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T)
		addr   string
		db     string
		want   []string
		within time.Duration
	}{
		{name: "bad database name", addr: closed, db: "x; DROP TABLE y", want: []string{"chstore: open", "invalid database name"}, within: 50 * time.Millisecond},
		{name: "nothing listening", addr: closed, want: []string{"chstore: open", closed, "connection refused"}, within: dial},
		{name: "server hung", addr: dead.Addr(), want: []string{"chstore: open", dead.Addr(), "dial timeout"}, within: 2 * dial},
		{name: "server stopped", addr: dead.Addr(), setup: func(t *testing.T) {
			if err := dead.Stop(); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"chstore: open", dead.Addr(), "connection refused"}, within: dial},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			start := time.Now()
			st, err := chstore.Open(context.Background(), chstore.Config{Addr: tc.addr, Database: tc.db, DialTimeout: dial, ReadTimeout: dial})
			took := time.Since(start)
			if err == nil {
				st.Close()
				t.Fatal("Open succeeded")
			}
			t.Logf("after %v: %v", took.Round(time.Millisecond), err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q", w)
				}
			}
			if took > tc.within+time.Second { // slack for a loaded machine
				t.Errorf("took %v, want about %v at most", took, tc.within)
			}
		})
	}
}

// Compile-time check that the API keeps its shape.
var _ = []any{
	chstore.Open, (*chstore.Store).Migrate, (*chstore.Store).SchemaVersion,
	(*chstore.Store).InsertFindings, (*chstore.Store).Findings, (*chstore.Store).CountFindings,
	(*chstore.Store).Conn, (*chstore.Store).Close, clickhouse.Native, fmt.Sprint,
}
