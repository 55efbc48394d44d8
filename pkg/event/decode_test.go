package event

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const examplesDir = "../../schemas/examples"

var testNow = time.Date(2025, 3, 14, 20, 0, 0, 0, time.UTC)

func newTestDecoder(t testing.TB, l Limits) *Decoder {
	t.Helper()
	d, err := NewDecoder(l)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func kindOf(path string) Kind {
	if strings.HasPrefix(filepath.Base(path), "outbound.") {
		return KindOutbound
	}
	return KindCRMAccess
}

func readExample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeErr asserts err is a *DecodeError with the given reason and count
// of problems (count < 0: any).
func decodeErr(t *testing.T, err error, reason string, count int) *DecodeError {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("want *DecodeError %s, got %T %v", reason, err, err)
	}
	if de.Reason != reason {
		t.Errorf("reason = %q, want %q (%v)", de.Reason, reason, de)
	}
	if count >= 0 && de.Len() != count {
		t.Errorf("%d errors, want %d: %v", de.Len(), count, de)
	}
	return de
}

func TestExamplesValid(t *testing.T) {
	d := newTestDecoder(t, Limits{})
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.json"))
	if err != nil || len(files) < 5 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			kind := kindOf(f)
			switch kind {
			case KindCRMAccess:
				if _, _, err := d.DecodeCRMAccess(raw); err != nil {
					t.Fatal(err)
				}
			case KindOutbound:
				if _, _, err := d.DecodeOutbound(raw); err != nil {
					t.Fatal(err)
				}
			}
			e, err := d.DecodeRaw(kind, raw, Source{Topic: "raw", Partition: 3, Offset: 42}, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind != kind || e.EventID == "" || e.Time.IsZero() || e.Time.Location() != time.UTC || e.Actor.UID == "" || !e.IngestedAt.Equal(testNow) {
				t.Errorf("envelope not filled: %+v", e)
			}
			b, err := MarshalEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			back, err := UnmarshalEvent(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(e, back) {
				t.Errorf("round trip differs:\n%+v\n%+v", e, back)
			}
		})
	}
}

func TestExamplesInvalid(t *testing.T) {
	d := newTestDecoder(t, Limits{})
	files, err := filepath.Glob(filepath.Join(examplesDir, "invalid", "*.json"))
	if err != nil || len(files) < 5 {
		t.Fatalf("invalid examples: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".reason.txt")
			if err != nil {
				t.Fatal(err)
			}
			_, err = d.DecodeRaw(kindOf(f), raw, Source{}, testNow)
			if err == nil {
				t.Fatal("accepted")
			}
			decodeErr(t, err, reasonOf(err), -1)
			if w := strings.TrimSpace(string(want)); !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		})
	}
}

func reasonOf(err error) string {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Reason
	}
	return ""
}

// crm is a valid CRM-access event to be edited by the tests.
const crm = `{"schema_version":1,"class_uid":6003,"activity_id":2,"event_id":"e-1","time":"2025-03-14T09:26:53Z",
 "actor":{"uid":"u-1","email_addr":"Jane@Example.com"},"action":"view","records":{"ids":["c-2","c-1","c-2"],"count":2},"ticket_id":""}`

// outbound is a valid outbound email to be edited by the tests.
const outbound = `{"schema_version":1,"class_uid":4009,"activity_id":1,"event_id":"m-1","time":"2025-03-14T09:26:53Z",
 "actor":{"uid":"u-1"},"channel":"email","destination":{"recipients":["a@example.com"]},"content":{"size":10,"text":"TEXT"}}`

func TestOversized(t *testing.T) {
	d := newTestDecoder(t, Limits{MaxEventBytes: len(crm) - 1})
	_, _, err := d.DecodeCRMAccess([]byte(crm))
	decodeErr(t, err, ReasonOversized, 1)

	d = newTestDecoder(t, Limits{})
	if got := d.Limits(); got.MaxEventBytes != 1<<20 || got.MaxTextBytes != 256<<10 {
		t.Errorf("default limits %+v", got)
	}
	big := strings.Replace(outbound, "TEXT", strings.Repeat("x", 1<<20), 1)
	_, _, err = d.DecodeOutbound([]byte(big))
	decodeErr(t, err, ReasonOversized, 1)

	if _, err := NewDecoder(Limits{MaxEventBytes: MaxEventBytesCeiling + 1}); err == nil {
		t.Error("MaxEventBytes above the ceiling accepted")
	}
	if _, err := NewDecoder(Limits{MaxTextBytes: -1}); err == nil {
		t.Error("negative MaxTextBytes accepted")
	}
}

func TestInvalidUTF8Removed(t *testing.T) {
	d := newTestDecoder(t, Limits{})
	doc := strings.Replace(outbound, `"a@example.com"`, "\"a\xff@exa\xc3mple.com\"", 1)
	doc = strings.Replace(doc, "TEXT", "mail jo\xffhn@example.com now \xe2\x82", 1)
	e, err := d.DecodeRaw(KindOutbound, []byte(doc), Source{}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Outbound.Content.Text; got != "mail john@example.com now " {
		t.Errorf("text = %q", got)
	}
	if got := e.Outbound.Destination.Recipients; len(got) != 1 || got[0] != "a@example.com" {
		t.Errorf("recipients = %q", got)
	}
	if e.Quality.InvalidUTF8Bytes != 5 {
		t.Errorf("InvalidUTF8Bytes = %d, want 5", e.Quality.InvalidUTF8Bytes)
	}
	if back, err := UnmarshalEvent(mustMarshal(t, e)); err != nil || back.Quality.InvalidUTF8Bytes != 5 {
		t.Errorf("quality not marshaled: %v", err)
	}
	// Quality is reported by the kind-specific decoders too.
	_, q, err := d.DecodeOutbound([]byte(doc))
	if err != nil || q.InvalidUTF8Bytes != 5 {
		t.Errorf("DecodeOutbound quality %+v, %v", q, err)
	}
}

func TestValidUTF8NotCopied(t *testing.T) {
	raw := []byte(`{"a":"Grüße \ud83d\ude00 \\ud800"}`)
	out, n, err := sanitizeUTF8(raw)
	if err != nil || n != 0 || &out[0] != &raw[0] {
		t.Errorf("valid document copied or changed: %q %d %v", out, n, err)
	}
}

func TestLoneSurrogateEscapeRemoved(t *testing.T) {
	d := newTestDecoder(t, Limits{})
	doc := strings.Replace(outbound, "TEXT", `jo\ud800hn@example.com \uDC00x \ud83d\ude00`, 1)
	o, q, err := d.DecodeOutbound([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if o.Content.Text != "john@example.com x 😀" || q.InvalidUTF8Bytes != 2 {
		t.Errorf("text %q, quality %+v", o.Content.Text, q)
	}
}

func TestInvalidUTF8WhereNoStringIs(t *testing.T) {
	d := newTestDecoder(t, Limits{})
	for name, doc := range map[string]string{
		"outside string":  strings.Replace(crm, `"activity_id":2`, "\"activity_id\":\xff2", 1),
		"in number":       strings.Replace(crm, `"activity_id":2`, "\"activity_id\":2\xff", 1),
		"after backslash": strings.Replace(crm, `"e-1"`, "\"e-1\\\xff\"", 1),
		"in \\u escape":   strings.Replace(crm, `"e-1"`, "\"e-1\\u00\xff41\"", 1),
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := d.DecodeCRMAccess([]byte(doc))
			decodeErr(t, err, ReasonInvalidJSON, 1)
		})
	}
}

func TestDuplicateKey(t *testing.T) {
	d := newTestDecoder(t, Limits{})
	doc := strings.Replace(crm, `"action":"view"`, `"action":"view","action":"export"`, 1)
	doc = strings.Replace(doc, `"uid":"u-1"`, `"uid":"u-1","\u0075id":"u-2"`, 1)
	_, _, err := d.DecodeCRMAccess([]byte(doc))
	de := decodeErr(t, err, ReasonDuplicateKey, 2)
	for _, want := range []string{"/action: duplicate_key", "/actor/uid: duplicate_key"} {
		if !strings.Contains(de.Error(), want) {
			t.Errorf("%v lacks %q", de, want)
		}
	}
}

func TestWrongCaseKey(t *testing.T) {
	d := newTestDecoder(t, Limits{})
	// encoding/json alone would accept Event_ID as event_id.
	doc := strings.Replace(crm, `"event_id"`, `"Event_ID"`, 1)
	_, _, err := d.DecodeCRMAccess([]byte(doc))
	de := decodeErr(t, err, ReasonSchema, 2)
	for _, want := range []string{`(root): additionalProperties: property differs only in case from "event_id"`, `(root): required: missing "event_id"`} {
		if !strings.Contains(de.Error(), want) {
			t.Errorf("%v lacks %q", de, want)
		}
	}
	// With Unicode folding: U+212A KELVIN SIGN folds to k.
	doc = strings.Replace(crm, `"ticket_id"`, `"tic\u212aet_id"`, 1)
	_, _, err = d.DecodeCRMAccess([]byte(doc))
	de = decodeErr(t, err, ReasonSchema, 2)
	if !strings.Contains(de.Error(), `differs only in case from "ticket_id"`) {
		t.Error(de)
	}
	// Nested.
	doc = strings.Replace(outbound, `"channel"`, `"CHANNEL"`, 1)
	doc = strings.Replace(doc, `"uid"`, `"UID"`, 1)
	_, _, err = d.DecodeOutbound([]byte(doc))
	decodeErr(t, err, ReasonSchema, 4)
}

func TestUnknownField(t *testing.T) {
	d := newTestDecoder(t, Limits{})
	doc := strings.Replace(crm, `"ticket_id":""`, `"ticket_id":"","note":"x"`, 1)
	doc = strings.Replace(doc, `"uid":"u-1"`, `"uid":"u-1","nick":"j"`, 1)
	_, _, err := d.DecodeCRMAccess([]byte(doc))
	de := decodeErr(t, err, ReasonSchema, 2)
	for _, want := range []string{"(root): additionalProperties: unknown property", "/actor: additionalProperties: unknown property"} {
		if !strings.Contains(de.Error(), want) {
			t.Errorf("%v lacks %q", de, want)
		}
	}
}

func TestMultipleErrorsTogether(t *testing.T) {
	d := newTestDecoder(t, Limits{})
	// Schema errors and a semantic error in one document.
	doc := strings.Replace(crm, `"action":"view"`, `"action":"print"`, 1)
	doc = strings.Replace(doc, `"class_uid":6003`, `"class_uid":"6003"`, 1)
	doc = strings.Replace(doc, `"ticket_id":""`, `"ticket_id":"","x":1`, 1)
	doc = strings.Replace(doc, `"count":2`, `"count":1`, 1)
	_, _, err := d.DecodeCRMAccess([]byte(doc))
	// class_uid const, action enum, unknown x: schema; the typed decode
	// fails on the string class_uid, so the count rule cannot run.
	decodeErr(t, err, ReasonSchema, 3)

	doc = strings.Replace(crm, `"action":"view"`, `"action":"print"`, 1)
	doc = strings.Replace(doc, `"count":2`, `"count":1`, 1)
	doc = strings.Replace(doc, `"time":"2025-03-14T09:26:53Z"`, `"time":"0001-01-01T00:00:00Z"`, 1)
	_, _, err = d.DecodeCRMAccess([]byte(doc))
	de := decodeErr(t, err, ReasonSchema, 3) // enum + count + zero time
	for _, want := range []string{"/action: enum", "/records/count: semantic", "/time: semantic: zero time"} {
		if !strings.Contains(de.Error(), want) {
			t.Errorf("%v lacks %q", de, want)
		}
	}

	// A semantic rule does not repeat what the schema said.
	doc = strings.Replace(crm, `"time":"2025-03-14T09:26:53Z",`, ``, 1)
	doc = strings.Replace(doc, `"class_uid":6003`, `"class_uid":6006`, 1)
	_, _, err = d.DecodeCRMAccess([]byte(doc))
	decodeErr(t, err, ReasonSchema, 2) // required time, const class_uid

	doc = strings.Replace(outbound, `"destination":{"recipients":["a@example.com"]}`,
		`"destination":{"recipients":["a@example.com","b@Example.com","c@x.example"],"domains":["EXAMPLE.com","y.example","z.example"]}`, 1)
	_, _, err = d.DecodeOutbound([]byte(doc))
	decodeErr(t, err, ReasonSemantic, 3)
}

func TestTypedDecodeBeyondSchema(t *testing.T) {
	d := newTestDecoder(t, Limits{})
	// JSON Schema calls 2.0 an integer; Go's int does not.
	_, _, err := d.DecodeCRMAccess([]byte(strings.Replace(crm, `"count":2`, `"count":2.0`, 1)))
	de := decodeErr(t, err, ReasonSchema, 1)
	if !strings.Contains(de.Error(), "/records/count: type") {
		t.Error(de)
	}
	// RFC 3339 allows a leap second; time.Time does not.
	_, _, err = d.DecodeCRMAccess([]byte(strings.Replace(crm, `09:26:53Z`, `23:59:60Z`, 1)))
	de = decodeErr(t, err, ReasonSchema, 1)
	if !strings.Contains(de.Error(), "/time: format") {
		t.Error(de)
	}
}

func TestInvalidJSON(t *testing.T) {
	d := newTestDecoder(t, Limits{})
	for name, doc := range map[string]string{
		"empty":         ``,
		"truncated":     crm[:40],
		"trailing data": crm + ` {}`,
		"not an object": `[1,2]`,
		"too deep":      `{"records":` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `}`,
		"huge exponent": strings.Replace(crm, `"count":2`, `"count":1e1000000`, 1),
		"long number":   strings.Replace(crm, `"count":2`, `"count":`+strings.Repeat("1", 65), 1),
		"bad escape":    strings.Replace(crm, `"e-1"`, `"e-\q"`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := d.DecodeCRMAccess([]byte(doc))
			want := ReasonInvalidJSON
			if name == "not an object" {
				want = ReasonSchema
			}
			decodeErr(t, err, want, 1)
		})
	}
}

func TestErrorsNeverEchoValues(t *testing.T) {
	const secret = "zzsecret4111"
	d := newTestDecoder(t, Limits{})
	docs := []string{
		strings.Replace(crm, `"e-1"`, `"`+secret+` 1"`, 1),                                                      // pattern
		strings.Replace(crm, `"view"`, `"`+secret+`"`, 1),                                                       // enum
		strings.Replace(crm, `"Jane@Example.com"`, `"`+secret+`"`, 1),                                           // format
		strings.Replace(crm, `"2025-03-14T09:26:53Z"`, `"`+secret+`"`, 1),                                       // time format
		strings.Replace(crm, `"ticket_id":""`, `"ticket_id":"","`+secret+`":1`, 1),                              // unknown key
		strings.Replace(crm, `"ticket_id":""`, `"ticket_id":"","`+secret+`":1,"`+secret+`":2`, 1),               // duplicate unknown key
		strings.Replace(crm, `"ticket_id":""`, `"ticket_id":"","`+secret+`":{"a":1,"a":2}`, 1),                  // duplicate under unknown key
		strings.Replace(crm, `"count":2`, `"count":"`+secret+`"`, 1),                                            // type
		strings.Replace(crm, `"ticket_id":""`, `"ticket_id":`+strings.Repeat("4", 70), 1),                       // long number
		strings.Replace(crm, `"ticket_id":""`, `"ticket_id":"x`+secret+"\x01\"", 1),                             // control character
		strings.Replace(crm, `"ticket_id":""`, `"ticket_id":`+secret, 1),                                        // syntax
		strings.Replace(crm, `"class_uid":6003`, `"class_uid":4111111111111111.5`, 1),                           // const
		strings.Replace(outbound, `"a@example.com"`, `"`+secret+`@example.com"],"domains":["other.example"`, 1), // semantic
		strings.Replace(outbound, `"size":10`, `"size":4111.5`, 1),                                              // type
	}
	for i, doc := range docs {
		kind := KindCRMAccess
		if strings.Contains(doc, `"channel"`) {
			kind = KindOutbound
		}
		_, err := d.DecodeRaw(kind, []byte(doc), Source{}, testNow)
		if err == nil {
			t.Errorf("doc %d accepted", i)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, secret) || strings.Contains(msg, "4111") || strings.Contains(msg, "4444") {
			t.Errorf("doc %d: error echoes a value: %s", i, msg)
		}
	}
	// The envelope path too.
	for i, doc := range []string{
		`{"kind":"` + secret + `"}`,
		`{"kind":"crm_access","crm":{"records":{"count":"` + secret + `"}}}`,
		`{"kind":"crm_access","time":"` + secret + `"}`,
		`{"kind":` + secret + `}`,
	} {
		_, err := UnmarshalEvent([]byte(doc))
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("envelope %d: %v", i, err)
		}
	}
}

func TestMarshalUnmarshalEvent(t *testing.T) {
	d := newTestDecoder(t, Limits{})
	e, err := d.DecodeRaw(KindOutbound, readExample(t, "outbound.email.json"), Source{Topic: "raw.outbound", Partition: 1, Offset: 7}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	b := mustMarshal(t, e)
	back, err := UnmarshalEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e, back) {
		t.Errorf("round trip differs:\n%+v\n%+v", e, back)
	}
	if b2 := mustMarshal(t, back); !bytes.Equal(b, b2) {
		t.Errorf("re-marshal differs:\n%s\n%s", b, b2)
	}

	mismatch := *e
	mismatch.Kind = KindCRMAccess
	if _, err := MarshalEvent(&mismatch); err == nil {
		t.Error("MarshalEvent accepted a kind/payload mismatch")
	}
	// The JSON form an older normalizer wrote: compact, not HTML-escaped,
	// read back, and checked like the binary one.
	b, err = marshalEventJSON(e)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(`\u003c`)) || bytes.HasSuffix(b, []byte("\n")) {
		t.Errorf("not compact / HTML-escaped: %s", b)
	}
	if back, err := UnmarshalEvent(b); err != nil || !reflect.DeepEqual(e, back) {
		t.Errorf("JSON round trip differs: %v\n%+v\n%+v", err, e, back)
	}
	for name, doc := range map[string]string{
		"kind without payload": strings.Replace(string(b), `"kind":"outbound"`, `"kind":"crm_access"`, 1),
		"unknown kind":         strings.Replace(string(b), `"kind":"outbound"`, `"kind":"print"`, 1),
		"two payloads":         strings.Replace(string(b), `"source":`, `"crm":{},"source":`, 1),
		"event id":             strings.Replace(string(b), `"event_id":"mail-5d1e9b7c-0001"`, `"event_id":"other"`, 1),
		"not json":             string(b[:len(b)-1]),
	} {
		if _, err := UnmarshalEvent([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	_, err = UnmarshalEvent(make([]byte, MaxEnvelopeBytes+1))
	decodeErr(t, err, ReasonOversized, 1)
}

func mustMarshal(t testing.TB, e *Event) []byte {
	t.Helper()
	b, err := MarshalEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnknownKind(t *testing.T) {
	d := newTestDecoder(t, Limits{})
	_, err := d.DecodeRaw("dns", []byte(crm), Source{}, testNow)
	decodeErr(t, err, ReasonUnknownKind, 1)
	// The wrong schema for the document is a schema error, not a panic.
	_, err = d.DecodeRaw(KindOutbound, []byte(crm), Source{}, testNow)
	decodeErr(t, err, ReasonSchema, -1)
}

func TestConcurrentUse(t *testing.T) {
	d := newTestDecoder(t, Limits{})
	raw := readExample(t, "outbound.email.json")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := d.DecodeRaw(KindOutbound, raw, Source{}, testNow); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
