package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const testPackYAML = `version: "1"
lists:
  personal: [gmail.com, yahoo.com]
`

// baseRules is a valid rules file; the cases below edit it.
const baseRules = `rules:
  - id: t.rule
    title: T
    description: D
    severity: high
    match: kind == "crm_access"
    window: {kind: count, over: 1h, threshold: 3}
`

// at returns "file:L:C" where C is the column of needle in line L of text.
func at(t *testing.T, file, text string, line int, needle string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	if line < 1 || line > len(lines) {
		t.Fatalf("no line %d", line)
	}
	i := strings.Index(lines[line-1], needle)
	if i < 0 {
		t.Fatalf("line %d %q has no %q", line, lines[line-1], needle)
	}
	return fmt.Sprintf("%s:%d:%d", file, line, len([]rune(lines[line-1][:i]))+1)
}

func parseStrings(files map[string]string) error {
	b := map[string][]byte{}
	for k, v := range files {
		b[k] = []byte(v)
	}
	_, err := Parse(b)
	return err
}

func errLines(err error) []string {
	var out []string
	for _, e := range Errors(err) {
		out = append(out, e.Error())
	}
	return out
}

type validateCase struct {
	name string
	// edit turns baseRules into the case's rules.yaml.
	edit func(string) string
	// line and needle locate the error; want is a part of its message.
	line   int
	needle string
	want   string
	// schema: the JSON Schema rejects the file too.
	schema bool
}

func replace(old, new string) func(string) string {
	return func(s string) string {
		if !strings.Contains(s, old) {
			panic("no " + old)
		}
		return strings.Replace(s, old, new, 1)
	}
}

var validateCases = []validateCase{
	{name: "unknown rule field", edit: replace("    severity: high\n", "    severity: high\n    severty: high\n"),
		line: 6, needle: "severty", want: `rule t.rule: unknown field "severty"; did you mean "severity"?`, schema: true},
	{name: "unknown window field", edit: replace("threshold: 3}", "threshold: 3, treshold: 2}"),
		line: 7, needle: "treshold", want: `unknown field "treshold"; did you mean "threshold"?`, schema: true},
	{name: "wrong type", edit: replace("threshold: 3}", "threshold: lots}"),
		line: 7, needle: "lots", want: "window: threshold must be a number, got a string", schema: true},
	{name: "wrong type list", edit: replace("    severity: high\n", "    severity: high\n    tags: attack.t1048\n"),
		line: 6, needle: "attack", want: "tags must be a list of strings, got a string", schema: true},
	{name: "missing required field", edit: replace("    title: T\n", ""),
		line: 2, needle: "id", want: `rule t.rule: missing required field "title"`, schema: true},
	{name: "missing window", edit: replace("    window: {kind: count, over: 1h, threshold: 3}\n", ""),
		line: 2, needle: "id", want: `missing required field "window"`, schema: true},
	{name: "missing threshold", edit: replace(", threshold: 3}", "}"),
		line: 7, needle: "{", want: `missing required field "threshold"`, schema: true},
	{name: "bad duration", edit: replace("over: 1h", "over: 1x"),
		line: 7, needle: "1x", want: `over "1x": not a duration`, schema: true},
	{name: "duration not a string", edit: replace("over: 1h", "over: 3600"),
		line: 7, needle: "3600", want: "over must be a duration such as 1h or 30d, got an integer", schema: true},
	{name: "unbounded window", edit: replace("over: 1h", "over: 31d"),
		line: 7, needle: "31d", want: "over 31d is out of bounds [1s, 30d]"},
	{name: "zero window", edit: replace("over: 1h", "over: 0s"),
		line: 7, needle: "0s", want: "over 0s is out of bounds [1s, 30d]"},
	{name: "cooldown too long", edit: replace("    severity: high\n", "    severity: high\n    cooldown: 40d\n"),
		line: 6, needle: "40d", want: "cooldown 40d is out of bounds [0s, 30d]"},
	{name: "history too long", edit: replace("{kind: count, over: 1h, threshold: 3}", "{kind: baseline, history: 91d, factor: 10}"),
		line: 7, needle: "91d", want: "history 91d is out of bounds [1m, 90d]"},
	{name: "history not whole buckets", edit: replace("{kind: count, over: 1h, threshold: 3}", "{kind: baseline, bucket: 7h, history: 30d, factor: 10}"),
		line: 7, needle: "30d", want: "history 30d must be a whole number of buckets (bucket 7h)"},
	{name: "oversized exact_up_to", edit: replace("{kind: count, over: 1h, threshold: 3}", "{kind: distinct, over: 1h, value: crm.record_ids, threshold: 3, exact_up_to: 2000000}"),
		line: 7, needle: "2000000", want: "exact_up_to must be 1 to 1000000", schema: true},
	{name: "count threshold not whole", edit: replace("threshold: 3}", "threshold: 2.5}"),
		line: 7, needle: "2.5", want: "threshold must be a whole number, got 2.5", schema: true},
	{name: "window field of another kind", edit: replace("threshold: 3}", "threshold: 3, within: 1h}"),
		line: 7, needle: "within", want: "a count window does not take within (it takes over, threshold)", schema: true},
	{name: "unknown window kind", edit: replace("kind: count", "kind: cuont"),
		line: 7, needle: "cuont", want: `kind must be one of count, sum, distinct, sequence, absence, baseline, got "cuont"; did you mean "count"?`, schema: true},
	{name: "sequence with one step", edit: replace("{kind: count, over: 1h, threshold: 3}", "{kind: sequence, within: 1h, steps: [{name: a, match: \"true\"}]}"),
		line: 7, needle: "[", want: "a sequence has 2 to 8 steps, got 1", schema: true},
	{name: "duplicate step name", edit: replace("{kind: count, over: 1h, threshold: 3}", "{kind: sequence, within: 1h, steps: [{name: a, match: \"true\"}, {name: a, match: \"true\"}]}"),
		line: 7, needle: "a, match: \"true\"}]", want: `duplicate step name "a"`},
	{name: "absence without then", edit: replace("{kind: count, over: 1h, threshold: 3}", "{kind: absence, within: 1h}"),
		line: 7, needle: "{", want: `missing required field "then"`, schema: true},
	{name: "bad severity", edit: replace("severity: high", "severity: urgent"),
		line: 5, needle: "urgent", want: `severity must be low, medium, high or critical, got "urgent"`, schema: true},
	{name: "bad mode", edit: replace("    severity: high\n", "    severity: high\n    mode: dry-run\n"),
		line: 6, needle: "dry-run", want: `mode must be live or shadow, got "dry-run"`, schema: true},
	{name: "bad ATT&CK id", edit: replace("    severity: high\n", "    severity: high\n    tags: [attack.t1567, attack.t15670]\n"),
		line: 6, needle: "attack.t15670", want: `tag "attack.t15670": ATT&CK ids look like attack.t1048`, schema: true},
	{name: "unknown ATT&CK tactic", edit: replace("    severity: high\n", "    severity: high\n    tags: [attack.exfil]\n"),
		line: 6, needle: "attack.exfil", want: `an attack. tag must be an ATT&CK id`, schema: true},
	{name: "bad runbook", edit: replace("    severity: high\n", "    severity: high\n    runbook: wiki/page\n"),
		line: 6, needle: "wiki", want: `runbook must be an http(s) URL, got "wiki/page"`, schema: true},
	{name: "bad rule id", edit: replace("id: t.rule", "id: Bulk-Read"),
		line: 2, needle: "Bulk", want: `rule id "Bulk-Read" must be dotted lower-case words`, schema: true},
	{name: "duplicate YAML key", edit: replace("    severity: high\n", "    severity: high\n    title: U\n"),
		line: 6, needle: "title", want: `rule t.rule: duplicate field "title" (first at line 3)`},
	{name: "YAML syntax error", edit: replace("    title: T\n", "   title: T\n"),
		line: 3, needle: "title", want: "YAML syntax error: did not find expected '-' indicator"},
	{name: "YAML comment cuts an expression", edit: replace(`match: kind == "crm_access"`, `match: any(outbound.domains, # in lists.personal)`),
		line: 6, needle: ",", want: `match: unexpected token EOF (note: in YAML, " #" starts a comment`},
	{name: "anchors", edit: replace("    title: T\n", "    title: &t T\n"),
		line: 3, needle: "&t", want: "YAML anchors and aliases"},
	{name: "expression syntax error", edit: replace(`match: kind == "crm_access"`, `match: kind == "crm_access" && `),
		line: 6, needle: `& `, want: "match: unexpected token EOF"},
	{name: "expression unknown field", edit: replace(`match: kind == "crm_access"`, `match: kind == "crm_access" && crm.tiket_id == ""`),
		line: 6, needle: "tiket_id", want: "match: type rules.CRMEnv has no field tiket_id"},
	{name: "expression wrong type", edit: replace(`match: kind == "crm_access"`, `match: crm.record_count`),
		line: 6, needle: "crm.record_count", want: "match: expected bool, but got int"},
	{name: "expression mismatched operands", edit: replace(`match: kind == "crm_access"`, `match: crm.record_count > "many"`),
		line: 6, needle: `>`, want: `invalid operation: > (mismatched types int and string)`},
	{name: "group_by not a string", edit: replace("    severity: high\n", "    severity: high\n    group_by: crm.record_count\n"),
		line: 6, needle: "crm.record_count", want: "group_by: expected string, but got int"},
	{name: "distinct value not strings", edit: replace("{kind: count, over: 1h, threshold: 3}", "{kind: distinct, over: 1h, value: crm.record_count, threshold: 3}"),
		line: 7, needle: "crm.record_count", want: "value: expression must yield string or list of strings, it yields int"},
	{name: "sum value not a number", edit: replace("{kind: count, over: 1h, threshold: 3}", "{kind: sum, over: 1h, value: crm.region, threshold: 3}"),
		line: 7, needle: "crm.region", want: "value: expression must yield number, it yields string"},
	{name: "regex over the limit", edit: replace(`match: kind == "crm_access"`, `match: actor.email matches "(abc|def|ghi){500}"`),
		line: 6, needle: `"(abc`, want: "regular expression compiles to 6502 instructions, the limit is 5000"},
	{name: "regex too long", edit: replace(`match: kind == "crm_access"`, `match: actor.email matches "`+strings.Repeat("a", 600)+`"`),
		line: 6, needle: `"aaa`, want: "regular expression is 600 bytes long, the limit is 512"},
	{name: "invalid regex", edit: replace(`match: kind == "crm_access"`, `match: actor.email matches "(a"`),
		line: 6, needle: `"(a"`, want: "invalid regular expression"},
	{name: "non-constant regex", edit: replace(`match: kind == "crm_access"`, `match: actor.email matches actor.uid`),
		line: 6, needle: "matches", want: "the right side of matches must be a string literal"},
	{name: "unknown list", edit: replace(`match: kind == "crm_access"`, `match: 'any(outbound.domains, # in lists.personl)'`),
		line: 6, needle: "personl", want: `unknown list "personl"`},
	{name: "disabled builtin", edit: replace(`match: kind == "crm_access"`, `match: now().Hour() > 20`),
		line: 6, needle: "now", want: "match: unknown name now"},
	{name: "nested predicates", edit: replace(`match: kind == "crm_access"`, `match: 'any(crm.fields, any(outbound.domains, # == "x"))'`),
		line: 6, needle: "any(outbound", want: "a predicate may not contain another predicate"},
	{name: "expression too costly", edit: replace(`match: kind == "crm_access"`, `match: 'any(crm.record_ids, # + "a" + "b" + "c" + "d" + "e" == actor.uid)'`),
		line: 6, needle: "any", want: "expression may take about"},
	{name: "range too long", edit: replace(`match: kind == "crm_access"`, `match: crm.record_count in 1..5000`),
		line: 6, needle: "..", want: "the range 1..5000 has 5000 elements"},
	{name: "expression too many nodes", edit: replace(`match: kind == "crm_access"`, "match: "+strings.Repeat("hour == 1 || ", 130)+"true"),
		line: 6, needle: "hour", want: "syntax nodes, the limit is 500"},
	{name: "expression too long", edit: replace(`match: kind == "crm_access"`, "match: "+strings.Repeat("hour  ==  1  ||  ", 130)+"true"),
		line: 6, needle: "hour", want: "expression is 2214 bytes long, the limit is 2048"},
}

func TestValidateErrors(t *testing.T) {
	for _, tc := range validateCases {
		t.Run(tc.name, func(t *testing.T) {
			rules := tc.edit(baseRules)
			err := parseStrings(map[string]string{"pack.yaml": testPackYAML, "rules.yaml": rules})
			got := errLines(err)
			want := at(t, "rules.yaml", rules, tc.line, tc.needle) + ": "
			if len(got) != 1 || !strings.HasPrefix(got[0], want) || !strings.Contains(got[0], tc.want) {
				t.Fatalf("want one error %s…%s…, got:\n%s", want, tc.want, strings.Join(got, "\n"))
			}
			if tc.schema {
				var el errList
				f := &file{name: "rules.yaml", src: []byte(rules), errs: &el}
				var root yaml.Node
				if yaml.Unmarshal([]byte(rules), &root) == nil && len(root.Content) == 1 {
					schemaCheck(f, root.Content[0], schemaRulesFile)
				}
				if el.len() == 0 {
					t.Errorf("the JSON Schema accepts what the loader rejects")
				}
			}
		})
	}
}

func TestValidateBaseIsValid(t *testing.T) {
	if err := parseStrings(map[string]string{"pack.yaml": testPackYAML, "rules.yaml": baseRules}); err != nil {
		t.Fatal(err)
	}
}

func TestDuplicateIDAcrossFiles(t *testing.T) {
	other := strings.Replace(baseRules, "title: T", "title: Other", 1)
	err := parseStrings(map[string]string{"pack.yaml": testPackYAML, "a.yaml": baseRules, "b.yml": other})
	got := errLines(err)
	want := `b.yml:2:9: duplicate rule id "t.rule" (first defined at a.yaml:2:9)`
	if len(got) != 1 || got[0] != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestPackFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"missing pack.yaml", map[string]string{"rules.yaml": baseRules},
			[]string{"pack.yaml:1:1: the pack has no pack.yaml"}},
		{"pack.yaml fields", map[string]string{"rules.yaml": baseRules, "pack.yaml": "version: 1\nauthor: me\n"},
			[]string{`pack.yaml:1:10: pack.yaml: version must be a string, got an integer`, `pack.yaml:2:1: pack.yaml: unknown field "author"`}},
		{"bad defaults", map[string]string{"rules.yaml": baseRules, "pack.yaml": "version: \"1\"\ndefaults: {mode: loud, group_by: crm.record_count}\n"},
			[]string{`pack.yaml:2:18: defaults: mode must be live or shadow, got "loud"`, `pack.yaml:2:34: defaults: group_by: expected string, but got int`}},
		{"bad lists", map[string]string{"rules.yaml": baseRules, "pack.yaml": "version: \"1\"\nlists:\n  Bad: [x]\n  empty: []\n  nums: [1]\n"},
			[]string{`pack.yaml:3:3: lists: name "Bad" must be lower case`, `pack.yaml:4:10: lists: empty is empty`, `pack.yaml:5:10: lists: nums: items must be strings, got an integer`}},
		{"invalid UTF-8", map[string]string{"pack.yaml": testPackYAML, "rules.yaml": "rules:\n  - id: t.\xff\n"},
			[]string{"rules.yaml:2:11: the file is not valid UTF-8"}},
		{"empty rules file", map[string]string{"pack.yaml": testPackYAML, "rules.yaml": "# nothing\n"},
			[]string{"rules.yaml:1:1: the file is empty"}},
		{"two documents", map[string]string{"pack.yaml": testPackYAML, "rules.yaml": baseRules + "---\n" + baseRules},
			[]string{"rules.yaml:8:1: only one YAML document per file"}},
		{"not a mapping", map[string]string{"pack.yaml": testPackYAML, "rules.yaml": "- id: x\n"},
			[]string{"rules.yaml:1:1: rules file must be a mapping, got a list"}},
		{"rules not a list", map[string]string{"pack.yaml": testPackYAML, "rules.yaml": "rules: {id: x}\n"},
			[]string{"rules.yaml:1:8: rules must be a list of rules, got a mapping"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := errLines(parseStrings(tc.files))
			if len(got) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("error %d:\n got %s\nwant %s…", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestFiveErrors: a pack with five errors in two files reports all five,
// sorted by file and line, one per line of the error text.
func TestFiveErrors(t *testing.T) {
	a := `rules:
  - id: a.one
    title: One
    description: D
    severity: hgh
    match: kind == "crm_access" && crm.tiket_id == ""
    window: {kind: count, over: 45d, threshold: 3}
`
	b := `rules:
  - id: a.one
    title: Two
    description: D
    severity: low
    colour: red
    window: {kind: distinct, over: 1h, value: crm.record_ids, threshold: 10}
`
	err := parseStrings(map[string]string{"pack.yaml": testPackYAML, "a.yaml": a, "b.yaml": b})
	want := []string{
		`a.yaml:5:15: rule a.one: severity must be low, medium, high or critical, got "hgh"`,
		`a.yaml:6:40: rule a.one: match: type rules.CRMEnv has no field tiket_id`,
		`a.yaml:7:33: rule a.one: window: over 45d is out of bounds [1s, 30d]`,
		`b.yaml:2:9: duplicate rule id "a.one" (first defined at a.yaml:2:9)`,
		`b.yaml:6:5: rule a.one: unknown field "colour" (allowed: id, version, title, description, severity, tags, runbook, enabled, mode, match, group_by, cooldown, window)`,
	}
	if err == nil {
		t.Fatal("no error")
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if n := len(Errors(err)); n != 5 {
		t.Fatalf("%d errors", n)
	}
}

// TestExprPositions maps expression errors into every YAML scalar style.
func TestExprPositions(t *testing.T) {
	for _, tc := range []struct {
		name, match string
		line        int
		needle      string
	}{
		{"plain", `match: kind == "x" && crm.nope`, 6, "nope"},
		{"double quoted", `match: "kind == \"x\" && crm.nope"`, 6, "nope"},
		{"single quoted", `match: 'kind == ''x'' && crm.nope'`, 6, "nope"},
		{"literal block", "match: |\n      kind == \"x\" &&\n        crm.action == \"export\" &&\n        crm.nope", 9, "nope"},
		{"folded block", "match: >-\n      kind == \"x\" &&\n      crm.action == \"export\" &&\n      crm.nope", 9, "nope"},
		{"plain multi-line", "match: kind == \"x\" &&\n      crm.action == \"export\" &&\n      crm.nope", 8, "nope"},
		{"unicode before", `match: actor.department == "Vertrieb Süd" && crm.nope`, 6, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules := strings.Replace(baseRules, `match: kind == "crm_access"`, tc.match, 1)
			got := errLines(parseStrings(map[string]string{"pack.yaml": testPackYAML, "rules.yaml": rules}))
			want := at(t, "rules.yaml", rules, tc.line, tc.needle) + ": rule t.rule: match: type rules.CRMEnv has no field nope"
			if len(got) != 1 || got[0] != want {
				t.Fatalf("got %q\nwant %q", got, want)
			}
		})
	}
}

func TestDefaultsAndVersions(t *testing.T) {
	pack := "version: \"7\"\ndefaults: {mode: shadow, enabled: false, group_by: actor.department}\n"
	rules := `rules:
  - id: t.one
    title: T
    description: D
    severity: low
    window: {kind: count, over: 1h, threshold: 3}
  - id: t.two
    title: T
    description: D
    severity: low
    mode: live
    enabled: true
    group_by: actor.uid
    cooldown: 0s
    version: v2
    window: {kind: sequence, within: 2h, steps: [{name: a, match: "true"}, {name: b, match: "true"}]}
`
	p, err := Parse(map[string][]byte{"pack.yaml": []byte(pack), "rules.yaml": []byte(rules)})
	if err != nil {
		t.Fatal(err)
	}
	one, two := p.Rule("t.one"), p.Rule("t.two")
	if !one.Shadow || one.Enabled || one.GroupBy.Source != "actor.department" || one.Match.Source != "true" || one.CoolDown != time.Hour {
		t.Errorf("defaults not applied: %+v", one)
	}
	if len(one.Version) != 12 {
		t.Errorf("version %q", one.Version)
	}
	if two.Shadow || !two.Enabled || two.GroupBy.Source != "actor.uid" || two.CoolDown != 0 || two.Version != "v2" || two.Window.Over != 2*time.Hour {
		t.Errorf("overrides not applied: %+v", two)
	}
	if p.Version != "7" || p.MaxHorizon() != 2*time.Hour {
		t.Errorf("version %q horizon %s", p.Version, p.MaxHorizon())
	}
}

func TestVersionAndChecksumStability(t *testing.T) {
	load := func(rules string) *Pack {
		t.Helper()
		p, err := Parse(map[string][]byte{"pack.yaml": []byte(testPackYAML), "rules.yaml": []byte(rules)})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := load(baseRules)
	// Layout, comments and quoting change nothing.
	relaid := load(`# a comment
rules:
- id: "t.rule"
  title: 'T'
  description: D
  severity: high
  match: >-
    kind   ==
    "crm_access"
  window:
    kind: count
    over: 60m
    threshold: 3.0
`)
	if relaid.Rules[0].Version != base.Rules[0].Version || relaid.Checksum != base.Checksum {
		t.Errorf("layout changed the version or checksum")
	}
	// Metadata changes the checksum, not the version.
	meta := load(strings.Replace(baseRules, "title: T", "title: New title", 1))
	if meta.Rules[0].Version != base.Rules[0].Version || meta.Checksum == base.Checksum {
		t.Errorf("title: version %s→%s, checksum changed %t", base.Rules[0].Version, meta.Rules[0].Version, meta.Checksum != base.Checksum)
	}
	// Detection changes both.
	det := load(strings.Replace(baseRules, "threshold: 3", "threshold: 4", 1))
	if det.Rules[0].Version == base.Rules[0].Version || det.Checksum == base.Checksum {
		t.Errorf("threshold change kept the version or checksum")
	}
	// A list the rule uses is part of its version.
	withList := strings.Replace(baseRules, `match: kind == "crm_access"`, `match: "any(outbound.domains, # in lists.personal)"`, 1)
	a := load(withList)
	b, err := Parse(map[string][]byte{"pack.yaml": []byte(strings.Replace(testPackYAML, "yahoo.com", "aol.com", 1)), "rules.yaml": []byte(withList)})
	if err != nil {
		t.Fatal(err)
	}
	if a.Rules[0].Version == b.Rules[0].Version {
		t.Errorf("changing a used list kept the rule version")
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90s": 90 * time.Second, "1h30m": 90 * time.Minute, "30d": 30 * Day, "1d12h": 36 * time.Hour, "0s": 0, "0": 0, "1.5h": 90 * time.Minute,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("%s: got %s, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "d", "1x", "-1h", "+1h", "1d-2h", "3651d", "1.5d", "h", "1dd"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
	for d, want := range map[time.Duration]string{30 * Day: "30d", 36 * time.Hour: "1d12h", 90 * time.Second: "1m30s", time.Hour: "1h", 2*Day + time.Minute: "2d1m"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("%s: got %s want %s", d, got, want)
		}
	}
}

func TestLoadDirAndDefault(t *testing.T) {
	p, err := LoadDir("packs/default")
	if err != nil {
		t.Fatal(err)
	}
	d, err := LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	if p.Checksum != d.Checksum || len(p.Rules) != 10 {
		t.Fatalf("LoadDir and LoadDefault differ or rule count %d", len(p.Rules))
	}
	if got, want := p.MaxHorizon(), 30*Day+max(24*time.Hour, 24*time.Hour)+24*time.Hour; got != want {
		t.Errorf("MaxHorizon %s, want %s", got, want)
	}
	// Errors of LoadDir name the directory.
	dir := t.TempDir()
	writeFile(t, dir, "pack.yaml", testPackYAML)
	writeFile(t, dir, "rules.yaml", strings.Replace(baseRules, "high", "hihg", 1))
	writeFile(t, dir, "README.md", "not read")
	_, err = LoadDir(dir)
	if got := errLines(err); len(got) != 1 || !strings.HasPrefix(got[0], dir+"/rules.yaml:5:15: ") {
		t.Fatalf("got %q", got)
	}
}

// TestSchemaTopLevel: editors validate every file of a pack against the
// schema's top level (pack file, rules file or fixture).
func TestSchemaTopLevel(t *testing.T) {
	ss, err := loadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{defaultDir, defaultDir + "/" + TestsDir} {
		files, err := loadFS(DefaultPack, dir)
		if err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			dec := yaml.NewDecoder(strings.NewReader(string(b)))
			for {
				var doc yaml.Node
				if dec.Decode(&doc) != nil {
					break
				}
				if err := ss[""].Validate(toJSON(&doc)); err != nil {
					t.Errorf("%s/%s: %v", dir, name, err)
				}
			}
		}
	}
}

// TestSchemaErrorsArePositioned: a schema error is reported at the node
// the schema names.
func TestSchemaErrorsArePositioned(t *testing.T) {
	src := "rules:\n  - id: a.b\n    title: T\n    description: D\n    severity: extreme\n    window: {kind: count, over: 1h, threshold: 1}\n"
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(src), &root); err != nil {
		t.Fatal(err)
	}
	var el errList
	schemaCheck(&file{name: "r.yaml", src: []byte(src), errs: &el}, root.Content[0], schemaRulesFile)
	got := errLines(el.err())
	if len(got) != 1 || !strings.HasPrefix(got[0], "r.yaml:5:15: does not match rulepack.v1.schema.json (enum): value must be one of") {
		t.Fatalf("got %q", got)
	}
}
