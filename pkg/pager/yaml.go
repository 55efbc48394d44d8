package pager

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file holds a strict parser for the subset of YAML 1.2 a routing
// policy needs: block mappings and sequences, one-line flow collections,
// plain, single- and double-quoted scalars and comments. It keeps the line
// of every node so that validation can name it. Anything else (anchors,
// aliases, tags, block scalars, multi-line scalars, several documents) is
// rejected with the line, never guessed at. (gopkg.in/yaml.v3 is not a
// dependency of this module; when it becomes one, decodePolicy can take a
// yaml.Node tree instead, which carries the same information.)

// maxPolicyBytes bounds a policy file.
const maxPolicyBytes = 1 << 20

// maxYAMLDepth bounds nesting, so hostile input cannot exhaust the stack.
const maxYAMLDepth = 32

type nodeKind int

const (
	scalarNode nodeKind = iota + 1
	mapNode
	seqNode
)

func (k nodeKind) String() string {
	switch k {
	case scalarNode:
		return "a scalar"
	case mapNode:
		return "a mapping"
	case seqNode:
		return "a list"
	}
	return "nothing"
}

// node is one parsed YAML node.
type node struct {
	kind   nodeKind
	line   int
	value  string // scalarNode
	quoted bool   // scalarNode written in quotes
	null   bool   // scalarNode with no value at all
	keys   []*node
	vals   []*node
	items  []*node
}

// get returns the value of key in a mapping node.
func (n *node) get(key string) *node {
	for i, k := range n.keys {
		if k.value == key {
			return n.vals[i]
		}
	}
	return nil
}

// yamlError is a syntax error at a line.
type yamlError struct {
	line int
	msg  string
}

func (e *yamlError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

type yline struct {
	no     int // 1-based
	indent int
	text   string // without indentation and comment, right-trimmed
}

type yparser struct {
	lines []yline
	i     int
}

// parseYAML parses one YAML document of the supported subset. An empty
// document yields a null scalar.
func parseYAML(src []byte) (*node, error) {
	if len(src) > maxPolicyBytes {
		return nil, &yamlError{1, fmt.Sprintf("document of %d bytes exceeds %d", len(src), maxPolicyBytes)}
	}
	if !utf8.Valid(src) {
		return nil, &yamlError{firstInvalidLine(src), "invalid UTF-8"}
	}
	p := &yparser{}
	if err := p.split(string(src)); err != nil {
		return nil, err
	}
	if len(p.lines) == 0 {
		return &node{kind: scalarNode, line: 1, null: true}, nil
	}
	if p.lines[0].indent != 0 {
		return nil, &yamlError{p.lines[0].no, "the document must start at column 1"}
	}
	n, err := p.block(0, 0)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.lines) {
		return nil, &yamlError{p.lines[p.i].no, "unexpected content (check the indentation)"}
	}
	return n, nil
}

func firstInvalidLine(src []byte) int {
	line := 1
	for len(src) > 0 {
		r, size := utf8.DecodeRune(src)
		if r == utf8.RuneError && size <= 1 {
			return line
		}
		if r == '\n' {
			line++
		}
		src = src[size:]
	}
	return line
}

// split turns the source into significant lines: comments and blank lines
// dropped, indentation measured, a leading "---" accepted.
func (p *yparser) split(src string) error {
	src = strings.TrimPrefix(src, "\uFEFF")
	seenContent := false
	for no, raw := range strings.Split(src, "\n") {
		no++
		raw = strings.TrimSuffix(raw, "\r")
		indent := 0
		for indent < len(raw) && raw[indent] == ' ' {
			indent++
		}
		rest := raw[indent:]
		if strings.HasPrefix(rest, "\t") {
			return &yamlError{no, "tab in indentation (YAML indents with spaces)"}
		}
		text, err := stripComment(rest, no)
		if err != nil {
			return err
		}
		if text == "" {
			continue
		}
		if indent == 0 && (text == "---" || strings.HasPrefix(text, "--- ")) {
			if seenContent {
				return &yamlError{no, "only one YAML document is allowed"}
			}
			if strings.TrimSpace(text[3:]) != "" {
				return &yamlError{no, "content after --- is not supported"}
			}
			seenContent = true
			continue
		}
		if indent == 0 && text == "..." {
			return &yamlError{no, "document end marker ... is not supported"}
		}
		if indent == 0 && strings.HasPrefix(text, "%") {
			return &yamlError{no, "YAML directives are not supported"}
		}
		seenContent = true
		p.lines = append(p.lines, yline{no: no, indent: indent, text: text})
	}
	return nil
}

// stripComment removes a trailing comment (a # at the start or after a
// space, outside quotes) and trailing spaces.
func stripComment(s string, no int) (string, error) {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '"':
			if c == '\\' {
				i++
			} else if c == '"' {
				quote = 0
			}
		case quote == '\'':
			if c == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					i++
				} else {
					quote = 0
				}
			}
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return strings.TrimRight(s[:i], " \t"), nil
		case (c == '"' || c == '\'') && (i == 0 || strings.IndexByte(" \t[{,:-", s[i-1]) >= 0):
			quote = c
		}
	}
	if quote != 0 {
		return "", &yamlError{no, "unterminated quoted string (quoted strings must close on the same line)"}
	}
	return strings.TrimRight(s, " \t"), nil
}

// block parses the node starting at the current line, whose indentation is
// indent.
func (p *yparser) block(indent, depth int) (*node, error) {
	l := p.lines[p.i]
	if depth > maxYAMLDepth {
		return nil, &yamlError{l.no, fmt.Sprintf("nesting deeper than %d levels", maxYAMLDepth)}
	}
	if isSeqItem(l.text) {
		return p.sequence(indent, depth)
	}
	if _, _, ok, err := splitKey(l.text, l.no); err != nil {
		return nil, err
	} else if ok {
		return p.mapping(indent, depth)
	}
	// A lone scalar or flow collection.
	p.i++
	n, err := inlineValue(l.text, l.no, depth)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.lines) && p.lines[p.i].indent >= indent && !(p.lines[p.i].indent == indent && isSeqItem(p.lines[p.i].text)) {
		return nil, &yamlError{p.lines[p.i].no, "multi-line scalars are not supported (quote the value on one line)"}
	}
	return n, nil
}

func isSeqItem(text string) bool { return text == "-" || strings.HasPrefix(text, "- ") }

func (p *yparser) sequence(indent, depth int) (*node, error) {
	seq := &node{kind: seqNode, line: p.lines[p.i].no}
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		if l.indent < indent {
			break
		}
		if l.indent > indent {
			return nil, &yamlError{l.no, "unexpected indentation in a list"}
		}
		if !isSeqItem(l.text) {
			break
		}
		rest := strings.TrimLeft(l.text[1:], " ")
		if rest == "" {
			p.i++
			if p.i >= len(p.lines) || p.lines[p.i].indent <= indent {
				seq.items = append(seq.items, &node{kind: scalarNode, line: l.no, null: true})
				continue
			}
			item, err := p.block(p.lines[p.i].indent, depth+1)
			if err != nil {
				return nil, err
			}
			seq.items = append(seq.items, item)
			continue
		}
		// "- x": the item starts on this line, as if x were a line of its
		// own indented to x's column.
		col := indent + len(l.text) - len(rest)
		p.lines[p.i] = yline{no: l.no, indent: col, text: rest}
		item, err := p.block(col, depth+1)
		if err != nil {
			return nil, err
		}
		seq.items = append(seq.items, item)
	}
	return seq, nil
}

func (p *yparser) mapping(indent, depth int) (*node, error) {
	m := &node{kind: mapNode, line: p.lines[p.i].no}
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		if l.indent < indent {
			break
		}
		if l.indent > indent {
			return nil, &yamlError{l.no, "unexpected indentation in a mapping"}
		}
		if isSeqItem(l.text) {
			return nil, &yamlError{l.no, "a list item where a key was expected"}
		}
		key, rest, ok, err := splitKey(l.text, l.no)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &yamlError{l.no, "expected \"key: value\""}
		}
		if m.get(key.value) != nil {
			return nil, &yamlError{l.no, fmt.Sprintf("duplicate key %q", key.value)}
		}
		p.i++
		var val *node
		switch {
		case rest != "":
			val, err = inlineValue(rest, l.no, depth+1)
			if err != nil {
				return nil, err
			}
			if p.i < len(p.lines) && p.lines[p.i].indent > indent {
				return nil, &yamlError{p.lines[p.i].no, "unexpected indentation (a key with an inline value has no nested block)"}
			}
		case p.i < len(p.lines) && p.lines[p.i].indent > indent:
			val, err = p.block(p.lines[p.i].indent, depth+1)
		case p.i < len(p.lines) && p.lines[p.i].indent == indent && isSeqItem(p.lines[p.i].text):
			val, err = p.sequence(indent, depth+1)
		default:
			val = &node{kind: scalarNode, line: l.no, null: true}
		}
		if err != nil {
			return nil, err
		}
		m.keys = append(m.keys, key)
		m.vals = append(m.vals, val)
	}
	return m, nil
}

// splitKey recognises "key: rest" (or "key:" at the end of the line). ok is
// false when the text is no mapping entry.
func splitKey(text string, no int) (key *node, rest string, ok bool, err error) {
	if text == "" {
		return nil, "", false, nil
	}
	switch text[0] {
	case '"', '\'':
		v, n, err := quotedScalar(text, no)
		if err != nil {
			return nil, "", false, err
		}
		after := text[n:]
		if !strings.HasPrefix(after, ":") || (len(after) > 1 && after[1] != ' ') {
			return nil, "", false, nil
		}
		return &node{kind: scalarNode, line: no, value: v, quoted: true}, strings.TrimLeft(after[1:], " "), true, nil
	case '[', '{':
		return nil, "", false, nil
	case '?':
		if text == "?" || strings.HasPrefix(text, "? ") {
			return nil, "", false, &yamlError{no, "complex keys (?) are not supported"}
		}
	}
	for i := 0; i < len(text); i++ {
		if text[i] == ':' && (i+1 == len(text) || text[i+1] == ' ') {
			k := strings.TrimRight(text[:i], " ")
			if k == "" {
				return nil, "", false, &yamlError{no, "empty key"}
			}
			if err := checkPlain(k, no); err != nil {
				return nil, "", false, err
			}
			return &node{kind: scalarNode, line: no, value: k}, strings.TrimLeft(text[i+1:], " "), true, nil
		}
	}
	return nil, "", false, nil
}

// inlineValue parses what follows "key: " or "- " on one line.
func inlineValue(s string, no, depth int) (*node, error) {
	switch s[0] {
	case '[', '{':
		n, rest, err := flowNode(s, no, depth)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(rest) != "" {
			return nil, &yamlError{no, fmt.Sprintf("unexpected %q after a flow collection", rest)}
		}
		return n, nil
	case '"', '\'':
		v, n, err := quotedScalar(s, no)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(s[n:]) != "" {
			return nil, &yamlError{no, fmt.Sprintf("unexpected %q after a quoted string", strings.TrimSpace(s[n:]))}
		}
		return &node{kind: scalarNode, line: no, value: v, quoted: true}, nil
	case '|', '>':
		return nil, &yamlError{no, "block scalars (| and >) are not supported (quote the value on one line)"}
	}
	if err := checkPlain(s, no); err != nil {
		return nil, err
	}
	if i := strings.Index(s, ": "); i >= 0 || strings.HasSuffix(s, ":") {
		return nil, &yamlError{no, "a mapping cannot start on the same line as its key (put it on the next line, or quote the value)"}
	}
	return plainScalar(s, no), nil
}

func plainScalar(s string, no int) *node {
	if s == "~" || s == "null" || s == "Null" || s == "NULL" {
		return &node{kind: scalarNode, line: no, null: true}
	}
	return &node{kind: scalarNode, line: no, value: s}
}

// checkPlain rejects plain scalars starting with an indicator this parser
// does not support.
func checkPlain(s string, no int) error {
	switch s[0] {
	case '&':
		return &yamlError{no, "anchors (&) are not supported"}
	case '*':
		return &yamlError{no, "aliases (*) are not supported"}
	case '!':
		return &yamlError{no, "tags (!) are not supported"}
	case '@', '`', '%':
		return &yamlError{no, fmt.Sprintf("a plain value cannot start with %q (quote it)", s[0])}
	case ']', '}', ',':
		return &yamlError{no, fmt.Sprintf("unexpected %q", s[0])}
	}
	return nil
}

// quotedScalar parses a quoted scalar at the start of s and returns its
// value and the number of bytes it took.
func quotedScalar(s string, no int) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		if q == '\'' {
			if c == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				return b.String(), i + 1, nil
			}
			b.WriteByte(c)
			continue
		}
		switch c {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 >= len(s) {
				return "", 0, &yamlError{no, "unterminated escape in a double-quoted string"}
			}
			i++
			switch e := s[i]; e {
			case '\\', '"', '/':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			case ' ':
				b.WriteByte(' ')
			case 'x', 'u', 'U':
				n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
				if i+n >= len(s) {
					return "", 0, &yamlError{no, fmt.Sprintf("short \\%c escape", e)}
				}
				v, err := strconv.ParseUint(s[i+1:i+1+n], 16, 32)
				if err != nil || !utf8.ValidRune(rune(v)) {
					return "", 0, &yamlError{no, fmt.Sprintf("bad \\%c escape", e)}
				}
				b.WriteRune(rune(v))
				i += n
			default:
				return "", 0, &yamlError{no, fmt.Sprintf("unknown escape \\%c", e)}
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, &yamlError{no, "unterminated quoted string (quoted strings must close on the same line)"}
}

// flowNode parses a flow collection at the start of s; rest is what follows.
func flowNode(s string, no, depth int) (n *node, rest string, err error) {
	if depth > maxYAMLDepth {
		return nil, "", &yamlError{no, fmt.Sprintf("nesting deeper than %d levels", maxYAMLDepth)}
	}
	open := s[0]
	closing := byte(']')
	n = &node{kind: seqNode, line: no}
	if open == '{' {
		closing = '}'
		n.kind = mapNode
	}
	s = strings.TrimLeft(s[1:], " ")
	if strings.HasPrefix(s, string(closing)) {
		return n, s[1:], nil
	}
	for {
		if s == "" {
			return nil, "", &yamlError{no, fmt.Sprintf("flow collection not closed with %q on the same line", closing)}
		}
		var item *node
		item, s, err = flowScalarOrNode(s, no, depth, n.kind == mapNode)
		if err != nil {
			return nil, "", err
		}
		s = strings.TrimLeft(s, " ")
		if n.kind == mapNode {
			if item.kind != scalarNode || item.null {
				return nil, "", &yamlError{no, "flow mapping keys must be scalars"}
			}
			if !strings.HasPrefix(s, ":") {
				return nil, "", &yamlError{no, fmt.Sprintf("expected ':' after key %q", item.value)}
			}
			if n.get(item.value) != nil {
				return nil, "", &yamlError{no, fmt.Sprintf("duplicate key %q", item.value)}
			}
			s = strings.TrimLeft(s[1:], " ")
			var val *node
			if s != "" && (s[0] == ',' || s[0] == '}') {
				val = &node{kind: scalarNode, line: no, null: true}
			} else {
				val, s, err = flowScalarOrNode(s, no, depth, false)
				if err != nil {
					return nil, "", err
				}
				s = strings.TrimLeft(s, " ")
			}
			n.keys = append(n.keys, item)
			n.vals = append(n.vals, val)
		} else {
			n.items = append(n.items, item)
		}
		switch {
		case strings.HasPrefix(s, ","):
			s = strings.TrimLeft(s[1:], " ")
			if strings.HasPrefix(s, string(closing)) {
				return n, s[1:], nil // trailing comma
			}
		case strings.HasPrefix(s, string(closing)):
			return n, s[1:], nil
		case s == "":
			return nil, "", &yamlError{no, fmt.Sprintf("flow collection not closed with %q on the same line", closing)}
		default:
			return nil, "", &yamlError{no, fmt.Sprintf("unexpected %q in a flow collection", s)}
		}
	}
}

func flowScalarOrNode(s string, no, depth int, isKey bool) (*node, string, error) {
	if s == "" {
		return nil, "", &yamlError{no, "flow collection not closed on the same line"}
	}
	switch s[0] {
	case '[', '{':
		return flowNode(s, no, depth+1)
	case '"', '\'':
		v, n, err := quotedScalar(s, no)
		if err != nil {
			return nil, "", err
		}
		return &node{kind: scalarNode, line: no, value: v, quoted: true}, s[n:], nil
	}
	if err := checkPlain(s, no); err != nil {
		return nil, "", err
	}
	end := len(s)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ',' || c == ']' || c == '}' || c == '[' || c == '{' {
			end = i
			break
		}
		if c == ':' && (isKey || i+1 == len(s) || s[i+1] == ' ') {
			end = i
			break
		}
	}
	v := strings.TrimRight(s[:end], " ")
	if v == "" {
		return nil, "", &yamlError{no, "empty value in a flow collection"}
	}
	return plainScalar(v, no), s[end:], nil
}
