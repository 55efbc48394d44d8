// # Decoding and validation
//
// Raw events from the sources are decoded by a [Decoder], strictly and in
// this order, each step with an explicit decision:
//
//  1. Size limit before anything else. A raw event longer than
//     [Limits].MaxEventBytes (default 1 MiB) is rejected with reason
//     "oversized" without being looked at.
//  2. Invalid UTF-8 is removed, not replaced. encoding/json would turn each
//     bad byte into U+FFFD, which splits "jo\xffhn@example.com" in two and
//     hides the address from the detectors; removing the byte keeps
//     "john@example.com" whole. The number of removed bytes is reported in
//     [Quality].InvalidUTF8Bytes. Bytes are removed only inside string
//     literals: an invalid byte outside a string, or inside an escape
//     sequence such as \u00XX, means the document was not JSON at all and it
//     is rejected ("invalid_json"), so removal can never turn garbage into a
//     differently structured valid document. Escaped lone UTF-16 surrogates
//     (\ud800 without its pair), which encoding/json would also turn into
//     U+FFFD, are removed the same way and counted one per escape. Fast
//     path: when the document is valid UTF-8 and has no surrogate escape it
//     is used as is, without a copy.
//  3. Duplicate object keys are rejected ("duplicate_key"): encoding/json
//     would let the last one silently win, and so does
//     jsonschema.UnmarshalJSON, which is built on it. The document is parsed
//     once, by a small single-pass parser that builds the same tree as
//     jsonschema.UnmarshalJSON (numbers kept exact as json.Number) and
//     detects duplicates on the way; it is fuzzed against encoding/json.
//     Nesting deeper than 32 levels, trailing data and number literals that
//     are longer than 64 bytes or have an exponent of more than three digits
//     (which would make the validator's exact big.Rat arithmetic slow) are
//     rejected as "invalid_json".
//  4. The tree is validated against the embedded JSON Schema of its kind
//     (schemas.EventSchemas, draft 2020-12, formats asserted). Every object
//     has additionalProperties: false, and the validator is case-sensitive,
//     so an unknown field and a key that differs only in case ("Event_ID",
//     which encoding/json would accept as event_id) are both rejected
//     ("schema"). Every failing leaf is reported, with its JSON pointer.
//     Fast path: a hand-written check of the same schemas (fastvalid.go)
//     runs first and answers "valid" or "not sure"; only "not sure" runs
//     the compiled schema. It is tested never to accept what the schema
//     rejects (TestFastValidAgrees, FuzzFastValid).
//  5. The document is decoded into the Go type with encoding/json (safe now:
//     no duplicates, exact-case keys only). When the fast path found it
//     valid, the Go value is built from the tree of step 3 instead
//     (fromtree.go: no second parse; tested to give what encoding/json
//     gives), and the rules a schema cannot
//     express are checked ("semantic"): time is not the zero time,
//     records.count is 0 (unknown) or at least the number of distinct
//     records.ids, recipients' domains and destination.domains name the same
//     domains, class_uid and activity_id match the kind and channel, and
//     the time is representable in UTC (years 1 to 9999). Semantic
//     errors about a value the schema already reported are not repeated.
//
// All errors found by steps 4 and 5 are returned together in one
// [*DecodeError], whose Reason is the short, low-cardinality name of the
// first failing step (use it as the dead-letter reason and metric label).
// Error texts never contain a field value, which may be PII: only JSON
// pointers, schema keywords and the schema's own constants. Pointer segments
// that are not property names of the contract are shown as "<unknown>".
//
// [Decoder.DecodeRaw] then normalizes the event into the [Event] envelope
// (see [Normalize]) that [MarshalEvent] writes to dlp.events and
// [UnmarshalEvent] reads back in the detector.
package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/leakline/leakline/schemas"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// Schema files of version SchemaVersion in schemas.EventSchemas.
const (
	crmAccessSchemaFile = "crm_access.v1.schema.json"
	outboundSchemaFile  = "outbound.v1.schema.json"
	schemaBaseURL       = "https://schemas.leakline.dev/"
)

// compiledSchemas is compiled once per process and shared by all Decoders.
type compiledSchemas struct {
	crm, out *jsonschema.Schema
	// known holds every property name of the contract: the only input
	// strings an error message may repeat.
	known map[string]struct{}
	// intern maps each name of known to itself, so that the parser can
	// share the strings instead of allocating them.
	intern map[string]string
	// props maps a schema location (URL#pointer) to the property names
	// declared there, to name the intended property of a wrong-case key.
	props map[string][]string
	// formats are the schema library's format checks, for fastValid.
	formats *formatFuncs
}

var loadSchemas = sync.OnceValues(compileSchemas)

func compileSchemas() (*compiledSchemas, error) {
	s := &compiledSchemas{known: map[string]struct{}{}, props: map[string][]string{}}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, name := range []string{crmAccessSchemaFile, outboundSchemaFile} {
		b, err := fs.ReadFile(schemas.EventSchemas, name)
		if err != nil {
			return nil, fmt.Errorf("event: read schema: %w", err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("event: parse schema %s: %w", name, err)
		}
		url := schemaBaseURL + name
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("event: add schema %s: %w", name, err)
		}
		s.collectProps(url, "", doc)
	}
	var err error
	if s.crm, err = c.Compile(schemaBaseURL + crmAccessSchemaFile); err != nil {
		return nil, fmt.Errorf("event: compile schema: %w", err)
	}
	if s.out, err = c.Compile(schemaBaseURL + outboundSchemaFile); err != nil {
		return nil, fmt.Errorf("event: compile schema: %w", err)
	}
	if s.formats, err = compileFormats(); err != nil {
		return nil, err
	}
	// Envelope names, for errors of UnmarshalEvent.
	for _, k := range []string{"kind", "crm", "outbound", "source", "quality", "ingested_at"} {
		s.known[k] = struct{}{}
	}
	s.intern = make(map[string]string, len(s.known))
	for k := range s.known {
		s.intern[k] = k
	}
	return s, nil
}

// collectProps walks a schema document and records every "properties"
// object by location.
func (s *compiledSchemas) collectProps(url, ptr string, v any) {
	switch v := v.(type) {
	case map[string]any:
		if p, ok := v["properties"].(map[string]any); ok {
			names := make([]string, 0, len(p))
			for name := range p {
				names = append(names, name)
				s.known[name] = struct{}{}
			}
			slices.Sort(names)
			s.props[url+"#"+ptr] = names
		}
		for k, child := range v {
			s.collectProps(url, ptr+"/"+escapePointer(k), child)
		}
	case []any:
		for i, child := range v {
			s.collectProps(url, ptr+"/"+strconv.Itoa(i), child)
		}
	}
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func (s *compiledSchemas) schemaFor(k Kind) *jsonschema.Schema {
	if k == KindOutbound {
		return s.out
	}
	return s.crm
}

// validate validates a parsed document and returns every failing leaf.
func (s *compiledSchemas) validate(sch *jsonschema.Schema, doc any) []*FieldError {
	err := sch.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []*FieldError{{Rule: "schema", Detail: "validation failed"}}
	}
	var out []*FieldError
	s.leaves(ve, &out)
	if len(out) == 0 {
		out = append(out, &FieldError{Rule: "schema", Detail: "validation failed"})
	}
	return out
}

func (s *compiledSchemas) leaves(ve *jsonschema.ValidationError, out *[]*FieldError) {
	ptr := safePointer(ve.InstanceLocation, s.known)
	switch k := ve.ErrorKind.(type) {
	case *kind.AnyOf, *kind.OneOf:
		// One error for the whole alternative, summarizing its branches:
		// "missing host | missing url" reads right, two errors would not.
		rule := ve.ErrorKind.KeywordPath()[0]
		if o, ok := k.(*kind.OneOf); ok && len(o.Subschemas) > 1 {
			*out = append(*out, &FieldError{Pointer: ptr, Rule: rule, Detail: "more than one alternative matched"})
			return
		}
		var alts []string
		for _, c := range ve.Causes {
			var sub []*FieldError
			s.leaves(c, &sub)
			var parts []string
			for _, e := range sub {
				part := e.Rule
				if e.Detail != "" {
					part += ": " + e.Detail
				}
				if e.Pointer != ptr {
					part = e.Pointer + ": " + part
				}
				parts = append(parts, part)
			}
			alts = append(alts, strings.Join(parts, ", "))
		}
		*out = append(*out, &FieldError{Pointer: ptr, Rule: rule, Detail: "no alternative matched: " + strings.Join(alts, " | "), covers: []string{ptr}})
		return
	case *kind.Required:
		for _, m := range k.Missing {
			*out = append(*out, &FieldError{Pointer: ptr, Rule: "required", Detail: "missing " + strconv.Quote(m), covers: []string{ptr + "/" + escapePointer(m)}})
		}
		return
	case *kind.AdditionalProperties:
		declared := s.props[ve.SchemaURL]
		props := slices.Clone(k.Properties)
		slices.Sort(props)
		for _, p := range props {
			detail := "unknown property"
			for _, name := range declared {
				if strings.EqualFold(p, name) {
					detail = "property differs only in case from " + strconv.Quote(name)
					break
				}
			}
			*out = append(*out, &FieldError{Pointer: ptr, Rule: "additionalProperties", Detail: detail})
		}
		return
	}
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			s.leaves(c, out)
		}
		return
	}
	rule, detail := describe(ve.ErrorKind)
	*out = append(*out, &FieldError{Pointer: ptr, Rule: rule, Detail: detail, covers: []string{ptr}})
}

// describe renders a leaf error kind from the schema's side only: what was
// wanted, never what was got (except JSON types).
func describe(k jsonschema.ErrorKind) (rule, detail string) {
	rule = strings.Join(k.KeywordPath(), "/")
	switch k := k.(type) {
	case *kind.Type:
		return rule, "got " + k.Got + ", want " + strings.Join(k.Want, " or ")
	case *kind.Const:
		return rule, "want " + display(k.Want)
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = display(w)
		}
		return rule, "want one of " + strings.Join(want, ", ")
	case *kind.Format:
		return rule, "not a valid " + k.Want
	case *kind.Pattern:
		return rule, "does not match " + k.Want
	case *kind.MinLength:
		return rule, "want at least " + strconv.Itoa(k.Want) + " characters"
	case *kind.MaxLength:
		return rule, "want at most " + strconv.Itoa(k.Want) + " characters"
	case *kind.MinItems:
		return rule, "want at least " + strconv.Itoa(k.Want) + " items"
	case *kind.MaxItems:
		return rule, "want at most " + strconv.Itoa(k.Want) + " items"
	case *kind.Minimum:
		return rule, "want >= " + ratString(k.Want)
	case *kind.Maximum:
		return rule, "want <= " + ratString(k.Want)
	case *kind.ExclusiveMinimum:
		return rule, "want > " + ratString(k.Want)
	case *kind.ExclusiveMaximum:
		return rule, "want < " + ratString(k.Want)
	case *kind.FalseSchema:
		return "false", "not allowed"
	}
	if rule == "" {
		rule = "schema"
	}
	return rule, ""
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	return r.RatString()
}

// display renders a schema constant.
func display(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return string(b)
}

// --- step 5: semantic checks -----------------------------------------------

func semantic(ptr, detail string) *FieldError {
	return &FieldError{Pointer: ptr, Rule: "semantic", Detail: detail}
}

// checkCRMAccess checks what the schema cannot express.
func checkCRMAccess(v *CRMAccess) []*FieldError {
	var errs []*FieldError
	if v.SchemaVersion != SchemaVersion {
		errs = append(errs, semantic("/schema_version", "unsupported version"))
	}
	if v.ClassUID != ClassAPIActivity {
		errs = append(errs, semantic("/class_uid", "crm_access needs API Activity (6003)"))
	}
	if v.ActivityID != 2 {
		errs = append(errs, semantic("/activity_id", "crm_access needs activity Read (2)"))
	}
	errs = append(errs, checkTime(v.Time)...)
	if c := v.Records.Count; c != 0 && c < len(v.Records.IDs) && c < distinct(v.Records.IDs) {
		errs = append(errs, semantic("/records/count", "smaller than the number of distinct records.ids"))
	}
	return errs
}

// checkTime rejects the zero time and a time whose UTC form has no RFC 3339
// representation (9999-12-31T23:59:59-23:00 is year 10000 in UTC).
func checkTime(t time.Time) []*FieldError {
	if t.IsZero() {
		return []*FieldError{semantic("/time", "zero time")}
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return []*FieldError{semantic("/time", "out of range in UTC")}
	}
	return nil
}

// distinct counts distinct strings.
func distinct(ids []string) int {
	s := slices.Clone(ids)
	slices.Sort(s)
	return len(slices.Compact(s))
}

// channelClass is the OCSF class of each outbound channel.
var channelClass = map[string]int{
	ChannelEmail:  ClassEmailActivity,
	ChannelUSB:    ClassFileSystemActivity,
	ChannelUpload: ClassFileHostingActivity,
}

// checkOutbound checks what the schema cannot express.
func checkOutbound(v *Outbound) []*FieldError {
	var errs []*FieldError
	if v.SchemaVersion != SchemaVersion {
		errs = append(errs, semantic("/schema_version", "unsupported version"))
	}
	if class, ok := channelClass[v.Channel]; !ok {
		errs = append(errs, semantic("/channel", "unknown channel"))
	} else if v.ClassUID != class {
		errs = append(errs, semantic("/class_uid", "does not match the channel"))
	}
	if v.ActivityID != 1 {
		errs = append(errs, semantic("/activity_id", "outbound needs activity 1"))
	}
	errs = append(errs, checkTime(v.Time)...)
	errs = append(errs, reconcileDomains(v.Destination.Recipients, v.Destination.Domains)...)
	return errs
}

// reconcileDomains checks, when both are given, that every recipient's
// domain is listed in domains and every listed domain has a recipient
// (ignoring case and a trailing dot; address literals are skipped).
func reconcileDomains(recipients, domains []string) []*FieldError {
	if len(recipients) == 0 || len(domains) == 0 {
		return nil
	}
	listed := make(map[string]bool, len(domains))
	for _, d := range domains {
		listed[canonicalDomain(d)] = false
	}
	var errs []*FieldError
	for i, r := range recipients {
		d, ok := emailDomain(r)
		if !ok {
			continue // an address literal names no domain
		}
		if _, ok := listed[d]; !ok {
			errs = append(errs, semantic("/destination/recipients/"+strconv.Itoa(i), "recipient domain not listed in destination.domains"))
			continue
		}
		listed[d] = true
	}
	for i, d := range domains {
		if !listed[canonicalDomain(d)] {
			errs = append(errs, semantic("/destination/domains/"+strconv.Itoa(i), "no recipient has this domain"))
		}
	}
	return errs
}

// dropReported removes semantic errors about a value a schema error already
// covers (the same pointer, one inside it, or one containing it), so that a
// missing time is not also reported as a zero time.
func dropReported(sem []*FieldError, schemaErrs []*FieldError) []*FieldError {
	if len(sem) == 0 || len(schemaErrs) == 0 {
		return sem
	}
	kept := sem[:0]
	for _, e := range sem {
		covered := false
		for _, s := range schemaErrs {
			for _, c := range s.covers {
				if c == e.Pointer || strings.HasPrefix(e.Pointer, c+"/") || strings.HasPrefix(c, e.Pointer+"/") {
					covered = true
				}
			}
		}
		if !covered {
			kept = append(kept, e)
		}
	}
	return kept
}
