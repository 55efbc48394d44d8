package inspect

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime/quotedprintable"
	"runtime"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/leakline/leakline/pkg/testenv"
)

func b64Lines(s string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(s))
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.String()
}

func qp(s string) string {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func utf16le(s string) string {
	u := utf16.Encode([]rune(s))
	b := []byte{0xFF, 0xFE}
	for _, x := range u {
		b = append(b, byte(x), byte(x>>8))
	}
	return string(b)
}

// partSummary renders what was found per part: "path type: TYPE value conf, …" or "path skipped: reason".
func partSummary(r MIMEResult, texts map[string]string) []string {
	var out []string
	for i, p := range r.Parts {
		if p.Skipped != "" {
			out = append(out, p.Path+" skipped: "+p.Skipped)
			continue
		}
		s := p.Path + " " + p.ContentType + ":"
		for _, d := range r.PartDetections(i) {
			s += " " + string(d.Type) + "/" + d.Masked
		}
		if p.Truncated {
			s += " (truncated)"
		}
		out = append(out, s)
	}
	return out
}

func TestScanMIME(t *testing.T) {
	s := newTestScanner(t, Config{})
	csv := "email,phone\r\njane@example.com,4155552671\r\n"
	msg := "From: Bob <bob@corp.example>\r\n" +
		"To: eve@gmail.com\r\n" +
		"Subject: =?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte("Card 4111 1111 1111 1111")) + "?=\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"outer\"\r\n" +
		"\r\n" +
		"preamble with 5555555555554444 is ignored\r\n" +
		"--outer\r\n" +
		"Content-Type: multipart/alternative; boundary=inner\r\n" +
		"\r\n" +
		"--inner\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"\r\n" +
		qp("Hi, the customer's SSN is 536-90-4399 and her mail is maria.garcia@example.org, a very long line that the encoder must wrap with soft line breaks somewhere.") + "\r\n" +
		"--inner\r\n" +
		"Content-Type: text/html\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"\r\n" +
		b64Lines("<p>IBAN <b>DE89 3704 0044 0532 0130 00</b></p>") +
		"--inner--\r\n" +
		"--outer\r\n" +
		"Content-Type: text/csv; name=customers.csv\r\n" +
		"Content-Disposition: attachment; filename=customers.csv\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"\r\n" +
		b64Lines(csv) +
		"--outer\r\n" +
		"Content-Type: image/png\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"\r\n" +
		b64Lines("\x89PNG\r\n\x1a\n\x00\x00 4111111111111111") +
		"--outer\r\n" +
		"Content-Type: application/octet-stream\r\n" +
		"Content-Disposition: attachment; filename=\"data.bin\"\r\n" +
		"\r\n" +
		"4111111111111111\r\n" +
		"--outer\r\n" +
		"Content-Type: text/plain; charset=utf-16le\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"\r\n" +
		b64Lines(utf16le("call +44 20 7946 0958")) +
		"--outer\r\n" +
		"Content-Type: message/rfc822\r\n" +
		"\r\n" +
		"Subject: fwd\r\n" +
		"Content-Type: text/plain\r\n" +
		"\r\n" +
		"forwarded: wei.chen@example.net\r\n" +
		"--outer--\r\n" +
		"epilogue 5555555555554444\r\n"
	r := s.ScanMIME([]byte(msg), MIMEOptions{}, nil)
	got := partSummary(r, nil)
	want := []string{
		"subject text/plain: CREDIT_CARD/************1111",
		"1.1 text/plain: US_SSN/***-**-4399 EMAIL_ADDRESS/m***@example.org",
		"1.2 text/html: IBAN/DE****************3000",
		"2 text/csv: EMAIL_ADDRESS/j***@example.com PHONE_NUMBER/+*******2671",
		"3 skipped: non-text content type image/png",
		"4 skipped: non-text content type application/octet-stream",
		"5 text/plain: PHONE_NUMBER/+********0958",
		"6.subject text/plain:",
		"6.1 text/plain: EMAIL_ADDRESS/w***@example.net",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("parts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r.Truncated {
		t.Error("truncated")
	}
	for i, p := range r.Parts {
		if p.Path == "2" {
			if p.Tabular == nil || p.Tabular.Rows != 1 || len(p.Tabular.PIIColumns) != 2 {
				t.Errorf("csv part tabular = %+v", p.Tabular)
			}
			if !p.Attachment || p.Encoding != "base64" {
				t.Errorf("csv part = %+v", p)
			}
		}
		if p.Path == "1.1" && msg[p.Offset:p.Offset+p.Length] != qp("Hi, the customer's SSN is 536-90-4399 and her mail is maria.garcia@example.org, a very long line that the encoder must wrap with soft line breaks somewhere.") {
			t.Errorf("part 1.1 offset/length do not locate its raw body")
		}
		_ = i
	}
}

func TestScanMIMEPlainAndHeaderless(t *testing.T) {
	s := newTestScanner(t, Config{})
	r := s.ScanMIME([]byte("just text with jane@example.com\n"), MIMEOptions{}, nil)
	if len(r.Parts) != 1 || r.Parts[0].Path != "1" || len(r.Detections) != 1 {
		t.Errorf("headerless: %+v", r)
	}
	r = s.ScanMIME([]byte("Subject: hi\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"+b64Lines("ssn 536-90-4399")), MIMEOptions{}, nil)
	if got := partSummary(r, nil); fmt.Sprint(got) != "[subject text/plain: 1 text/plain: US_SSN/***-**-4399]" {
		t.Errorf("single part: %v", got)
	}
	// Lenient decoding: garbage in base64 and bad QP escapes do not hide
	// what follows.
	r = s.ScanMIME([]byte("Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n=ZZ =3D jane=\n.doe@example.com"), MIMEOptions{}, nil)
	if len(r.Detections) != 1 || r.Detections[0].Masked != "j***@example.com" {
		t.Errorf("qp: %+v", r.Detections)
	}
	enc := b64Lines("x jane@example.com y")
	r = s.ScanMIME([]byte("Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!"+enc[:8]+"*\n"+enc[8:]), MIMEOptions{}, nil)
	if len(r.Detections) != 1 {
		t.Errorf("base64 with garbage: %+v", r.Detections)
	}
}

func TestScanMIMELimits(t *testing.T) {
	s := newTestScanner(t, Config{})
	// Deep nesting: 50 levels of multipart, the text at the bottom.
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=b0\n\n")
	for k := 0; k < 50; k++ {
		fmt.Fprintf(&b, "--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n", k, k+1)
	}
	fmt.Fprintf(&b, "--b50\nContent-Type: text/plain\n\njane@example.com\n")
	r := s.ScanMIME([]byte(b.String()), MIMEOptions{}, nil)
	if !r.Truncated || len(r.Detections) != 0 || len(r.Parts) != 1 || !strings.HasPrefix(r.Parts[0].Skipped, "nesting deeper than 8") {
		t.Errorf("deep nesting: %+v", r)
	}
	r = s.ScanMIME([]byte(b.String()), MIMEOptions{MaxDepth: 60}, nil)
	if r.Truncated || len(r.Detections) != 1 {
		t.Errorf("deep nesting allowed: %+v", r)
	}

	// Many parts.
	b.Reset()
	b.WriteString("Content-Type: multipart/mixed; boundary=x\n\n")
	for k := 0; k < 1000; k++ {
		b.WriteString("--x\nContent-Type: text/plain\n\nhello\n")
	}
	r = s.ScanMIME([]byte(b.String()), MIMEOptions{}, nil)
	if !r.Truncated || len(r.Parts) != DefaultMIMEParts || !strings.HasPrefix(r.Parts[len(r.Parts)-1].Skipped, "too many parts") {
		t.Errorf("many parts: truncated %v, %d parts, last %+v", r.Truncated, len(r.Parts), r.Parts[len(r.Parts)-1])
	}

	// Decoded size cap: two 600-byte parts, a 1000-byte budget.
	body := strings.Repeat("word ", 100) + "jane@example.com " + strings.Repeat("x", 10)
	msg := "Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Transfer-Encoding: base64\n\n" + b64Lines(body) +
		"--x\n\n" + body + "\n--x\n\nmore\n--x--\n"
	r = s.ScanMIME([]byte(msg), MIMEOptions{MaxDecodedBytes: 1000}, nil)
	sum := partSummary(r, nil)
	if !r.Truncated || r.Scanned != 1000 || len(sum) != 3 || !strings.HasSuffix(sum[1], "(truncated)") || sum[2] != "3 skipped: decoded size cap reached" {
		t.Errorf("decoded cap: scanned %d, %q", r.Scanned, sum)
	}
}

func TestIsBinary(t *testing.T) {
	for in, want := range map[string]bool{
		"plain text\nwith lines\r\n\ttabs":             false,
		"caf\xe9 cr\xe8me br\xfbl\xe9e (latin-1)":      false,
		"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR":          true,
		"text then a NUL\x00":                          true,
		strings.Repeat("\x01\x02\x03abc", 20):          true,
		strings.Repeat("\xff\xfe\xfd\xfc", 50) + "abc": true,
		"": false,
	} {
		if got := IsBinary([]byte(in)); got != want {
			t.Errorf("IsBinary(%q) = %v", in, got)
		}
	}
}

func TestInspect(t *testing.T) {
	s := newTestScanner(t, Config{})
	cases := []struct {
		name   string
		in     string
		opt    InspectOptions
		format Format
		n      int
	}{
		{"text", "mail jane@example.com", InspectOptions{}, FormatText, 1},
		{"csv sniffed", "email,mobile\njane@example.com,4155552671\n", InspectOptions{}, FormatCSV, 2},
		{"csv by name", "a,b\njane@example.com,x\n", InspectOptions{FileName: "export.CSV"}, FormatCSV, 1},
		{"tsv by type", "mobile\n4155552671\n", InspectOptions{MimeType: "text/tab-separated-values; charset=utf-8"}, FormatTSV, 1},
		{"mime sniffed", "MIME-Version: 1.0\nContent-Type: text/plain\n\njane@example.com", InspectOptions{}, FormatMIME, 1},
		{"mime forced text", "MIME-Version: 1.0\n\njane@example.com", InspectOptions{Format: FormatText}, FormatText, 1},
		{"binary", "\x00\x01PK\x03\x04 jane@example.com", InspectOptions{}, FormatBinary, 0},
		{"binary csv", "email\n\x00jane@example.com", InspectOptions{Format: FormatCSV}, FormatBinary, 0},
		{"utf-16", utf16le("card 4111 1111 1111 1111"), InspectOptions{}, FormatText, 1},
		{"invalid utf-8", "jane\xff@example.com \xfe\xfe 4111 1111 1111 1111", InspectOptions{}, FormatText, 1},
	}
	for _, c := range cases {
		r := s.Inspect([]byte(c.in), c.opt, nil)
		if r.Format != c.format || len(r.Detections) != c.n {
			t.Errorf("%s: format %q, %d detections %v; want %q, %d", c.name, r.Format, len(r.Detections), r.Detections, c.format, c.n)
		}
	}
	// OnText sees each scanned text with its detections.
	msg := "Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Transfer-Encoding: base64\n\n" + b64Lines("a jane@example.com") + "--x\n\nb 4111 1111 1111 1111\n--x--"
	var seen []string
	r := s.Inspect([]byte(msg), InspectOptions{OnText: func(part string, text []byte, ds []Detection) {
		for _, d := range ds {
			seen = append(seen, part+":"+string(text[d.Start:d.End]))
		}
	}}, nil)
	if fmt.Sprint(seen) != "[1:jane@example.com 2:4111 1111 1111 1111]" || len(r.Detections) != 2 {
		t.Errorf("OnText saw %q", seen)
	}
	seen = nil
	s.Inspect([]byte("x jane@example.com"), InspectOptions{OnText: func(part string, text []byte, ds []Detection) {
		for _, d := range ds {
			seen = append(seen, part+":"+string(text[d.Start:d.End]))
		}
	}}, nil)
	if fmt.Sprint(seen) != "[:jane@example.com]" {
		t.Errorf("OnText saw %q", seen)
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("ParseFormat accepted xml")
	}
}

// heapGrowth runs f and returns how many bytes the heap grew by (live
// after a GC) and how many were allocated in total.
func heapGrowth(f func()) (live, total uint64) {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	total = b.TotalAlloc - a.TotalAlloc
	runtime.GC()
	var c runtime.MemStats
	runtime.ReadMemStats(&c)
	if c.HeapAlloc > a.HeapAlloc {
		live = c.HeapAlloc - a.HeapAlloc
	}
	return live, total
}

// TestHugeInputsBoundedMemory feeds 100 MB bodies — plain text, a base64
// MIME part, invalid UTF-8, a CSV — and checks that each is inspected up to
// the cap, says so, and allocates at most a small multiple of the cap
// (measured with runtime.MemStats, not timed).
func TestHugeInputsBoundedMemory(t *testing.T) {
	testenv.Long(t, "allocates 100 MB inputs")
	const size = 100 << 20
	const capBytes = 4 << 20
	s := newTestScanner(t, Config{MaxScanBytes: capBytes})
	line := []byte("Dear customer, your card 4111 1111 1111 1111 and jane@example.com are on file.\n")
	textBody := func() []byte { return bytes.Repeat(line, size/len(line)) }
	// Inputs are made one at a time, outside the measurement, so that at
	// most one lives at once.
	inputs := []struct {
		name string
		make func() []byte
		f    Format
	}{
		{"text", textBody, FormatText},
		{"mime base64", func() []byte {
			text := textBody()
			msg := []byte("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n")
			n := len(msg)
			msg = append(msg, make([]byte, base64.StdEncoding.EncodedLen(len(text)))...)
			base64.StdEncoding.Encode(msg[n:], text)
			return append(msg, "\r\n--zz--\r\n"...)
		}, FormatMIME},
		{"invalid utf-8", func() []byte { return bytes.Repeat([]byte("\xff\xfe jane@example.com \xc3"), size/21) }, FormatText},
		{"csv", func() []byte {
			return append([]byte("email,phone\n"), bytes.Repeat([]byte("jane@example.com,4155552671\n"), size/28)...)
		}, FormatCSV},
	}
	for _, c := range inputs {
		in := c.make()
		var r Result
		dst := make([]Detection, 0, 1<<17)
		_, total := heapGrowth(func() { r = s.Inspect(in, InspectOptions{}, dst) })
		if r.Format != c.f || !r.Truncated || r.Scanned > capBytes || len(r.Detections) == 0 {
			t.Errorf("%s: format %q truncated %v scanned %d detections %d", c.name, r.Format, r.Truncated, r.Scanned, len(r.Detections))
		}
		// A detection costs its 72-byte Detection (times ~3 while the
		// slice grows) and at most one ~80-byte string; the decode
		// buffer is at most the cap.
		limit := uint64(capBytes) + uint64(len(r.Detections))*320 + 1<<20
		if total > limit {
			t.Errorf("%s: allocated %d bytes for a %d-byte input (limit %d)", c.name, total, len(in), limit)
		}
		t.Logf("%s: %d MB in, %d detections, %.1f MB allocated", c.name, len(in)>>20, len(r.Detections), float64(total)/(1<<20))
	}
}
