package inspect

import (
	"bytes"
	"mime"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Defaults and limits of ScanMIME.
const (
	// DefaultMIMEDepth is how deeply multipart and message/rfc822
	// entities may nest before the rest is skipped.
	DefaultMIMEDepth = 8
	// DefaultMIMEParts is how many entities (containers and leaves) one
	// message may have before the rest is skipped.
	DefaultMIMEParts = 256
	// maxHeaderBlock bounds the header block of one entity; a longer one
	// is read as body text.
	maxHeaderBlock = 64 << 10
	maxBoundaryLen = 200
)

// MIMEOptions bounds ScanMIME. Zero values mean the defaults.
type MIMEOptions struct {
	// MaxDepth bounds the nesting of multipart and message/rfc822
	// entities; deeper ones are skipped. Default DefaultMIMEDepth.
	MaxDepth int
	// MaxParts bounds the entities of one message. Default
	// DefaultMIMEParts.
	MaxParts int
	// MaxDecodedBytes bounds the decoded text scanned over the whole
	// message. Default the Scanner's MaxScanBytes.
	MaxDecodedBytes int
	// OnPart, if set, is called after each part is scanned with the part,
	// its decoded text (only valid during the call) and its detections.
	OnPart func(p *MIMEPart, text []byte, ds []Detection)
}

// MIMEPart is one leaf part of a message (or its Subject header), scanned
// or skipped.
type MIMEPart struct {
	// Path is the part's section number as IMAP numbers them: "1", "2.1"
	// (part 1 of the multipart or message at part 2); a message's Subject
	// is "subject" or "2.subject".
	Path string `json:"path"`
	// ContentType is the media type, lower case, without parameters.
	ContentType string `json:"content_type"`
	// Encoding is the Content-Transfer-Encoding, lower case ("" for none).
	Encoding string `json:"encoding,omitempty"`
	// Charset is the charset parameter, lower case.
	Charset string `json:"charset,omitempty"`
	// Attachment reports a Content-Disposition of attachment.
	Attachment bool `json:"attachment,omitempty"`
	// Offset and Length locate the part's raw (encoded) body in the
	// message.
	Offset int `json:"offset"`
	Length int `json:"length"`
	// Size is the number of decoded bytes scanned.
	Size int `json:"size"`
	// Skipped says why the part was not scanned, empty when it was:
	// "non-text content type image/png", "binary content", "nesting
	// deeper than 8", "too many parts", "decoded size cap reached",
	// "unsupported transfer encoding x-uuencode".
	Skipped string `json:"skipped,omitempty"`
	// Truncated reports a part scanned only up to the decoded-size cap.
	Truncated bool `json:"truncated,omitempty"`
	// Tabular summarizes a CSV/TSV part.
	Tabular *Tabular `json:"tabular,omitempty"`
	// First and Count locate the part's detections in
	// MIMEResult.Detections. Their offsets refer to the part's decoded
	// text.
	First int `json:"-"`
	Count int `json:"-"`
}

// MIMEResult is what ScanMIME found.
type MIMEResult struct {
	// Detections of every part, part by part.
	Detections []Detection
	// Parts lists the leaf parts in message order.
	Parts []MIMEPart
	// Truncated reports that some content was not scanned because of a
	// cap: decoded size, nesting depth or number of parts.
	Truncated bool
	// Scanned is the total of the parts' Size.
	Scanned int
}

// PartDetections returns the detections of part p.
func (r *MIMEResult) PartDetections(p int) []Detection {
	return r.Detections[r.Parts[p].First : r.Parts[p].First+r.Parts[p].Count]
}

// ScanMIME scans an Internet message (RFC 5322 headers and a MIME body;
// input without a header block is read as a plain-text body). It walks
// multipart and message/rfc822 entities up to opt.MaxDepth, decodes
// base64 and quoted-printable bodies (leniently: a bad character or escape
// never hides the rest of a part), transcodes UTF-16 text and scans text
// parts — text/*, JSON, XML, CSV, and parts whose file name says text — with
// CSV/TSV parts scanned as tables (ScanCSV). Other parts and binary
// content are listed as skipped with the reason. At most
// opt.MaxDecodedBytes of decoded text are scanned in total, decoded into
// one buffer of at most that size, so memory stays bounded whatever the
// input. The message's Subject (encoded words decoded) is scanned as a part
// of its own. Detections are appended to dst.
func (s *Scanner) ScanMIME(msg []byte, opt MIMEOptions, dst []Detection) MIMEResult {
	if opt.MaxDepth <= 0 {
		opt.MaxDepth = DefaultMIMEDepth
	}
	if opt.MaxParts <= 0 {
		opt.MaxParts = DefaultMIMEParts
	}
	if opt.MaxDecodedBytes <= 0 {
		opt.MaxDecodedBytes = s.maxScan
	}
	w := mimeWalker{s: s, opt: opt, msg: msg, budget: opt.MaxDecodedBytes}
	w.res.Detections = dst
	w.message(msg, "", 0)
	return w.res
}

type mimeWalker struct {
	s        *Scanner
	opt      MIMEOptions
	msg      []byte
	res      MIMEResult
	budget   int // decoded bytes left
	entities int
	buf      []byte // decode buffer, reused part after part
	buf16    []byte // UTF-16 transcoding buffer
	stopped  bool   // too many parts
}

// offset returns the offset of sub in the message, or -1 when sub is not
// part of it (a message decoded from a base64 message/rfc822 part).
func (w *mimeWalker) offset(sub []byte) int {
	if len(w.msg) == 0 {
		return -1
	}
	if len(sub) == 0 {
		sub = sub[:cap(sub)]
		if len(sub) == 0 {
			return -1
		}
	}
	p, base := uintptr(unsafe.Pointer(&sub[0])), uintptr(unsafe.Pointer(&w.msg[0]))
	if p < base || p > base+uintptr(len(w.msg)) {
		return -1
	}
	return int(p - base)
}

// child returns the path of child k (1-based) of path.
func child(path string, k int) string {
	if path == "" {
		return strconv.Itoa(k)
	}
	return path + "." + strconv.Itoa(k)
}

// enter counts one entity; it reports false (and records the cut once)
// when there are too many.
func (w *mimeWalker) enter(path string) bool {
	if w.stopped {
		return false
	}
	w.entities++
	if w.entities > w.opt.MaxParts {
		w.stopped = true
		w.res.Truncated = true
		w.res.Parts = append(w.res.Parts, MIMEPart{Path: path, Skipped: "too many parts (more than " + strconv.Itoa(w.opt.MaxParts) + ")"})
		return false
	}
	return true
}

// message handles an RFC 5322 message (the input, or a message/rfc822
// part) at path, nested depth deep.
func (w *mimeWalker) message(e []byte, path string, depth int) {
	hdr, body, ok := splitHeader(e)
	if !ok {
		hdr, body = nil, e
	}
	if subj := headerValue(hdr, "subject"); subj != "" {
		if dec, err := new(mime.WordDecoder).DecodeHeader(subj); err == nil {
			subj = dec
		}
		sp := "subject"
		if path != "" {
			sp = path + ".subject"
		}
		w.scanText([]byte(subj), MIMEPart{Path: sp, ContentType: "text/plain"}, "")
	}
	p := path
	if !isMultipart(hdr) {
		p = child(path, 1)
	}
	w.entity(hdr, body, p, depth, "text/plain")
}

func isMultipart(hdr []byte) bool {
	ct := strings.ToLower(strings.TrimSpace(headerValue(hdr, "content-type")))
	return strings.HasPrefix(ct, "multipart/")
}

// entity handles one MIME entity with header block hdr and body body.
// defType is the content type when the header names none.
func (w *mimeWalker) entity(hdr, body []byte, path string, depth int, defType string) {
	if !w.enter(path) {
		return
	}
	mt, params := mediaType(headerValue(hdr, "content-type"), defType)
	part := MIMEPart{
		Path:        path,
		ContentType: mt,
		Encoding:    strings.ToLower(strings.TrimSpace(headerValue(hdr, "content-transfer-encoding"))),
		Charset:     strings.ToLower(params["charset"]),
		Offset:      w.offset(body),
		Length:      len(body),
	}
	disp, dparams := mediaType(headerValue(hdr, "content-disposition"), "")
	part.Attachment = disp == "attachment"
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}

	switch {
	case strings.HasPrefix(mt, "multipart/"):
		if depth >= w.opt.MaxDepth {
			w.skip(part, "nesting deeper than "+strconv.Itoa(w.opt.MaxDepth))
			return
		}
		boundary := params["boundary"]
		if boundary == "" || len(boundary) > maxBoundaryLen {
			part.ContentType = "text/plain" // a multipart without a usable boundary: read as text
			w.leaf(part, body, "")
			return
		}
		childType := "text/plain"
		if mt == "multipart/digest" {
			childType = "message/rfc822"
		}
		k := 0
		splitMultipart(body, boundary, func(p []byte) bool {
			k++
			h, b, ok := splitHeader(p)
			if !ok {
				h, b = nil, p
			}
			w.entity(h, b, child(path, k), depth+1, childType)
			return !w.stopped
		})
	case mt == "message/rfc822" || mt == "message/global":
		if depth >= w.opt.MaxDepth {
			w.skip(part, "nesting deeper than "+strconv.Itoa(w.opt.MaxDepth))
			return
		}
		inner := body
		if part.Encoding == "base64" || part.Encoding == "quoted-printable" {
			// Not allowed by RFC 2046 but seen: decode into a buffer of
			// its own (the shared one is reused by the inner parts),
			// within the budget.
			dec, complete := decodeBody(nil, body, part.Encoding, w.budget)
			w.budget -= len(dec)
			if !complete {
				w.res.Truncated = true
			}
			inner = dec
		}
		w.message(inner, path, depth+1)
	default:
		w.leaf(part, body, filename)
	}
}

// skip records a part that is not scanned.
func (w *mimeWalker) skip(part MIMEPart, why string) {
	part.Skipped = why
	part.First = len(w.res.Detections)
	w.res.Parts = append(w.res.Parts, part)
	if strings.HasPrefix(why, "nesting") || strings.HasPrefix(why, "decoded size") {
		w.res.Truncated = true
	}
}

// leaf decodes and scans a leaf part, or records why it is skipped.
func (w *mimeWalker) leaf(part MIMEPart, body []byte, filename string) {
	format, text := textFormat(part.ContentType, filename)
	if !text {
		w.skip(part, "non-text content type "+part.ContentType)
		return
	}
	switch part.Encoding {
	case "", "7bit", "8bit", "binary", "base64", "quoted-printable":
	default:
		w.skip(part, "unsupported transfer encoding "+part.Encoding)
		return
	}
	if w.budget <= 0 {
		w.skip(part, "decoded size cap reached")
		return
	}
	var dec []byte
	complete := true
	switch part.Encoding {
	case "base64", "quoted-printable":
		w.buf, complete = decodeBody(w.buf[:0], body, part.Encoding, w.budget)
		dec = w.buf
	default: // identity: scan the message bytes themselves
		dec = body
		if len(dec) > w.budget {
			dec, complete = dec[:w.budget], false
		}
	}
	if !complete {
		part.Truncated = true
		w.res.Truncated = true
	}
	w.budget -= len(dec)
	w.scanText(dec, part, format)
}

// scanText scans decoded text as part (format "csv"/"tsv" for tables).
func (w *mimeWalker) scanText(text []byte, part MIMEPart, format Format) {
	if looksUTF16(text, part.Charset) {
		w.buf16 = appendUTF16(w.buf16[:0], text, part.Charset)
		text = w.buf16
	}
	part.First = len(w.res.Detections)
	if IsBinary(text) {
		w.skip(part, "binary content")
		return
	}
	part.Size = len(text)
	var trunc bool
	switch format {
	case FormatCSV, FormatTSV:
		var tab Tabular
		delim := byte(0)
		if format == FormatTSV {
			delim = '\t'
		}
		w.res.Detections, tab, trunc = w.s.ScanCSV(text, delim, w.res.Detections)
		part.Tabular = &tab
	default:
		w.res.Detections, trunc = w.s.Scan(text, w.res.Detections)
	}
	if trunc {
		part.Truncated = true
		w.res.Truncated = true
		part.Size = w.s.maxScan
	}
	part.Count = len(w.res.Detections) - part.First
	w.res.Scanned += part.Size
	w.res.Parts = append(w.res.Parts, part)
	if w.opt.OnPart != nil {
		w.opt.OnPart(&w.res.Parts[len(w.res.Parts)-1], text[:part.Size], w.res.Detections[part.First:])
	}
}

// textFormat reports whether a part of media type mt (and file name) is
// text, and whether it is a table.
func textFormat(mt, filename string) (Format, bool) {
	switch mt {
	case "text/csv", "application/csv", "text/x-csv", "application/x-csv", "text/comma-separated-values":
		return FormatCSV, true
	case "text/tab-separated-values":
		return FormatTSV, true
	case "application/json", "application/xml", "application/javascript", "application/x-javascript",
		"application/yaml", "application/x-yaml", "application/x-ndjson", "application/sql", "application/x-sh":
		return FormatText, true
	}
	if strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") {
		return FormatText, true
	}
	if mt == "application/octet-stream" || mt == "" || strings.HasPrefix(mt, "application/vnd.ms-excel") {
		switch f := strings.ToLower(filename); {
		case strings.HasSuffix(f, ".csv"):
			return FormatCSV, true
		case strings.HasSuffix(f, ".tsv"):
			return FormatTSV, true
		case strings.HasSuffix(f, ".txt"), strings.HasSuffix(f, ".json"), strings.HasSuffix(f, ".xml"),
			strings.HasSuffix(f, ".log"), strings.HasSuffix(f, ".md"), strings.HasSuffix(f, ".sql"):
			return FormatText, true
		}
	}
	return "", false
}

// mediaType parses a Content-Type or Content-Disposition value: the
// lower-case type and its parameters. A value mime.ParseMediaType rejects
// still yields its type.
func mediaType(v, def string) (string, map[string]string) {
	v = strings.TrimSpace(v)
	if v == "" {
		return def, nil
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		mt, _, _ = strings.Cut(v, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		if mt == "" {
			mt = def
		}
	}
	return mt, params
}

// splitHeader splits an entity into its header block and body at the
// first empty line. It reports false when the entity does not start with a
// header field (or an empty line) or has no empty line within
// maxHeaderBlock bytes.
func splitHeader(e []byte) (hdr, body []byte, ok bool) {
	if len(e) > 0 && e[0] == '\n' {
		return nil, e[1:], true
	}
	if len(e) > 1 && e[0] == '\r' && e[1] == '\n' {
		return nil, e[2:], true
	}
	if !headerLine(e) {
		return nil, nil, false
	}
	win := e
	if len(win) > maxHeaderBlock {
		win = win[:maxHeaderBlock]
	}
	for i := 0; ; {
		k := bytes.IndexByte(win[i:], '\n')
		if k < 0 {
			if len(e) <= maxHeaderBlock {
				return e, nil, true // headers only
			}
			return nil, nil, false
		}
		j := i + k + 1 // start of the next line
		switch {
		case j < len(win) && win[j] == '\n':
			return e[:j], e[j+1:], true
		case j+1 < len(win) && win[j] == '\r' && win[j+1] == '\n':
			return e[:j], e[j+2:], true
		}
		i = j
	}
}

// headerLine reports whether b starts with "Name:" (printable ASCII
// without space or colon, then a colon).
func headerLine(b []byte) bool {
	for i := 0; i < len(b) && i < 80; i++ {
		c := b[i]
		if c == ':' {
			return i > 0
		}
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return false
}

// headerValue returns the unfolded value of the first field called name
// (lower case) in a header block, or "".
func headerValue(hdr []byte, name string) string {
	for i := 0; i < len(hdr); {
		end := bytes.IndexByte(hdr[i:], '\n')
		if end < 0 {
			end = len(hdr)
		} else {
			end += i
		}
		line := hdr[i:end]
		i = end + 1
		if len(line) <= len(name) || line[len(name)] != ':' || !asciiEqualFold(line[:len(name)], name) {
			continue
		}
		v := string(bytes.TrimSpace(line[len(name)+1:]))
		// Continuation lines start with a space or a tab.
		for i < len(hdr) && (hdr[i] == ' ' || hdr[i] == '\t') {
			end := bytes.IndexByte(hdr[i:], '\n')
			if end < 0 {
				end = len(hdr)
			} else {
				end += i
			}
			v += " " + string(bytes.TrimSpace(hdr[i:end]))
			i = end + 1
			if len(v) > maxHeaderBlock {
				break
			}
		}
		return v
	}
	return ""
}

func asciiEqualFold(b []byte, lowerName string) bool {
	for k := range b {
		if lower(b[k]) != lowerName[k] {
			return false
		}
	}
	return true
}

// splitMultipart calls fn with each body part of a multipart body (RFC
// 2046): the bytes between a delimiter line "--boundary" and the line
// break before the next delimiter. The preamble and epilogue are ignored; a
// missing close delimiter ends the last part at the end of the body. fn
// returning false stops the walk.
func splitMultipart(body []byte, boundary string, fn func([]byte) bool) {
	delim := make([]byte, 0, len(boundary)+2)
	delim = append(append(delim, "--"...), boundary...)
	next := func(from int) (at, after int, final bool) {
		for from <= len(body) {
			k := bytes.Index(body[from:], delim)
			if k < 0 {
				return -1, 0, false
			}
			at = from + k
			from = at + 1
			if at > 0 && body[at-1] != '\n' {
				continue
			}
			p := at + len(delim)
			if p+2 <= len(body) && body[p] == '-' && body[p+1] == '-' {
				return at, len(body), true
			}
			for p < len(body) && (body[p] == ' ' || body[p] == '\t') {
				p++
			}
			switch {
			case p == len(body):
				return at, p, false
			case body[p] == '\n':
				return at, p + 1, false
			case body[p] == '\r' && p+1 < len(body) && body[p+1] == '\n':
				return at, p + 2, false
			}
		}
		return -1, 0, false
	}
	at, after, final := next(0)
	for at >= 0 && !final {
		nat, nafter, nfinal := next(after)
		end := len(body)
		if nat >= 0 {
			end = nat
			// The line break before a delimiter belongs to it.
			if end > after && body[end-1] == '\n' {
				end--
				if end > after && body[end-1] == '\r' {
					end--
				}
			}
		}
		if !fn(body[after:end]) {
			return
		}
		at, after, final = nat, nafter, nfinal
	}
}

// decodeBody decodes a body with its transfer encoding into dst (identity
// encodings are copied), writing at most limit bytes. complete is false
// when the limit cut the output.
func decodeBody(dst, src []byte, enc string, limit int) ([]byte, bool) {
	switch enc {
	case "base64":
		return decodeBase64(dst, src, limit)
	case "quoted-printable":
		return decodeQP(dst, src, limit)
	}
	if len(src) > limit {
		return append(dst, src[:limit]...), false
	}
	return append(dst, src...), true
}

var b64 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alpha); i++ {
		t[alpha[i]] = byte(i)
	}
	t['-'], t['_'] = 62, 63 // the URL-safe alphabet, seen in the wild
	return t
}()

// decodeBase64 decodes base64 leniently: characters outside the alphabet
// (line breaks, spaces, garbage) are skipped and '=' ends a quantum.
func decodeBase64(dst, src []byte, limit int) ([]byte, bool) {
	if cap(dst)-len(dst) < min(len(src)/4*3+3, limit) {
		dst = growBytes(dst, min(len(src)/4*3+3, limit))
	}
	var acc uint32
	n := 0
	for _, c := range src {
		v := b64[c]
		if v == 0xFF {
			if c == '=' && n > 0 {
				dst, acc, n = flushB64(dst, acc, n)
			}
			continue
		}
		acc = acc<<6 | uint32(v)
		n++
		if n == 4 {
			if limit-len(dst) < 3 {
				return dst, false
			}
			dst = append(dst, byte(acc>>16), byte(acc>>8), byte(acc))
			acc, n = 0, 0
		}
	}
	if n > 0 {
		dst, _, _ = flushB64(dst, acc, n)
	}
	if len(dst) > limit {
		return dst[:limit], false
	}
	return dst, true
}

// flushB64 writes the bytes of an incomplete quantum of n characters.
func flushB64(dst []byte, acc uint32, n int) ([]byte, uint32, int) {
	switch n {
	case 2:
		dst = append(dst, byte(acc>>4))
	case 3:
		dst = append(dst, byte(acc>>10), byte(acc>>2))
	}
	return dst, 0, 0
}

// decodeQP decodes quoted-printable leniently: "=XX" is a byte, "=" at a
// line end a soft break, any other '=' stays as it is.
func decodeQP(dst, src []byte, limit int) ([]byte, bool) {
	if cap(dst)-len(dst) < min(len(src), limit) {
		dst = growBytes(dst, min(len(src), limit))
	}
	for i := 0; i < len(src); i++ {
		if len(dst) >= limit {
			return dst, false
		}
		c := src[i]
		if c != '=' {
			dst = append(dst, c)
			continue
		}
		if i+2 < len(src) && unhex(src[i+1]) < 16 && unhex(src[i+2]) < 16 {
			dst = append(dst, unhex(src[i+1])<<4|unhex(src[i+2]))
			i += 2
			continue
		}
		// Soft line break: '=' then optional white space, then CRLF/LF.
		j := i + 1
		for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
			j++
		}
		switch {
		case j < len(src) && src[j] == '\n':
			i = j
			continue
		case j+1 < len(src) && src[j] == '\r' && src[j+1] == '\n':
			i = j + 1
			continue
		case j == len(src):
			i = j
			continue
		}
		dst = append(dst, c)
	}
	return dst, true
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return 0xFF
}

func growBytes(b []byte, n int) []byte {
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}

func hasUTF16BOM(b []byte) bool {
	return len(b) >= 2 && (b[0] == 0xFF && b[1] == 0xFE || b[0] == 0xFE && b[1] == 0xFF)
}

// appendUTF16 transcodes UTF-16 text (byte order from a BOM, else from
// the charset label, else big-endian as RFC 2781 says) to UTF-8. An odd
// trailing byte is dropped; unpaired surrogates become U+FFFD.
func appendUTF16(dst, b []byte, charset string) []byte {
	le := charset == "utf-16le"
	switch {
	case len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE:
		le, b = true, b[2:]
	case len(b) >= 2 && b[0] == 0xFE && b[1] == 0xFF:
		le, b = false, b[2:]
	}
	if cap(dst)-len(dst) < len(b)*3/2 {
		dst = growBytes(dst, len(b)*3/2)
	}
	for i := 0; i+1 < len(b); i += 2 {
		u := rune(b[i])<<8 | rune(b[i+1])
		if le {
			u = rune(b[i+1])<<8 | rune(b[i])
		}
		if utf16.IsSurrogate(u) && i+3 < len(b) {
			u2 := rune(b[i+2])<<8 | rune(b[i+3])
			if le {
				u2 = rune(b[i+3])<<8 | rune(b[i+2])
			}
			if r := utf16.DecodeRune(u, u2); r != utf8.RuneError {
				dst = utf8.AppendRune(dst, r)
				i += 2
				continue
			}
		}
		dst = utf8.AppendRune(dst, u)
	}
	return dst
}
