package inspect

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestStrictMaskSameDetections checks that the strict SWAR mask, which a
// scan switches to after many false exits (HTML), finds exactly what the
// loose one finds: the same text behind a prefix of 40 '<' (which forces
// the switch) yields the same detections, shifted.
func TestStrictMaskSameDetections(t *testing.T) {
	configs := []Config{{}, {Detectors: []Type{Email}}, {Detectors: []Type{IP}}, {Detectors: []Type{Card, Email}}, {Detectors: []Type{Phone}}}
	rng := rand.New(rand.NewPCG(5, 6))
	pieces := []string{"a", "b", "Z", " ", ".", "-", "@", ":", ";", "<", "=", ">", "?", "0", "1", "4", "5", "9",
		"jane@example.com", "4111 1111 1111 1111", "(415) 555-2671", "2001:db8::1", "10.1.2.3", "DE89 3704 0044 0532 0130 00",
		"１", "＠", "\u200b", "+44 20 7946 0958", "536-90-4399", "AB 12 34 56 C"}
	texts := []string{mixedText(1<<16, 3), string(htmlText(1<<16, 4))}
	for k := 0; k < 300; k++ {
		var sb strings.Builder
		for n := rng.IntN(200); n > 0; n-- {
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		texts = append(texts, sb.String())
	}
	prefix := strings.Repeat("<", 40)
	for ci, cfg := range configs {
		s := newTestScanner(t, cfg)
		for _, text := range texts {
			a, _ := s.ScanString(text, nil)
			b, _ := s.ScanString(prefix+text, nil)
			if len(a) != len(b) {
				t.Fatalf("config %d: %d vs %d detections in %q", ci, len(a), len(b), text)
			}
			for i := range a {
				d := b[i]
				d.Start -= len(prefix)
				d.End -= len(prefix)
				if d != a[i] {
					t.Fatalf("config %d: %+v vs %+v in %q", ci, a[i], d, text)
				}
			}
		}
	}
}
