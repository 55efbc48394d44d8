package inspect

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
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

// piiSamples are the values sprinkled into benchmark text, one kind after
// the other.
var piiSamples = []string{
	"jane.doe@example.com",
	"4111 1111 1111 1111",
	"(415) 555-2671",
	"536-90-4399",
	"DE89 3704 0044 0532 0130 00",
	"+44 20 7946 0958",
	"203.0.113.195",
	"AB 12 34 56 C",
	"5555555555554444",
	"m.smith+billing@corp.example.org",
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
			b.WriteString(piiSamples[k%len(piiSamples)])
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
	for _, p := range piiSamples {
		text = []byte(strings.ReplaceAll(string(text), p, strings.Repeat("x", len(p))))
	}
	b.Run("default", func(b *testing.B) { benchScan(b, Config{}, text) })
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
