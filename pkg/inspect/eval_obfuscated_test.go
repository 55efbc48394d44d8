package inspect

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// obfuscations rewrite a value the way copy-paste accidents and evasion do.
var obfuscations = []struct {
	name string
	f    func(string) string
}{
	// A zero-width space after every third character.
	{"zero-width", func(v string) string {
		var b strings.Builder
		for i, r := range v {
			b.WriteRune(r)
			if i%3 == 2 {
				b.WriteString("\u200b")
			}
		}
		return b.String()
	}},
	// Letters, digits, '@' and '.' in their full-width forms (U+FF01-FF5E).
	{"full-width", func(v string) string {
		var b strings.Builder
		for _, r := range v {
			if r < 0x80 && (isAlnum(byte(r)) || r == '@' || r == '.') {
				r += 0xFEE0
			}
			b.WriteRune(r)
		}
		return b.String()
	}},
	// Both, plus a soft hyphen and a BOM.
	{"mixed", func(v string) string {
		var b strings.Builder
		for i, r := range v {
			if i%2 == 0 && r < 0x80 && (isDigit(byte(r)) || r == '@') {
				r += 0xFEE0
			}
			b.WriteRune(r)
			switch i % 7 {
			case 3:
				b.WriteString("\u00ad")
			case 5:
				b.WriteString("\ufeff")
			}
		}
		return b.String()
	}},
}

// TestObfuscatedRecall is a generated corpus: every valid e-mail, card,
// phone and IBAN of the shared labelled values, obfuscated three ways and
// embedded in a sentence. A value counts as recalled when a detection of
// its type covers it and carries the token of the plain value (so EDM and
// correlation see through the obfuscation). Run it with
//
//	go test ./pkg/inspect -run TestObfuscatedRecall -v
func TestObfuscatedRecall(t *testing.T) {
	s := newTestScanner(t, Config{})
	f := openEval(t, "values.jsonl")
	defer f.Close()
	var vals []evalValue
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var v evalValue
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		if v.Valid != nil && *v.Valid {
			vals = append(vals, v)
		}
	}
	types := []Type{Email, Card, Phone, IBAN}
	var report strings.Builder
	report.WriteString("\n| type | obfuscation | values | recalled, same token |\n|---|---|---|---|\n")
	for _, ty := range types {
		for _, ob := range obfuscations {
			n, hit := 0, 0
			var missed []string
			for _, v := range vals {
				if Type(v.Type) != ty {
					continue
				}
				plain := strings.TrimSpace(v.Value)
				pd, _ := s.ScanString(plain, nil)
				if len(pd) != 1 || pd[0].Type != ty {
					continue // not found plain: not this test's business
				}
				n++
				pre := "the value "
				text := pre + ob.f(plain) + " was sent yesterday."
				ds, _ := s.ScanString(text, nil)
				ok := false
				for _, d := range ds {
					if d.Type == ty && d.Token == pd[0].Token && d.Start <= len(pre) && d.End >= len(text)-len(" was sent yesterday.")-3 {
						ok = true
					}
				}
				if ok {
					hit++
				} else if len(missed) < 3 {
					missed = append(missed, fmt.Sprintf("%q", ob.f(plain)))
				}
			}
			fmt.Fprintf(&report, "| %s | %s | %d | %.1f%% |\n", ty, ob.name, n, 100*float64(hit)/float64(max(n, 1)))
			if n > 0 && float64(hit) < 0.99*float64(n) {
				t.Errorf("%s %s: recall %d/%d; missed e.g. %v", ty, ob.name, hit, n, missed)
			}
		}
	}
	t.Log(report.String())
}
