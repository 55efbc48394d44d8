package rules

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
)

func parseTestStrings(t *testing.T, files map[string]string) ([]TestCase, error) {
	t.Helper()
	b := map[string][]byte{}
	for k, v := range files {
		b[k] = []byte(v)
	}
	return ParseTests(b)
}

func rawMap(t *testing.T, e RawEvent) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFixtureGenerator(t *testing.T) {
	tcs, err := parseTestStrings(t, map[string]string{"gen.yaml": `name: generator features
start: 2026-11-02T09:00:00Z
end: +3h
defaults:
  actor: {uid: u-1, department: support}
  action: view
events:
  - {at: +1h, kind: outbound, channel: usb, destination: {device: {vendor: V}}, content: {file_name: "f-{i:03}.zip", size: 1.5MB}}
  - {at: +0m, kind: crm_access, repeat: 3, every: 10m, records: {ids: "C-{i*2+1}..C-{i*2+2}", fields: email}, ticket_id: "T-{n}-{{x}}"}
  - {at: 2026-11-02T09:05:00Z, kind: crm_access, actor: {uid: u-2}, action: export, records: {ids: ["C-008..C-010", X]}, event_id: "custom-{i}"}
  - {at: +2h, kind: outbound, channel: email, destination: {recipients: "a@gmail.com"}, content: {text: "{emails(2)}"}, attachments: [{size: 2KiB, text: "{cards(1)} {ibans(1)}"}]}
expect:
  - {rule: a.b, group: u-1, incidents: 1, min_value: 2, max_value: 5, severity: high, shadow: false}
absent: [c.d]
`})
	if err != nil {
		t.Fatal(err)
	}
	tc := tcs[0]
	if tc.Name != "generator features" || tc.Pos.String() != "gen.yaml:1:1" || !tc.End.Equal(tc.Start.Add(3*time.Hour)) {
		t.Errorf("header: %+v", tc)
	}
	if len(tc.Events) != 6 {
		t.Fatalf("%d events", len(tc.Events))
	}
	// Time order, stable.
	var times []string
	for _, e := range tc.Events {
		times = append(times, e.At.Format("15:04"))
	}
	if want := []string{"09:00", "09:05", "09:10", "09:20", "10:00", "11:00"}; !slices.Equal(times, want) {
		t.Errorf("times %v, want %v", times, want)
	}
	first := rawMap(t, tc.Events[0])
	if ids := first["records"].(map[string]any)["ids"]; !jsonEqual(ids, []string{"C-1", "C-2"}) {
		t.Errorf("range: %v", ids)
	}
	if f := first["records"].(map[string]any)["fields"]; !jsonEqual(f, []string{"email"}) {
		t.Errorf("string to list: %v", f)
	}
	// n counts events in file order: the USB event came first.
	if first["ticket_id"] != "T-1-{x}" || first["action"] != "view" || first["event_id"] != "generator-features-2" ||
		first["schema_version"] != 1.0 || first["class_uid"] != 6003.0 || first["time"] != "2026-11-02T09:00:00Z" {
		t.Errorf("first: %v", first)
	}
	custom := rawMap(t, tc.Events[1])
	if ids := custom["records"].(map[string]any)["ids"]; !jsonEqual(ids, []string{"C-008", "C-009", "C-010", "X"}) || custom["event_id"] != "custom-0" ||
		custom["actor"].(map[string]any)["uid"] != "u-2" {
		t.Errorf("custom: %v", custom)
	}
	if third := rawMap(t, tc.Events[3]); third["ticket_id"] != "T-3-{x}" {
		t.Errorf("n: %v", third["ticket_id"])
	}
	usb := rawMap(t, tc.Events[4])
	if c := usb["content"].(map[string]any); c["file_name"] != "f-000.zip" || c["size"] != 1.5e6 || usb["class_uid"] != 1001.0 {
		t.Errorf("usb: %v", usb)
	}
	mail := rawMap(t, tc.Events[5])
	text := mail["content"].(map[string]any)["text"].(string)
	att := mail["attachments"].([]any)[0].(map[string]any)
	if strings.Count(text, "@") != 2 || att["size"] != 2048.0 || len(strings.Fields(att["text"].(string))) != 10 {
		t.Errorf("mail: %v", mail)
	}
	// Every generated event is accepted by pkg/event.
	dec, _ := event.NewDecoder(event.Limits{})
	for _, e := range tc.Events {
		if _, err := dec.DecodeRaw(e.Kind, e.Raw, event.Source{}, e.At); err != nil {
			t.Errorf("%s: %v", e.Pos, err)
		}
	}
	if x := tc.Expect[0]; x.Rule != "a.b" || x.Group != "u-1" || x.Incidents != 1 || *x.MinValue != 2 || *x.MaxValue != 5 ||
		x.Severity != "high" || *x.Shadow || x.Pos.String() != "gen.yaml:13:5" {
		t.Errorf("expect: %+v", x)
	}
	if !slices.Equal(tc.Absent, []string{"c.d"}) || tc.AbsentPos[0].String() != "gen.yaml:14:10" {
		t.Errorf("absent: %v %v", tc.Absent, tc.AbsentPos)
	}
}

func jsonEqual(got any, want []string) bool {
	a, ok := got.([]any)
	if !ok || len(a) != len(want) {
		return false
	}
	for i := range a {
		if a[i] != want[i] {
			return false
		}
	}
	return true
}

func TestFixtureErrors(t *testing.T) {
	head := "name: t\nstart: 2026-11-02T09:00:00Z\nexpect: [{rule: a.b}]\nevents:\n"
	for _, tc := range []struct {
		name, events string
		want         string
	}{
		{"bad at", "  - {at: soon, kind: crm_access, actor: {uid: u}, action: view, records: {ids: C-1}}\n",
			`t.yaml:5:10: test "t": event: at: "soon" is not an RFC 3339 time`},
		{"bad kind", "  - {at: +0m, kind: fax}\n",
			`t.yaml:5:21: test "t": event: kind must be crm_access or outbound, got "fax"`},
		{"field of the other kind", "  - {at: +0m, kind: crm_access, channel: usb, actor: {uid: u}, action: view, records: {ids: C-1}}\n",
			`t.yaml:5:33: test "t": event: a crm_access event has no field channel`},
		{"unknown field", "  - {at: +0m, kind: crm_access, actr: {uid: u}}\n",
			`t.yaml:5:33: test "t": event: unknown field "actr"; did you mean "actor"?`},
		{"repeat without every", "  - {at: +0m, kind: crm_access, repeat: 3, actor: {uid: u}, action: view, records: {ids: C-1}}\n",
			`t.yaml:5:5: test "t": event: repeat needs every:`},
		{"invalid event", "  - {at: +0m, kind: crm_access, actor: {uid: u}, action: steal, records: {ids: C-1}}\n",
			`t.yaml:5:58: test "t": event: the generated crm_access event (repetition 0) is not valid: /action: enum: want one of "view"`},
		{"unclosed template", "  - {at: +0m, kind: crm_access, actor: {uid: \"u-{i\"}, action: view, records: {ids: C-1}}\n",
			`t.yaml:5:46: test "t": event: actor: unclosed { in "u-{i"`},
		{"bad template", "  - {at: +0m, kind: crm_access, actor: {uid: \"u-{j}\"}, action: view, records: {ids: C-1}}\n",
			`t.yaml:5:46: test "t": event: actor: template {j}: unexpected "j"`},
		{"bad range", "  - {at: +0m, kind: crm_access, actor: {uid: u}, action: view, records: {ids: \"A-1..B-5\"}}\n",
			`t.yaml:5:79: test "t": event: records: "A-1..B-5" is not a range`},
		{"bad size", "  - {at: +0m, kind: outbound, actor: {uid: u}, channel: usb, destination: {device: {}}, content: {size: huge}}\n",
			`t.yaml:5:105: test "t": event: content: size "huge" must be a number of bytes or have a unit`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseTestStrings(t, map[string]string{"t.yaml": head + tc.events})
			got := errLines(err)
			if len(got) != 1 || !strings.HasPrefix(got[0], tc.want) {
				t.Fatalf("got:\n%s\nwant %s…", strings.Join(got, "\n"), tc.want)
			}
		})
	}
	// Every problem of a generated event, at its place.
	_, err := parseTestStrings(t, map[string]string{"t.yaml": head + "  - {at: +0m, kind: crm_access, actor: {uid: \"\"}, records: {ids: [C-1], count: -1}}\n"})
	got := errLines(err)
	want := []string{
		`t.yaml:5:5: test "t": event: the generated crm_access event (repetition 0) is not valid: (root): required: missing "action"`,
		`t.yaml:5:46: test "t": event: the generated crm_access event (repetition 0) is not valid: /actor/uid: minLength`,
		`t.yaml:5:80: test "t": event: the generated crm_access event (repetition 0) is not valid: /records/count: minimum`,
	}
	if len(got) != len(want) {
		t.Fatalf("got:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("got %s\nwant %s…", got[i], want[i])
		}
	}
	// File-level errors.
	for _, tc := range []struct {
		name, text, want string
	}{
		{"no expectation", "name: t\nstart: 2026-11-02T09:00:00Z\nevents: [{at: +0m, kind: crm_access, actor: {uid: u}, action: view, records: {ids: C-1}}]\n",
			`t.yaml:1:1: test "t": a test needs expect:, absent: or both`},
		{"duplicate names", head + "  - {at: +0m, kind: crm_access, actor: {uid: u}, action: view, records: {ids: C-1}}\n---\n" + head + "  - {at: +0m, kind: crm_access, actor: {uid: u}, action: view, records: {ids: C-1}}\n",
			`t.yaml:7:1: duplicate test name "t" (first at t.yaml:1:1)`},
		{"bad start", "name: t\nstart: tomorrow\nexpect: [{rule: a.b}]\nevents: [{at: +0m, kind: crm_access, actor: {uid: u}, action: view, records: {ids: C-1}}]\n",
			`t.yaml:2:8: test "t": start: "tomorrow" is not an RFC 3339 time`},
		{"bad expect", head + "  - {at: +0m, kind: crm_access, actor: {uid: u}, action: view, records: {ids: C-1}}\n" + "absent: [Not-An-Id]\n",
			`t.yaml:6:10: test "t": absent: "Not-An-Id" is not a rule id`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseTestStrings(t, map[string]string{"t.yaml": tc.text})
			got := errLines(err)
			if len(got) != 1 || !strings.HasPrefix(got[0], tc.want) {
				t.Fatalf("got:\n%s\nwant %s…", strings.Join(got, "\n"), tc.want)
			}
		})
	}
}

func TestExpandRange(t *testing.T) {
	for in, want := range map[string][]string{
		"C-1..C-3":        {"C-1", "C-2", "C-3"},
		"C-08..C-11":      {"C-08", "C-09", "C-10", "C-11"},
		"C-10..C-12":      {"C-10", "C-11", "C-12"},
		"cust-9..cust-11": {"cust-9", "cust-10", "cust-11"},
		"plain":           {"plain"},
	} {
		got, err := expandRange(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"C-3..C-1", "A-1..B-2", "C..D", "C-1..C-20001"} {
		if _, err := expandRange(in); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

func TestCompare(t *testing.T) {
	start := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	f := func(id, rule, actor string, rev uint64, value float64) finding.Finding {
		return finding.Finding{FindingID: id, RuleID: rule, ActorUID: actor, Revision: rev, Value: value, Threshold: 200,
			Severity: "high", WindowStart: start, WindowEnd: start.Add(time.Hour)}
	}
	one, min := 1, 200.0
	tc := TestCase{Name: "t", Pos: Pos{"t.yaml", 1, 1},
		Expect:    []Expectation{{Rule: "crm.bulk", Group: "u-1", Incidents: one, MinValue: &min, Pos: Pos{"t.yaml", 9, 5}}},
		Absent:    []string{"outbound.pii"},
		AbsentPos: []Pos{{"t.yaml", 10, 10}},
	}
	// Revisions of one incident are one incident; the last value counts.
	got := []finding.Finding{f("a", "crm.bulk", "u-1", 1, 150), f("a", "crm.bulk", "u-1", 3, 450), f("a", "crm.bulk", "u-1", 2, 300)}
	if d := Compare(tc, got); len(d) != 0 {
		t.Errorf("pass expected: %q", d)
	}
	// Everything wrong at once.
	got = []finding.Finding{f("a", "crm.bulk", "u-1", 1, 150), f("b", "crm.bulk", "u-1", 1, 250), f("c", "outbound.pii", "u-1", 1, 12)}
	d := Compare(tc, got)
	want := []string{
		`t.yaml:9:5: "t": crm.bulk group u-1: expected 1 incident, got 2` +
			"\n    got: {rule: crm.bulk, group: u-1, value: 150, threshold: 200, severity: high, shadow: false, window: 2026-11-02T09:00:00Z..2026-11-02T10:00:00Z, events: 0, revision: 1}" +
			"\n    got: {rule: crm.bulk, group: u-1, value: 250, threshold: 200, severity: high, shadow: false, window: 2026-11-02T09:00:00Z..2026-11-02T10:00:00Z, events: 0, revision: 1}",
		`t.yaml:9:5: "t": crm.bulk group u-1: value 150 is below min_value 200: {rule: crm.bulk, group: u-1, value: 150`,
		`t.yaml:10:10: "t": outbound.pii: expected no finding, got {rule: outbound.pii, group: u-1, value: 12`,
	}
	if len(d) != len(want) {
		t.Fatalf("got %d diffs:\n%s", len(d), strings.Join(d, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(d[i], want[i]) {
			t.Errorf("diff %d:\n got %s\nwant %s", i, d[i], want[i])
		}
	}
	// None for the group, some for others.
	d = Compare(tc, []finding.Finding{f("x", "crm.bulk", "u-9", 1, 300)})
	if len(d) != 1 || !strings.Contains(d[0], "expected 1 incident, got 0\n    other groups: {rule: crm.bulk, group: u-9") {
		t.Errorf("other groups: %q", d)
	}
	// Exhaustive tests report unexpected rules.
	tc.Exhaustive = true
	d = Compare(tc, []finding.Finding{f("a", "crm.bulk", "u-1", 1, 300), f("z", "usb.dump", "u-1", 1, 1)})
	if len(d) != 1 || !strings.HasPrefix(d[0], `t.yaml:1:1: "t": unexpected finding (exhaustive test): {rule: usb.dump`) {
		t.Errorf("exhaustive: %q", d)
	}
}

func TestCheckTests(t *testing.T) {
	p, err := LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	tcs := []TestCase{{Name: "t", Expect: []Expectation{{Rule: "crm.bulk_read_no_tiket", Pos: Pos{"t.yaml", 3, 5}}},
		Absent: []string{"usb.dump"}, AbsentPos: []Pos{{"t.yaml", 4, 10}}}}
	got := errLines(p.CheckTests(tcs))
	want := []string{`t.yaml:3:5: test "t": expect: the pack has no rule "crm.bulk_read_no_tiket"`, `t.yaml:4:10: test "t": absent: the pack has no rule "usb.dump"`}
	if !slices.Equal(got, want) {
		t.Errorf("got %q", got)
	}
}

func TestLoadTestsDir(t *testing.T) {
	tcs, err := LoadTests("packs/default")
	if err != nil {
		t.Fatal(err)
	}
	d, err := LoadDefaultTests()
	if err != nil || len(tcs) != len(d) || len(tcs) < 20 {
		t.Fatalf("LoadTests %d, LoadDefaultTests %d, %v", len(tcs), len(d), err)
	}
	if !strings.HasPrefix(tcs[0].Pos.File, "packs/default/tests/") {
		t.Errorf("file %s", tcs[0].Pos.File)
	}
	if tcs, err := LoadTests(t.TempDir()); tcs != nil || err != nil {
		t.Errorf("no tests dir: %v %v", tcs, err)
	}
}
