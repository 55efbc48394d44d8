package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// MaxFileBytes bounds one file of a pack or a fixture.
const MaxFileBytes = 1 << 20

// file is one YAML file being read, with the errors of the whole load.
type file struct {
	name string // as shown in errors
	src  []byte
	errs *errList
}

func (f *file) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: f.name, Line: 1, Column: 1}
	}
	return Pos{File: f.name, Line: n.Line, Column: n.Column}
}

func (f *file) errorf(n *yaml.Node, format string, a ...any) {
	f.errs.add(f.pos(n), format, a...)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// documents parses every YAML document of the file. A syntax error is
// reported with its line; no document is returned then.
func (f *file) documents() (docs []*yaml.Node) {
	if len(f.src) > MaxFileBytes {
		f.errs.add(Pos{File: f.name}, "file is %d bytes long, the limit is %d", len(f.src), MaxFileBytes)
		return nil
	}
	if !utf8.Valid(f.src) {
		off := 0
		for off < len(f.src) {
			r, size := utf8.DecodeRune(f.src[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		f.errs.add(f.offsetPos(off), "the file is not valid UTF-8")
		return nil
	}
	defer func() {
		if r := recover(); r != nil { // the YAML parser must never take the loader down
			f.errs.add(Pos{File: f.name}, "YAML could not be parsed (internal error: %v)", r)
			docs = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(f.src))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			f.syntaxError(err)
			return nil
		}
		f.checkNodes(&doc, 0)
		docs = append(docs, &doc)
	}
}

func (f *file) syntaxError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	line = f.problemLine(line, msg)
	f.errs.add(Pos{File: f.name, Line: line, Column: f.indentColumn(line)}, "YAML syntax error: %s", msg)
}

// problemLine refines the line of a syntax error. yaml.v3 reports the line
// where the enclosing construct started (the "rules:" of a 200-line file),
// not where the problem is. The problem is where a prefix of the file first
// fails with the same message: the parser streams, so a prefix that stops
// before the problem parses (or fails differently, at its end). Found by
// bisection over the lines, O(log lines) parses. Messages a truncated
// prefix also produces ("end of stream") keep yaml.v3's line.
func (f *file) problemLine(reported int, msg string) int {
	if strings.Contains(msg, "end of stream") || len(f.src) == 0 {
		return reported
	}
	var ends []int // ends[k-1]: byte offset just past line k
	for i, c := range f.src {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(f.src) {
		ends = append(ends, len(f.src))
	}
	failsSame := func(k int) (same bool) {
		defer func() {
			if recover() != nil {
				same = false
			}
		}()
		var n yaml.Node
		dec := yaml.NewDecoder(bytes.NewReader(f.src[:ends[k-1]]))
		for {
			err := dec.Decode(&n)
			if err == nil {
				continue
			}
			if errors.Is(err, io.EOF) {
				return false
			}
			got := strings.TrimPrefix(err.Error(), "yaml: ")
			if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
				got = m[2]
			}
			return got == msg
		}
	}
	lo, hi := max(reported, 1), len(ends) // failsSame(hi) holds
	if lo > hi || !failsSame(hi) {
		return reported
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if failsSame(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// indentColumn is the column of the first non-blank character of a line.
func (f *file) indentColumn(line int) int {
	i := f.lineOffset(line, 1)
	col := 1
	for i < len(f.src) && (f.src[i] == ' ' || f.src[i] == '\t') {
		i++
		col++
	}
	return col
}

// lineOffset is the byte offset of a 1-based line and byte column.
func (f *file) lineOffset(line, col int) int {
	i := 0
	for l := 1; l < line; l++ {
		j := bytes.IndexByte(f.src[i:], '\n')
		if j < 0 {
			return len(f.src)
		}
		i += j + 1
	}
	return min(i+col-1, len(f.src))
}

// maxDepth bounds the nesting of a document.
const maxDepth = 64

// checkNodes rejects what the format does not use and what could make a
// small file expensive: anchors, aliases (and with them merge keys) and
// deep nesting. The offending nodes are turned into null scalars so that
// the walk that follows reports nothing more about them.
func (f *file) checkNodes(n *yaml.Node, depth int) {
	if depth > maxDepth {
		f.errorf(n, "nesting deeper than %d levels", maxDepth)
		*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
		return
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		f.errorf(n, "YAML anchors and aliases (&name, *name, <<) are not supported in rule packs")
		*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
		return
	}
	for _, c := range n.Content {
		f.checkNodes(c, depth+1)
	}
}

// kindName names a node's type for "must be X, got Y" messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "null"
		case "!!timestamp":
			return "a timestamp"
		}
		return "a " + strings.TrimPrefix(n.ShortTag(), "!!")
	}
	return "something else"
}

// mapping is a YAML mapping whose keys were checked.
type mapping struct {
	f    *file
	node *yaml.Node
	keys map[string]*yaml.Node
	vals map[string]*yaml.Node
}

// mapping checks that n is a mapping whose keys are unique strings among
// allowed, reporting every other key. what names n in messages. It returns
// nil when n is not a mapping.
func (f *file) mapping(n *yaml.Node, what string, allowed []string) *mapping {
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "%s must be a mapping, got %s", what, kindName(n))
		return nil
	}
	m := &mapping{f: f, node: n, keys: map[string]*yaml.Node{}, vals: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			f.errorf(k, "%s: keys must be strings, got %s", what, kindName(k))
			continue
		}
		if prev, dup := m.keys[k.Value]; dup {
			f.errorf(k, "%s: duplicate field %q (first at line %d)", what, k.Value, prev.Line)
			continue
		}
		if !slices.Contains(allowed, k.Value) {
			f.errorf(k, "%s: unknown field %q%s", what, k.Value, suggest(k.Value, allowed))
			continue
		}
		m.keys[k.Value], m.vals[k.Value] = k, v
	}
	return m
}

// suggest returns `; did you mean "x"?` for a near miss, or "".
func suggest(got string, allowed []string) string {
	best, bestD := "", 3
	for _, a := range allowed {
		if d := editDistance(strings.ToLower(got), a); d < bestD {
			best, bestD = a, d
		}
	}
	if best == "" {
		return fmt.Sprintf(" (allowed: %s)", strings.Join(allowed, ", "))
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// has reports whether the field is present.
func (m *mapping) has(key string) bool { return m.vals[key] != nil }

// required reports a missing field at the mapping and returns its value.
func (m *mapping) required(key, what string) *yaml.Node {
	v := m.vals[key]
	if v == nil {
		m.f.errorf(m.node, "%s: missing required field %q", what, key)
	}
	return v
}

// str returns a string field; ok is false when absent or wrong (reported).
func (m *mapping) str(key, what string, required bool) (string, *yaml.Node, bool) {
	var v *yaml.Node
	if required {
		v = m.required(key, what)
	} else {
		v = m.vals[key]
	}
	if v == nil {
		return "", nil, false
	}
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
		m.f.errorf(v, "%s: %s must be a string, got %s", what, key, kindName(v))
		return "", v, false
	}
	if !utf8.ValidString(v.Value) {
		m.f.errorf(v, "%s: %s is not valid UTF-8", what, key)
		return "", v, false
	}
	return v.Value, v, true
}

// number returns a numeric field (integer or float, finite).
func (m *mapping) number(key, what string, required bool) (float64, *yaml.Node, bool) {
	var v *yaml.Node
	if required {
		v = m.required(key, what)
	} else {
		v = m.vals[key]
	}
	if v == nil {
		return 0, nil, false
	}
	var x float64
	if v.Kind != yaml.ScalarNode || (v.ShortTag() != "!!int" && v.ShortTag() != "!!float") || v.Decode(&x) != nil {
		m.f.errorf(v, "%s: %s must be a number, got %s", what, key, kindName(v))
		return 0, v, false
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		m.f.errorf(v, "%s: %s must be a finite number", what, key)
		return 0, v, false
	}
	return x, v, true
}

// integer returns an integer field.
func (m *mapping) integer(key, what string, required bool) (int, *yaml.Node, bool) {
	x, v, ok := m.number(key, what, required)
	if !ok {
		return 0, v, false
	}
	if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
		m.f.errorf(v, "%s: %s must be a whole number, got %s", what, key, v.Value)
		return 0, v, false
	}
	return int(x), v, true
}

// boolean returns a boolean field.
func (m *mapping) boolean(key, what string) (bool, *yaml.Node, bool) {
	v := m.vals[key]
	if v == nil {
		return false, nil, false
	}
	var b bool
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" || v.Decode(&b) != nil {
		m.f.errorf(v, "%s: %s must be true or false, got %s", what, key, kindName(v))
		return false, v, false
	}
	return b, v, true
}

// duration returns a duration field within [lo, hi].
func (m *mapping) duration(key, what string, required bool, lo, hi time.Duration) (time.Duration, *yaml.Node, bool) {
	var v *yaml.Node
	if required {
		v = m.required(key, what)
	} else {
		v = m.vals[key]
	}
	if v == nil {
		return 0, nil, false
	}
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
		m.f.errorf(v, "%s: %s must be a duration such as 1h or 30d, got %s", what, key, kindName(v))
		return 0, v, false
	}
	d, err := ParseDuration(v.Value)
	if err != nil {
		m.f.errorf(v, "%s: %s %q: %v", what, key, v.Value, err)
		return 0, v, false
	}
	if d < lo || d > hi {
		m.f.errorf(v, "%s: %s %s is out of bounds [%s, %s]", what, key, v.Value, FormatDuration(lo), FormatDuration(hi))
		return d, v, false
	}
	return d, v, true
}

// strings returns a list-of-strings field.
func (m *mapping) strings(key, what string, maxItems int) ([]string, *yaml.Node, bool) {
	v := m.vals[key]
	if v == nil {
		return nil, nil, false
	}
	if v.Kind != yaml.SequenceNode {
		m.f.errorf(v, "%s: %s must be a list of strings, got %s", what, key, kindName(v))
		return nil, v, false
	}
	if len(v.Content) > maxItems {
		m.f.errorf(v, "%s: %s has %d items, the limit is %d", what, key, len(v.Content), maxItems)
		return nil, v, false
	}
	out := make([]string, 0, len(v.Content))
	ok := true
	for _, it := range v.Content {
		if it.Kind != yaml.ScalarNode || it.ShortTag() != "!!str" || !utf8.ValidString(it.Value) {
			m.f.errorf(it, "%s: %s: items must be strings, got %s", what, key, kindName(it))
			ok = false
			continue
		}
		out = append(out, it.Value)
	}
	return out, v, ok
}

// exprPos maps a rune offset of a scalar's value to its place in the file:
// it walks the raw text from the scalar's start and matches the value's
// runes in order, skipping what the YAML syntax adds (quotes, escapes'
// backslashes, indentation, the header line of a block scalar).
func (f *file) exprPos(n *yaml.Node, offset int) Pos {
	start := f.pos(n)
	if n.Line < 1 || n.Column < 1 {
		return start
	}
	// Byte offset of the scalar's start.
	i, line := 0, 1
	for line < n.Line {
		j := bytes.IndexByte(f.src[i:], '\n')
		if j < 0 {
			return start
		}
		i += j + 1
		line++
	}
	for c := 1; c < n.Column && i < len(f.src); c++ {
		_, size := utf8.DecodeRune(f.src[i:])
		i += size
	}
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		j := bytes.IndexByte(f.src[i:], '\n')
		if j < 0 {
			return start
		}
		i += j + 1
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		i++
	}
	idx := 0
	for _, r := range n.Value {
		j := i
		for j < len(f.src) {
			rr, size := utf8.DecodeRune(f.src[j:])
			if rr == r || (r == ' ' && rr == '\n') {
				break
			}
			j += size
		}
		if j >= len(f.src) {
			return start
		}
		if idx == offset {
			i = j
			break
		}
		_, size := utf8.DecodeRune(f.src[j:])
		i = j + size
		idx++
	}
	return f.offsetPos(i)
}

// offsetPos converts a byte offset of the file into a position.
func (f *file) offsetPos(off int) Pos {
	off = min(off, len(f.src))
	lineStart := bytes.LastIndexByte(f.src[:off], '\n') + 1
	line := bytes.Count(f.src[:off], []byte{'\n'}) + 1
	return Pos{File: f.name, Line: line, Column: utf8.RuneCount(f.src[lineStart:off]) + 1}
}
