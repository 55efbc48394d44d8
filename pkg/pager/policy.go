package pager

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-multierror"
	"gopkg.in/yaml.v3"

	"github.com/leakline/leakline/pkg/finding"
)

// ReceiverType names a kind of receiver.
type ReceiverType string

// Receiver types.
const (
	TypeAlertmanager ReceiverType = "alertmanager"
	TypePagerDuty    ReceiverType = "pagerduty"
	TypeWebhook      ReceiverType = "webhook"
)

// Policy defaults.
const (
	DefaultResolveAfter    = time.Hour
	DefaultResendInterval  = time.Minute
	DefaultReceiverTimeout = 10 * time.Second
	DefaultPagerDutyURL    = "https://events.pagerduty.com/v2/enqueue"
)

// Limits of a policy.
const (
	MaxReceivers = 64
	MaxRoutes    = 1024
)

// Policy is a validated routing policy: which receivers a finding pages.
// See docs/ONCALL.md for the file format.
type Policy struct {
	// Version of the format; 1.
	Version int
	// GrafanaURL is the base URL of Grafana for deep links; a non-empty
	// Config.GrafanaURL overrides it.
	GrafanaURL string
	// ResolveAfter, ResendInterval and RunbookURL are the defaults of every
	// route.
	ResolveAfter   time.Duration
	ResendInterval time.Duration
	RunbookURL     string
	// RiskHalfLife is the half-life of the actor risk score on pages
	// (risk_half_life). Default DefaultRiskHalfLife; zero means the default.
	RiskHalfLife time.Duration
	// Receivers in file order; names are unique.
	Receivers []ReceiverSpec
	// Routes in file order; the first matching route decides unless it has
	// Continue set.
	Routes []Route
}

// riskHalfLife is RiskHalfLife or, when zero, DefaultRiskHalfLife.
func (p *Policy) riskHalfLife() time.Duration {
	if p.RiskHalfLife <= 0 {
		return DefaultRiskHalfLife
	}
	return p.RiskHalfLife
}

// ReceiverSpec declares one receiver.
type ReceiverSpec struct {
	Name string
	Type ReceiverType
	// URL of the receiver. Alertmanager: its base URL (the pager posts to
	// URL/api/v2/alerts); empty takes Config.AlertmanagerURL. PagerDuty:
	// the Events v2 enqueue URL, default DefaultPagerDutyURL. Webhook:
	// required.
	URL string
	// RoutingKeyFile (pagerduty) holds the integration's routing key;
	// empty takes Config.PagerDutyRoutingKey.
	RoutingKeyFile string
	// SecretFile (webhook) holds the HMAC secret; empty takes
	// Config.WebhookSecret.
	SecretFile string
	// Timeout bounds one HTTP request. Default DefaultReceiverTimeout.
	Timeout time.Duration
	// RateLimit bounds new pages; nil means unlimited.
	RateLimit *RateLimit
	// SeverityMap (pagerduty) maps Leakline severities to PagerDuty's;
	// missing entries take the default mapping.
	SeverityMap map[string]string
	// Line is where the receiver is declared.
	Line int
}

// RateLimit is a token bucket: at most Pages new pages at once, refilled at
// Pages per Per.
type RateLimit struct {
	Pages int
	Per   time.Duration
}

// ShadowMatch says which findings a route matches by their shadow flag.
type ShadowMatch int

// Shadow matching. Shadow findings never page: a route that may match them
// can only name webhook receivers, which record them (marked shadow).
const (
	ShadowExclude ShadowMatch = iota // only live findings (default)
	ShadowOnly                       // only shadow findings
	ShadowAny                        // both
)

// Match selects findings. Every condition given must hold.
type Match struct {
	// Severities lists accepted severities; empty accepts all.
	Severities []string
	// Rules lists rule-id globs (path.Match syntax); empty accepts all.
	Rules []string
	// Tags accepts findings carrying at least one of them; empty accepts
	// all.
	Tags []string
	// Shadow selects by the shadow flag.
	Shadow ShadowMatch
}

// Route sends matching findings to receivers.
type Route struct {
	Match     Match
	Receivers []string
	// Continue lets later routes match too.
	Continue bool
	// ResolveAfter: the incident resolves when no new revision arrived for
	// this long (set it to the rule's cool-down). Default Policy.ResolveAfter.
	ResolveAfter time.Duration
	// ResendInterval: how often open incidents are re-sent to receivers
	// that forget alerts (Alertmanager). Default Policy.ResendInterval.
	ResendInterval time.Duration
	// RunbookURL of the rule; "{rule_id}" is replaced by the rule id.
	RunbookURL string
	// Line is where the route is declared.
	Line int
}

// Matches tells whether the route matches f (with tags).
func (r *Route) Matches(f *finding.Finding, tags []string) bool {
	switch r.Match.Shadow {
	case ShadowExclude:
		if f.Shadow {
			return false
		}
	case ShadowOnly:
		if !f.Shadow {
			return false
		}
	}
	if len(r.Match.Severities) > 0 && !slices.Contains(r.Match.Severities, f.Severity) {
		return false
	}
	if len(r.Match.Rules) > 0 && !slices.ContainsFunc(r.Match.Rules, func(g string) bool {
		ok, _ := path.Match(g, f.RuleID)
		return ok
	}) {
		return false
	}
	if len(r.Match.Tags) > 0 && !slices.ContainsFunc(r.Match.Tags, func(t string) bool { return slices.Contains(tags, t) }) {
		return false
	}
	return true
}

// Decision is where one finding goes for one receiver.
type Decision struct {
	Receiver string
	Route    *Route
}

// Route returns, in policy order, the receivers f goes to and the route that
// sent it to each (the first matching route naming a receiver decides its
// settings). Shadow findings are only ever sent to webhook receivers:
// validation guarantees it.
func (p *Policy) Route(f *finding.Finding, tags []string) []Decision {
	var out []Decision
	for i := range p.Routes {
		r := &p.Routes[i]
		if !r.Matches(f, tags) {
			continue
		}
		for _, name := range r.Receivers {
			if !slices.ContainsFunc(out, func(d Decision) bool { return d.Receiver == name }) {
				out = append(out, Decision{Receiver: name, Route: r})
			}
		}
		if !r.Continue {
			break
		}
	}
	return out
}

// Receiver returns the spec of the named receiver.
func (p *Policy) Receiver(name string) (ReceiverSpec, bool) {
	for _, r := range p.Receivers {
		if r.Name == name {
			return r, true
		}
	}
	return ReceiverSpec{}, false
}

// LoadPolicy reads and validates a policy file. Errors name the file and
// line of every problem.
func LoadPolicy(file string) (*Policy, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("pager: policy: %w", err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("pager: policy %s: %w", file, err)
	}
	return p, nil
}

// MaxPolicyBytes bounds a policy file; larger input is refused before it is
// parsed.
const MaxPolicyBytes = 1 << 20

// ParsePolicy parses a policy (YAML, with gopkg.in/yaml.v3) and validates
// it. It reports every problem at once (a *multierror.Error), each a
// *PolicyError printed as "line N: path: what is wrong", in the order of
// the file. A YAML syntax error stops at the first one.
//
// On top of YAML, a policy must be one UTF-8 document of at most
// MaxPolicyBytes without anchors, aliases or explicit tags (a rule of
// Leakline's, not of YAML: every value of a policy is written where it
// applies, so a reviewer reads exactly what pages whom), and mapping keys
// must be unique strings.
func ParsePolicy(src []byte) (*Policy, error) {
	d := &decoder{}
	root := d.parse(src)
	var p *Policy
	if root != nil {
		d.plain(root)
		p = d.policy(root)
	}
	if err := d.errs.ErrorOrNil(); err != nil {
		slices.SortStableFunc(d.errs.Errors, func(a, b error) int {
			pa, pb := a.(*PolicyError), b.(*PolicyError)
			return cmp.Or(cmp.Compare(pa.Line, pb.Line), cmp.Compare(pa.Column, pb.Column))
		})
		d.errs.ErrorFormat = listErrors
		return nil, d.errs
	}
	return p, nil
}

func listErrors(es []error) string {
	if len(es) == 1 {
		return es[0].Error()
	}
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = "\n\t" + e.Error()
	}
	return fmt.Sprintf("%d problems:%s", len(es), strings.Join(parts, ""))
}

// PolicyError is one problem of a policy: where (line and column, 1-based;
// column 0 when unknown) and what.
type PolicyError struct {
	Line   int
	Column int
	// Path names the value, e.g. "routes[1].match.severity[0]"; empty for
	// the document and for syntax errors.
	Path string
	Msg  string
}

func (e *PolicyError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Path, e.Msg)
}

type decoder struct {
	errs *multierror.Error
}

// maxPolicyErrorMsg bounds the text of one problem (it may quote a value).
const maxPolicyErrorMsg = 256

func (d *decoder) failAt(line, col int, path, format string, args ...any) {
	msg := truncate(fmt.Sprintf(format, args...), maxPolicyErrorMsg)
	d.errs = multierror.Append(d.errs, &PolicyError{Line: max(line, 1), Column: col, Path: path, Msg: msg})
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.failAt(n.Line, n.Column, path, format, args...)
}

// yamlErrLine matches yaml.v3's syntax errors that carry a line.
var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlUnknownAnchor matches yaml.v3's error for an alias of no anchor.
var yamlUnknownAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)

// parse checks src and parses its one document. It returns the document's
// root node, nil after a problem (recorded).
func (d *decoder) parse(src []byte) (root *yaml.Node) {
	if len(src) > MaxPolicyBytes {
		d.failAt(1, 0, "", "policy of %d bytes exceeds the limit of %d", len(src), MaxPolicyBytes)
		return nil
	}
	// yaml.v3 reports these without a line; find it.
	if line, col, msg := badCharacter(src); msg != "" {
		d.failAt(line, col, "", "%s", msg)
		return nil
	}
	defer func() {
		// yaml.v3 reports syntax errors as errors; a panic would be a bug
		// of the parser, and must not take the service down with it.
		if r := recover(); r != nil {
			d.failAt(1, 0, "", "YAML parser failure: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		d.failAt(1, 0, "", "empty policy: want version, receivers and routes")
		return nil
	case err != nil:
		d.syntaxError(src, err)
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.syntaxError(src, err)
		return nil
	default:
		d.failAt(next.Line, next.Column, "", "only one YAML document is allowed (a second one starts here)")
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		d.failAt(doc.Line, doc.Column, "", "empty policy: want version, receivers and routes")
		return nil
	}
	return doc.Content[0]
}

// syntaxError records a yaml.v3 parse error with its line: yaml.v3 omits
// the line on the first one, and for an alias of an unknown anchor.
func (d *decoder) syntaxError(src []byte, err error) {
	msg := err.Error()
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.failAt(line, 0, "", "YAML syntax: %s", m[2])
		return
	}
	if m := yamlUnknownAnchor.FindStringSubmatch(msg); m != nil {
		line := 1 + bytes.Count(src[:max(bytes.Index(src, []byte("*"+m[1])), 0)], []byte("\n"))
		d.failAt(line, 0, "", "alias *%s: %s", m[1], noAnchors)
		return
	}
	d.failAt(1, 0, "", "YAML syntax: %s", strings.TrimPrefix(msg, "yaml: "))
}

// noAnchors explains the rule against anchors and aliases.
const noAnchors = "anchors (&) and aliases (*) are not allowed in a routing policy (a Leakline rule: write each value where it applies)"

// badCharacter finds the first byte sequence that is not UTF-8 or a
// character YAML does not allow (C0/C1 controls other than tab, LF and CR;
// surrogates; U+FFFE, U+FFFF; a byte order mark after the start).
func badCharacter(src []byte) (line, col int, msg string) {
	line, col = 1, 1
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return line, col, "invalid UTF-8"
		case r == '\n':
			line, col = line+1, 0
		case r == '\t', r == '\r', r >= 0x20 && r <= 0x7E, r == 0x85,
			r >= 0xA0 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD && (r != 0xFEFF || i == 0), r >= 0x10000:
		default:
			return line, col, fmt.Sprintf("character %U is not allowed in YAML", r)
		}
		i += size
		col++
	}
	return 0, 0, ""
}

// plain records every anchor, alias and explicit tag under n: a policy is
// plain YAML. Aliases are not followed.
func (d *decoder) plain(n *yaml.Node) {
	switch {
	case n.Kind == yaml.AliasNode:
		d.fail(n, "", "alias *%s: %s", n.Value, noAnchors)
		return
	case n.Anchor != "":
		d.fail(n, "", "anchor &%s: %s", n.Anchor, noAnchors)
	}
	if n.Style&yaml.TaggedStyle != 0 {
		d.fail(n, "", "explicit tag %s: tags (!) are not allowed in a routing policy", n.Tag)
	}
	for _, c := range n.Content {
		d.plain(c)
	}
}

// kindName describes a node's kind for errors.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return "a scalar"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

// isNull tells whether n is a null scalar: empty, ~ or null, unquoted.
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// fields checks that n is a mapping with unique, allowed string keys and
// returns its values by key. A null node is an empty mapping. It returns nil
// when n is no mapping (recorded, or an alias already recorded by plain).
func (d *decoder) fields(n *yaml.Node, path string, allowed ...string) map[string]*yaml.Node {
	switch {
	case n.Kind == yaml.AliasNode:
		return nil
	case isNull(n):
		return map[string]*yaml.Node{}
	case n.Kind != yaml.MappingNode:
		d.fail(n, path, "want a mapping, got %s", kindName(n))
		return nil
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	first := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			if k.Kind != yaml.AliasNode {
				d.fail(k, path, "a key must be a string, got %s", kindName(k))
			}
			continue
		}
		if line, dup := first[k.Value]; dup {
			d.fail(k, path, "duplicate key %q (first at line %d)", k.Value, line)
			continue
		}
		first[k.Value] = k.Line
		if !slices.Contains(allowed, k.Value) {
			d.fail(k, path, "unknown key %q (want one of %s)", k.Value, strings.Join(allowed, ", "))
			continue
		}
		out[k.Value] = v
	}
	return out
}

func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	switch {
	case n.Kind == yaml.AliasNode:
		return "", false
	case n.Kind != yaml.ScalarNode:
		d.fail(n, path, "want a string, got %s", kindName(n))
		return "", false
	case isNull(n):
		d.fail(n, path, "missing value")
		return "", false
	}
	return n.Value, true
}

func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return false, false
	}
	switch s {
	case "true", "True", "TRUE":
		return true, true
	case "false", "False", "FALSE":
		return false, true
	}
	d.fail(n, path, "want true or false, got %q", s)
	return false, false
}

func (d *decoder) integer(n *yaml.Node, path string, lo, hi int) (int, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		d.fail(n, path, "want an integer from %d to %d, got %q", lo, hi, s)
		return 0, false
	}
	return v, true
}

func (d *decoder) duration(n *yaml.Node, path string, lo, hi time.Duration) (time.Duration, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.fail(n, path, "want a duration such as 30s, 5m or 1h, got %q", s)
		return 0, false
	}
	if v < lo || v > hi {
		d.fail(n, path, "%v is out of range [%v, %v]", v, lo, hi)
		return 0, false
	}
	return v, true
}

// listItem is one string of a list, with its node and its path.
type listItem struct {
	value string
	node  *yaml.Node
	path  string
}

// strList accepts a list of strings or a single string. It returns the
// valid items; the others are recorded.
func (d *decoder) strList(n *yaml.Node, path string) []listItem {
	switch {
	case n.Kind == yaml.AliasNode:
		return nil
	case n.Kind == yaml.ScalarNode && !isNull(n):
		return []listItem{{n.Value, n, path + "[0]"}}
	case n.Kind != yaml.SequenceNode:
		d.fail(n, path, "want a list of strings, got %s", kindName(n))
		return nil
	}
	out := make([]listItem, 0, len(n.Content))
	for i, it := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		if s, ok := d.str(it, p); ok {
			out = append(out, listItem{s, it, p})
		}
	}
	return out
}

func (d *decoder) httpURL(n *yaml.Node, path string) (string, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return "", false
	}
	if err := checkHTTPURL(strings.ReplaceAll(s, "{rule_id}", "x")); err != nil {
		d.fail(n, path, "%v", err)
		return "", false
	}
	return s, true
}

// checkHTTPURL accepts absolute http(s) URLs without credentials.
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if u.User != nil {
		return errors.New("URL carries credentials; put secrets in files")
	}
	return nil
}

var severities = []string{finding.SeverityLow, finding.SeverityMedium, finding.SeverityHigh, finding.SeverityCritical}

var pdSeverities = []string{"critical", "error", "warning", "info"}

func (d *decoder) policy(root *yaml.Node) *Policy {
	p := &Policy{Version: 1, ResolveAfter: DefaultResolveAfter, ResendInterval: DefaultResendInterval, RiskHalfLife: DefaultRiskHalfLife}
	if isNull(root) {
		d.fail(root, "", "empty policy: want version, receivers and routes")
		return p
	}
	f := d.fields(root, "", "version", "grafana_url", "risk_half_life", "defaults", "receivers", "routes")
	if f == nil {
		return p
	}
	if n := f["version"]; n == nil {
		d.fail(root, "", "missing version (want version: 1)")
	} else if v, ok := d.integer(n, "version", 1, 1); ok {
		p.Version = v
	}
	if n := f["grafana_url"]; n != nil {
		p.GrafanaURL, _ = d.httpURL(n, "grafana_url")
	}
	if n := f["risk_half_life"]; n != nil {
		p.RiskHalfLife, _ = d.duration(n, "risk_half_life", time.Minute, 365*24*time.Hour)
	}
	if n := f["defaults"]; n != nil {
		df := d.fields(n, "defaults", "resolve_after", "resend_interval", "runbook_url")
		if v := df["resolve_after"]; v != nil {
			p.ResolveAfter, _ = d.duration(v, "defaults.resolve_after", time.Second, 30*24*time.Hour)
		}
		if v := df["resend_interval"]; v != nil {
			p.ResendInterval, _ = d.duration(v, "defaults.resend_interval", 100*time.Millisecond, 24*time.Hour)
		}
		if v := df["runbook_url"]; v != nil {
			p.RunbookURL, _ = d.httpURL(v, "defaults.runbook_url")
		}
	}
	recvNode := f["receivers"]
	if recvNode == nil {
		d.fail(root, "", "missing receivers")
	} else {
		d.receivers(recvNode, p)
	}
	routeNode := f["routes"]
	if routeNode == nil {
		d.fail(root, "", "missing routes")
	} else {
		d.routes(routeNode, p)
	}
	return p
}

func (d *decoder) receivers(n *yaml.Node, p *Policy) {
	if n.Kind == yaml.AliasNode {
		return
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		d.fail(n, "receivers", "want a non-empty list of receivers")
		return
	}
	if len(n.Content) > MaxReceivers {
		d.fail(n, "receivers", "%d receivers exceed the limit of %d", len(n.Content), MaxReceivers)
		return
	}
	seen := map[string]int{}
	for i, it := range n.Content {
		path := fmt.Sprintf("receivers[%d]", i)
		f := d.fields(it, path, "name", "type", "url", "routing_key_file", "secret_file", "timeout", "rate_limit", "severity_map")
		if f == nil {
			continue
		}
		r := ReceiverSpec{Line: it.Line, Timeout: DefaultReceiverTimeout}
		if v := f["name"]; v == nil {
			d.fail(it, path, "missing name")
		} else if s, ok := d.str(v, path+".name"); ok {
			if !validName(s) {
				d.fail(v, path+".name", "%q: want 1-64 characters of a-z, 0-9, '-' and '_'", s)
			} else if line, dup := seen[s]; dup {
				d.fail(v, path+".name", "receiver %q is already declared at line %d", s, line)
			} else {
				seen[s] = v.Line
				r.Name = s
			}
		}
		if v := f["type"]; v == nil {
			d.fail(it, path, "missing type (want alertmanager, pagerduty or webhook)")
		} else if s, ok := d.str(v, path+".type"); ok {
			switch t := ReceiverType(s); t {
			case TypeAlertmanager, TypePagerDuty, TypeWebhook:
				r.Type = t
			default:
				d.fail(v, path+".type", "unknown receiver type %q (want alertmanager, pagerduty or webhook)", s)
			}
		}
		if v := f["url"]; v != nil {
			r.URL, _ = d.httpURL(v, path+".url")
		} else if r.Type == TypeWebhook {
			d.fail(it, path, "a webhook receiver needs a url")
		} else if r.Type == TypePagerDuty {
			r.URL = DefaultPagerDutyURL
		}
		if v := f["routing_key_file"]; v != nil {
			if r.Type != TypePagerDuty {
				d.fail(v, path+".routing_key_file", "only pagerduty receivers take a routing key")
			} else {
				r.RoutingKeyFile, _ = d.str(v, path+".routing_key_file")
			}
		}
		if v := f["secret_file"]; v != nil {
			if r.Type != TypeWebhook {
				d.fail(v, path+".secret_file", "only webhook receivers take a secret")
			} else {
				r.SecretFile, _ = d.str(v, path+".secret_file")
			}
		}
		if v := f["timeout"]; v != nil {
			r.Timeout, _ = d.duration(v, path+".timeout", 10*time.Millisecond, 5*time.Minute)
		}
		if v := f["rate_limit"]; v != nil {
			rf := d.fields(v, path+".rate_limit", "pages", "per")
			rl := &RateLimit{}
			okP, okD := false, false
			if x := rf["pages"]; x != nil {
				rl.Pages, okP = d.integer(x, path+".rate_limit.pages", 1, 100000)
			} else if rf != nil {
				d.fail(v, path+".rate_limit", "missing pages")
			}
			if x := rf["per"]; x != nil {
				rl.Per, okD = d.duration(x, path+".rate_limit.per", time.Second, 24*time.Hour)
			} else if rf != nil {
				d.fail(v, path+".rate_limit", "missing per")
			}
			if okP && okD {
				r.RateLimit = rl
			}
		}
		if v := f["severity_map"]; v != nil {
			if r.Type != TypePagerDuty {
				d.fail(v, path+".severity_map", "only pagerduty receivers take a severity_map")
			} else {
				sf := d.fields(v, path+".severity_map", severities...)
				r.SeverityMap = map[string]string{}
				for _, sev := range severities {
					x := sf[sev]
					if x == nil {
						continue
					}
					if s, ok := d.str(x, path+".severity_map."+sev); ok {
						if !slices.Contains(pdSeverities, s) {
							d.fail(x, path+".severity_map."+sev, "%q is no PagerDuty severity (want critical, error, warning or info)", s)
						}
						r.SeverityMap[sev] = s
					}
				}
			}
		}
		p.Receivers = append(p.Receivers, r)
	}
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (d *decoder) routes(n *yaml.Node, p *Policy) {
	if n.Kind == yaml.AliasNode {
		return
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		d.fail(n, "routes", "want a non-empty list of routes")
		return
	}
	if len(n.Content) > MaxRoutes {
		d.fail(n, "routes", "%d routes exceed the limit of %d", len(n.Content), MaxRoutes)
		return
	}
	for i, it := range n.Content {
		path := fmt.Sprintf("routes[%d]", i)
		f := d.fields(it, path, "match", "receivers", "continue", "resolve_after", "resend_interval", "runbook_url")
		if f == nil {
			continue
		}
		r := Route{Line: it.Line, ResolveAfter: p.ResolveAfter, ResendInterval: p.ResendInterval, RunbookURL: p.RunbookURL}
		if v := f["match"]; v != nil {
			d.match(v, path+".match", &r.Match)
		}
		if v := f["receivers"]; v == nil {
			d.fail(it, path, "missing receivers")
		} else {
			names := d.strList(v, path+".receivers")
			if len(names) == 0 && v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
				d.fail(v, path+".receivers", "empty list of receivers")
			}
			for _, name := range names {
				ipath := name.path // receivers[i] of the route
				spec, ok := p.Receiver(name.value)
				switch {
				case !ok:
					d.fail(name.node, ipath, "unknown receiver %q", name.value)
				case r.Match.Shadow != ShadowExclude && spec.Type != TypeWebhook:
					d.fail(name.node, ipath,
						"receiver %q is of type %s, but this route may match shadow findings, which never page: only webhook receivers may record them", name.value, spec.Type)
				case slices.Contains(r.Receivers, name.value):
					d.fail(name.node, ipath, "receiver %q named twice", name.value)
				default:
					r.Receivers = append(r.Receivers, name.value)
				}
			}
		}
		if v := f["continue"]; v != nil {
			r.Continue, _ = d.boolean(v, path+".continue")
		}
		if v := f["resolve_after"]; v != nil {
			r.ResolveAfter, _ = d.duration(v, path+".resolve_after", time.Second, 30*24*time.Hour)
		}
		if v := f["resend_interval"]; v != nil {
			r.ResendInterval, _ = d.duration(v, path+".resend_interval", 100*time.Millisecond, 24*time.Hour)
		}
		if v := f["runbook_url"]; v != nil {
			r.RunbookURL, _ = d.httpURL(v, path+".runbook_url")
		}
		p.Routes = append(p.Routes, r)
	}
}

func (d *decoder) match(n *yaml.Node, path string, m *Match) {
	f := d.fields(n, path, "severity", "min_severity", "rule", "tags", "shadow")
	if f == nil {
		return
	}
	if v := f["severity"]; v != nil {
		for _, it := range d.strList(v, path+".severity") {
			if !slices.Contains(severities, it.value) {
				d.fail(it.node, it.path, "unknown severity %q (want low, medium, high or critical)", it.value)
				continue
			}
			m.Severities = append(m.Severities, it.value)
		}
	}
	if v := f["min_severity"]; v != nil {
		if f["severity"] != nil {
			d.fail(v, path+".min_severity", "give severity or min_severity, not both")
		} else if s, ok := d.str(v, path+".min_severity"); ok {
			i := slices.Index(severities, s)
			if i < 0 {
				d.fail(v, path+".min_severity", "unknown severity %q (want low, medium, high or critical)", s)
			} else {
				m.Severities = slices.Clone(severities[i:])
			}
		}
	}
	if v := f["rule"]; v != nil {
		for _, it := range d.strList(v, path+".rule") {
			if _, err := globOK(it.value); err != nil || it.value == "" {
				d.fail(it.node, it.path, "bad rule glob %q", it.value)
				continue
			}
			m.Rules = append(m.Rules, it.value)
		}
	}
	if v := f["tags"]; v != nil {
		for _, it := range d.strList(v, path+".tags") {
			if it.value == "" {
				d.fail(it.node, it.path, "empty tag")
				continue
			}
			m.Tags = append(m.Tags, it.value)
		}
	}
	if v := f["shadow"]; v != nil {
		if s, ok := d.str(v, path+".shadow"); ok {
			switch s {
			case "false", "False", "FALSE":
				m.Shadow = ShadowExclude
			case "true", "True", "TRUE":
				m.Shadow = ShadowOnly
			case "any":
				m.Shadow = ShadowAny
			default:
				d.fail(v, path+".shadow", "want false, true or any, got %q", s)
			}
		}
	}
}

// globOK validates a glob.
func globOK(g string) (bool, error) { return path.Match(g, "") }
