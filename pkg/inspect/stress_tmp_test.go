package inspect

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

func TestStressTmp(t *testing.T) {
	tok := testTokenizer(t)
	sc, _ := New(Config{MaxScanBytes: 4096, Custom: []CustomDetector{{Name: "ACCT", Pattern: `ACC-\d{4,12}`, Checksum: "luhn"}}}, tok)
	parts := []string{"@", ":", "::", "+", "(", ")", "0", "1", "9", "12", "4111", " ", "-", ".", "a", "Z", "AB", "DE", "ES", "NO", "GB", "\u200b", "\xef\xbc\x91", "\xef\xbc", "\xc2\xa0", "\xc2\xad", "x", "e", "f", "\xef\xbb\xbf", "ACC-", "com", "\n"}
	rng := rand.New(rand.NewPCG(1, 2))
	for it := 0; it < 2000000; it++ {
		n := rng.IntN(40)
		s := ""
		for k := 0; k < n; k++ {
			s += parts[rng.IntN(len(parts))]
		}
		done := make(chan struct{})
		go func() {
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				fmt.Printf("HANG: %q\n", s)
				os.Exit(3)
			}
		}()
		sc.ScanString(s, nil)
		close(done)
	}
}
