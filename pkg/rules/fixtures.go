package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/leakline/leakline/pkg/event"
)

// Limits of fixtures.
const (
	MaxTestEvents  = 100_000 // events of one test case after expansion
	MaxRepeat      = 10_000
	MaxRangeItems  = 10_000
	MaxGenerated   = 10_000 // values one {emails(n)} may produce
	MaxTestsPerDir = 1000
	// MaxTestBytes bounds the raw JSON generated for one test case.
	MaxTestBytes = 64 << 20
)

// TestCase is one fixture: events to feed the engine and the findings to
// expect. Events are in time order (stable: same-time events keep the
// file's order).
type TestCase struct {
	Name        string
	Description string
	Pos         Pos
	Start       time.Time
	// End is the event time the runner advances to after the last event
	// (end: in the file), so that absences expire and incidents close up
	// to it. Zero (the default) means: flush, advance past every window.
	End    time.Time
	Events []RawEvent
	Expect []Expectation
	// Absent lists rule ids that must produce no finding at all.
	Absent    []string
	AbsentPos []Pos
	// Exhaustive: every finding must be matched by an expectation.
	Exhaustive bool
}

// RawEvent is one generated raw event, valid per schemas/*.schema.json
// (pkg/event's Decoder accepts it).
type RawEvent struct {
	Kind event.Kind
	Raw  []byte
	// At is the event time; Pos the events: item it was generated from.
	At  time.Time
	Pos Pos
}

// Expectation is what the findings of one rule must look like. Findings
// are first collapsed to incidents (the highest revision per finding id).
type Expectation struct {
	Rule string
	// Group, when set, selects incidents whose ActorUID equals it.
	Group string
	// Incidents is the exact number of incidents, or -1: at least one.
	Incidents int
	// MinValue and MaxValue bound every selected incident's Value.
	MinValue, MaxValue *float64
	// Severity and Shadow, when set, must match every selected incident.
	Severity string
	Shadow   *bool
	Pos      Pos
}

// LoadTests reads the fixtures of the pack in dir: every *.yaml and *.yml
// file of dir/tests, each holding one or more test cases (YAML documents
// separated by ---). A pack without a tests directory has no tests.
func LoadTests(dir string) ([]TestCase, error) {
	files, err := readYAMLDir(filepath.Join(dir, TestsDir), MaxTestsPerDir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseTests(files, path.Join(filepath.ToSlash(dir), TestsDir))
}

// ParseTests parses fixtures given as file name → content (the files of a
// tests directory).
func ParseTests(files map[string][]byte) ([]TestCase, error) {
	return parseTests(files, "")
}

// loadFS reads the top-level YAML files of dir in fsys.
func loadFS(fsys fs.FS, dir string) (map[string][]byte, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || !isYAML(e.Name()) {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files[e.Name()] = b
	}
	return files, nil
}

func parseTests(files map[string][]byte, prefix string) ([]TestCase, error) {
	dec, err := event.NewDecoder(event.Limits{})
	if err != nil {
		return nil, err
	}
	l := &loader{prefix: prefix}
	names := make([]string, 0, len(files))
	for name := range files {
		if isYAML(name) && !strings.Contains(name, "/") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var out []TestCase
	seen := map[string]Pos{}
	for _, name := range names {
		f := l.newFile(name, files[name])
		before := l.errs.len()
		docs := f.documents()
		if l.errs.len() > before {
			continue
		}
		for _, doc := range docs {
			if len(doc.Content) != 1 {
				continue // an empty document between ---
			}
			tb := l.errs.len()
			tc, ok := testCase(f, doc.Content[0], dec)
			if l.errs.len() == tb {
				schemaCheck(f, doc.Content[0], schemaTestFile)
			}
			if !ok || l.errs.len() > tb {
				continue
			}
			if prev, dup := seen[tc.Name]; dup {
				f.errs.add(tc.Pos, "duplicate test name %q (first at %s)", tc.Name, prev)
				continue
			}
			seen[tc.Name] = tc.Pos
			out = append(out, tc)
		}
	}
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	return out, nil
}

var testFields = []string{"name", "description", "start", "end", "defaults", "events", "expect", "absent", "exhaustive"}

// eventMeta are the fields of an events: item that are not event body.
var eventMeta = []string{"at", "kind", "repeat", "every", "event_id"}

// bodyFields are the raw event fields a fixture may give, by kind (the
// boilerplate schema_version, class_uid, activity_id and time is filled in).
var bodyFields = map[event.Kind][]string{
	event.KindCRMAccess: {"actor", "action", "records", "ticket_id", "src_endpoint", "app_name"},
	event.KindOutbound:  {"actor", "channel", "subject", "destination", "content", "attachments", "src_endpoint"},
}

// stringListFields are body fields holding lists of strings: a string given
// instead becomes a one-item list, and A..B items are expanded.
var stringListFields = map[string]bool{
	"records.ids": true, "records.fields": true, "destination.recipients": true, "destination.domains": true,
}

// sizeFields accept sizes with units ("600MB").
var sizeFields = map[string]bool{"content.size": true, "attachments.size": true}

func testCase(f *file, n *yaml.Node, dec *event.Decoder) (TestCase, bool) {
	tc := TestCase{Pos: f.pos(n)}
	m := f.mapping(n, "test", testFields)
	if m == nil {
		return tc, false
	}
	what := "test"
	if name, _, ok := m.str("name", what, true); ok {
		tc.Name = name
		what = fmt.Sprintf("test %q", name)
	}
	tc.Description, _, _ = m.str("description", what, false)
	if b, _, ok := m.boolean("exhaustive", what); ok {
		tc.Exhaustive = b
	}
	if sn := m.required("start", what); sn != nil {
		t, err := parseTime(sn)
		if err != nil {
			f.errorf(sn, "%s: start: %v", what, err)
		}
		tc.Start = t
	}
	if en := m.vals["end"]; en != nil && !tc.Start.IsZero() {
		g := &generator{start: tc.Start}
		t, err := g.at(en)
		if err != nil {
			f.errorf(en, "%s: end: %v", what, err)
		}
		tc.End = t
	}
	var defaults *yaml.Node
	if dn := m.vals["defaults"]; dn != nil {
		if f.mapping(dn, what+": defaults", union(bodyFields)) != nil {
			defaults = dn
		}
	}
	g := &generator{f: f, what: what, dec: dec, start: tc.Start, defaults: defaults, slug: slug(tc.Name)}
	if en := m.required("events", what); en != nil {
		if en.Kind != yaml.SequenceNode || len(en.Content) == 0 {
			f.errorf(en, "%s: events must be a non-empty list, got %s", what, kindName(en))
		} else if !tc.Start.IsZero() {
			for _, item := range en.Content {
				if g.item(item); g.failed {
					break
				}
			}
		}
	}
	sort.SliceStable(g.events, func(i, j int) bool { return g.events[i].At.Before(g.events[j].At) })
	tc.Events = g.events
	if xn := m.vals["expect"]; xn != nil {
		if xn.Kind != yaml.SequenceNode {
			f.errorf(xn, "%s: expect must be a list, got %s", what, kindName(xn))
		} else {
			for _, it := range xn.Content {
				if e, ok := expectation(f, it, what); ok {
					tc.Expect = append(tc.Expect, e)
				}
			}
		}
	}
	if ids, an, ok := m.strings("absent", what, MaxRules); ok {
		tc.Absent = ids
		for i, id := range ids {
			tc.AbsentPos = append(tc.AbsentPos, f.pos(an.Content[i]))
			if !ruleIDRE.MatchString(id) {
				f.errorf(an.Content[i], "%s: absent: %q is not a rule id", what, id)
			}
		}
	}
	if len(tc.Expect) == 0 && len(tc.Absent) == 0 && m.vals["expect"] == nil && m.vals["absent"] == nil {
		f.errorf(n, "%s: a test needs expect:, absent: or both", what)
	}
	return tc, true
}

func expectation(f *file, n *yaml.Node, what string) (Expectation, bool) {
	e := Expectation{Pos: f.pos(n), Incidents: -1}
	m := f.mapping(n, what+": expect", []string{"rule", "group", "incidents", "min_value", "max_value", "severity", "shadow"})
	if m == nil {
		return e, false
	}
	ok := true
	w := what + ": expect"
	if id, idn, good := m.str("rule", w, true); good {
		if !ruleIDRE.MatchString(id) {
			f.errorf(idn, "%s: %q is not a rule id", w, id)
		}
		e.Rule = id
	} else {
		ok = false
	}
	e.Group, _, _ = m.str("group", w, false)
	if x, xn, good := m.integer("incidents", w, false); good {
		if x < 0 {
			f.errorf(xn, "%s: incidents must be ≥ 0", w)
		}
		e.Incidents = x
	}
	if x, _, good := m.number("min_value", w, false); good {
		e.MinValue = &x
	}
	if x, _, good := m.number("max_value", w, false); good {
		e.MaxValue = &x
	}
	if s, sn, good := m.str("severity", w, false); good {
		if !slices.Contains(severities, s) {
			f.errorf(sn, "%s: severity must be low, medium, high or critical", w)
		}
		e.Severity = s
	}
	if b, _, good := m.boolean("shadow", w); good {
		e.Shadow = &b
	}
	return e, ok
}

func parseTime(n *yaml.Node) (time.Time, error) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!timestamp") {
		return time.Time{}, fmt.Errorf("must be an RFC 3339 time such as 2026-11-02T09:00:00Z, got %s", kindName(n))
	}
	t, err := time.Parse(time.RFC3339Nano, n.Value)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time such as 2026-11-02T09:00:00Z", n.Value)
	}
	return t.UTC(), nil
}

var slugRE = regexp.MustCompile(`[^a-z0-9]+`)

func slug(name string) string {
	s := strings.Trim(slugRE.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(s) > 40 {
		s = strings.TrimRight(s[:40], "-")
	}
	if s == "" {
		s = "test"
	}
	return s
}

// generator expands the events: items of one test case.
type generator struct {
	f        *file
	what     string
	dec      *event.Decoder
	start    time.Time
	defaults *yaml.Node
	slug     string
	events   []RawEvent
	bytes    int // raw JSON generated so far
	seq      int // values produced by {emails(n)} and friends
	failed   bool
}

func (g *generator) item(n *yaml.Node) {
	before := g.f.errs.len()
	m := g.f.mapping(n, g.what+": event", append(slices.Clone(eventMeta), union(bodyFields)...))
	if m == nil {
		return
	}
	w := g.what + ": event"
	var kind event.Kind
	if k, kn, ok := m.str("kind", w, true); ok {
		kind = event.Kind(k)
		if bodyFields[kind] == nil {
			g.f.errorf(kn, "%s: kind must be crm_access or outbound, got %q", w, k)
			return
		}
		for key, kn := range m.keys {
			if !slices.Contains(eventMeta, key) && !slices.Contains(bodyFields[kind], key) {
				g.f.errorf(kn, "%s: a %s event has no field %s (it has %s)", w, kind, key, strings.Join(bodyFields[kind], ", "))
			}
		}
	}
	var at time.Time
	if an := m.required("at", w); an != nil {
		t, err := g.at(an)
		if err != nil {
			g.f.errorf(an, "%s: at: %v", w, err)
		}
		at = t
	}
	repeat := 1
	if r, rn, ok := m.integer("repeat", w, false); ok {
		if r < 1 || r > MaxRepeat {
			g.f.errorf(rn, "%s: repeat must be 1 to %d", w, MaxRepeat)
		}
		repeat = r
	}
	var every time.Duration
	if d, _, ok := m.duration("every", w, false, 0, MaxHistory); ok {
		every = d
	} else if repeat > 1 && !m.has("every") {
		g.f.errorf(m.node, "%s: repeat needs every: (the time between the repetitions)", w)
	}
	if g.f.errs.len() > before {
		return
	}
	if len(g.events)+repeat > MaxTestEvents {
		g.f.errorf(n, "%s: the test has more than %d events", w, MaxTestEvents)
		g.failed = true
		return
	}
	idTmpl, idNode, _ := m.str("event_id", w, false)
	for i := 0; i < repeat; i++ {
		ctx := tmplCtx{i: i, n: len(g.events), g: g}
		body := map[string]any{}
		for _, key := range bodyFields[kind] {
			vn := m.vals[key]
			if vn == nil && g.defaults != nil {
				vn = mapGet(g.defaults, key)
			}
			if vn == nil {
				continue
			}
			v, err := g.value(vn, key, ctx)
			if err != nil {
				g.f.errs.add(err.pos, "%s: %s: %s", w, key, err.msg)
				return
			}
			body[key] = v
		}
		t := at.Add(time.Duration(i) * every)
		id := fmt.Sprintf("%s-%d", g.slug, len(g.events)+1)
		if idNode != nil {
			s, err := ctx.interpolate(idTmpl)
			if err != nil {
				g.f.errorf(idNode, "%s: event_id: %s", w, err)
				return
			}
			id = s
		}
		raw, err := fill(kind, body, id, t)
		if g.bytes += len(raw); g.bytes > MaxTestBytes {
			g.f.errorf(n, "%s: the test generates more than %d MiB of events", w, MaxTestBytes>>20)
			g.failed = true
			return
		}
		if err == nil {
			_, err = g.dec.DecodeRaw(kind, raw, event.Source{}, t)
		}
		if err != nil {
			g.decodeError(n, w, kind, i, err)
			return
		}
		g.events = append(g.events, RawEvent{Kind: kind, Raw: raw, At: t, Pos: g.f.pos(n)})
	}
}

// decodeError reports why pkg/event rejected a generated event, each
// problem at the YAML node its JSON pointer leads to (in the item, else in
// the test's defaults, else the item itself).
func (g *generator) decodeError(item *yaml.Node, what string, kind event.Kind, rep int, err error) {
	var de *event.DecodeError
	if !errors.As(err, &de) || de.Errs == nil || de.Len() == 0 {
		g.f.errorf(item, "%s: the generated %s event (repetition %d) is not valid: %v", what, kind, rep, err)
		return
	}
	for _, e := range de.Errs.WrappedErrors() {
		at := item
		var fe *event.FieldError
		if errors.As(e, &fe) && fe.Pointer != "" {
			segs := strings.Split(strings.TrimPrefix(fe.Pointer, "/"), "/")
			switch {
			case mapGet(item, segs[0]) != nil:
				at = nodeAt(item, segs)
			case g.defaults != nil && mapGet(g.defaults, segs[0]) != nil:
				at = nodeAt(g.defaults, segs)
			}
		}
		g.f.errorf(at, "%s: the generated %s event (repetition %d) is not valid: %v", what, kind, rep, e)
	}
}

func union(m map[event.Kind][]string) []string {
	var out []string
	for _, k := range []event.Kind{event.KindCRMAccess, event.KindOutbound} {
		for _, f := range m[k] {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

func mapGet(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// at parses an events: item's time: +DURATION from start, or RFC 3339.
func (g *generator) at(n *yaml.Node) (time.Time, error) {
	if n.Kind == yaml.ScalarNode && strings.HasPrefix(n.Value, "+") {
		d, err := ParseDuration(n.Value[1:])
		if err != nil {
			return time.Time{}, err
		}
		return g.start.Add(d), nil
	}
	return parseTime(n)
}

// fill adds the boilerplate and marshals the raw event.
func fill(kind event.Kind, body map[string]any, id string, t time.Time) ([]byte, error) {
	body["schema_version"] = event.SchemaVersion
	body["event_id"] = id
	body["time"] = t.UTC().Format(time.RFC3339Nano)
	switch kind {
	case event.KindCRMAccess:
		body["class_uid"] = event.ClassAPIActivity
		body["activity_id"] = 2
		if _, ok := body["ticket_id"]; !ok {
			body["ticket_id"] = ""
		}
	case event.KindOutbound:
		body["activity_id"] = 1
		switch body["channel"] {
		case event.ChannelEmail:
			body["class_uid"] = event.ClassEmailActivity
		case event.ChannelUSB:
			body["class_uid"] = event.ClassFileSystemActivity
		default:
			body["class_uid"] = event.ClassFileHostingActivity
		}
		if _, ok := body["content"]; !ok {
			body["content"] = map[string]any{"size": 0}
		}
	}
	return json.Marshal(body)
}

type genError struct {
	pos Pos
	msg string
}

// value converts a YAML body value into JSON, expanding templates.
func (g *generator) value(n *yaml.Node, path string, ctx tmplCtx) (any, *genError) {
	fail := func(format string, a ...any) (any, *genError) {
		return nil, &genError{g.f.pos(n), fmt.Sprintf(format, a...)}
	}
	switch n.Kind {
	case yaml.MappingNode:
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return fail("keys must be strings")
			}
			if _, dup := out[k.Value]; dup {
				return nil, &genError{g.f.pos(k), fmt.Sprintf("duplicate field %q", k.Value)}
			}
			v, err := g.value(n.Content[i+1], path+"."+k.Value, ctx)
			if err != nil {
				return nil, err
			}
			out[k.Value] = v
		}
		return out, nil
	case yaml.SequenceNode:
		out := []any{}
		for _, c := range n.Content {
			if stringListFields[path] && c.Kind == yaml.ScalarNode && c.ShortTag() == "!!str" {
				items, err := g.strList(c, ctx)
				if err != nil {
					return nil, err
				}
				for _, s := range items {
					out = append(out, s)
				}
				continue
			}
			v, err := g.value(c, path, ctx)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			if len(out) > MaxRangeItems {
				return fail("more than %d items", MaxRangeItems)
			}
		}
		return out, nil
	case yaml.ScalarNode:
		tag := n.ShortTag()
		if stringListFields[path] && tag == "!!str" {
			items, err := g.strList(n, ctx)
			if err != nil {
				return nil, err
			}
			out := make([]any, len(items))
			for i, s := range items {
				out[i] = s
			}
			return out, nil
		}
		switch tag {
		case "!!str", "!!timestamp":
			s, err := ctx.interpolate(n.Value)
			if err != nil {
				return fail("%s", err)
			}
			if sizeFields[path] {
				if b, ok := parseSize(s); ok {
					return b, nil
				}
				return fail("size %q must be a number of bytes or have a unit (B, KB, MB, GB, KiB, MiB, GiB)", s)
			}
			return s, nil
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				return fail("%v", err)
			}
			return i, nil
		case "!!float":
			var x float64
			if err := n.Decode(&x); err != nil {
				return fail("%v", err)
			}
			return x, nil
		case "!!bool":
			return n.Value == "true", nil
		case "!!null":
			return nil, nil
		}
	}
	return fail("unsupported value (%s)", kindName(n))
}

var sizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$`)

// parseSize parses "1843200", "600MB" (10^6) or "1.5GiB" (2^30).
func parseSize(s string) (int64, bool) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, false
	}
	x, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	mult := map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	v := x * mult
	if v > 9007199254740991 {
		return 0, false
	}
	return int64(v), true
}

// strList expands one string of a list-of-strings field: templates, then
// an A..B range.
func (g *generator) strList(n *yaml.Node, ctx tmplCtx) ([]string, *genError) {
	s, err := ctx.interpolate(n.Value)
	if err != nil {
		return nil, &genError{g.f.pos(n), err.Error()}
	}
	items, err := expandRange(s)
	if err != nil {
		return nil, &genError{g.f.pos(n), err.Error()}
	}
	return items, nil
}

// expandRange expands "C-1..C-15" into C-1 … C-15. Both ends have the same
// prefix and end in a number; when the first number has leading zeros (or
// both numbers are as long), the numbers are zero-padded to its width. A
// string without ".." is one item.
func expandRange(s string) ([]string, error) {
	a, b, ok := strings.Cut(s, "..")
	if !ok {
		return []string{s}, nil
	}
	pa, na := splitNum(a)
	pb, nb := splitNum(b)
	if na == "" || nb == "" || pa != pb {
		return nil, fmt.Errorf("%q is not a range: write PREFIX<n>..PREFIX<m>, e.g. C-1..C-15", s)
	}
	lo, err1 := strconv.Atoi(na)
	hi, err2 := strconv.Atoi(nb)
	if err1 != nil || err2 != nil || hi < lo {
		return nil, fmt.Errorf("%q is not an ascending range", s)
	}
	if hi-lo+1 > MaxRangeItems {
		return nil, fmt.Errorf("the range %q has %d items, the limit is %d", s, hi-lo+1, MaxRangeItems)
	}
	width := 0
	if (len(na) > 1 && na[0] == '0') || len(na) == len(nb) {
		width = len(na)
	}
	out := make([]string, 0, hi-lo+1)
	for v := lo; v <= hi; v++ {
		out = append(out, fmt.Sprintf("%s%0*d", pa, width, v))
	}
	return out, nil
}

func splitNum(s string) (prefix, num string) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	return s[:i], s[i:]
}
