package inspect

import (
	"bytes"
	"slices"
)

// Header-only column classes: a column of names, customer ids or dates of
// birth makes a spreadsheet a customer list even though no detector
// reports those cells (a configured custom detector named CUSTOMER_ID does).
const (
	PersonName  Type = "PERSON_NAME"
	CustomerID  Type = "CUSTOMER_ID"
	DateOfBirth Type = "DATE_OF_BIRTH"
)

// MaxCSVColumns bounds the header columns ScanCSV classifies; further
// columns are scanned as plain text.
const MaxCSVColumns = 1024

// Tabular summarizes a CSV or TSV body: a spreadsheet of customer rows is
// the classic exfiltration artefact. Header texts are not kept (a file
// without a header row has a data row there).
type Tabular struct {
	// Delimiter is the field separator used: ',', '\t', ';' or '|'.
	Delimiter string `json:"delimiter"`
	// Rows counts the non-empty data rows (header excluded) within the
	// scanned part of the body.
	Rows int `json:"rows"`
	// Columns is the number of header fields.
	Columns int `json:"columns"`
	// PIIColumns are the columns whose header names a kind of PII.
	PIIColumns []TabularColumn `json:"pii_columns,omitempty"`
}

// TabularColumn is a column whose header names a kind of PII.
type TabularColumn struct {
	// Index is the 0-based column number.
	Index int `json:"index"`
	// Type is the detector type the header names (EMAIL_ADDRESS,
	// PHONE_NUMBER, CREDIT_CARD, US_SSN, IBAN, UK_NINO, a custom
	// detector's Name) or a header-only class (PERSON_NAME, CUSTOMER_ID,
	// DATE_OF_BIRTH).
	Type Type `json:"type"`
	// Cells counts the column's cells holding a detection of Type.
	Cells int `json:"cells"`
}

// classifyHeader maps a header cell to the PII type it names, or "".
// Custom detector names match too ("CUSTOMER_ID" ~ "Customer ID").
func (s *Scanner) classifyHeader(cell []byte) Type {
	var buf [48]byte
	h := buf[:0]
	for _, c := range cell {
		if len(h) == len(buf) {
			return ""
		}
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			h = append(h, c)
		case 'A' <= c && c <= 'Z':
			h = append(h, c+'a'-'A')
		}
	}
	for _, cd := range s.custom {
		if headerKey(string(cd.typ)) == string(h) {
			return cd.typ
		}
	}
	has := func(sub string) bool { return bytes.Contains(h, []byte(sub)) }
	switch string(h) {
	case "mail":
		return Email
	case "tel", "cell", "fax", "mob", "msisdn":
		return Phone
	case "cc", "ccnum", "pan":
		return Card
	case "nin", "ni":
		return NINO
	case "name", "fullname", "firstname", "lastname", "surname", "givenname", "familyname", "forename",
		"customername", "clientname", "contactname", "cardholder", "cardholdername", "nameoncard":
		return PersonName
	case "customerid", "custid", "customerno", "customernumber", "customerref", "clientid", "clientnumber",
		"accountid", "accountnumber", "accountno", "memberid", "membernumber":
		return CustomerID
	case "dob", "dateofbirth", "birthdate", "birthday":
		return DateOfBirth
	}
	switch {
	case has("email"):
		return Email
	case has("phone"), has("mobile"), has("telephone"):
		return Phone
	case has("iban"):
		return IBAN
	case has("ssn"), has("socialsecurity"):
		return SSN
	case has("nino"), has("nationalinsurance"):
		return NINO
	case has("card"), has("ccnumber"):
		return Card
	}
	return ""
}

// headerKey is a custom detector name as classifyHeader compares it.
func headerKey(name string) string {
	b := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			b = append(b, c+'a'-'A')
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			b = append(b, c)
		}
	}
	return string(b)
}

// csvReader walks the cells of a CSV body (RFC 4180, read leniently: an
// unterminated quote runs to the end, text after a closing quote is part
// of the cell, CR before LF is dropped). Cell spans exclude the quotes;
// doubled quotes stay in the span.
type csvReader struct {
	b     []byte
	pos   int
	delim byte
}

// next returns the span of the next cell and whether it ends its row; ok
// is false at the end of the input.
func (r *csvReader) next() (start, end int, endRow, ok bool) {
	b := r.b
	n := len(b)
	if r.pos >= n {
		return 0, 0, false, false
	}
	p := r.pos
	if b[p] == '"' {
		start = p + 1
		q := start
		for {
			k := bytes.IndexByte(b[q:], '"')
			if k < 0 {
				r.pos = n
				return start, n, true, true
			}
			q += k
			if q+1 < n && b[q+1] == '"' {
				q += 2
				continue
			}
			break
		}
		end = q
		p = q + 1
		// Anything up to the delimiter or the line end is dropped.
		for p < n && b[p] != r.delim && b[p] != '\n' {
			p++
		}
	} else {
		start = p
		for p < n && b[p] != r.delim && b[p] != '\n' {
			p++
		}
		end = p
		if end > start && b[end-1] == '\r' && (p == n || b[p] == '\n') {
			end--
		}
	}
	switch {
	case p >= n:
		endRow = true
		r.pos = n
	case b[p] == '\n':
		endRow = true
		r.pos = p + 1
	default:
		r.pos = p + 1
	}
	return start, end, endRow, true
}

// sepIndex maps a candidate delimiter to its place in sniffDelimiter's
// seps, plus one (one table load per byte instead of four compares).
var sepIndex = [256]uint8{',': 1, '\t': 2, ';': 3, '|': 4}

// sniffDelimiter picks the field separator of a CSV body from its first
// line: the most frequent of ',', '\t', ';' and '|' outside quotes, ','
// when none occurs.
func sniffDelimiter(b []byte) byte {
	var cnt [4]int
	seps := [4]byte{',', '\t', ';', '|'}
	quoted := false
	for i := 0; i < len(b) && i < 64<<10; i++ {
		c := b[i]
		if c == '"' {
			quoted = !quoted
			continue
		}
		if quoted {
			continue
		}
		if c == '\n' {
			break
		}
		if k := sepIndex[c]; k != 0 {
			cnt[k-1]++
		}
	}
	best := 0
	for k := 1; k < len(cnt); k++ {
		if cnt[k] > cnt[best] {
			best = k
		}
	}
	return seps[best]
}

// looksLikeCSV reports whether b starts with a header row that names a
// kind of PII and a data row with as many fields, and returns the
// delimiter.
func (s *Scanner) looksLikeCSV(b []byte) (byte, bool) {
	d := sniffDelimiter(b)
	r := csvReader{b: b, delim: d}
	header, pii := 0, false
	for {
		st, en, endRow, ok := r.next()
		if !ok {
			return 0, false
		}
		header++
		if header <= MaxCSVColumns && s.classifyHeader(b[st:en]) != "" {
			pii = true
		}
		if endRow {
			break
		}
	}
	if !pii || (header < 2 && d != ',') {
		return 0, false
	}
	fields := 0
	for {
		_, _, endRow, ok := r.next()
		if !ok {
			break
		}
		fields++
		if endRow {
			break
		}
	}
	return d, fields == header
}

// csvForce maps a column type to the detector bit whose keywords the
// column header stands for.
func csvForce(t Type) uint16 {
	switch t {
	case Phone:
		return dPhone
	case SSN:
		return dSSN
	case Card:
		return dCard
	case NINO:
		return dNINO
	}
	return 0
}

// raise returns c one level higher, at most High.
func raise(c Confidence) Confidence {
	if c < High {
		return c + 1
	}
	return c
}

// ScanCSV scans a CSV or TSV body (delim ',', '\t', ';' or '|'; 0 picks
// it from the first line) and appends its detections to dst. The first row
// is the header: a column headed email/e-mail, phone/mobile/tel,
// card/credit card, ssn, iban, nino, a custom detector's name (or one of
// the header-only classes name, customer id, date of birth) is a PII
// column. A detection of the column's type inside one of its cells is
// raised one confidence level (internal addresses, Low, stay Low), and a
// cell where the plain scan found nothing is scanned again with the
// column's keywords counting as present, so that bare numbers ("4155552671"
// under "phone", "536904399" under "ssn") are found. Offsets are those of
// data; detections are ordered by Start. Bodies longer than MaxScanBytes
// are scanned up to the cap and truncated is true.
func (s *Scanner) ScanCSV(data []byte, delim byte, dst []Detection) ([]Detection, Tabular, bool) {
	truncated := false
	if len(data) > s.maxScan {
		data = data[:s.maxScan]
		truncated = true
	}
	if delim == 0 {
		delim = sniffDelimiter(data)
	}
	tab := Tabular{Delimiter: string(rune(delim))}
	base := len(dst)
	// One scanning state for the whole body and the cell rescans, so that
	// a value repeated down a column reuses its token.
	st := state{s: s, text: data, dst: dst}
	st.scanAll()
	dst = st.dst

	r := csvReader{b: data, delim: delim}
	var cols []Type
	pii := false
	for {
		hs, he, endRow, ok := r.next()
		if !ok {
			break
		}
		tab.Columns++
		if len(cols) < MaxCSVColumns {
			t := s.classifyHeader(data[hs:he])
			cols = append(cols, t)
			if t != "" {
				pii = true
				tab.PIIColumns = append(tab.PIIColumns, TabularColumn{Index: len(cols) - 1, Type: t})
			}
		}
		if endRow {
			break
		}
	}
	colIdx := func(c int) int { // index in tab.PIIColumns
		for k := range tab.PIIColumns {
			if tab.PIIColumns[k].Index == c {
				return k
			}
		}
		return -1
	}

	end := len(dst)
	next := base // first detection not before the current cell
	col, rowEmpty := 0, true
	for {
		cs, ce, endRow, ok := r.next()
		if !ok {
			break
		}
		if ce > cs {
			rowEmpty = false
		}
		if pii && col < len(cols) && cols[col] != "" && ce > cs {
			t := cols[col]
			for next < end && dst[next].Start < cs {
				next++
			}
			found := false
			for k := next; k < end && dst[k].Start < ce; k++ {
				d := &dst[k]
				if d.Type != t || d.End > ce {
					continue
				}
				found = true
				switch {
				case d.Type == Email && d.Confidence == Low:
					// An internal address stays internal.
				case s.customKeywords(t):
					d.Confidence = High // the header is the keyword
				default:
					d.Confidence = raise(d.Confidence)
				}
			}
			if !found {
				n := len(dst)
				if bit := csvForce(t); bit != 0 && s.enabled&bit != 0 {
					dst = st.rescanCell(data, cs, ce, t, bit, "", dst)
				} else if s.isCustom(t) {
					dst = st.rescanCell(data, cs, ce, t, 0, t, dst)
				}
				found = len(dst) > n
			}
			if found {
				tab.PIIColumns[colIdx(col)].Cells++
			}
		}
		col++
		if endRow {
			if !rowEmpty {
				tab.Rows++
			}
			col, rowEmpty = 0, true
		}
	}
	if col > 0 && !rowEmpty { // the last row ends at the end of the input
		tab.Rows++
	}
	if len(dst) > end {
		slices.SortStableFunc(dst[base:], func(a, b Detection) int { return a.Start - b.Start })
	}
	dst = append(dst[:base], s.applyMinCount(dst[base:])...)
	return dst, tab, truncated
}

// customKeywords reports whether t is a custom detector with keywords.
func (s *Scanner) customKeywords(t Type) bool {
	for _, c := range s.custom {
		if c.typ == t {
			return c.keywords != nil
		}
	}
	return false
}

func (s *Scanner) isCustom(t Type) bool {
	for _, c := range s.custom {
		if c.typ == t {
			return true
		}
	}
	return false
}

// rescanCell scans data[cs:ce] alone with the keywords of detector bit
// (or of custom detector custom) counting as present, and appends the
// detections of type t, with offsets into data, to dst. It reuses st (and
// its token cache).
func (st *state) rescanCell(data []byte, cs, ce int, t Type, bit uint16, custom Type, dst []Detection) []Detection {
	st.text, st.dst, st.floor = data[cs:ce], dst, 0
	st.kwForce, st.forceCustom = bit, custom
	base := len(dst)
	st.scanAll()
	out := st.dst[:base]
	for _, d := range st.dst[base:] {
		if d.Type == t {
			d.Start += cs
			d.End += cs
			out = append(out, d)
		}
	}
	return out
}
