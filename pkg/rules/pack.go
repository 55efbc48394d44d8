package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/leakline/leakline/pkg/finding"
)

// PackFile is the file of a pack that holds its version and defaults.
const PackFile = "pack.yaml"

// TestsDir is the directory of a pack that holds its fixtures.
const TestsDir = "tests"

// Limits of a pack.
const (
	MaxPackFiles  = 256
	MaxRules      = 1000
	MaxLists      = 100
	MaxListItems  = 10_000
	MaxSteps      = 8
	MaxTags       = 32
	MaxExactUpTo  = 1_000_000
	MaxThreshold  = 1e15
	MaxFactor     = 1e6
	DefaultExact  = 10_000
	DefaultBucket = 24 * time.Hour
	DefaultHist   = 720 * time.Hour
	// DefaultMinHistory is min_history when not given (capped at the
	// number of buckets of history).
	DefaultMinHistory = 7
	DefaultGroupBy    = "actor.uid"
)

// Window kinds.
const (
	KindCount    = "count"
	KindSum      = "sum"
	KindDistinct = "distinct"
	KindSequence = "sequence"
	KindAbsence  = "absence"
	KindBaseline = "baseline"
)

// Rule modes.
const (
	ModeLive   = "live"
	ModeShadow = "shadow"
)

// Pack is a compiled rule pack.
type Pack struct {
	// Version is pack.yaml's version (finding.PackVersion).
	Version     string
	Description string
	// Lists are pack.yaml's named lists; expressions use them as
	// lists.NAME (compiled in, so a list change changes rule versions).
	Lists map[string][]string
	// Rules in file-name order, then in file order.
	Rules []*Rule
	// Checksum is the hex SHA-256 of the pack's canonical content (every
	// field of every rule after defaults, rules sorted by id, expressions
	// in canonical form): equal packs have equal checksums whatever the
	// layout, comments or file split.
	Checksum string
}

// Rule is one compiled rule.
type Rule struct {
	ID, Title, Description, Severity, Runbook string
	Tags                                      []string
	// Enabled false: the engine keeps no state and never evaluates it.
	Enabled bool
	// Shadow (mode: shadow): evaluated, findings marked Shadow, never paged.
	Shadow bool
	// Version is the rule's version: `version:` when given, else the first
	// 12 hex digits of the SHA-256 of its detection semantics (match,
	// group_by, window, cooldown, in canonical form). Editing the title,
	// description, severity, tags, runbook, enabled or mode does not change
	// it, so open incidents keep their finding ids.
	Version string
	// Match selects the events the rule counts (never nil; "true" by
	// default). GroupBy yields the group key (never nil; actor.uid by
	// default).
	Match, GroupBy *Expr
	Window         Window
	// CoolDown: how long an incident stays open after the condition last
	// held; default the window length.
	CoolDown time.Duration
	Pos      Pos
}

// Window is what a rule measures and when it fires.
type Window struct {
	// Kind is count, sum, distinct, sequence, absence or baseline.
	Kind string
	// Over is the sliding window (over), or for sequence and absence the
	// time the whole pattern must fit in (within).
	Over time.Duration
	// Threshold: count, sum and distinct fire when the measured value is
	// ≥ Threshold.
	Threshold float64
	// Value: the number added by sum and baseline (baseline default 1), or
	// the string or strings counted by distinct. Nil otherwise.
	Value *Expr
	// ExactUpTo: distinct counts exactly up to this many values per group.
	ExactUpTo int
	// Steps of a sequence, in order (≥ 2).
	Steps []Step
	// Until (sequence, optional) cancels the partial sequences of its
	// group; Then (absence, required) is the event that must follow.
	Until, Then *Expr
	// Baseline: the current value (sum of Value over Over) fires when it is
	// ≥ Factor × the median of the per-Bucket sums of the last History
	// and ≥ MinValue, once the group has MinHistory buckets of history.
	Bucket, History  time.Duration
	Factor, MinValue float64
	MinHistory       int
}

// Step is one step of a sequence.
type Step struct {
	Name  string
	Match *Expr
	Pos   Pos
}

// Rule returns the rule with the id, or nil.
func (p *Pack) Rule(id string) *Rule {
	for _, r := range p.Rules {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// Horizon is how far back in event time the rule's state reaches: the
// window (for baseline the history plus the current bucket or window) plus
// the cool-down.
func (r *Rule) Horizon() time.Duration {
	w := r.Window
	h := w.Over
	if w.Kind == KindBaseline {
		h = w.History + max(w.Bucket, w.Over)
	}
	return h + r.CoolDown
}

// MaxHorizon is the longest Horizon of the enabled rules: to rebuild the
// state of a partition the engine replays that much event time (plus its
// allowed lateness).
func (p *Pack) MaxHorizon() time.Duration {
	var h time.Duration
	for _, r := range p.Rules {
		if r.Enabled {
			h = max(h, r.Horizon())
		}
	}
	return h
}

// LoadDir loads the pack in dir: pack.yaml and every other *.yaml and *.yml
// file at the top of dir (sub-directories, tests/ included, and other files
// are not read). Errors name files as dir/name.
func LoadDir(dir string) (*Pack, error) {
	files, err := readYAMLDir(dir, MaxPackFiles)
	if err != nil {
		return nil, err
	}
	return parse(files, dir)
}

// readYAMLDir reads the *.yaml and *.yml files at the top of dir (not its
// sub-directories), each bounded by MaxFileBytes, at most max of them.
func readYAMLDir(dir string, max int) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || !isYAML(e.Name()) {
			continue
		}
		if len(files) >= max {
			return nil, fmt.Errorf("rules: %s: more than %d YAML files", dir, max)
		}
		b, err := readBounded(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files[e.Name()] = b
	}
	return files, nil
}

// readBounded reads a file, refusing one larger than MaxFileBytes (it is
// read one byte past the limit so the parser reports the size).
func readBounded(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 0, 4096)
	buf := make([]byte, 32*1024)
	for len(b) <= MaxFileBytes {
		n, err := f.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			break
		}
	}
	return b, nil
}

func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// Parse compiles a pack given as file name → content, as when a pack
// arrives as a message. Names are relative to the pack directory; only
// top-level *.yaml and *.yml names are read (tests/... and others are
// ignored). pack.yaml is required.
func Parse(files map[string][]byte) (*Pack, error) {
	return parse(files, "")
}

// ruleFields are the fields of a rule.
var ruleFields = []string{"id", "version", "title", "description", "severity", "tags", "runbook", "enabled",
	"mode", "match", "group_by", "cooldown", "window"}

// windowFields are the fields of a window, all kinds together.
var windowFields = []string{"kind", "over", "within", "threshold", "value", "exact_up_to", "steps", "until",
	"then", "bucket", "history", "factor", "min_value", "min_history"}

// kindFields are the fields each window kind takes besides kind.
var kindFields = map[string][]string{
	KindCount:    {"over", "threshold"},
	KindSum:      {"over", "value", "threshold"},
	KindDistinct: {"over", "value", "threshold", "exact_up_to"},
	KindSequence: {"within", "steps", "until"},
	KindAbsence:  {"within", "then"},
	KindBaseline: {"over", "value", "bucket", "history", "factor", "min_value", "min_history"},
}

var windowKinds = []string{KindCount, KindSum, KindDistinct, KindSequence, KindAbsence, KindBaseline}

var (
	ruleIDRE   = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)
	versionRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)
	nameRE     = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	tagRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
	attackIDRE = regexp.MustCompile(`^attack\.(t[0-9]{4}(\.[0-9]{3})?|g[0-9]{4}|s[0-9]{4}|m[0-9]{4}|ta[0-9]{4})$`)
)

// attackTactics are the MITRE ATT&CK Enterprise tactics, as Sigma tags them
// (attack.exfiltration, attack.command-and-control or _).
var attackTactics = []string{"reconnaissance", "resource_development", "initial_access", "execution",
	"persistence", "privilege_escalation", "defense_evasion", "credential_access", "discovery",
	"lateral_movement", "collection", "command_and_control", "exfiltration", "impact"}

var severities = []string{finding.SeverityLow, finding.SeverityMedium, finding.SeverityHigh, finding.SeverityCritical}

// packDefaults are pack.yaml's defaults.
type packDefaults struct {
	mode    string
	enabled bool
	groupBy *Expr
}

// loader holds the state of one Parse.
type loader struct {
	errs     errList
	prefix   string
	lists    map[string][]string
	defaults packDefaults
	ids      map[string]Pos
}

func parse(files map[string][]byte, dir string) (*Pack, error) {
	l := &loader{prefix: dir, ids: map[string]Pos{}, defaults: packDefaults{mode: ModeLive, enabled: true}}
	pack := &Pack{Lists: map[string][]string{}}
	names := make([]string, 0, len(files))
	for name := range files {
		if strings.Contains(name, "/") || strings.Contains(name, `\`) || !isYAML(name) {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) > MaxPackFiles {
		l.errs.add(Pos{File: l.display(PackFile)}, "the pack has %d YAML files, the limit is %d", len(names), MaxPackFiles)
		return nil, l.errs.err()
	}
	if src, ok := files[PackFile]; ok {
		l.packFile(pack, l.newFile(PackFile, src))
	} else {
		l.errs.add(Pos{File: l.display(PackFile)}, "the pack has no %s (it holds version: and optional defaults: and lists:)", PackFile)
	}
	if l.defaults.groupBy == nil {
		l.defaults.groupBy, _ = compileExpr(DefaultGroupBy, ResultString, nil)
		l.defaults.groupBy.Pos = Pos{File: l.display(PackFile), Line: 1, Column: 1}
	}
	for _, name := range names {
		if name == PackFile {
			continue
		}
		if name == "pack.yml" {
			l.errs.add(Pos{File: l.display(name)}, "name the pack file %s", PackFile)
			continue
		}
		l.rulesFile(pack, l.newFile(name, files[name]))
	}
	if len(pack.Rules) > MaxRules {
		l.errs.add(pack.Rules[MaxRules].Pos, "the pack has %d rules, the limit is %d", len(pack.Rules), MaxRules)
	}
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	pack.Checksum = pack.checksum()
	return pack, nil
}

func (l *loader) display(name string) string {
	if l.prefix == "" {
		return name
	}
	return path.Join(filepath.ToSlash(l.prefix), name)
}

func (l *loader) newFile(name string, src []byte) *file {
	return &file{name: l.display(name), src: src, errs: &l.errs}
}

// single returns the one document of a file, or nil (reported).
func (f *file) single() *yaml.Node {
	before := f.errs.len()
	docs := f.documents()
	if f.errs.len() > before {
		return nil
	}
	switch {
	case len(docs) == 0:
		f.errs.add(Pos{File: f.name}, "the file is empty")
		return nil
	case len(docs) > 1:
		f.errorf(docs[1], "only one YAML document per file (remove the second ---)")
		return nil
	}
	doc := docs[0]
	if len(doc.Content) != 1 {
		f.errs.add(Pos{File: f.name}, "the file is empty")
		return nil
	}
	return doc.Content[0]
}

func (l *loader) packFile(pack *Pack, f *file) {
	root := f.single()
	if root == nil {
		return
	}
	before := l.errs.len()
	const what = "pack.yaml"
	m := f.mapping(root, what, []string{"version", "description", "defaults", "lists"})
	if m == nil {
		return
	}
	if v, n, ok := m.str("version", what, true); ok {
		if !versionRE.MatchString(v) {
			f.errorf(n, "pack.yaml: version %q must be 1 to 64 letters, digits and . _ + - (starting with a letter or digit)", v)
		}
		pack.Version = v
	}
	if v, n, ok := m.str("description", what, false); ok {
		if utf8.RuneCountInString(v) > 4000 {
			f.errorf(n, "pack.yaml: description is longer than 4000 characters")
		}
		pack.Description = v
	}
	if n := m.vals["lists"]; n != nil {
		l.parseLists(f, n, pack)
	}
	if n := m.vals["defaults"]; n != nil {
		const what = "defaults"
		if d := f.mapping(n, what, []string{"mode", "enabled", "group_by"}); d != nil {
			if v, n, ok := d.str("mode", what, false); ok {
				if v != ModeLive && v != ModeShadow {
					f.errorf(n, "defaults: mode must be live or shadow, got %q", v)
				} else {
					l.defaults.mode = v
				}
			}
			if b, _, ok := d.boolean("enabled", what); ok {
				l.defaults.enabled = b
			}
			if x := l.expr(f, d, "group_by", what, ResultString); x != nil {
				l.defaults.groupBy = x
			}
		}
	}
	if l.errs.len() == before {
		schemaCheck(f, root, schemaPackFile)
	}
}

func (l *loader) parseLists(f *file, n *yaml.Node, pack *Pack) {
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "lists must be a mapping of name to list of strings, got %s", kindName(n))
		return
	}
	if len(n.Content)/2 > MaxLists {
		f.errorf(n, "lists: %d lists, the limit is %d", len(n.Content)/2, MaxLists)
		return
	}
	names := make([]string, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.ShortTag() == "!!str" {
			names = append(names, k.Value)
		}
	}
	m := f.mapping(n, "lists", names)
	if m == nil {
		return
	}
	for _, name := range names {
		k := m.keys[name]
		if k == nil {
			continue // a duplicate, reported
		}
		if !nameRE.MatchString(name) {
			f.errorf(k, "lists: name %q must be lower case letters, digits and _ (starting with a letter)", name)
			continue
		}
		items, v, ok := m.strings(name, "lists", MaxListItems)
		if v != nil && v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
			f.errorf(v, "lists: %s is empty", name)
		}
		if ok {
			for i, it := range items {
				if it == "" || len(it) > 1024 {
					f.errorf(v.Content[i], "lists: %s: items must be 1 to 1024 bytes long", name)
				}
			}
		}
		if !ok {
			items = []string{} // reported; known, so that rules using it report nothing more
		}
		pack.Lists[name] = items
	}
	l.lists = pack.Lists
}

func (l *loader) rulesFile(pack *Pack, f *file) {
	root := f.single()
	if root == nil {
		return
	}
	before := l.errs.len()
	m := f.mapping(root, "rules file", []string{"rules"})
	if m == nil {
		return
	}
	seq := m.required("rules", "rules file")
	if seq == nil {
		return
	}
	if seq.Kind != yaml.SequenceNode {
		f.errorf(seq, "rules must be a list of rules, got %s", kindName(seq))
		return
	}
	for _, n := range seq.Content {
		if r := l.rule(f, n); r != nil {
			pack.Rules = append(pack.Rules, r)
		}
	}
	if l.errs.len() == before {
		schemaCheck(f, root, schemaRulesFile)
	}
}

// rule compiles one rule; nil when it has errors (all reported).
func (l *loader) rule(f *file, n *yaml.Node) *Rule {
	before := l.errs.len()
	what := "rule"
	if n.Kind == yaml.MappingNode {
		if idn := mapGet(n, "id"); idn != nil && idn.Kind == yaml.ScalarNode && idn.Value != "" && utf8.ValidString(idn.Value) && len(idn.Value) <= 128 {
			what = "rule " + idn.Value
		}
	}
	m := f.mapping(n, what, ruleFields)
	if m == nil {
		return nil
	}
	r := &Rule{Pos: f.pos(n), Enabled: l.defaults.enabled, Shadow: l.defaults.mode == ModeShadow}
	if id, idn, ok := m.str("id", what, true); ok {
		r.ID = id
		switch {
		case len(id) > 128 || !ruleIDRE.MatchString(id):
			f.errorf(idn, "rule id %q must be dotted lower-case words (letters, digits, _), e.g. crm.bulk_read_no_ticket", id)
		default:
			if prev, dup := l.ids[id]; dup {
				f.errorf(idn, "duplicate rule id %q (first defined at %s)", id, prev)
			} else {
				l.ids[id] = f.pos(idn)
			}
		}
	}
	if v, vn, ok := m.str("title", what, true); ok {
		if strings.TrimSpace(v) == "" || utf8.RuneCountInString(v) > 200 {
			f.errorf(vn, "%s: title must be 1 to 200 characters", what)
		}
		r.Title = v
	}
	if v, vn, ok := m.str("description", what, true); ok {
		if strings.TrimSpace(v) == "" || utf8.RuneCountInString(v) > 4000 {
			f.errorf(vn, "%s: description must be 1 to 4000 characters", what)
		}
		r.Description = v
	}
	if v, vn, ok := m.str("severity", what, true); ok {
		if !slices.Contains(severities, v) {
			f.errorf(vn, "%s: severity must be low, medium, high or critical, got %q", what, v)
		}
		r.Severity = v
	}
	if v, vn, ok := m.str("runbook", what, false); ok {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(v) > 2048 {
			f.errorf(vn, "%s: runbook must be an http(s) URL, got %q", what, v)
		}
		r.Runbook = v
	}
	if v, vn, ok := m.str("version", what, false); ok {
		if !versionRE.MatchString(v) {
			f.errorf(vn, "%s: version %q must be 1 to 64 letters, digits and . _ + - (starting with a letter or digit)", what, v)
		}
		r.Version = v
	}
	if tags, tn, ok := m.strings("tags", what, MaxTags); ok {
		seen := map[string]bool{}
		for i, t := range tags {
			if msg := checkTag(t); msg != "" {
				f.errorf(tn.Content[i], "%s: tag %q: %s", what, t, msg)
			} else if seen[t] {
				f.errorf(tn.Content[i], "%s: duplicate tag %q", what, t)
			}
			seen[t] = true
		}
		r.Tags = tags
	}
	if b, _, ok := m.boolean("enabled", what); ok {
		r.Enabled = b
	}
	if v, vn, ok := m.str("mode", what, false); ok {
		if v != ModeLive && v != ModeShadow {
			f.errorf(vn, "%s: mode must be live or shadow, got %q", what, v)
		}
		r.Shadow = v == ModeShadow
	}
	if m.has("match") {
		r.Match = l.expr(f, m, "match", what, ResultBool)
	} else {
		r.Match, _ = compileExpr("true", ResultBool, nil)
		r.Match.Pos = r.Pos
	}
	if m.has("group_by") {
		r.GroupBy = l.expr(f, m, "group_by", what, ResultString)
	} else {
		r.GroupBy = l.defaults.groupBy
	}
	if wn := m.required("window", what); wn != nil {
		l.window(f, wn, what, &r.Window)
	}
	if d, _, ok := m.duration("cooldown", what, false, 0, MaxWindow); ok {
		r.CoolDown = d
	} else if !m.has("cooldown") {
		r.CoolDown = r.Window.Over
	}
	if l.errs.len() > before {
		return nil
	}
	if r.Version == "" {
		sum := sha256.Sum256(r.canonicalDetection())
		r.Version = hex.EncodeToString(sum[:])[:12]
	}
	return r
}

// checkTag validates a tag; "" when good.
func checkTag(t string) string {
	if !tagRE.MatchString(t) {
		return "tags are lower case letters, digits and . _ - (at most 64)"
	}
	rest, ok := strings.CutPrefix(t, "attack.")
	if !ok {
		return ""
	}
	if attackIDRE.MatchString(t) {
		return ""
	}
	if slices.Contains(attackTactics, strings.ReplaceAll(rest, "-", "_")) {
		return ""
	}
	if len(rest) > 0 && (rest[0] == 't' || rest[0] == 'g' || rest[0] == 's' || rest[0] == 'm') && len(rest) > 1 && rest[1] >= '0' && rest[1] <= '9' {
		return "ATT&CK ids look like attack.t1048, attack.t1567.002, attack.g0032, attack.s0002 or attack.m1057"
	}
	return "an attack. tag must be an ATT&CK id (attack.t1048, attack.t1567.002) or a tactic (attack.exfiltration)"
}

// expr compiles an expression field; nil if absent or wrong (reported).
// Scalars of any type are accepted as source (match: true, value: 1).
func (l *loader) expr(f *file, m *mapping, key, what string, want ResultKind) *Expr {
	n := m.vals[key]
	if n == nil {
		return nil
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		f.errorf(n, "%s: %s must be an expression (a string), got %s", what, key, kindName(n))
		return nil
	}
	src := n.Value
	if strings.TrimSpace(src) == "" {
		f.errorf(n, "%s: %s is empty", what, key)
		return nil
	}
	x, errs := compileExpr(src, want, l.lists)
	hint := ""
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 && n.LineComment != "" {
		hint = " (note: in YAML, \" #\" starts a comment and cut this expression short: quote it or write it as a block, >-)"
	}
	for _, e := range errs {
		f.errs.add(f.exprPos(n, e.offset), "%s: %s: %s%s", what, key, e.msg, hint)
	}
	if x == nil {
		return nil
	}
	x.Pos = f.exprPos(n, 0)
	return x
}

func (l *loader) window(f *file, n *yaml.Node, ruleWhat string, w *Window) {
	what := ruleWhat + ": window"
	m := f.mapping(n, what, windowFields)
	if m == nil {
		return
	}
	kind, kn, ok := m.str("kind", what, true)
	if ok && !slices.Contains(windowKinds, kind) {
		f.errorf(kn, "%s: kind must be one of %s, got %q%s", what, strings.Join(windowKinds, ", "), kind, suggest(kind, windowKinds))
		ok = false
	}
	if !ok {
		return
	}
	w.Kind = kind
	allowed := kindFields[kind]
	for _, k := range windowFields {
		if k != "kind" && m.has(k) && !slices.Contains(allowed, k) {
			f.errorf(m.keys[k], "%s: a %s window does not take %s (it takes %s)", what, kind, k, strings.Join(allowed, ", "))
		}
	}
	switch kind {
	case KindCount, KindSum, KindDistinct:
		w.Over, _, _ = m.duration("over", what, true, MinWindow, MaxWindow)
		if kind == KindSum {
			w.Value = l.requiredExpr(f, m, "value", what, ResultNumber)
			if t, tn, ok := m.number("threshold", what, true); ok {
				if t <= 0 || t > MaxThreshold {
					f.errorf(tn, "%s: threshold must be > 0 and ≤ %g", what, float64(MaxThreshold))
				}
				w.Threshold = t
			}
		} else {
			if t, tn, ok := m.integer("threshold", what, true); ok {
				if t < 1 || float64(t) > MaxThreshold {
					f.errorf(tn, "%s: threshold must be a whole number ≥ 1", what)
				}
				w.Threshold = float64(t)
			}
		}
		if kind == KindDistinct {
			w.Value = l.requiredExpr(f, m, "value", what, ResultStrings)
			w.ExactUpTo = DefaultExact
			if e, en, ok := m.integer("exact_up_to", what, false); ok {
				if e < 1 || e > MaxExactUpTo {
					f.errorf(en, "%s: exact_up_to must be 1 to %d", what, MaxExactUpTo)
				}
				w.ExactUpTo = e
			}
			if w.Threshold > float64(w.ExactUpTo) && m.has("threshold") {
				f.errorf(m.vals["threshold"], "%s: threshold %g is above exact_up_to %d: the count would be an estimate when it matters", what, w.Threshold, w.ExactUpTo)
			}
		}
	case KindSequence:
		w.Over, _, _ = m.duration("within", what, true, MinWindow, MaxWindow)
		if sn := m.required("steps", what); sn != nil {
			l.steps(f, sn, what, w)
		}
		if m.has("until") {
			w.Until = l.expr(f, m, "until", what, ResultBool)
		}
	case KindAbsence:
		w.Over, _, _ = m.duration("within", what, true, MinWindow, MaxWindow)
		w.Then = l.requiredExpr(f, m, "then", what, ResultBool)
	case KindBaseline:
		l.baseline(f, m, what, w)
	}
}

func (l *loader) requiredExpr(f *file, m *mapping, key, what string, want ResultKind) *Expr {
	if m.required(key, what) == nil {
		return nil
	}
	return l.expr(f, m, key, what, want)
}

func (l *loader) steps(f *file, n *yaml.Node, what string, w *Window) {
	if n.Kind != yaml.SequenceNode {
		f.errorf(n, "%s: steps must be a list of {name, match}, got %s", what, kindName(n))
		return
	}
	if len(n.Content) < 2 || len(n.Content) > MaxSteps {
		f.errorf(n, "%s: a sequence has 2 to %d steps, got %d", what, MaxSteps, len(n.Content))
	}
	names := map[string]bool{}
	for i, sn := range n.Content {
		swhat := fmt.Sprintf("%s: step %d", what, i+1)
		m := f.mapping(sn, swhat, []string{"name", "match"})
		if m == nil {
			continue
		}
		st := Step{Pos: f.pos(sn)}
		if name, nn, ok := m.str("name", swhat, true); ok {
			switch {
			case !nameRE.MatchString(name):
				f.errorf(nn, "%s: name %q must be lower case letters, digits and _ (starting with a letter)", swhat, name)
			case names[name]:
				f.errorf(nn, "%s: duplicate step name %q", swhat, name)
			}
			names[name] = true
			st.Name = name
		}
		st.Match = l.requiredExpr(f, m, "match", swhat, ResultBool)
		w.Steps = append(w.Steps, st)
	}
}

func (l *loader) baseline(f *file, m *mapping, what string, w *Window) {
	w.Bucket, w.History = DefaultBucket, DefaultHist
	if d, _, ok := m.duration("bucket", what, false, MinBucket, MaxWindow); ok {
		w.Bucket = d
	}
	if d, _, ok := m.duration("history", what, false, MinBucket, MaxHistory); ok {
		w.History = d
	}
	w.Over = w.Bucket
	if d, _, ok := m.duration("over", what, false, MinWindow, MaxWindow); ok {
		w.Over = d
	}
	if w.History < w.Bucket || w.History%w.Bucket != 0 {
		n := m.vals["history"]
		if n == nil {
			n = m.node
		}
		f.errorf(n, "%s: history %s must be a whole number of buckets (bucket %s)", what, FormatDuration(w.History), FormatDuration(w.Bucket))
	}
	if m.has("value") {
		w.Value = l.expr(f, m, "value", what, ResultNumber)
	} else {
		w.Value, _ = compileExpr("1", ResultNumber, nil)
		w.Value.Pos = f.pos(m.node)
	}
	if x, xn, ok := m.number("factor", what, true); ok {
		if x <= 1 || x > MaxFactor {
			f.errorf(xn, "%s: factor must be > 1 and ≤ %g", what, float64(MaxFactor))
		}
		w.Factor = x
	}
	if x, xn, ok := m.number("min_value", what, false); ok {
		if x < 0 || x > MaxThreshold {
			f.errorf(xn, "%s: min_value must be ≥ 0", what)
		}
		w.MinValue = x
	}
	buckets := 0
	if w.Bucket > 0 {
		buckets = int(w.History / w.Bucket)
	}
	w.MinHistory = min(DefaultMinHistory, buckets)
	if x, xn, ok := m.integer("min_history", what, false); ok {
		if x < 0 || x > buckets {
			f.errorf(xn, "%s: min_history must be 0 to %d (the buckets in history)", what, buckets)
		}
		w.MinHistory = x
	}
}

// canonical forms, for versions and checksums.

type canonExpr = string

type canonStep struct {
	Name  string    `json:"name"`
	Match canonExpr `json:"match"`
}

type canonWindow struct {
	Kind       string      `json:"kind"`
	Over       int64       `json:"over_ns"`
	Threshold  float64     `json:"threshold,omitempty"`
	Value      canonExpr   `json:"value,omitempty"`
	ExactUpTo  int         `json:"exact_up_to,omitempty"`
	Steps      []canonStep `json:"steps,omitempty"`
	Until      canonExpr   `json:"until,omitempty"`
	Then       canonExpr   `json:"then,omitempty"`
	Bucket     int64       `json:"bucket_ns,omitempty"`
	History    int64       `json:"history_ns,omitempty"`
	Factor     float64     `json:"factor,omitempty"`
	MinValue   float64     `json:"min_value,omitempty"`
	MinHistory int         `json:"min_history,omitempty"`
}

type canonDetection struct {
	Match    canonExpr   `json:"match"`
	GroupBy  canonExpr   `json:"group_by"`
	Window   canonWindow `json:"window"`
	CoolDown int64       `json:"cooldown_ns"`
}

type canonRule struct {
	ID          string         `json:"id"`
	Version     string         `json:"version"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Severity    string         `json:"severity"`
	Runbook     string         `json:"runbook"`
	Tags        []string       `json:"tags"`
	Enabled     bool           `json:"enabled"`
	Shadow      bool           `json:"shadow"`
	Detection   canonDetection `json:"detection"`
}

func canon(x *Expr) canonExpr {
	if x == nil {
		return ""
	}
	return x.Canonical
}

func (r *Rule) detection() canonDetection {
	w := r.Window
	cw := canonWindow{Kind: w.Kind, Over: int64(w.Over), Threshold: w.Threshold, Value: canon(w.Value),
		ExactUpTo: w.ExactUpTo, Until: canon(w.Until), Then: canon(w.Then), Bucket: int64(w.Bucket),
		History: int64(w.History), Factor: w.Factor, MinValue: w.MinValue, MinHistory: w.MinHistory}
	for _, s := range w.Steps {
		cw.Steps = append(cw.Steps, canonStep{Name: s.Name, Match: canon(s.Match)})
	}
	return canonDetection{Match: canon(r.Match), GroupBy: canon(r.GroupBy), Window: cw, CoolDown: int64(r.CoolDown)}
}

// canonicalDetection is the JSON of what the rule detects.
func (r *Rule) canonicalDetection() []byte {
	b, _ := json.Marshal(r.detection()) // plain types: cannot fail
	return b
}

func (p *Pack) checksum() string {
	rules := make([]canonRule, 0, len(p.Rules))
	for _, r := range p.Rules {
		rules = append(rules, canonRule{ID: r.ID, Version: r.Version, Title: r.Title, Description: r.Description,
			Severity: r.Severity, Runbook: r.Runbook, Tags: r.Tags, Enabled: r.Enabled, Shadow: r.Shadow,
			Detection: r.detection()})
	}
	slices.SortFunc(rules, func(a, b canonRule) int { return strings.Compare(a.ID, b.ID) })
	b, _ := json.Marshal(struct {
		Format      string              `json:"format"`
		Version     string              `json:"version"`
		Description string              `json:"description"`
		Lists       map[string][]string `json:"lists"`
		Rules       []canonRule         `json:"rules"`
	}{"leakline.rulepack.v1", p.Version, p.Description, p.Lists, rules})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
