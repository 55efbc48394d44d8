package event

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// # The fast path of step 4
//
// Validating a tree with the compiled JSON Schema costs ~20 µs for a 0.5 KB
// event (most of the normalizer's time). Almost every event is valid, and a
// valid event needs no error report, so the Decoder first runs fastValid: a
// hand-written check of the same two schemas over the same tree. It answers
// "valid" only when the document is valid by the schema; when it says
// "not sure" (an error, or anything unusual such as 1.0 for 1, a leap
// second, -0), the compiled schema runs as before and produces the report.
// The schema files stay the contract: the formats (email, hostname, ipv4,
// ipv6, uri, date-time) are the schema library's own functions, and
// FuzzFastValid and TestFastValidAgrees check that fastValid never accepts
// what the schema rejects, and accepts every valid event of the examples
// and of the generated traffic. A change of a schema file must be mirrored
// here: the tests then fail until it is.

// formatFuncs are the schema library's format checks, taken from compiled
// one-keyword schemas so that both paths use the very same functions.
type formatFuncs struct {
	email, hostname, ipv4, ipv6, uri, dateTime func(any) error
}

func compileFormats() (*formatFuncs, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	get := func(name string) (func(any) error, error) {
		url := "mem:///format-" + name + ".json"
		if err := c.AddResource(url, map[string]any{"format": name}); err != nil {
			return nil, fmt.Errorf("event: format %s: %w", name, err)
		}
		sch, err := c.Compile(url)
		if err != nil {
			return nil, fmt.Errorf("event: format %s: %w", name, err)
		}
		if sch.Format == nil || sch.Format.Validate == nil {
			return nil, fmt.Errorf("event: format %s unknown to the schema library", name)
		}
		return sch.Format.Validate, nil
	}
	var f formatFuncs
	var err error
	for _, p := range []struct {
		name string
		fn   *func(any) error
	}{{"email", &f.email}, {"hostname", &f.hostname}, {"ipv4", &f.ipv4}, {"ipv6", &f.ipv6}, {"uri", &f.uri}, {"date-time", &f.dateTime}} {
		if *p.fn, err = get(p.name); err != nil {
			return nil, err
		}
	}
	return &f, nil
}

// fastValid reports whether doc (a tree from parseTree) is certainly valid
// against the schema of kind k. false means "run the schema".
func (s *compiledSchemas) fastValid(k Kind, doc any) bool {
	m, ok := doc.(object)
	if !ok || s.formats == nil {
		return false
	}
	switch k {
	case KindCRMAccess:
		return s.fastCRM(m)
	case KindOutbound:
		return s.fastOutbound(m)
	}
	return false
}

func (s *compiledSchemas) fastCRM(m object) bool {
	if len(m) < 9 || len(m) > 11 {
		return false
	}
	for _, mb := range m {
		key, v := mb.key, mb.val
		var ok bool
		switch key {
		case "schema_version":
			ok = isNumberLit(v, "1")
		case "class_uid":
			ok = isNumberLit(v, "6003")
		case "activity_id":
			ok = isNumberLit(v, "2")
		case "event_id":
			ok = isEventID(v)
		case "time":
			ok = s.isTimestamp(v)
		case "actor":
			ok = s.isActor(v)
		case "action":
			ok = isOneOf(v, "view", "search", "export", "api_read")
		case "records":
			ok = isRecords(v)
		case "ticket_id":
			ok = isString(v, 0, 128)
		case "src_endpoint":
			ok = s.isEndpoint(v)
		case "app_name":
			ok = isString(v, 0, 256)
		}
		if !ok { // an unknown key fails too (additionalProperties: false)
			return false
		}
	}
	return hasAll(m, "schema_version", "class_uid", "activity_id", "event_id", "time", "actor", "action", "records", "ticket_id")
}

func (s *compiledSchemas) fastOutbound(m object) bool {
	if len(m) < 9 || len(m) > 12 {
		return false
	}
	cv, _ := m.get("channel")
	channel, _ := cv.(string)
	var class string
	switch channel {
	case "email":
		class = "4009"
	case "usb":
		class = "1001"
	case "upload":
		class = "6006"
	default:
		return false
	}
	for _, mb := range m {
		key, v := mb.key, mb.val
		var ok bool
		switch key {
		case "schema_version", "activity_id":
			ok = isNumberLit(v, "1")
		case "class_uid":
			ok = isNumberLit(v, class)
		case "event_id":
			ok = isEventID(v)
		case "time":
			ok = s.isTimestamp(v)
		case "actor":
			ok = s.isActor(v)
		case "channel":
			ok = true // checked above
		case "subject":
			_, ok = v.(string)
		case "destination":
			ok = s.isDestination(v, channel)
		case "content":
			ok = isContent(v)
		case "attachments":
			a, isArr := v.([]any)
			ok = isArr && len(a) <= 100
			for i := 0; ok && i < len(a); i++ {
				ok = isContent(a[i])
			}
		case "src_endpoint":
			ok = s.isEndpoint(v)
		}
		if !ok {
			return false
		}
	}
	return hasAll(m, "schema_version", "class_uid", "activity_id", "event_id", "time", "actor", "channel", "destination", "content")
}

func (s *compiledSchemas) isActor(v any) bool {
	m, ok := v.(object)
	if !ok || len(m) > 4 {
		return false
	}
	for _, mb := range m {
		key, v := mb.key, mb.val
		switch key {
		case "uid":
			ok = isString(v, 1, 256)
		case "email_addr":
			ok = s.isFormat(v, s.formats.email)
		case "department", "role":
			ok = isString(v, 0, 256)
		default:
			ok = false
		}
		if !ok {
			return false
		}
	}
	_, ok = m.get("uid")
	return ok
}

func (s *compiledSchemas) isEndpoint(v any) bool {
	m, ok := v.(object)
	if !ok || len(m) > 1 {
		return false
	}
	ip, has := m.get("ip")
	if !has {
		return len(m) == 0
	}
	str, ok := ip.(string)
	return ok && (s.formats.ipv4(str) == nil || s.formats.ipv6(str) == nil)
}

func (s *compiledSchemas) isDestination(v any, channel string) bool {
	m, ok := v.(object)
	if !ok || len(m) > 6 {
		return false
	}
	for _, mb := range m {
		key, v := mb.key, mb.val
		switch key {
		case "recipients":
			ok = s.isFormatArray(v, 1, 1000, s.formats.email)
		case "domains":
			ok = s.isFormatArray(v, 0, 1000, s.formats.hostname)
		case "device":
			ok = isDevice(v)
		case "url":
			ok = isString(v, 0, 8192) && s.isFormat(v, s.formats.uri)
		case "host":
			ok = s.isFormat(v, s.formats.hostname)
		case "application":
			ok = isString(v, 0, 256)
		default:
			ok = false
		}
		if !ok {
			return false
		}
	}
	switch channel {
	case "email":
		return hasAll(m, "recipients")
	case "usb":
		return hasAll(m, "device")
	default: // upload
		return hasAll(m, "host") || hasAll(m, "url")
	}
}

func isDevice(v any) bool {
	m, ok := v.(object)
	if !ok || len(m) > 3 {
		return false
	}
	for _, mb := range m {
		key, v := mb.key, mb.val
		switch key {
		case "vendor", "product", "serial":
			ok = isString(v, 0, 256)
		default:
			ok = false
		}
		if !ok {
			return false
		}
	}
	return true
}

func isContent(v any) bool {
	m, ok := v.(object)
	if !ok || len(m) > 6 {
		return false
	}
	for _, mb := range m {
		key, v := mb.key, mb.val
		switch key {
		case "file_name":
			ok = isString(v, 0, 1024)
		case "mime_type":
			ok = isString(v, 0, 255)
		case "size":
			ok = isUint(v, 9007199254740991)
		case "sha256":
			ok = isHex64(v)
		case "text":
			_, ok = v.(string)
		case "truncated":
			_, ok = v.(bool)
		default:
			ok = false
		}
		if !ok {
			return false
		}
	}
	return true
}

func isRecords(v any) bool {
	m, ok := v.(object)
	if !ok || len(m) > 5 {
		return false
	}
	for _, mb := range m {
		key, v := mb.key, mb.val
		switch key {
		case "ids":
			ok = isStringArray(v, 1, 10000, 1, 128)
		case "count":
			ok = isUint(v, 2147483647)
		case "fields":
			ok = isStringArray(v, 0, 1000, 1, 128)
		case "segment":
			ok = isString(v, 0, 128)
		case "region":
			ok = isString(v, 0, 64)
		default:
			ok = false
		}
		if !ok {
			return false
		}
	}
	_, ok = m.get("ids")
	return ok
}

// isTimestamp: the schema's pattern, checked by hand, and its date-time
// format, by the library's function. A leap second (:60) is left to the
// schema.
func (s *compiledSchemas) isTimestamp(v any) bool {
	str, ok := v.(string)
	if !ok || len(str) < 20 {
		return false
	}
	digits := func(b string) bool {
		for i := 0; i < len(b); i++ {
			if b[i] < '0' || b[i] > '9' {
				return false
			}
		}
		return true
	}
	// ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}
	if !digits(str[0:4]) || str[4] != '-' || !digits(str[5:7]) || str[7] != '-' || !digits(str[8:10]) ||
		str[10] != 'T' || !digits(str[11:13]) || str[13] != ':' || !digits(str[14:16]) || str[16] != ':' ||
		!digits(str[17:19]) || str[17] >= '6' {
		return false
	}
	rest := str[19:]
	// (\.[0-9]{1,9})?
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && n <= 10 && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return false
		}
		rest = rest[n:]
	}
	// (Z|[+-][0-9]{2}:[0-9]{2})$
	switch {
	case rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && digits(rest[1:3]) && rest[3] == ':' && digits(rest[4:6]):
	default:
		return false
	}
	return s.formats.dateTime(str) == nil
}

func (s *compiledSchemas) isFormat(v any, f func(any) error) bool {
	str, ok := v.(string)
	return ok && f(str) == nil
}

func (s *compiledSchemas) isFormatArray(v any, minItems, maxItems int, f func(any) error) bool {
	a, ok := v.([]any)
	if !ok || len(a) < minItems || len(a) > maxItems {
		return false
	}
	for _, x := range a {
		if !s.isFormat(x, f) {
			return false
		}
	}
	return true
}

// isString: a string of minLen to maxLen code points (JSON Schema counts
// code points; a string has at most as many as it has bytes).
func isString(v any, minLen, maxLen int) bool {
	str, ok := v.(string)
	if !ok {
		return false
	}
	if len(str) <= maxLen && minLen <= 1 {
		return len(str) >= minLen
	}
	n := utf8.RuneCountInString(str)
	return n >= minLen && n <= maxLen
}

func isStringArray(v any, minItems, maxItems, minLen, maxLen int) bool {
	a, ok := v.([]any)
	if !ok || len(a) < minItems || len(a) > maxItems {
		return false
	}
	for _, x := range a {
		if !isString(x, minLen, maxLen) {
			return false
		}
	}
	return true
}

// isEventID: ^[\x21-\x7E]+$, 1 to 128 characters.
func isEventID(v any) bool {
	str, ok := v.(string)
	if !ok || len(str) < 1 || len(str) > 128 {
		return false
	}
	for i := 0; i < len(str); i++ {
		if str[i] < 0x21 || str[i] > 0x7e {
			return false
		}
	}
	return true
}

// isHex64: ^[0-9a-fA-F]{64}$.
func isHex64(v any) bool {
	str, ok := v.(string)
	if !ok || len(str) != 64 {
		return false
	}
	for i := 0; i < len(str); i++ {
		c := str[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// isNumberLit: the number written exactly as lit (other spellings of the
// same value are left to the schema).
func isNumberLit(v any, lit string) bool {
	n, ok := v.(json.Number)
	return ok && string(n) == lit
}

// isUint: an integer in [0, max] written with digits only.
func isUint(v any, max uint64) bool {
	n, ok := v.(json.Number)
	if !ok {
		return false
	}
	u, err := strconv.ParseUint(string(n), 10, 64)
	return err == nil && u <= max
}

func isOneOf(v any, options ...string) bool {
	str, ok := v.(string)
	if !ok {
		return false
	}
	for _, o := range options {
		if str == o {
			return true
		}
	}
	return false
}

func hasAll(m object, keys ...string) bool {
	for _, k := range keys {
		if _, ok := m.get(k); !ok {
			return false
		}
	}
	return true
}
