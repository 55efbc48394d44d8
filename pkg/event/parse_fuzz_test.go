package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var parseSeeds = []string{
	crm, outbound, `{}`, `[]`, `""`, `0`, `-0.5e+10`, `true`, `null`, `{"a":[1,{"b":null}]}`,
	`{"a":1,"a":2}`, `{"\u0061":1,"a":2}`, `"\ud83d\ude00"`, `"\\u00e9\n\t\/"`, `[1,]`, `{"a" 1}`, `01`, `1.`, `.5`,
	`"a\u00"`, "\"\x01\"", `{"a":1}x`, `  [ ]  `, `[-]`, `1e`, `"\ud800"`, "\"jo\xffhn\"", "\"\\\xff\"", "[\xff]",
}

// FuzzParseTree checks the tree parser against encoding/json: it accepts
// exactly the documents json.Valid accepts (apart from its own depth and
// number bounds), and builds the tree jsonschema.UnmarshalJSON builds when
// there is no duplicate key.
func FuzzParseTree(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	s, err := loadSchemas()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		doc, _, err := sanitizeUTF8(raw)
		if err != nil {
			return
		}
		tree, dups, err := s.parseTree(doc)
		valid := json.Valid(doc)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error type %T", err)
			}
			if fe.Rule == "depth" || fe.Rule == "number" {
				return
			}
			if valid {
				t.Fatalf("rejects valid JSON: %v", err)
			}
			return
		}
		if !valid {
			t.Fatalf("accepts invalid JSON")
		}
		if len(dups) > 0 {
			return
		}
		want, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(tree, want) {
			t.Fatalf("tree differs:\n%#v\n%#v", tree, want)
		}
	})
}

// FuzzSanitizeUTF8 checks that removing invalid UTF-8 never changes the
// structure of a document: when the result is JSON, it is the document
// encoding/json would read, minus the U+FFFD it would have put in.
func FuzzSanitizeUTF8(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, n, err := sanitizeUTF8(raw)
		if err != nil {
			return
		}
		if !utf8.Valid(out) || n < 0 || len(out) > len(raw) {
			t.Fatalf("bad output %q (%d removed)", out, n)
		}
		if n == 0 && !bytes.Equal(out, raw) {
			t.Fatalf("changed without removing: %q", out)
		}
		if !json.Valid(out) {
			return
		}
		if !json.Valid(raw) {
			t.Fatalf("removal made invalid JSON valid: %q -> %q", raw, out)
		}
		// Valid JSON can still fail to decode (1e700 overflows float64):
		// then both must fail alike.
		var a, b any
		errA, errB := json.Unmarshal(raw, &a), json.Unmarshal(out, &b)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("decodes differently: %v vs %v", errA, errB)
		}
		if errA != nil {
			return
		}
		sa, okA := stripReplacement(a)
		sb, okB := stripReplacement(b)
		if okA && okB && !reflect.DeepEqual(sa, sb) {
			t.Fatalf("structure changed:\n%#v\n%#v", sa, sb)
		}
	})
}

// stripReplacement removes U+FFFD from every string and key; false when
// that makes two keys collide.
func stripReplacement(v any) (any, bool) {
	switch v := v.(type) {
	case string:
		return strings.ReplaceAll(v, "\uFFFD", ""), true
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			var ok bool
			if out[i], ok = stripReplacement(x); !ok {
				return nil, false
			}
		}
		return out, true
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			k = strings.ReplaceAll(k, "\uFFFD", "")
			if _, dup := out[k]; dup {
				return nil, false
			}
			var ok bool
			if out[k], ok = stripReplacement(x); !ok {
				return nil, false
			}
		}
		return out, true
	}
	return v, true
}
