package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	gojson "github.com/goccy/go-json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-multierror"
)

// Default and maximum limits.
const (
	// DefaultMaxEventBytes is the default size limit of one raw event.
	DefaultMaxEventBytes = 1 << 20
	// DefaultMaxTextBytes is the default size limit of one content text
	// after normalization.
	DefaultMaxTextBytes = 256 << 10
	// MaxEventBytesCeiling is the largest MaxEventBytes NewDecoder accepts.
	MaxEventBytesCeiling = 4 << 20
	// MaxEnvelopeBytes is the size limit of a marshaled Event, applied by
	// MarshalEvent and UnmarshalEvent. Normalization can grow an event (the
	// envelope repeats a few fields; U+2028 and U+2029 are written as 6-byte
	// escapes), so it is twice the ceiling of a raw event plus room for the
	// envelope. The dlp.events topic's max.message.bytes must allow it.
	MaxEnvelopeBytes = 2*MaxEventBytesCeiling + 64<<10
)

// Limits bounds the size of what the Decoder accepts and produces. A zero
// field means its default.
type Limits struct {
	// MaxEventBytes is the largest raw event accepted; a longer one is
	// rejected with reason "oversized" before it is decoded. Default
	// DefaultMaxEventBytes, at most MaxEventBytesCeiling.
	MaxEventBytes int
	// MaxTextBytes caps each content text (the body and every attachment)
	// during normalization: a longer text is cut at a rune boundary and its
	// Truncated flag set. Default DefaultMaxTextBytes.
	MaxTextBytes int
}

func (l Limits) withDefaults() Limits {
	if l.MaxEventBytes == 0 {
		l.MaxEventBytes = DefaultMaxEventBytes
	}
	if l.MaxTextBytes == 0 {
		l.MaxTextBytes = DefaultMaxTextBytes
	}
	return l
}

// Reasons of a DecodeError: short, stable and few, fit for a dead-letter
// header and a metric label.
const (
	ReasonOversized    = "oversized"
	ReasonInvalidJSON  = "invalid_json"
	ReasonDuplicateKey = "duplicate_key"
	ReasonSchema       = "schema"
	ReasonSemantic     = "semantic"
	ReasonUnknownKind  = "unknown_kind"
)

// DecodeError is the error of every decoding function of this package. It
// carries all the problems found, not just the first. Its text never
// contains a field value.
type DecodeError struct {
	// Reason is the machine reason of the first failing step: one of the
	// Reason constants.
	Reason string
	// Errs holds every problem found, usually as *FieldError.
	Errs *multierror.Error
}

// Error lists the reason and every problem on one line.
func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString("event: ")
	b.WriteString(e.Reason)
	errs := e.Errs.WrappedErrors()
	b.WriteString(": ")
	b.WriteString(strconv.Itoa(len(errs)))
	if len(errs) == 1 {
		b.WriteString(" error: ")
	} else {
		b.WriteString(" errors: ")
	}
	for i, err := range errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap gives access to the individual errors (errors.As finds a
// *FieldError among them).
func (e *DecodeError) Unwrap() []error { return e.Errs.WrappedErrors() }

// Len is the number of problems found.
func (e *DecodeError) Len() int { return e.Errs.Len() }

// FieldError is one problem at one place of a document.
type FieldError struct {
	// Pointer is the RFC 6901 JSON pointer of the offending value ("" for
	// the whole document). Segments that are not property names of the
	// contract are replaced by "<unknown>".
	Pointer string
	// Rule is the violated rule: a JSON Schema keyword (type, required,
	// additionalProperties, format, ...), or "duplicate_key", "semantic",
	// "syntax", "size", "depth", "number", "decode".
	Rule string
	// Detail explains, without quoting the value.
	Detail string

	// covers are the pointers of the values a schema error is about.
	covers []string
}

// Error renders "POINTER: RULE: DETAIL".
func (e *FieldError) Error() string {
	p := e.Pointer
	if p == "" {
		p = "(root)"
	}
	if e.Detail == "" {
		return p + ": " + e.Rule
	}
	return p + ": " + e.Rule + ": " + e.Detail
}

func newDecodeError(reason string, errs ...error) *DecodeError {
	me := &multierror.Error{}
	me = multierror.Append(me, errs...)
	return &DecodeError{Reason: reason, Errs: me}
}

// Decoder decodes and validates raw events. It holds the compiled schemas
// and the limits and is safe for concurrent use.
type Decoder struct {
	limits Limits
	s      *compiledSchemas
}

// NewDecoder compiles the embedded schemas (once per process) and returns a
// Decoder with the given limits (zero fields take their defaults).
func NewDecoder(l Limits) (*Decoder, error) {
	l = l.withDefaults()
	if l.MaxEventBytes < 0 || l.MaxEventBytes > MaxEventBytesCeiling {
		return nil, fmt.Errorf("event: MaxEventBytes %d out of range [1, %d]", l.MaxEventBytes, MaxEventBytesCeiling)
	}
	if l.MaxTextBytes < 0 {
		return nil, fmt.Errorf("event: negative MaxTextBytes %d", l.MaxTextBytes)
	}
	s, err := loadSchemas()
	if err != nil {
		return nil, err
	}
	return &Decoder{limits: l, s: s}, nil
}

// Limits returns the Decoder's limits with defaults filled in.
func (d *Decoder) Limits() Limits { return d.limits }

// DecodeCRMAccess strictly decodes and validates one raw CRM-access event.
// The result is not normalized (see DecodeRaw). Quality reports what was
// repaired, also when an error is returned.
func (d *Decoder) DecodeCRMAccess(raw []byte) (*CRMAccess, Quality, error) {
	var v CRMAccess
	q, err := d.decode(KindCRMAccess, raw, &v)
	if err != nil {
		return nil, q, err
	}
	return &v, q, nil
}

// DecodeOutbound strictly decodes and validates one raw outbound event.
// The result is not normalized (see DecodeRaw). Quality reports what was
// repaired, also when an error is returned.
func (d *Decoder) DecodeOutbound(raw []byte) (*Outbound, Quality, error) {
	var v Outbound
	q, err := d.decode(KindOutbound, raw, &v)
	if err != nil {
		return nil, q, err
	}
	return &v, q, nil
}

// DecodeRaw decodes, validates and normalizes one raw event of the given
// kind, read from src, into the envelope that goes on dlp.events; now
// becomes its IngestedAt. Every error is a *DecodeError.
func (d *Decoder) DecodeRaw(kind Kind, raw []byte, src Source, now time.Time) (*Event, error) {
	e := &Event{Source: src}
	var err error
	switch kind {
	case KindCRMAccess:
		e.CRM, e.Quality, err = d.DecodeCRMAccess(raw)
	case KindOutbound:
		e.Outbound, e.Quality, err = d.DecodeOutbound(raw)
	default:
		return nil, newDecodeError(ReasonUnknownKind, &FieldError{Rule: "kind", Detail: "not crm_access or outbound"})
	}
	if err != nil {
		return nil, err
	}
	if err := Normalize(e, now, d.limits); err != nil {
		return nil, err
	}
	return e, nil
}

// decode runs steps 1 to 5 of the package doc for one kind into v.
func (d *Decoder) decode(kind Kind, raw []byte, v any) (Quality, error) {
	var q Quality
	if len(raw) > d.limits.MaxEventBytes {
		return q, newDecodeError(ReasonOversized, &FieldError{Rule: "size",
			Detail: fmt.Sprintf("%d bytes exceed the limit of %d", len(raw), d.limits.MaxEventBytes)})
	}
	clean, removed, err := sanitizeUTF8(raw)
	q.InvalidUTF8Bytes = removed
	if err != nil {
		return q, newDecodeError(ReasonInvalidJSON, err)
	}
	tree, timeLit, dups, err := d.s.parseDoc(clean)
	if err != nil {
		return q, newDecodeError(ReasonInvalidJSON, err)
	}
	if len(dups) > 0 {
		return q, newDecodeError(ReasonDuplicateKey, dups...)
	}
	var schemaErrs []*FieldError
	fast := d.s.fastValid(kind, tree) // see fastvalid.go
	if !fast {
		schemaErrs = d.s.validate(d.s.schemaFor(kind), schemaTree(tree))
	}
	var semErrs []*FieldError
	if typedErr := typedDecode(clean, tree, timeLit, v, fast); typedErr != nil {
		if len(schemaErrs) == 0 {
			// The schema accepted what the Go type cannot hold (1.0 for an
			// integer, a leap second): report it as a schema error.
			schemaErrs = append(schemaErrs, typedDecodeError(typedErr))
		}
	} else {
		switch v := v.(type) {
		case *CRMAccess:
			semErrs = checkCRMAccess(v)
		case *Outbound:
			semErrs = checkOutbound(v)
		}
		semErrs = dropReported(semErrs, schemaErrs)
	}
	if len(schemaErrs) == 0 && len(semErrs) == 0 {
		return q, nil
	}
	reason := ReasonSemantic
	if len(schemaErrs) > 0 {
		reason = ReasonSchema
	}
	all := make([]error, 0, len(schemaErrs)+len(semErrs))
	for _, e := range schemaErrs {
		all = append(all, e)
	}
	for _, e := range semErrs {
		all = append(all, e)
	}
	return q, newDecodeError(reason, all...)
}

// typedDecode decodes a document into the Go type v. A document the fast
// path found valid is built from its parsed tree without reading the bytes
// again (fromtree.go; on such documents it gives what encoding/json gives,
// which TestTypedDecodeAgrees and FuzzFastValid check); every other
// document, and one the tree builder refuses, is decoded with
// encoding/json, whose errors typedDecodeError understands. timeLit is the
// raw literal of the top-level "time" value (parseDoc).
func typedDecode(doc []byte, tree any, timeLit []byte, v any, fast bool) error {
	if fast && typedFromTree(tree, timeLit, v) == nil {
		return nil
	}
	switch v := v.(type) {
	case *CRMAccess:
		*v = CRMAccess{}
	case *Outbound:
		*v = Outbound{}
	}
	return json.Unmarshal(doc, v)
}

// typedDecodeError turns an encoding/json error into a FieldError without
// its text, which may quote the value.
func typedDecodeError(err error) *FieldError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		ptr := ""
		if te.Field != "" {
			ptr = "/" + strings.ReplaceAll(te.Field, ".", "/")
		}
		return &FieldError{Pointer: ptr, Rule: "type", Detail: "does not fit the Go type " + te.Type.String()}
	}
	var pe *time.ParseError
	if errors.As(err, &pe) {
		return &FieldError{Pointer: "/time", Rule: "format", Detail: "not a time Go can represent"}
	}
	return &FieldError{Rule: "decode", Detail: "does not fit the Go type"}
}

// --- step 2: invalid UTF-8 -------------------------------------------------

// sanitizeUTF8 removes invalid UTF-8 bytes and escaped lone surrogates from
// string literals; see the package doc. It returns raw itself when there is
// nothing to remove.
func sanitizeUTF8(raw []byte) ([]byte, int, error) {
	if utf8.Valid(raw) && !mayHaveSurrogateEscape(raw) {
		return raw, 0, nil
	}
	out := make([]byte, 0, len(raw))
	removed := 0
	inString := false
	for i := 0; i < len(raw); {
		c := raw[i]
		if c < utf8.RuneSelf {
			switch {
			case !inString:
				if c == '"' {
					inString = true
				}
			case c == '"':
				inString = false
			case c == '\\':
				n, drop, err := escapeLen(raw, i)
				if err != nil {
					return nil, removed, err
				}
				if drop {
					removed++
				} else {
					out = append(out, raw[i:i+n]...)
				}
				i += n
				continue
			}
			out = append(out, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && size == 1 {
			if !inString {
				return nil, removed, &FieldError{Rule: "syntax", Detail: "invalid UTF-8 outside a string at offset " + strconv.Itoa(i)}
			}
			removed++
			i++
			continue
		}
		out = append(out, raw[i:i+size]...)
		i += size
	}
	if removed == 0 {
		// Only well-paired surrogate escapes: nothing to change.
		return raw, 0, nil
	}
	return out, removed, nil
}

// escapeLen measures the escape sequence at raw[i] == '\\' inside a string.
// drop says it is a lone surrogate to remove. An escape that is cut short or
// followed by a non-ASCII byte is an error: the document is not JSON, and
// removing a byte there could make it valid with another meaning.
func escapeLen(raw []byte, i int) (n int, drop bool, err error) {
	bad := &FieldError{Rule: "syntax", Detail: "invalid escape at offset " + strconv.Itoa(i)}
	if i+1 >= len(raw) {
		return 0, false, bad
	}
	if raw[i+1] != 'u' {
		if raw[i+1] >= utf8.RuneSelf {
			return 0, false, bad
		}
		return 2, false, nil
	}
	u, ok := hex4(raw, i+2)
	if !ok {
		return 0, false, bad
	}
	switch {
	case u >= 0xD800 && u < 0xDC00: // high surrogate: needs a low one next
		if i+11 < len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
			if lo, ok := hex4(raw, i+8); ok && lo >= 0xDC00 && lo < 0xE000 {
				return 12, false, nil
			}
		}
		return 6, true, nil
	case u >= 0xDC00 && u < 0xE000: // low surrogate without a high one
		return 6, true, nil
	}
	return 6, false, nil
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// mayHaveSurrogateEscape reports whether raw contains "\uD8".."\uDF" (any
// case). False positives (an escaped backslash before "u") only cost the
// slow path.
func mayHaveSurrogateEscape(raw []byte) bool {
	for {
		i := bytes.Index(raw, []byte(`\u`))
		if i < 0 || i+4 > len(raw) {
			return false
		}
		if (raw[i+2] == 'd' || raw[i+2] == 'D') && strings.IndexByte("89abcdefABCDEF", raw[i+3]) >= 0 {
			return true
		}
		raw = raw[i+2:]
	}
}

// --- step 3: tree and duplicate keys ----------------------------------------

const (
	maxDepth       = 32
	maxNumberBytes = 64
	maxExpDigits   = 3
)

type pathSeg struct {
	key   string
	index int // -1 for an object key
}

// treeParser is a single-pass JSON parser that builds the representation of
// jsonschema.UnmarshalJSON (map[string]any, []any, string, json.Number,
// bool, nil), except that an object is an object (its members in order,
// cheaper to build than a map; schemaTree converts), and records duplicate
// keys, which encoding/json cannot report.
// It follows RFC 8259 exactly as encoding/json does (FuzzParseTree checks
// it against encoding/json); strings with escapes are unescaped by
// encoding/json itself. Its input is valid UTF-8 (sanitizeUTF8 ran first).
//
// It replaces a json.Decoder.Token walk, which did the same at ~3 times the
// cost (Token allocates for every token).
type treeParser struct {
	data   []byte
	i      int
	intern map[string]string // property names of the contract
	path   []pathSeg
	dups   []error
	// members is the stack of the members of the objects being parsed.
	members []member
	// timeLit is the raw literal (quotes and escapes included) of the
	// first string value of key "time" in the top-level object.
	timeLit []byte
}

// parseTree parses a whole document into jsonschema.UnmarshalJSON's
// representation and reports duplicate keys (all of them). A syntax error
// is returned as err.
func (s *compiledSchemas) parseTree(doc []byte) (any, []error, error) {
	v, _, dups, err := s.parseDoc(doc)
	return schemaTree(v), dups, err
}

// parseDoc parses a whole document into the parser's own tree (objects as
// object, see schemaTree), reports duplicate keys and returns the raw
// literal of the top-level "time" string (nil if there is none), which
// time.Time decodes from as encoding/json hands it over.
func (s *compiledSchemas) parseDoc(doc []byte) (tree any, timeLit []byte, dups []error, err error) {
	p := treeParser{data: doc, intern: s.intern, members: make([]member, 0, 16)}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, nil, nil, err
	}
	p.skipSpace()
	if p.i != len(p.data) {
		return nil, nil, nil, &FieldError{Rule: "syntax", Detail: "data after the top-level value at offset " + strconv.Itoa(p.i)}
	}
	return v, p.timeLit, p.dups, nil
}

// object is a parsed JSON object: its members in document order, the
// first of duplicate keys only. Objects of the contract have at most a
// dozen members, for which a scan beats a map.
type object []member

type member struct {
	key string
	val any
}

// objectScanMax is the size from which the parser checks duplicate keys
// with a map rather than by scanning (a document may have many keys).
const objectScanMax = 16

func (o object) get(key string) (any, bool) {
	for _, mb := range o {
		if mb.key == key {
			return mb.val, true
		}
	}
	return nil, false
}

// has reports whether key is a member; index, when not nil, holds every
// key of o.
func (o object) has(key string, index map[string]struct{}) bool {
	if index != nil {
		_, ok := index[key]
		return ok
	}
	_, ok := o.get(key)
	return ok
}

// schemaTree converts a tree of parseDoc into jsonschema.UnmarshalJSON's
// representation (objects as map[string]any), for the compiled schema.
func schemaTree(v any) any {
	switch v := v.(type) {
	case object:
		m := make(map[string]any, len(v))
		for _, mb := range v {
			m[mb.key] = schemaTree(mb.val)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, x := range v {
			a[i] = schemaTree(x)
		}
		return a
	}
	return v
}

func (p *treeParser) skipSpace() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *treeParser) syntaxError() error {
	if p.i >= len(p.data) {
		return &FieldError{Pointer: p.pointer(), Rule: "syntax", Detail: "unexpected end of input"}
	}
	return &FieldError{Pointer: p.pointer(), Rule: "syntax", Detail: "invalid JSON at offset " + strconv.Itoa(p.i)}
}

func (p *treeParser) value(depth int) (any, error) {
	if p.i >= len(p.data) {
		return nil, p.syntaxError()
	}
	switch c := p.data[p.i]; {
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return nil, &FieldError{Pointer: p.pointer(), Rule: "depth", Detail: "nested deeper than " + strconv.Itoa(maxDepth)}
		}
		p.i++
		if c == '{' {
			return p.object(depth + 1)
		}
		return p.array(depth + 1)
	case c == '"':
		return p.string()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return p.literal("true", true)
	case c == 'f':
		return p.literal("false", false)
	case c == 'n':
		return p.literal("null", nil)
	}
	return nil, p.syntaxError()
}

func (p *treeParser) literal(lit string, v any) (any, error) {
	if !bytes.HasPrefix(p.data[p.i:], []byte(lit)) {
		return nil, p.syntaxError()
	}
	p.i += len(lit)
	return v, nil
}

// object parses after '{'.
func (p *treeParser) object(depth int) (any, error) {
	// Members are collected on the parser's stack (p.members[base:]; a
	// nested object pushes above them and pops before returning) and
	// copied into one exactly sized object at the end.
	base := len(p.members)
	var index map[string]struct{} // duplicate check of large objects
	p.skipSpace()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		return object{}, nil
	}
	for {
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			return nil, p.syntaxError()
		}
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return nil, p.syntaxError()
		}
		p.i++
		p.skipSpace()
		p.path = append(p.path, pathSeg{key: key, index: -1})
		start := p.i
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		if _, isStr := v.(string); isStr && depth == 1 && key == "time" && p.timeLit == nil {
			p.timeLit = p.data[start:p.i]
		}
		if object(p.members[base:]).has(key, index) {
			p.dups = append(p.dups, &FieldError{Pointer: p.pointer(), Rule: "duplicate_key", Detail: "key appears more than once"})
		} else {
			p.members = append(p.members, member{key, v})
			switch m := p.members[base:]; {
			case index != nil:
				index[key] = struct{}{}
			case len(m) > objectScanMax:
				index = make(map[string]struct{}, 2*len(m))
				for _, mb := range m {
					index[mb.key] = struct{}{}
				}
			}
		}
		p.path = p.path[:len(p.path)-1]
		p.skipSpace()
		if p.i >= len(p.data) {
			return nil, p.syntaxError()
		}
		switch p.data[p.i] {
		case ',':
			p.i++
			p.skipSpace()
		case '}':
			p.i++
			m := make(object, len(p.members)-base)
			copy(m, p.members[base:])
			clear(p.members[base:])
			p.members = p.members[:base]
			return m, nil
		default:
			return nil, p.syntaxError()
		}
	}
}

// array parses after '['.
func (p *treeParser) array(depth int) (any, error) {
	a := []any{}
	p.skipSpace()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.i++
		return a, nil
	}
	for {
		p.path = append(p.path, pathSeg{index: len(a)})
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		p.path = p.path[:len(p.path)-1]
		a = append(a, v)
		p.skipSpace()
		if p.i >= len(p.data) {
			return nil, p.syntaxError()
		}
		switch p.data[p.i] {
		case ',':
			p.i++
			p.skipSpace()
		case ']':
			p.i++
			return a, nil
		default:
			return nil, p.syntaxError()
		}
	}
}

// scanString finds the end of the string literal at p.i and reports
// whether it has escapes.
func (p *treeParser) scanString() (end int, escaped bool, err error) {
	for j := p.i + 1; j < len(p.data); j++ {
		switch c := p.data[j]; {
		case c == '"':
			return j + 1, escaped, nil
		case c == '\\':
			escaped = true
			j++ // the escaped byte; \uXXXX digits need no care
		case c < 0x20:
			p.i = j
			return 0, false, p.syntaxError()
		}
	}
	p.i = len(p.data)
	return 0, false, p.syntaxError()
}

func (p *treeParser) string() (any, error) {
	end, escaped, err := p.scanString()
	if err != nil {
		return nil, err
	}
	lit := p.data[p.i:end]
	if !escaped {
		p.i = end
		return string(lit[1 : len(lit)-1]), nil
	}
	var s string
	if json.Unmarshal(lit, &s) != nil {
		return nil, p.syntaxError()
	}
	p.i = end
	return s, nil
}

// key parses an object key, sharing the contract's property names instead
// of allocating them.
func (p *treeParser) key() (string, error) {
	end, escaped, err := p.scanString()
	if err != nil {
		return "", err
	}
	if !escaped {
		lit := p.data[p.i+1 : end-1]
		p.i = end
		if k, ok := p.intern[string(lit)]; ok {
			return k, nil
		}
		return string(lit), nil
	}
	v, err := p.string()
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and bounds it
// (see checkNumber).
func (p *treeParser) number() (any, error) {
	d, start := p.data, p.i
	j := start
	if d[j] == '-' {
		j++
	}
	digits := func() bool {
		k := j
		for j < len(d) && d[j] >= '0' && d[j] <= '9' {
			j++
		}
		return j > k
	}
	switch {
	case j < len(d) && d[j] == '0':
		j++
	case !digits():
		p.i = j
		return nil, p.syntaxError()
	}
	if j < len(d) && d[j] == '.' {
		j++
		if !digits() {
			p.i = j
			return nil, p.syntaxError()
		}
	}
	if j < len(d) && (d[j] == 'e' || d[j] == 'E') {
		j++
		if j < len(d) && (d[j] == '+' || d[j] == '-') {
			j++
		}
		if !digits() {
			p.i = j
			return nil, p.syntaxError()
		}
	}
	lit := string(d[start:j])
	if msg := checkNumber(lit); msg != "" {
		return nil, &FieldError{Pointer: p.pointer(), Rule: "number", Detail: msg}
	}
	p.i = j
	return json.Number(lit), nil
}

func (p *treeParser) pointer() string {
	if len(p.path) == 0 {
		return ""
	}
	segs := make([]string, len(p.path))
	for i, s := range p.path {
		if s.index >= 0 {
			segs[i] = strconv.Itoa(s.index)
		} else {
			segs[i] = s.key
		}
	}
	return safePointerMap(segs, p.intern)
}

// checkNumber bounds a number literal (already valid JSON) so that the
// validator's exact arithmetic stays cheap.
func checkNumber(s string) string {
	if len(s) > maxNumberBytes {
		return "literal longer than " + strconv.Itoa(maxNumberBytes) + " bytes"
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp := strings.TrimLeft(s[i+1:], "+-")
		exp = strings.TrimLeft(exp, "0")
		if len(exp) > maxExpDigits {
			return "exponent out of range"
		}
	}
	return ""
}

// safePointer renders an RFC 6901 pointer whose segments are either array
// indexes or property names of the contract; any other segment (input data,
// maybe PII) becomes "<unknown>".
func safePointer(segs []string, known map[string]struct{}) string {
	return safePointerFunc(segs, func(s string) bool { _, ok := known[s]; return ok })
}

func safePointerMap(segs []string, intern map[string]string) string {
	return safePointerFunc(segs, func(s string) bool { _, ok := intern[s]; return ok })
}

func safePointerFunc(segs []string, known func(string) bool) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		if known(s) || isIndex(s) {
			b.WriteString(strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1"))
		} else {
			b.WriteString("<unknown>")
		}
	}
	return b.String()
}

func isIndex(s string) bool {
	if s == "" || len(s) > 6 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// --- the envelope on dlp.events --------------------------------------------

// MarshalEvent writes a normalized Event as it goes on dlp.events: the
// versioned binary envelope of envelope_msgp.go or, for an Event that form
// cannot carry, compact JSON, HTML characters not escaped. It refuses an Event whose Kind does not
// match its payload and one larger than MaxEnvelopeBytes, which the
// detector's UnmarshalEvent would reject.
func MarshalEvent(e *Event) ([]byte, error) {
	if e == nil {
		return nil, newDecodeError(ReasonUnknownKind, &FieldError{Rule: "kind", Detail: "nil event"})
	}
	if err := checkEnvelope(e); err != nil {
		return nil, err
	}
	// The binary envelope (envelope_msgp.go); JSON only for an Event it
	// cannot carry.
	if b, ok := marshalBinary(e); ok {
		if len(b) > MaxEnvelopeBytes {
			return nil, newDecodeError(ReasonOversized, &FieldError{Rule: "size",
				Detail: fmt.Sprintf("%d bytes exceed the envelope limit of %d", len(b), MaxEnvelopeBytes)})
		}
		return b, nil
	}
	return marshalEventJSON(e)
}

// marshalEventJSON is MarshalEvent's JSON form (what it wrote before the
// binary envelope), for an Event already checked by checkEnvelope.
func marshalEventJSON(e *Event) ([]byte, error) {
	// goccy/go-json writes the same bytes as encoding/json ~3x faster
	// (TestMarshalEventAgrees); it is not trusted with what the two may
	// write differently: invalid UTF-8 and U+2028/U+2029, which
	// encoding/json escapes.
	var buf bytes.Buffer
	enc := gojson.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err == nil {
		b := buf.Bytes()
		b = b[:len(b)-1] // Encode's newline
		if len(b) <= MaxEnvelopeBytes && utf8.Valid(b) && !bytes.Contains(b, lineSep) && !bytes.Contains(b, paraSep) {
			return b, nil
		}
	}
	return marshalEventStd(e)
}

// U+2028 and U+2029 in UTF-8.
var lineSep, paraSep = []byte("\u2028"), []byte("\u2029")

// marshalEventStd is MarshalEvent with encoding/json.
func marshalEventStd(e *Event) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		// json errors from time.Time only name the problem, not the value,
		// but keep to the rule: no error text of a value.
		return nil, newDecodeError(ReasonSemantic, &FieldError{Rule: "encode", Detail: "event cannot be encoded (time out of range?)"})
	}
	b := buf.Bytes()
	b = b[:len(b)-1] // Encode's newline
	if len(b) > MaxEnvelopeBytes {
		return nil, newDecodeError(ReasonOversized, &FieldError{Rule: "size",
			Detail: fmt.Sprintf("%d bytes exceed the envelope limit of %d", len(b), MaxEnvelopeBytes)})
	}
	return b, nil
}

// UnmarshalEvent reads an Event written by MarshalEvent, binary or JSON
// (an older normalizer's). It is the detector's fast path: the input is
// trusted (it was validated and normalized by DecodeRaw), so it is decoded
// without schema validation; the size limit MaxEnvelopeBytes still applies,
// and an Event whose Kind does not match its payload is rejected.
func UnmarshalEvent(b []byte) (*Event, error) {
	if len(b) > MaxEnvelopeBytes {
		return nil, newDecodeError(ReasonOversized, &FieldError{Rule: "size",
			Detail: fmt.Sprintf("%d bytes exceed the envelope limit of %d", len(b), MaxEnvelopeBytes)})
	}
	if isBinaryEnvelope(b) {
		e, err := unmarshalBinary(b)
		if err != nil {
			return nil, err
		}
		if err := checkEnvelope(e); err != nil {
			return nil, err
		}
		return e, nil
	}
	// JSON, as written by a normalizer before the binary envelope.
	e := new(Event)
	// The envelope is trusted (the normalizer wrote it), so the detector's
	// hot path uses goccy/go-json, ~5x faster than encoding/json here. On
	// failure encoding/json decodes again only to produce a precise error
	// that names no field value.
	if fastUnmarshal(b, e) == nil {
		if err := checkEnvelope(e); err != nil {
			return nil, err
		}
		return e, nil
	}
	e = new(Event)
	if err := json.Unmarshal(b, e); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, newDecodeError(ReasonInvalidJSON, &FieldError{Rule: "syntax", Detail: "invalid JSON at offset " + strconv.FormatInt(se.Offset, 10)})
		}
		return nil, newDecodeError(ReasonInvalidJSON, typedDecodeError(err))
	}
	if err := checkEnvelope(e); err != nil {
		return nil, err
	}
	return e, nil
}

// fastUnmarshal decodes with goccy/go-json; a panic inside it (malformed
// input must never crash the detector) counts as a failure.
func fastUnmarshal(b []byte, e any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("fast decoder panicked")
		}
	}()
	return gojson.Unmarshal(b, e)
}

// checkEnvelope checks that exactly the payload named by Kind is set and
// that the envelope's event id is the payload's.
func checkEnvelope(e *Event) error {
	var payloadID string
	switch e.Kind {
	case KindCRMAccess:
		if e.CRM == nil || e.Outbound != nil {
			return newDecodeError(ReasonSemantic, &FieldError{Pointer: "/kind", Rule: "semantic", Detail: "kind crm_access needs crm and no outbound"})
		}
		payloadID = e.CRM.EventID
	case KindOutbound:
		if e.Outbound == nil || e.CRM != nil {
			return newDecodeError(ReasonSemantic, &FieldError{Pointer: "/kind", Rule: "semantic", Detail: "kind outbound needs outbound and no crm"})
		}
		payloadID = e.Outbound.EventID
	default:
		return newDecodeError(ReasonUnknownKind, &FieldError{Pointer: "/kind", Rule: "kind", Detail: "not crm_access or outbound"})
	}
	if e.EventID != payloadID {
		return newDecodeError(ReasonSemantic, &FieldError{Pointer: "/event_id", Rule: "semantic", Detail: "differs from the payload's event_id"})
	}
	return nil
}
