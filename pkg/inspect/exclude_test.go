package inspect

import (
	"strings"
	"testing"
)

func TestExclusionsAndMinCount(t *testing.T) {
	const text = "card 4111 1111 1111 1111, card 5555 5555 5555 4444, " +
		"call +1 415 555 0132 or support +44 20 7946 0958, mail a@example.org"
	tests := []struct {
		name string
		cfg  Config
		want map[Type]int // detections per type
	}{
		{"none", Config{}, map[Type]int{Card: 2, Phone: 2, Email: 1}},
		{"card prefix", Config{Exclude: []Exclusion{{Type: Card, Pattern: "^4111"}}}, map[Type]int{Card: 1, Phone: 2, Email: 1}},
		{"support phone", Config{Exclude: []Exclusion{{Type: Phone, Pattern: `^\+?442079460958$`}}}, map[Type]int{Card: 2, Phone: 1, Email: 1}},
		{"other type unaffected", Config{Exclude: []Exclusion{{Type: Email, Pattern: "^4111"}}}, map[Type]int{Card: 2, Phone: 2, Email: 1}},
		{"any type", Config{Exclude: []Exclusion{{Pattern: "example\\.org$|^5555"}}}, map[Type]int{Card: 1, Phone: 2}},
		{"min count met", Config{MinCount: map[Type]int{Card: 2}}, map[Type]int{Card: 2, Phone: 2, Email: 1}},
		{"min count not met", Config{MinCount: map[Type]int{Card: 3, Email: 2}}, map[Type]int{Phone: 2}},
		{"min count after exclusion", Config{MinCount: map[Type]int{Card: 2}, Exclude: []Exclusion{{Type: Card, Pattern: "^4111"}}}, map[Type]int{Phone: 2, Email: 1}},
		{"min count one", Config{MinCount: map[Type]int{Email: 1, Card: 0}}, map[Type]int{Card: 2, Phone: 2, Email: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestScanner(t, tc.cfg)
			ds, _ := s.ScanString(text, nil)
			got := map[Type]int{}
			for i, d := range ds {
				got[d.Type]++
				if i > 0 && ds[i-1].Start > d.Start {
					t.Errorf("detections out of order: %+v", ds)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestMinCountCSV(t *testing.T) {
	s := newTestScanner(t, Config{MinCount: map[Type]int{Email: 3}})
	ds, _, _ := s.ScanCSV([]byte("name,email\nA,a@example.org\nB,b@example.org\n"), ',', nil)
	if len(ds) != 0 {
		t.Fatalf("2 emails under a minimum of 3: %+v", ds)
	}
	ds, _, _ = s.ScanCSV([]byte("name,email\nA,a@example.org\nB,b@example.org\nC,c@example.org\n"), ',', nil)
	if len(ds) != 3 {
		t.Fatalf("3 emails, minimum 3: got %d", len(ds))
	}
}

func TestExclusionConfigErrors(t *testing.T) {
	tok := testTokenizer(t)
	tests := []struct {
		name  string
		cfg   Config
		wants []string // every one must appear in the error
	}{
		{"bad regex", Config{Exclude: []Exclusion{{Type: Card, Pattern: "("}}}, []string{"exclusion 1 (CREDIT_CARD)"}},
		{"empty", Config{Exclude: []Exclusion{{Pattern: ""}}}, []string{"1-1024 bytes"}},
		{"matches empty", Config{Exclude: []Exclusion{{Pattern: "x*"}}}, []string{"empty string"}},
		{"too long", Config{Exclude: []Exclusion{{Pattern: strings.Repeat("a", MaxCustomPatternLen+1)}}}, []string{"1-1024 bytes"}},
		{"too many insts", Config{Exclude: []Exclusion{{Pattern: "a{1000}b{1000}c{1000}d{1000}e{200}"}}}, []string{"instructions"}},
		{"unknown type", Config{Exclude: []Exclusion{{Type: "NOPE", Pattern: "x"}}}, []string{`unknown type "NOPE"`}},
		{"min count", Config{MinCount: map[Type]int{"NOPE": 2, Card: -1}}, []string{`unknown type "NOPE"`, "negative"}},
		{"all at once", Config{
			ContextWindow: -1,
			Exclude:       []Exclusion{{Pattern: "("}, {Type: "X", Pattern: "y"}},
			MinCount:      map[Type]int{Email: -2},
		}, []string{"ContextWindow", "exclusion 1", `unknown type "X"`, "negative"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, tok)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	custom := Config{
		Custom:   []CustomDetector{{Name: "TICKET", Pattern: `TKT-\d{6}`}},
		Exclude:  []Exclusion{{Type: "TICKET", Pattern: "^TKT-000"}},
		MinCount: map[Type]int{"TICKET": 2},
	}
	if _, err := New(custom, tok); err != nil {
		t.Fatalf("custom type in exclusions: %v", err)
	}
}
