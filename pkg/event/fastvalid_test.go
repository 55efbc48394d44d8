package event_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/scenario"
)

// The fast path of schema validation (fastvalid.go) is only correct if it
// never calls valid what the JSON Schema rejects, and only useful if it
// calls valid what real traffic sends. These tests compare the two on the
// same trees.

func fastDecoder(t testing.TB) *event.Decoder {
	t.Helper()
	d, err := event.NewDecoder(event.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type sample struct {
	name string
	kind event.Kind
	raw  []byte
}

// corpus: every example of schemas/examples (valid and invalid) and the
// generated traffic of the demo day and of a small organisation.
func corpus(t testing.TB) []sample {
	t.Helper()
	var out []sample
	for _, pattern := range []string{"*.json", "invalid/*.json"} {
		files, err := filepath.Glob(filepath.Join("../../schemas/examples", pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			k := event.KindOutbound
			if strings.HasPrefix(filepath.Base(f), "crm_access") {
				k = event.KindCRMAccess
			}
			out = append(out, sample{f, k, b})
		}
	}
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	for i, r := range scenario.DemoDay(3, start.Add(9*time.Hour)).Events {
		out = append(out, sample{"demo/" + string(r.Kind) + "/" + strconv.Itoa(i), r.Kind, r.Value})
	}
	org, err := scenario.NewOrg(scenario.OrgOptions{Seed: 5, Employees: 40, Customers: scenario.MinOrgCustomers, Days: 3, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range org.Events {
		out = append(out, sample{"org/" + string(r.Kind) + "/" + strconv.Itoa(i), r.Kind, r.Value})
	}
	return out
}

// TestFastValidAgrees: on every sample, fastValid ⇔ schema (the generated
// traffic and the examples are all decided by the fast path), and on every
// mutation of every example and of every 40th generated event fastValid ⇒
// schema.
func TestFastValidAgrees(t *testing.T) {
	d := fastDecoder(t)
	var valid, mutations, conservative int
	for i, s := range corpus(t) {
		parsed, fast, schema := event.SchemaVerdicts(d, s.kind, s.raw)
		if !parsed {
			continue // duplicate keys or invalid JSON: rejected before step 4
		}
		if fast != schema {
			t.Errorf("%s: fast path says %v, the schema %v", s.name, fast, schema)
		}
		if schema {
			valid++
		}
		if testing.Short() && i%50 != 0 || i%40 != 0 && strings.Contains(s.name, "/") {
			continue // mutations: every example, every 40th generated event (every 50th with -short)
		}
		for _, m := range mutate(t, s.raw) {
			mutations++
			_, fast, schema := event.SchemaVerdicts(d, s.kind, m)
			if fast && !schema {
				t.Errorf("%s: the fast path accepts a document the schema rejects: %s", s.name, m)
			}
			if schema && !fast {
				conservative++
			}
		}
	}
	if valid < 1000 {
		t.Fatalf("only %d valid samples: the corpus lost its generated traffic", valid)
	}
	t.Logf("%d valid samples decided by the fast path; %d mutations, of which %d valid ones left to the schema (1.0 for 1, leap seconds, ...)", valid, mutations, conservative)
}

// replacements are values put in place of every value of a document.
var replacements = []any{
	nil, true, false, json.Number("0"), json.Number("1"), json.Number("1.0"), json.Number("-1"), json.Number("1e3"),
	json.Number("2"), json.Number("4009"), json.Number("1001"), json.Number("6006"), json.Number("6003"),
	json.Number("9007199254740992"), json.Number("2147483648"),
	"", "x", "view", "email", "usb", "upload", " spaced id ", strings.Repeat("é", 129), strings.Repeat("a", 257),
	strings.Repeat("b", 8193), "a@b", "not an email", "user@example.com", "example.com", "-bad-.host", "10.0.0.1", "::1", "999.1.1.1",
	"https://example.com/x", "not a uri", "2025-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2024-02-29T23:59:60Z",
	"2024-02-29T10:00:00.1234567890Z", "2024-02-29t10:00:00Z", "2024-02-29T10:00:00+24:00", "2024-02-29T10:00:00.5+01:00",
	strings.Repeat("a", 64), strings.Repeat("g", 64),
	[]any{}, []any{"x"}, []any{json.Number("1")}, map[string]any{}, map[string]any{"uid": "u"}, map[string]any{"ip": "10.0.0.1"},
}

// mutate returns variants of raw: each value replaced by each replacement,
// each key removed, an unknown and a wrong-case key added to each object.
func mutate(t testing.TB, raw []byte) [][]byte {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil
	}
	var out [][]byte
	emit := func() {
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			for _, k := range keys {
				old := v[k]
				for _, r := range replacements {
					v[k] = r
					emit()
				}
				delete(v, k)
				emit()
				v[k] = old
				walk(old)
			}
			for _, extra := range []string{"unknown_field", "Event_ID", "UID"} {
				if _, ok := v[extra]; !ok {
					v[extra] = "x"
					emit()
					delete(v, extra)
				}
			}
		case []any:
			for i, old := range v {
				for _, r := range replacements[:8] {
					v[i] = r
					emit()
				}
				v[i] = old
				walk(old)
			}
		}
	}
	walk(doc)
	return out
}

// TestTypedDecodeAgrees: on what the fast path accepts, the Go value built
// from the parsed tree (fromtree.go) is exactly what encoding/json decodes.
func TestTypedDecodeAgrees(t *testing.T) {
	d := fastDecoder(t)
	n := 0
	for _, s := range corpus(t) {
		if _, fast, _ := event.SchemaVerdicts(d, s.kind, s.raw); fast {
			checkTypedAgree(t, d, s.kind, s.raw)
			n++
		}
	}
	if n < 1000 {
		t.Fatalf("only %d samples on the fast path", n)
	}
}

func checkTypedAgree(t *testing.T, d *event.Decoder, k event.Kind, raw []byte) {
	t.Helper()
	a, b, ok := event.TypedDecodes(d, k, raw)
	if !ok {
		t.Fatalf("a typed decoder failed on a document the fast path accepts: %s", raw)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("the tree builder and encoding/json disagree:\n%+v\n%+v", a, b)
	}
}

// FuzzFastValid: whatever the bytes, the fast path never accepts what the
// schema rejects, and on what it accepts the tree builder and encoding/json
// agree.
func FuzzFastValid(f *testing.F) {
	for i, s := range corpus(f) {
		if i%25 == 0 || !strings.HasPrefix(s.name, "org/") {
			f.Add(s.kind == event.KindOutbound, s.raw)
		}
	}
	d := fastDecoder(f)
	f.Fuzz(func(t *testing.T, outbound bool, raw []byte) {
		if len(raw) > 64<<10 {
			return
		}
		k := event.KindCRMAccess
		if outbound {
			k = event.KindOutbound
		}
		_, fast, schema := event.SchemaVerdicts(d, k, raw)
		if fast && !schema {
			t.Fatalf("the fast path accepts a document the schema rejects")
		}
		if fast && utf8.Valid(raw) {
			checkTypedAgree(t, d, k, raw)
		}
	})
}

// TestMarshalEventAgrees: MarshalEvent's JSON form (goccy/go-json) writes exactly the
// bytes of its encoding/json path for every decodable sample, including
// HTML characters, U+2028 and invalid UTF-8 in a value.
func TestMarshalEventAgrees(t *testing.T) {
	d := fastDecoder(t)
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	n := 0
	check := func(name string, e *event.Event) {
		t.Helper()
		fast, err1 := event.MarshalEventJSON(e)
		std, err2 := event.MarshalEventStd(e)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v / %v", name, err1, err2)
		}
		if !bytes.Equal(fast, std) {
			t.Fatalf("%s: MarshalEvent differs from encoding/json:\n%s\n%s", name, fast, std)
		}
		n++
	}
	for i, s := range corpus(t) {
		e, err := d.DecodeRaw(s.kind, s.raw, event.Source{Topic: "t", Partition: int(i % 6), Offset: int64(i)}, now)
		if err != nil {
			continue
		}
		check(s.name, e)
		if e.Outbound != nil && i%97 == 0 {
			for _, odd := range []string{"<b>A & B</b> -> 'q'", "line\u2028sep\u2029para", "bad \xff byte", "tab\tnl\nquote\"back\\ctl\x01"} {
				e.Outbound.Content.Text, e.Outbound.Subject = odd, odd
				check(s.name+" with "+strconv.Quote(odd), e)
			}
		}
	}
	if n < 1000 {
		t.Fatalf("only %d events compared", n)
	}
}
