package inspect

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leakline/leakline/pkg/testenv"
)

var words = strings.Fields(`the of and to in is was for on that with as by at from this be are it an
have has had not but or which their they we you he she will would there were been all more one about
can also other new some could time these two may first then do any like my now over such our man me
even most made after only many before must through back years where much your way well down should
because each just those people how too little state good very make world still own see men work long
get here between both life being under never day same another know while last might us great old year
off come since against go came right used take three states himself few house use during without again
place around however home small found thought went say part once general high upon school every does
got united left number course war until always away something fact though water less public put think
almost hand enough far took head yet government system better set told nothing night end why called
didn't eyes find going look asked later knew point next program city business give group toward young
let room president side social given present several order national possible rather second face per
among form important often things looking early white case john become large big need four within felt
along children saw best church ever least power development light thing seemed family interest want
members mind country area others although turn done open god service certain kind problem began
meeting report invoice customer account shipment schedule review budget quarter project update team`)

// piiValue returns a fresh random valid value of the given kind, so that
// the benchmark text holds distinct values (a repeat within one input is
// cheaper: its token is cached).
func piiValue(kind int, rng *rand.Rand) string {
	digits := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
		return b.String()
	}
	first := []string{"jane", "john", "maria", "wei", "olga", "sam", "priya", "tom"}
	last := []string{"doe", "smith", "garcia", "chen", "ivanova", "lee", "patel", "brown"}
	switch kind % 10 {
	case 0, 9: // e-mail
		return fmt.Sprintf("%s.%s%d@%s", first[rng.IntN(8)], last[rng.IntN(8)], rng.IntN(1000),
			[]string{"example.com", "mail.example.org", "corp.example.net"}[rng.IntN(3)])
	case 1: // card, spaced
		c := withLuhn("4" + digits(14))
		return c[:4] + " " + c[4:8] + " " + c[8:12] + " " + c[12:]
	case 8: // card, bare
		return withLuhn("5" + string(byte('1'+rng.IntN(5))) + digits(13))
	case 2: // NANP phone
		return fmt.Sprintf("(%d%02d) %d%02d-%04d", 2+rng.IntN(8), rng.IntN(90), 2+rng.IntN(8), 20+rng.IntN(80), rng.IntN(10000))
	case 3: // SSN
		return fmt.Sprintf("%03d-%02d-%04d", 1+rng.IntN(665), 1+rng.IntN(99), 1+rng.IntN(9999))
	case 4: // German IBAN, spaced
		bban := digits(18)
		v := []byte(bban + "131400") // "DE00" moved to the end, letters as numbers
		rem := 0
		for _, c := range v {
			rem = (rem*10 + int(c-'0')) % 97
		}
		iban := fmt.Sprintf("DE%02d%s", 98-rem, bban)
		var b strings.Builder
		for i := 0; i < len(iban); i += 4 {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(iban[i:min(i+4, len(iban))])
		}
		return b.String()
	case 5: // UK phone, international
		return fmt.Sprintf("+44 20 7%03d %04d", rng.IntN(1000), rng.IntN(10000))
	case 6: // public IPv4
		return fmt.Sprintf("%d.%d.%d.%d", 11+rng.IntN(90), rng.IntN(256), rng.IntN(256), 1+rng.IntN(254))
	default: // NINO
		return fmt.Sprintf("%c%c %02d %02d %02d %c", "ABCEGHJKLMNPRSTWXYZ"[rng.IntN(19)], "ABCEGHJKLMNPRSTWXYZ"[rng.IntN(19)],
			rng.IntN(100), rng.IntN(100), rng.IntN(100), "ABCD"[rng.IntN(4)])
	}
}

// mixedText generates about size bytes of English-like text with ordinary
// numbers (years, times, amounts, counts: one digit run per ~90 bytes, as
// in the bodies of the ham corpus) and one PII value per ~2 KB,
// deterministically from seed.
func mixedText(size int, seed uint64) string {
	rng := rand.New(rand.NewPCG(seed, 0x1ea711e))
	var b strings.Builder
	b.Grow(size + 256)
	nextPII := 1024 + rng.IntN(2048)
	k := 0
	for b.Len() < size {
		// One sentence.
		n := 6 + rng.IntN(14)
		for i := 0; i < n; i++ {
			w := words[rng.IntN(len(words))]
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			b.WriteString(w)
			switch r := rng.IntN(90); {
			case r == 0:
				fmt.Fprintf(&b, " %d", 1990+rng.IntN(40))
			case r == 1:
				fmt.Fprintf(&b, " %d:%02d", rng.IntN(24), rng.IntN(60))
			case r == 2:
				fmt.Fprintf(&b, " $%d.%02d", rng.IntN(5000), rng.IntN(100))
			case r == 3:
				fmt.Fprintf(&b, " %d", rng.IntN(100))
			case r == 4:
				b.WriteByte(',')
			}
			b.WriteByte(' ')
		}
		if b.Len() >= nextPII {
			b.WriteString("see ")
			b.WriteString(piiValue(k, rng))
			b.WriteString(" for details")
			k++
			nextPII = b.Len() + 1024 + rng.IntN(2048)
		}
		if rng.IntN(6) == 0 {
			b.WriteString(".\n\n")
		} else {
			b.WriteString(". ")
		}
	}
	return b.String()
}

func benchScan(b *testing.B, cfg Config, text []byte) {
	s := newTestScanner(b, cfg)
	dst := make([]Detection, 0, 4096)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = s.Scan(text, dst[:0])
	}
	b.ReportMetric(float64(len(dst)), "detections/op")
}

// BenchmarkScanMixed scans ~1 MiB of English-like text with ~1 PII value per
// 2 KB.
func BenchmarkScanMixed(b *testing.B) {
	text := []byte(mixedText(1<<20, 1))
	b.Run("default", func(b *testing.B) { benchScan(b, Config{}, text) })
	b.Run("email+card", func(b *testing.B) { benchScan(b, Config{Detectors: []Type{Email, Card}}, text) })
}

// BenchmarkScanNoPII scans ~1 MiB of the same kind of text without PII.
func BenchmarkScanNoPII(b *testing.B) {
	text := []byte(mixedText(1<<20, 1))
	s := newTestScanner(b, Config{})
	ds, _ := s.Scan(text, nil)
	for i := len(ds) - 1; i >= 0; i-- {
		for k := ds[i].Start; k < ds[i].End; k++ {
			text[k] = 'x'
		}
	}
	if ds, _ = s.Scan(text, ds[:0]); len(ds) != 0 {
		b.Fatalf("PII left: %d detections", len(ds))
	}
	b.Run("default", func(b *testing.B) { benchScan(b, Config{}, text) })
}

// htmlText wraps the mixed text's sentences in HTML markup, as the text/html
// part of a mail body has it: '<', '=', '>' and ';' every few bytes.
func htmlText(size int, seed uint64) []byte {
	var sb strings.Builder
	for _, p := range strings.SplitAfter(mixedText(size, seed), ". ") {
		sb.WriteString(`<p class="body"><span style="font-size:12px">`)
		sb.WriteString(p)
		sb.WriteString("</span></p>\n")
	}
	return []byte(sb.String())
}

// BenchmarkScanHTML scans the mixed text as HTML (~1.6 MiB, the same PII).
func BenchmarkScanHTML(b *testing.B) {
	benchScan(b, Config{}, htmlText(1<<20, 1))
}

// BenchmarkScanHam scans the messages of the shared ham corpus (real
// mailing-list mail, headers included: about 17 e-mail addresses and 2 IP
// addresses per message), informational.
func BenchmarkScanHam(b *testing.B) {
	f, err := os.Open(filepath.Join(evalDir, "background-ham.jsonl"))
	if err != nil {
		if testenv.InCI() {
			b.Fatalf("ham corpus missing under CI: %v", err)
		}
		b.Skipf("ham corpus not present (%v); set CI=true to make this fatal", err)
	}
	defer f.Close()
	var msgs [][]byte
	total := 0
	dec := json.NewDecoder(f)
	for dec.More() {
		var m hamMessage
		if err := dec.Decode(&m); err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, []byte(m.Text))
		total += len(m.Text)
	}
	s := newTestScanner(b, Config{})
	dst := make([]Detection, 0, 1024)
	b.SetBytes(int64(total))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		for _, m := range msgs {
			dst, _ = s.Scan(m, dst[:0])
			n += len(dst)
		}
	}
	b.ReportMetric(float64(n), "detections/op")
}

func TestMixedTextHasPII(t *testing.T) {
	text := mixedText(1<<20, 1)
	s := newTestScanner(t, Config{})
	ds, _ := s.ScanString(text, nil)
	c := Counts(ds, Low)
	per2k := float64(len(ds)) / (float64(len(text)) / 2048)
	if per2k < 0.6 || per2k > 1.5 {
		t.Errorf("mixed text has %.2f detections per 2 KB (%v)", per2k, c)
	}
	for _, ty := range DefaultDetectors {
		if c[ty] == 0 {
			t.Errorf("mixed text yields no %s", ty)
		}
	}
}
