package inspect

import (
	"testing"
	"unicode/utf8"
)

// FuzzScan checks that scanning never panics, that every detection lies
// inside the scanned prefix of the input, and that no masked value keeps a
// run of 5 or more digits of the original.
func FuzzScan(f *testing.F) {
	seeds := []string{
		"", "@", ":", "::", "+", "(", "0", "１",
		"mail john.doe@example.com now", "Card: 4111 1111 1111 1111", "4111\u200b1111\u200b1111\u200b1111",
		"４１１１１１１１１１１１１１１１", "ssn 536-90-4399", "(415) 555-2671", "+44 (0)20 7946 0958",
		"IBAN DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32", "AB 12 34 56 C", "8.8.8.8",
		"2001:db8::1", "::ffff:1.2.3.4", "1.2.3.4.5", "12:30:45", "a@b.c@d.e", "x@" + string(make([]byte, 300)),
		"ES 58 0049 0290 3424 1352 8341", "\xef\xbc", "\xef\xbc\x91", "1\xe2\x80\x8b", "(((((1", "+1 (",
		"!#$%&`*+/=?^`{|}~@iana.org", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	tok := testTokenizer(f)
	sc, err := New(Config{MaxScanBytes: 4096, Custom: []CustomDetector{{Name: "ACCT", Pattern: `ACC-\d{4,12}`, Checksum: "luhn"}}}, tok)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ds, trunc := sc.ScanString(in, nil)
		limit := min(len(in), 4096)
		if trunc != (len(in) > 4096) {
			t.Fatalf("truncated = %v for length %d", trunc, len(in))
		}
		for i, d := range ds {
			if i > 0 && d.Start < ds[i-1].Start {
				t.Fatalf("detections not ordered by Start: %d after %d", d.Start, ds[i-1].Start)
			}
			if d.Start < 0 || d.Start >= d.End || d.End > limit {
				t.Fatalf("detection %s %d..%d outside [0,%d)", d.Type, d.Start, d.End, limit)
			}
			if len(d.Token) != 32 {
				t.Fatalf("token %q", d.Token)
			}
			run := 0
			for i := 0; i < len(d.Masked); i++ {
				if c := d.Masked[i]; c >= '0' && c <= '9' {
					run++
					if run >= 5 {
						t.Fatalf("masked %q keeps 5 digits (%s)", d.Masked, d.Type)
					}
				} else {
					run = 0
				}
			}
			if !utf8.ValidString(d.Masked) && utf8.ValidString(in[d.Start:d.End]) {
				t.Fatalf("masked %q is not valid UTF-8", d.Masked)
			}
		}
	})
}
