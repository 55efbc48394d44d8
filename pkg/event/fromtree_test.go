package event

import (
	"fmt"
	"strings"
	"testing"
)

// TestParseDocDuplicates: duplicate keys are found and the first value
// kept, in small objects (scanned) and in objects larger than
// objectScanMax (indexed by a map from then on), at any position.
func TestParseDocDuplicates(t *testing.T) {
	s, err := loadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	obj := func(n int, dupOf, dupAt int) string {
		var parts []string
		for i := range n {
			parts = append(parts, fmt.Sprintf(`"k%d":%d`, i, i))
			if i == dupAt {
				parts = append(parts, fmt.Sprintf(`"k%d":-1`, dupOf))
			}
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	tests := []struct {
		name         string
		doc          string
		dups         int
		checkKey     string
		checkFirstOf string
	}{
		{"small, none", obj(5, -1, -1), 0, "", ""},
		{"small, last repeats first", obj(5, 0, 4), 1, "k0", "0"},
		{"at the scan limit", obj(objectScanMax, 3, objectScanMax-1), 1, "k3", "3"},
		{"large, early key repeated late", obj(100, 2, 90), 1, "k2", "2"},
		{"large, late key repeated", obj(100, 50, 60), 1, "k50", "50"},
		{"large, none", obj(100, -1, -1), 0, "", ""},
		{"nested", `{"a":{"b":1,"b":2},"a":3}`, 2, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree, _, dups, err := s.parseDoc([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if len(dups) != tt.dups {
				t.Fatalf("%d duplicates reported, want %d: %v", len(dups), tt.dups, dups)
			}
			if tt.checkKey == "" {
				return
			}
			v, ok := tree.(object).get(tt.checkKey)
			if !ok || fmt.Sprint(v) != tt.checkFirstOf {
				t.Fatalf("%s = %v, want the first value %s", tt.checkKey, v, tt.checkFirstOf)
			}
		})
	}
}

// TestParseDocTimeLiteral: the raw literal of the top-level "time" string
// is kept, escapes included, and nested or non-string "time" values are not
// taken for it.
func TestParseDocTimeLiteral(t *testing.T) {
	s, err := loadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ doc, want string }{
		{`{"time":"2026-11-02T09:00:00Z"}`, `"2026-11-02T09:00:00Z"`},
		{`{"time":"\u0032026-11-02T09:00:00Z"}`, `"\u0032026-11-02T09:00:00Z"`},
		{`{"a":{"time":"x"},"time":"y"}`, `"y"`},
		{`{"time":5}`, ``},
		{`{"a":{"time":"x"}}`, ``},
	}
	for _, tt := range tests {
		_, lit, _, err := s.parseDoc([]byte(tt.doc))
		if err != nil {
			t.Fatal(err)
		}
		if string(lit) != tt.want {
			t.Errorf("%s: time literal %q, want %q", tt.doc, lit, tt.want)
		}
	}
}
