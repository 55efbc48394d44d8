package inspect

import (
	"testing"
)

// checkDetections fails when a detection lies outside [0, limit) or the
// detections are not ordered by Start.
func checkDetections(t *testing.T, ds []Detection, limit int) {
	t.Helper()
	for i, d := range ds {
		if d.Start < 0 || d.Start >= d.End || d.End > limit {
			t.Fatalf("detection %s %d..%d outside [0,%d)", d.Type, d.Start, d.End, limit)
		}
		if i > 0 && d.Start < ds[i-1].Start {
			t.Fatalf("detections not ordered by Start")
		}
		if len(d.Token) != 32 || d.Confidence < Low || d.Confidence > High {
			t.Fatalf("bad detection %+v", d)
		}
	}
}

// FuzzScanMIME checks that any input yields a clear outcome: no panic,
// every part's detections inside its decoded size, sizes within the caps,
// parts and depth bounded.
func FuzzScanMIME(f *testing.F) {
	seeds := []string{
		"", "\n", "\r\n\r\n", "Subject: x\n\nbody", "Content-Type: multipart/mixed; boundary=x\n\n--x\n\nhi\n--x--",
		"Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: multipart/mixed; boundary=y\n\n--y\n\n4111 1111 1111 1111\n--y--\n--x--",
		"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\namFuZUBleGFtcGxlLmNvbQ==",
		"Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\njane=40example.com=\n=3D",
		"Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\nSubject: =?utf-8?q?ssn_536-90-4399?=\n\n",
		"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogaGkKCmphbmVAZXhhbXBsZS5jb20=",
		"Content-Type: text/plain; charset=utf-16le\n\n\xff\xfej\x00@\x00",
		"Content-Type: text/csv\n\nemail,phone\njane@example.com,4155552671\n",
		"Content-Type: multipart/digest; boundary=\"q\"\n\n--q\n\nSubject: a\n\nb\n--q--",
		"Content-Type: multipart/mixed; boundary=\n\n--\n",
		"Content-Type: ;;;\nContent-Disposition: attachment; filename*=utf-8''%ff.csv\n\nx",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	s, err := New(Config{MaxScanBytes: 2048}, testTokenizer(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		opt := MIMEOptions{MaxDepth: 4, MaxParts: 32, MaxDecodedBytes: 4096}
		r := s.ScanMIME(msg, opt, nil)
		if len(r.Parts) > opt.MaxParts+1 {
			t.Fatalf("%d parts", len(r.Parts))
		}
		total := 0
		for i, p := range r.Parts {
			if p.First < 0 || p.Count < 0 || p.First+p.Count > len(r.Detections) {
				t.Fatalf("part %s detections %d+%d of %d", p.Path, p.First, p.Count, len(r.Detections))
			}
			if p.Offset > len(msg) || (p.Offset >= 0 && p.Offset+p.Length > len(msg)) {
				t.Fatalf("part %s raw span %d+%d outside %d", p.Path, p.Offset, p.Length, len(msg))
			}
			if p.Skipped != "" && p.Count != 0 {
				t.Fatalf("skipped part %s has detections", p.Path)
			}
			checkDetections(t, r.PartDetections(i), max(p.Size, 0)+1)
			for _, d := range r.PartDetections(i) {
				if d.End > p.Size {
					t.Fatalf("part %s: detection %d..%d beyond its %d bytes", p.Path, d.Start, d.End, p.Size)
				}
			}
			total += p.Size
		}
		if total != r.Scanned {
			t.Fatalf("scanned %d, parts sum to %d", r.Scanned, total)
		}
		// Subjects are not counted against the decoded cap; bodies are.
		if r.Scanned > opt.MaxDecodedBytes+len(msg) {
			t.Fatalf("scanned %d", r.Scanned)
		}
	})
}

// FuzzCSV checks that ScanCSV never panics, keeps detections inside the
// input and ordered, and that its table summary is consistent.
func FuzzCSV(f *testing.F) {
	seeds := []string{
		"", ",", "\"", "\"\"\"", "email\n", "email,phone\njane@example.com,4155552671\n",
		"a\tb\n\"x\ty\"\tz", "ssn;card\n536904399;4111111111111111\r\n", "\"unterminated,email\njane@example.com",
		"customer_id,name\nC-000001,Jane Doe\n", "email|mobile\n\"a@b.com\"junk|\"\"4155552671\"\"",
	}
	for _, s := range seeds {
		f.Add([]byte(s), byte(0))
	}
	s, err := New(Config{MaxScanBytes: 4096, Custom: []CustomDetector{{Name: "CUSTOMER_ID", Pattern: `C-\d{6}`, Keywords: []string{"customer"}}}}, testTokenizer(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, delim byte) {
		switch delim {
		case ',', '\t', ';', '|':
		default:
			delim = 0
		}
		ds, tab, trunc := s.ScanCSV(data, delim, nil)
		if trunc != (len(data) > 4096) {
			t.Fatalf("truncated %v for %d bytes", trunc, len(data))
		}
		checkDetections(t, ds, min(len(data), 4096))
		for _, c := range tab.PIIColumns {
			if c.Index < 0 || c.Index >= tab.Columns || c.Cells < 0 || c.Cells > tab.Rows {
				t.Fatalf("column %+v of %+v", c, tab)
			}
		}
		r := s.Inspect(data, InspectOptions{}, nil)
		if r.Format != FormatBinary {
			limit := min(len(data), 4096)
			if r.Format == FormatMIME {
				return
			}
			if hasUTF16BOM(data) {
				limit = 3 * 4096
			}
			checkDetections(t, r.Detections, limit)
		}
	})
}
