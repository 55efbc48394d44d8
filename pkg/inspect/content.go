package inspect

import (
	"bytes"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// Format says how content is read.
type Format string

// Formats. FormatAuto (the zero value) lets Inspect decide from the hint
// and the content; FormatBinary only appears in results.
const (
	FormatAuto   Format = ""
	FormatText   Format = "text"
	FormatMIME   Format = "mime"
	FormatCSV    Format = "csv"
	FormatTSV    Format = "tsv"
	FormatBinary Format = "binary"
)

// ParseFormat parses "auto", "text", "mime", "csv" or "tsv".
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "auto":
		return FormatAuto, nil
	case FormatAuto, FormatText, FormatMIME, FormatCSV, FormatTSV:
		return f, nil
	}
	return "", fmt.Errorf("inspect: unknown format %q (want auto, text, mime, csv or tsv)", s)
}

// binarySample is how much of a body IsBinary looks at.
const binarySample = 8 << 10

// IsBinary reports whether b looks like binary data rather than text: a NUL
// byte, more than 5 % control characters (other than tab, line breaks,
// form feed and escape) or more than 30 % bytes that are not valid UTF-8,
// within its first 8 KiB. Text in a legacy 8-bit charset (Latin-1) is
// text; UTF-16 is binary unless transcoded first (Inspect does that for
// text with a byte-order mark).
func IsBinary(b []byte) bool {
	if len(b) > binarySample {
		b = b[:binarySample]
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return true
	}
	ctrl, invalid := 0, 0
	for i := 0; i < len(b); {
		c := b[i]
		if c < 0x80 {
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v' && c != 0x1b) || c == 0x7f {
				ctrl++
			}
			i++
			continue
		}
		r, w := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && w == 1 {
			// A sequence cut by the sample's end is not invalid.
			if len(b) == binarySample && len(b)-i < utf8.UTFMax && !utf8.FullRune(b[i:]) {
				break
			}
			invalid++
		}
		i += w
	}
	return ctrl*20 > len(b) || invalid*10 > len(b)*3
}

// InspectOptions tells Inspect what a body is — an explicit Format, or
// the MIME type and file name it came with — and how to report.
type InspectOptions struct {
	Format   Format
	MimeType string
	FileName string
	// MIME bounds the walk of a MIME message (its OnPart is set by
	// Inspect when OnText is).
	MIME MIMEOptions
	// OnText, if set, is called for each text scanned — the body, or each
	// MIME part — with the text the detections' offsets refer to and those
	// detections (a sub-slice of the result's). part is the MIME part's
	// Path, "" otherwise. text is only valid during the call (exact data
	// matching runs here).
	OnText func(part string, text []byte, ds []Detection)
}

// Result is what Inspect found in one body.
type Result struct {
	// Detections found. Their offsets refer to the scanned text: the body
	// itself for text and CSV/TSV (the transcoded text for UTF-16), the
	// part's decoded text for MIME (see Parts).
	Detections []Detection
	// Format is how the body was read; FormatBinary means it was not
	// scanned.
	Format Format
	// Truncated reports that the body was inspected only up to a cap
	// (MaxScanBytes, or a MIME limit).
	Truncated bool
	// Scanned is the number of (decoded) bytes scanned.
	Scanned int
	// Tabular summarizes a CSV/TSV body.
	Tabular *Tabular
	// Parts lists a MIME message's parts, scanned or skipped.
	Parts []MIMEPart
}

// Inspect scans one body the way the pipeline sees it: as an e-mail
// message (MIME), a CSV/TSV table, or plain text, chosen by opt.Format,
// else by opt.MimeType and opt.FileName, else by sniffing the content. Binary
// content is reported (Format FormatBinary), not scanned as text; UTF-16
// text with a byte-order mark is transcoded to UTF-8 first; bodies over
// the cap are scanned up to it and Truncated says so. Detections are
// appended to dst.
func (s *Scanner) Inspect(content []byte, opt InspectOptions, dst []Detection) Result {
	f := opt.Format
	if f == FormatAuto {
		f = formatFromHint(opt.MimeType, opt.FileName)
	}
	if f == FormatAuto && s.looksLikeMIME(content) {
		f = FormatMIME
	}
	if f == FormatMIME {
		mo := opt.MIME
		if opt.OnText != nil {
			on := opt.OnText
			mo.OnPart = func(p *MIMEPart, text []byte, ds []Detection) { on(p.Path, text, ds) }
		}
		r := s.ScanMIME(content, mo, dst)
		return Result{Detections: r.Detections, Format: FormatMIME, Truncated: r.Truncated, Scanned: r.Scanned, Parts: r.Parts}
	}
	res := Result{Detections: dst}
	if looksUTF16(content, "") {
		limit := min(len(content), 2*s.maxScan+2)
		if limit < len(content) {
			res.Truncated = true
		}
		content = appendUTF16(nil, content[:limit&^1], "")
	}
	if IsBinary(content) {
		res.Format = FormatBinary
		return res
	}
	if f == FormatAuto {
		f = FormatText
		if d, ok := s.looksLikeCSV(content); ok {
			f = FormatCSV
			if d == '\t' {
				f = FormatTSV
			}
		}
	}
	res.Format = f
	base := len(dst)
	var trunc bool
	switch f {
	case FormatCSV, FormatTSV:
		var tab Tabular
		delim := byte(0)
		if f == FormatTSV {
			delim = '\t'
		}
		res.Detections, tab, trunc = s.ScanCSV(content, delim, dst)
		res.Tabular = &tab
	default:
		res.Format = FormatText
		res.Detections, trunc = s.Scan(content, dst)
	}
	res.Truncated = res.Truncated || trunc
	res.Scanned = min(len(content), s.maxScan)
	if opt.OnText != nil {
		opt.OnText("", content[:res.Scanned], res.Detections[base:])
	}
	return res
}

// looksUTF16 reports whether b is UTF-16 text: a byte-order mark or a
// utf-16 charset label, and NUL bytes in its first 8 KiB (the high bytes of
// ASCII characters). Without them a BOM-like prefix does not make ASCII
// text unreadable to the scanner.
func looksUTF16(b []byte, charset string) bool {
	if !hasUTF16BOM(b) && !strings.HasPrefix(charset, "utf-16") {
		return false
	}
	return bytes.IndexByte(b[:min(len(b), binarySample)], 0) >= 0
}

// formatFromHint decides the format from a MIME type and a file name, or
// returns FormatAuto.
func formatFromHint(mimeType, fileName string) Format {
	mt, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(mimeType)), ";")
	mt = strings.TrimSpace(mt)
	switch mt {
	case "message/rfc822", "message/global":
		return FormatMIME
	case "text/csv", "application/csv", "text/x-csv", "application/x-csv", "text/comma-separated-values":
		return FormatCSV
	case "text/tab-separated-values":
		return FormatTSV
	}
	switch strings.ToLower(path.Ext(fileName)) {
	case ".eml", ".mbox":
		return FormatMIME
	case ".csv":
		return FormatCSV
	case ".tsv", ".tab":
		return FormatTSV
	}
	return FormatAuto
}

// looksLikeMIME reports whether b starts with a well-formed header block
// that names MIME or mail transport fields.
func (s *Scanner) looksLikeMIME(b []byte) bool {
	hdr, _, ok := splitHeader(b)
	if !ok || len(hdr) == 0 {
		return false
	}
	mail := false
	for i := 0; i < len(hdr); {
		end := bytes.IndexByte(hdr[i:], '\n')
		if end < 0 {
			end = len(hdr)
		} else {
			end += i
		}
		line := hdr[i:end]
		i = end + 1
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation
		}
		if !headerLine(line) {
			return false
		}
		name, _, _ := bytes.Cut(line, []byte(":"))
		switch strings.ToLower(string(name)) {
		case "mime-version", "content-type", "content-transfer-encoding", "received", "message-id", "return-path":
			mail = true
		}
	}
	return mail
}
