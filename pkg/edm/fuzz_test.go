package edm

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/leakline/leakline/pkg/inspect"
)

// FuzzEDMLoad feeds damaged index files to Load and ReadInfo: they must
// fail with an error wrapping ErrFormat (or the key error), never panic,
// and whatever loads must answer lookups.
func FuzzEDMLoad(f *testing.F) {
	x := buildTest(f, customersCSV)
	good, _ := x.MarshalBinary()
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(good[:40])
	f.Add([]byte(magic))
	hdrOnly := bytes.Clone(good[:16])
	f.Add(append(hdrOnly, bytes.Repeat([]byte{0xff}, 200)...))
	// A header announcing huge tables over a tiny body.
	huge := bytes.Clone(good)
	copy(huge[16+16+8+8:], []byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0})
	f.Add(huge)
	f.Fuzz(func(t *testing.T, data []byte) {
		idx, err := Load(bytes.NewReader(data), testKey)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, errKey) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
		} else {
			idx.LookupValue(TypeEmail, []byte("jane.doe@example.com"))
			for r := 0; r < idx.Rows(); r++ {
				idx.CustomerFingerprint(uint32(r))
			}
		}
		info, n, err := ReadInfo(bytes.NewReader(data))
		if err == nil && (n != int64(len(data)) || info.Identifiers < 0) {
			t.Fatalf("ReadInfo: %d of %d bytes", n, len(data))
		}
		if (err == nil) != (idx != nil || errors.Is(err, errKey)) && idx != nil {
			t.Fatalf("Load and ReadInfo disagree: %v", err)
		}
	})
}

// FuzzMatcher runs the scanner and the matcher on arbitrary text: no
// panic, matched rows within the index, counts consistent.
func FuzzMatcher(f *testing.F) {
	x := buildTest(f, customersCSV)
	m, sc := newTestMatcher(f, x)
	for _, s := range []string{
		"", "Jane Doe jane.doe@example.com", "JANE DOE\u200b<jane.doe@example.com>", "Mary Ann Smith mary@example.net",
		"C-000002 (415) 555-2671 John Smith", "Ｊａｎｅ Ｄｏｅ ｊａｎｅ．ｄｏｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "O'Brien-Smith Zoë Ünal shared@example.com",
		"\xff\xfeJane Doe\xc3 jane.doe@example.com",
	} {
		f.Add(s)
	}
	var res Match
	f.Fuzz(func(t *testing.T, text string) {
		ds, _ := sc.ScanString(text, nil)
		m.MatchString(text, ds, &res)
		ids := 0
		for typ, n := range res.ByType {
			if n <= 0 {
				t.Fatalf("ByType[%s] = %d", typ, n)
			}
			if typ != TypeName {
				ids += n
			}
		}
		if (ids == 0) != (len(res.Rows) == 0) {
			t.Fatalf("rows %v but identifiers %v", res.Rows, res.ByType)
		}
		for i, r := range res.Rows {
			if int(r) >= x.Rows() || (i > 0 && r <= res.Rows[i-1]) {
				t.Fatalf("rows %v", res.Rows)
			}
		}
		// Detections whose offsets fall outside the text are ignored.
		bogus := append(ds, inspect.Detection{Type: inspect.Email, Start: len(text), End: len(text) + 5})
		m.MatchString(text, bogus, &res)
		if !utf8.ValidString(text) {
			return
		}
		NormalizeName([]byte(text), nil)
	})
}
