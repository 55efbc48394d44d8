package pager

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/leakline/leakline/pkg/finding"
)

func TestExamplePolicy(t *testing.T) {
	p, err := LoadPolicy("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.GrafanaURL != "https://grafana.corp.example" || p.ResolveAfter != time.Hour || p.ResendInterval != time.Minute {
		t.Fatalf("top level: %+v", p)
	}
	if len(p.Receivers) != 3 || len(p.Routes) != 3 {
		t.Fatalf("%d receivers, %d routes", len(p.Receivers), len(p.Routes))
	}
	pd := p.Receivers[1]
	if pd.Type != TypePagerDuty || pd.URL != DefaultPagerDutyURL || pd.RateLimit == nil || pd.RateLimit.Pages != 10 ||
		pd.RateLimit.Per != 10*time.Minute || pd.SeverityMap["high"] != "critical" || pd.Line != 13 {
		t.Fatalf("pagerduty: %+v", pd)
	}
	if soc := p.Receivers[2]; soc.URL != "https://soc.corp.example/hooks/leakline" || soc.Timeout != 5*time.Second {
		t.Fatalf("soc: %+v", soc)
	}
	if r := p.Routes[1]; r.Line != 29 || !r.Continue || len(r.Match.Severities) != 2 || r.Match.Rules[1] != "outbound.*" {
		t.Fatalf("route 1: %+v", r)
	}
	if r := p.Routes[2]; r.ResolveAfter != 2*time.Hour || r.RunbookURL != p.RunbookURL {
		t.Fatalf("route 2: %+v", r)
	}

	f := func(sev, rule string, shadow bool) *finding.Finding {
		return &finding.Finding{FindingID: "x", RuleID: rule, ActorUID: "a", Severity: sev, Shadow: shadow}
	}
	names := func(ds []Decision) string {
		var s []string
		for _, d := range ds {
			s = append(s, d.Receiver)
		}
		return strings.Join(s, ",")
	}
	for _, tt := range []struct {
		f    *finding.Finding
		tags []string
		want string
	}{
		{f("critical", "crm.bulk_read_no_ticket", false), nil, "pagerduty,alertmanager"},
		{f("high", "outbound.pii_external", false), []string{"exfiltration"}, "pagerduty,alertmanager,soc"},
		{f("medium", "outbound.pii_external", false), []string{"exfiltration"}, "soc"},
		{f("medium", "outbound.pii_external", false), nil, ""},
		{f("critical", "other.rule", false), nil, ""},
		{f("critical", "crm.bulk_read_no_ticket", true), nil, "soc"}, // shadow: recorded, never paged
		{f("low", "x", true), nil, "soc"},
	} {
		if got := names(p.Route(tt.f, tt.tags)); got != tt.want {
			t.Errorf("Route(%s %s shadow=%v %v) = %q, want %q", tt.f.Severity, tt.f.RuleID, tt.f.Shadow, tt.tags, got, tt.want)
		}
	}
	if ds := p.Route(f("high", "outbound.x", false), []string{"exfiltration"}); ds[2].Route != &p.Routes[2] {
		t.Errorf("soc decided by route at line %d", ds[2].Route.Line)
	}
}

const minimal = `version: 1
receivers:
  - name: am
    type: alertmanager
routes:
  - receivers: [am]
`

// TestPolicyValidation checks that every problem is reported, each with its
// line.
func TestPolicyValidation(t *testing.T) {
	for _, tt := range []struct {
		name string
		src  string
		want []string // each must appear; the count must match
	}{
		{"minimal", minimal, nil},
		{"empty", "", []string{"line 1: empty policy"}},
		{"comments only", "# nothing\n", []string{"line 1: empty policy"}},
		{"not a mapping", "- a\n", []string{"line 1: want a mapping, got a list"}},
		{"missing all", "version: 1\n", []string{"line 1: missing receivers", "line 1: missing routes"}},
		{"bad version", strings.Replace(minimal, "version: 1", "version: 2", 1), []string{"line 1: version: want an integer from 1 to 1"}},
		{"unknown top key", minimal + "routs: []\n", []string{`line 7: unknown key "routs"`}},
		{"several errors at once", `version: 1
grafana_url: ftp://grafana
defaults:
  resolve_after: forever
  resend_interval: 1ms
receivers:
  - name: Bad Name
    type: opsgenie
  - name: pd
    type: pagerduty
    secret_file: /x
    rate_limit: {pages: 0, per: 1m}
    severity_map: {high: urgent}
  - name: pd
    type: webhook
routes:
  - match:
      severity: [hgih]
      rule: "crm.[*"
      shadow: maybe
    receivers: [pd, nobody]
    resolve_after: 1
`, []string{
			`line 2: grafana_url: "ftp://grafana" is not an http(s) URL`,
			`line 4: defaults.resolve_after: want a duration`,
			`line 5: defaults.resend_interval: 1ms is out of range`,
			`line 7: receivers[0].name: "Bad Name": want 1-64 characters`,
			`line 8: receivers[0].type: unknown receiver type "opsgenie"`,
			`line 11: receivers[1].secret_file: only webhook receivers take a secret`,
			`line 12: receivers[1].rate_limit.pages: want an integer from 1 to 100000, got "0"`,
			`line 13: receivers[1].severity_map.high: "urgent" is no PagerDuty severity`,
			`line 14: receivers[2].name: receiver "pd" is already declared at line 9`,
			`line 14: receivers[2]: a webhook receiver needs a url`,
			`line 18: routes[0].match.severity[0]: unknown severity "hgih"`,
			`line 19: routes[0].match.rule[0]: bad rule glob "crm.[*"`,
			`line 20: routes[0].match.shadow: want false, true or any, got "maybe"`,
			`line 21: routes[0].receivers[1]: unknown receiver "nobody"`,
			`line 22: routes[0].resolve_after: want a duration`,
		}},
		{"shadow to a paging receiver", `version: 1
receivers:
  - {name: am, type: alertmanager}
  - {name: hook, type: webhook, url: "http://h/x"}
routes:
  - match: {shadow: any}
    receivers:
      - hook
      - am
`, []string{`line 9: routes[0].receivers[1]: receiver "am" is of type alertmanager, but this route may match shadow findings, which never page`}},
		{"severity and min_severity", strings.Replace(minimal, "  - receivers: [am]", "  - match: {severity: high, min_severity: low}\n    receivers: [am]", 1),
			[]string{"line 6: routes[0].match.min_severity: give severity or min_severity, not both"}},
		{"receiver named twice in a route", strings.Replace(minimal, "[am]", "[am, am]", 1), []string{`line 6: routes[0].receivers[1]: receiver "am" named twice`}},
		{"empty receivers", strings.Replace(minimal, "[am]", "[]", 1), []string{"line 6: routes[0].receivers: empty list of receivers"}},
		{"no receivers", "version: 1\nreceivers: []\nroutes:\n  - receivers: [x]\n", []string{
			"line 2: receivers: want a non-empty list", `line 4: routes[0].receivers[0]: unknown receiver "x"`}},
		{"credentials in url", strings.Replace(minimal, "type: alertmanager", "type: alertmanager\n    url: http://u:p@am:9093", 1),
			[]string{"line 5: receivers[0].url: URL carries credentials"}},
		{"wrong kinds", `version: [1]
receivers:
  - name: {a: b}
    type: alertmanager
    rate_limit: 5
routes: {}
`, []string{"line 1: version: want a string, got a list", "line 3: receivers[0].name: want a string, got a mapping",
			"line 5: receivers[0].rate_limit: want a mapping, got a scalar", "line 6: routes: want a non-empty list"}},
		{"duplicate key", minimal + "version: 1\n", []string{`line 7: duplicate key "version" (first at line 1)`}},
		{"duplicate nested key", strings.Replace(minimal, "type: alertmanager", "type: alertmanager\n    name: am2", 1),
			[]string{`line 5: receivers[0]: duplicate key "name" (first at line 3)`}},
		{"key not a string", minimal + "[a, b]: c\n", []string{"line 7: a key must be a string, got a list"}},
		// Plain YAML only: a rule of Leakline's, reported with the rest.
		{"anchor", strings.Replace(minimal, "version: 1", "version: &v 1", 1), []string{"line 1: anchor &v: anchors (&) and aliases (*) are not allowed"}},
		{"anchor and alias", strings.Replace(strings.Replace(minimal, "name: am", "name: &n am", 1), "[am]", "[*n]", 1) + "routs: x\n", []string{
			"line 3: anchor &n: anchors (&) and aliases (*) are not allowed",
			"line 6: alias *n: anchors (&) and aliases (*) are not allowed",
			`line 7: unknown key "routs"`}},
		{"alias of no anchor", "version: 1\nreceivers: *r\n", []string{"line 2: alias *r: anchors (&) and aliases (*) are not allowed"}},
		{"tag", strings.Replace(minimal, "version: 1", "version: !!int 1", 1), []string{"line 1: explicit tag !!int: tags (!) are not allowed"}},
		{"two documents", "version: 1\n---\nversion: 1\n", []string{"line 2: only one YAML document is allowed"}},
		{"too large", minimal + strings.Repeat("#", MaxPolicyBytes), []string{"bytes exceeds the limit of 1048576"}},
		{"invalid utf-8", "version: 1\nx: \xff\n", []string{"line 2: invalid UTF-8"}},
		{"control character", "version: 1\n\nx: \x01\n", []string{"line 3: character U+0001 is not allowed in YAML"}},
		// YAML syntax errors (yaml.v3's words) stop at the first one.
		{"tab", "version: 1\n\treceivers: []\n", []string{"line 2: YAML syntax: found a tab character that violates indentation"}},
		{"unterminated quote", "version: \"1\n", []string{"line 2: YAML syntax: found unexpected end of stream"}},
		{"unclosed flow", "receivers: [a, b\n", []string{"line 1: YAML syntax: did not find expected ',' or ']'"}},
		{"bad indentation", "version: 1\nreceivers:\n  - name: a\n     type: b\n", []string{"line 4: YAML syntax: mapping values are not allowed in this context"}},
		{"inline mapping", "version: a: b\n", []string{"line 1: YAML syntax: mapping values are not allowed in this context"}},
		{"bad escape", "version: 1\nx: \"\\q\"\n", []string{"line 2: YAML syntax: found unknown escape character"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tt.src))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("ParsePolicy: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParsePolicy accepted it, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			var me *multierror.Error
			if errors.As(err, &me) && len(me.Errors) != len(tt.want) {
				t.Errorf("%d errors, want %d:\n%v", len(me.Errors), len(tt.want), err)
			}
			for _, e := range unwrapAll(err) {
				if !strings.HasPrefix(e.Error(), "line ") {
					t.Errorf("error without a line: %v", e)
				}
			}
		})
	}
}

func unwrapAll(err error) []error {
	var me *multierror.Error
	if errors.As(err, &me) {
		return me.Errors
	}
	return []error{err}
}

func TestLoadPolicyNamesFile(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/p.yaml"
	if err := os.WriteFile(path, []byte("version: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadPolicy(path)
	if err == nil || !strings.Contains(err.Error(), path+": 3 problems:") || !strings.Contains(err.Error(), "line 1: version") {
		t.Fatalf("LoadPolicy: %v", err)
	}
}

// TestPolicyYAMLStyles: any YAML style reads the same: flow or block
// collections, quoting, comments, document markers, block and multi-line
// scalars, CRLF line ends and a byte order mark.
func TestPolicyYAMLStyles(t *testing.T) {
	want := func(p *Policy) string {
		return fmt.Sprintf("v%d %s %v %s|%s %s %v %d|%v %v %v %v", p.Version, p.GrafanaURL, p.ResolveAfter, p.RunbookURL,
			p.Receivers[0].Name, p.Receivers[0].Type, p.Receivers[0].Timeout, len(p.Receivers),
			p.Routes[0].Receivers, p.Routes[0].Match.Severities, p.Routes[0].Match.Rules, len(p.Routes))
	}
	const expect = "v1 https://g.test 2h0m0s https://wiki.test/runbooks/{rule_id}|am alertmanager 3s 1|[am] [high critical] [crm.* x] 1"
	for _, tt := range []struct{ name, src string }{
		{"block", `version: 1
grafana_url: https://g.test
defaults:
  resolve_after: 2h
  runbook_url: https://wiki.test/runbooks/{rule_id}
receivers:
- name: am
  type: alertmanager
  timeout: 3s
routes:
- match:
    min_severity: high
    rule:
    - crm.*
    - x
  receivers:
  - am
`},
		{"flow", `{version: 1, grafana_url: "https://g.test", defaults: {resolve_after: 2h, runbook_url: "https://wiki.test/runbooks/{rule_id}"},
 receivers: [{name: am, type: alertmanager, timeout: 3s}], routes: [{match: {severity: [high, critical], rule: [crm.*, x]}, receivers: am}]}`},
		{"quoted, commented, markers", `%YAML 1.1
--- # the policy
"version": '1'     # quoted
'grafana_url': "https://g.test"
defaults: {resolve_after: "2h", runbook_url: 'https://wiki.test/runbooks/{rule_id}'}
receivers: [{"name": "am", type: 'alertmanager', timeout: "3s"}]
routes:
  - match: {min_severity: 'high', rule: ["crm.*", 'x']}   # "#" in quotes: "a # b"
    receivers: ["am"]
...
`},
		{"block and multi-line scalars", `version: 1
grafana_url: >-
  https://g.test
defaults:
  resolve_after: |-
    2h
  runbook_url:
    https://wiki.test/runbooks/{rule_id}
receivers: [{name: am, type: alertmanager, timeout: 3s}]
routes:
  - {match: {min_severity: high, rule: [crm.*, x]}, receivers: [am]}
`},
		{"CRLF and BOM", "\uFEFFversion: 1\r\ngrafana_url: https://g.test\r\ndefaults: {resolve_after: 2h, runbook_url: 'https://wiki.test/runbooks/{rule_id}'}\r\n" +
			"receivers: [{name: am, type: alertmanager, timeout: 3s}]\r\nroutes: [{match: {min_severity: high, rule: [crm.*, x]}, receivers: [am]}]\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if got := want(p); got != expect {
				t.Errorf("got  %s\nwant %s", got, expect)
			}
		})
	}
}

// TestPolicyErrorPositions: errors carry the line and column of the value.
func TestPolicyErrorPositions(t *testing.T) {
	_, err := ParsePolicy([]byte("version: 1\nreceivers:\n  - {name: am, type: alertmanager}\nroutes:\n  - receivers: [am, nobody]\n"))
	var pe *PolicyError
	if !errors.As(err, &pe) || pe.Line != 5 || pe.Column != 21 || pe.Path != "routes[0].receivers[1]" {
		t.Fatalf("error %#v", pe)
	}
}

// FuzzParsePolicy checks that no input panics, hangs or yields an error
// without a line, and that what parses, validates consistently.
func FuzzParsePolicy(f *testing.F) {
	if b, err := os.ReadFile("testdata/policy.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{minimal, "", "a: [", "- - - x", "a:\n  - b: c\n    d: [1, {e: f}]\n", "x: \"\\u12\"", "a: 'b''", "{a: b}", "[a, b]: c",
		"version: 1\nreceivers:\n  - {name: a, type: webhook, url: 'http://x/y'}\nroutes:\n  - {match: {shadow: any}, receivers: a}\n",
		"a: &x [1]\nb: *x\n", "a: *x", "a: !!str 1", "a: 1\n---\nb: 2", "? [a]\n: b", "a: |\n  x\n", "\xff", "a: \x01", "\ufeffa: 1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := ParsePolicy(src)
		if err != nil {
			for _, e := range unwrapAll(err) {
				if !strings.HasPrefix(e.Error(), "line ") {
					t.Fatalf("error without a line: %v", e)
				}
			}
			return
		}
		if len(p.Receivers) == 0 || len(p.Routes) == 0 {
			t.Fatalf("accepted a policy without receivers or routes")
		}
		for _, r := range p.Routes {
			for _, name := range r.Receivers {
				spec, ok := p.Receiver(name)
				if !ok {
					t.Fatalf("route names unknown receiver %q", name)
				}
				if r.Match.Shadow != ShadowExclude && spec.Type != TypeWebhook {
					t.Fatalf("shadow route to %s receiver", spec.Type)
				}
			}
		}
	})
}
