package inspect

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode"
)

// evalDir is where the shared evaluation data lives: the repository is
// cloned next to shared/.
var evalDir = filepath.Join("..", "..", "..", "shared", "data", "pii")

func openEval(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join(evalDir, name))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("evaluation data missing under CI: %v", err)
		}
		t.Skipf("evaluation data not present (%v); set CI=true to make this fatal", err)
	}
	return f
}

type evalValue struct {
	Type  string `json:"type"`
	Value string `json:"value"`
	Valid *bool  `json:"valid"`
}

type typeTally struct {
	valid, recalled, recalledMed int
	invalid, invalidHit          int
	exotic, exoticHit            int
	fpOther                      int // values of other types fully covered by this type
	missed                       []string
}

// covers reports whether a detection of typ covers text[vs:ve] entirely;
// minConf filters by confidence.
func covers(ds []Detection, typ Type, vs, ve int, minConf Confidence) bool {
	for _, d := range ds {
		if d.Type == typ && d.Start <= vs && d.End >= ve && d.Confidence >= minConf {
			return true
		}
	}
	return false
}

// TestEvaluation measures precision and recall per type on the shared
// labelled values (alone and embedded in a sentence) and the false-positive
// behaviour on the background ham corpus. Run it with
//
//	go test ./pkg/inspect -run TestEvaluation -v
//
// and copy the tables it logs into docs/DETECTION.md.
func TestEvaluation(t *testing.T) {
	s := newTestScanner(t, Config{})
	t.Run("values", func(t *testing.T) { evalValues(t, s) })
	t.Run("ham", func(t *testing.T) { evalHam(t, s) })
}

func evalValues(t *testing.T, s *Scanner) {
	f := openEval(t, "values.jsonl")
	defer f.Close()
	var vals []evalValue
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var v evalValue
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("values.jsonl: %v", err)
		}
		vals = append(vals, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(vals) < 1000 {
		t.Fatalf("values.jsonl has only %d values", len(vals))
	}
	types := []Type{Email, Card, Phone, SSN, IBAN}
	contexts := []struct{ name, pre, post string }{
		{"alone", "", ""},
		{"in text", "the value ", " was sent yesterday."},
	}
	var report strings.Builder
	for _, cx := range contexts {
		tally := map[Type]*typeTally{}
		for _, ty := range types {
			tally[ty] = &typeTally{}
		}
		for _, v := range vals {
			text := cx.pre + v.Value + cx.post
			vs, ve := len(cx.pre), len(cx.pre)+len(v.Value)
			// Surrounding white space is not part of a value.
			vs += len(v.Value) - len(strings.TrimLeft(v.Value, " \t\r\n"))
			ve -= len(v.Value) - len(strings.TrimRight(v.Value, " \t\r\n"))
			if vs >= ve {
				continue
			}
			ds, _ := s.ScanString(text, nil)
			own := Type(v.Type)
			tl := tally[own]
			switch {
			case v.Valid == nil:
				tl.exotic++
				if covers(ds, own, vs, ve, Low) {
					tl.exoticHit++
				}
			case *v.Valid:
				tl.valid++
				if covers(ds, own, vs, ve, Low) {
					tl.recalled++
				} else {
					tl.missed = append(tl.missed, v.Value)
				}
				if covers(ds, own, vs, ve, Medium) {
					tl.recalledMed++
				}
			default:
				tl.invalid++
				if covers(ds, own, vs, ve, Low) {
					tl.invalidHit++
				}
			}
			for _, other := range types {
				if other != own && covers(ds, other, vs, ve, Low) {
					tally[other].fpOther++
				}
			}
		}
		fmt.Fprintf(&report, "\nValues %s:\n\n", cx.name)
		fmt.Fprintf(&report, "| type | valid | recall (any) | recall (≥ medium) | invalid reported | other types reported as it | precision | F1 | exotic (valid=null) reported |\n")
		fmt.Fprintf(&report, "|---|---|---|---|---|---|---|---|---|\n")
		for _, ty := range types {
			tl := tally[ty]
			tp := tl.recalled
			fp := tl.invalidHit + tl.fpOther
			rec := ratio(tp, tl.valid)
			prec := ratio(tp, tp+fp)
			f1 := 0.0
			if rec+prec > 0 {
				f1 = 2 * rec * prec / (rec + prec)
			}
			fmt.Fprintf(&report, "| %s | %d | %.1f%% | %.1f%% | %d / %d | %d | %.1f%% | %.3f | %d / %d |\n",
				ty, tl.valid, 100*rec, 100*ratio(tl.recalledMed, tl.valid), tl.invalidHit, tl.invalid,
				tl.fpOther, 100*prec, f1, tl.exoticHit, tl.exotic)
			structured := ty == Card || ty == Phone || ty == SSN || ty == IBAN
			if structured && rec < 0.99 {
				t.Errorf("%s %s: recall %.1f%% < 99%%; missed %q", cx.name, ty, 100*rec, tl.missed)
			}
			if len(tl.missed) > 0 {
				fmt.Fprintf(&report, "\n  %s missed (%s): %q\n\n", ty, cx.name, tl.missed)
			}
		}
	}
	t.Log(report.String())
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

type hamMessage struct {
	ID        string `json:"id"`
	Text      string `json:"text"`
	BodyStart int    `json:"body_start"`
}

func evalHam(t *testing.T, s *Scanner) {
	f := openEval(t, "background-ham.jsonl")
	defer f.Close()
	var msgs []hamMessage
	dec := json.NewDecoder(f)
	for dec.More() {
		var m hamMessage
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("background-ham.jsonl: %v", err)
		}
		msgs = append(msgs, m)
	}
	if len(msgs) < 1000 {
		t.Fatalf("background-ham.jsonl has only %d messages", len(msgs))
	}
	type key struct {
		ty   Type
		conf Confidence
		body bool
	}
	counts := map[key]int{}
	var ds []Detection
	total := 0
	var elapsed time.Duration
	bad := 0
	for _, m := range msgs {
		total += len(m.Text)
		t0 := time.Now()
		ds, _ = s.ScanString(m.Text, ds[:0])
		elapsed += time.Since(t0)
		for _, d := range ds {
			counts[key{d.Type, d.Confidence, d.Start >= m.BodyStart}]++
			if d.Confidence != High {
				continue
			}
			raw := m.Text[d.Start:d.End]
			ok := true
			switch d.Type {
			case Card:
				ok = refCard(raw)
			case SSN:
				ok = refSSN(raw)
			case IBAN:
				ok = refIBAN(raw)
			}
			if !ok {
				bad++
				t.Errorf("%s: High %s detection that does not validate: %s", m.ID, d.Type, d.Masked)
			}
		}
	}
	per1k := func(n int) float64 { return float64(n) * 1000 / float64(len(msgs)) }
	var report strings.Builder
	fmt.Fprintf(&report, "\nBackground ham: %d messages, %.1f MB; High card/SSN/IBAN that fail independent validation: %d\n\n", len(msgs), float64(total)/1e6, bad)
	fmt.Fprintf(&report, "| type | part | low /1k msgs | medium /1k msgs | high /1k msgs |\n|---|---|---|---|---|\n")
	all := append([]Type{}, DefaultDetectors...)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for _, ty := range all {
		for _, body := range []bool{false, true} {
			part := "headers"
			if body {
				part = "body"
			}
			fmt.Fprintf(&report, "| %s | %s | %.1f | %.1f | %.1f |\n", ty, part,
				per1k(counts[key{ty, Low, body}]), per1k(counts[key{ty, Medium, body}]), per1k(counts[key{ty, High, body}]))
		}
	}
	fmt.Fprintf(&report, "\n(scan time on this corpus: %.0f MB/s, informational)\n", float64(total)/1e6/elapsed.Seconds())
	t.Log(report.String())
}

// Independent reference validators for the ham check: they re-derive the
// value from the raw text, not from the scanner's normalization.

func refDigits(raw string) string {
	var b strings.Builder
	for _, r := range raw {
		if unicode.IsDigit(r) {
			if r >= 0xFF10 && r <= 0xFF19 {
				r = '0' + (r - 0xFF10)
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

func refCard(raw string) bool {
	d := refDigits(raw)
	if len(d) < 13 || len(d) > 19 {
		return false
	}
	sum := 0
	for i := 0; i < len(d); i++ {
		v := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

func refSSN(raw string) bool {
	d := refDigits(raw)
	if len(d) != 9 {
		return false
	}
	return d[:3] != "000" && d[:3] != "666" && d[0] != '9' && d[3:5] != "00" && d[5:] != "0000"
}

func refIBAN(raw string) bool {
	var v strings.Builder
	for _, r := range strings.ToUpper(raw) {
		if r >= 0xFF10 && r <= 0xFF19 {
			r = '0' + (r - 0xFF10)
		}
		if r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' {
			v.WriteRune(r)
		}
	}
	s := v.String()
	if len(s) < 15 || len(s) > 34 {
		return false
	}
	s = s[4:] + s[:4]
	var num strings.Builder
	for _, r := range s {
		if r >= 'A' {
			fmt.Fprintf(&num, "%d", r-'A'+10)
		} else {
			num.WriteRune(r)
		}
	}
	n, ok := new(big.Int).SetString(num.String(), 10)
	return ok && new(big.Int).Mod(n, big.NewInt(97)).Int64() == 1
}
