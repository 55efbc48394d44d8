package edm

import (
	"fmt"
	"slices"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/leakline/leakline/pkg/inspect"
)

// Matcher defaults.
const (
	// DefaultNameWindow is how close (in bytes, gap between the spans) a
	// full name must stand to another identifier of the same customer to
	// count.
	DefaultNameWindow = 256
	// DefaultMaxRowsPerValue: an identifier shared by more rows (a
	// switchboard number, a shared mailbox) identifies no customer and is
	// ignored.
	DefaultMaxRowsPerValue = 8
)

// DefaultTypes maps the built-in detector types to identifier types. A
// custom detector's type maps to its lower-cased name (CUSTOMER_ID →
// customer_id) when the index has that identifier type.
var DefaultTypes = map[inspect.Type]string{
	inspect.Email: TypeEmail,
	inspect.Phone: TypePhone,
	inspect.Card:  TypeCard,
	inspect.SSN:   TypeSSN,
	inspect.IBAN:  TypeIBAN,
	inspect.NINO:  TypeNINO,
}

// MatcherOptions configures a Matcher. Zero values mean the defaults.
type MatcherOptions struct {
	// Types maps detection types to identifier types; nil means
	// DefaultTypes (plus custom types by lower-cased name).
	Types map[inspect.Type]string
	// NameWindow is DefaultNameWindow when 0.
	NameWindow int
	// MaxRowsPerValue is DefaultMaxRowsPerValue when 0.
	MaxRowsPerValue int
}

// Matcher finds an index's customers in scanned content. It is immutable
// and safe for concurrent use; each call works in the caller's Match.
type Matcher struct {
	idx      *Index
	types    map[inspect.Type]string
	byName   bool // no explicit Types: custom types by lower-cased name
	window   int
	maxRows  int
	hasNames bool
}

// NewMatcher returns a Matcher over idx.
func NewMatcher(idx *Index, opt MatcherOptions) (*Matcher, error) {
	if idx == nil {
		return nil, fmt.Errorf("edm: NewMatcher: nil index")
	}
	m := &Matcher{idx: idx, window: opt.NameWindow, maxRows: opt.MaxRowsPerValue, types: opt.Types}
	if m.window == 0 {
		m.window = DefaultNameWindow
	}
	if m.maxRows == 0 {
		m.maxRows = DefaultMaxRowsPerValue
	}
	if m.window < 0 || m.maxRows < 0 {
		return nil, fmt.Errorf("edm: NewMatcher: negative option")
	}
	if m.types == nil {
		m.types = DefaultTypes
		m.byName = true
	}
	for dt, it := range m.types {
		if !ValidType(it) {
			return nil, fmt.Errorf("edm: NewMatcher: detection type %s maps to invalid identifier type %q", dt, it)
		}
	}
	m.hasNames = idx.HasType(TypeName)
	return m, nil
}

// Match is the result of Matcher.Match. Reuse one Match across calls:
// after the first few calls matching allocates nothing.
type Match struct {
	// Rows are the distinct matched customer rows, ascending: rows with at
	// least one identifier found in the content. A name never adds a row
	// on its own.
	Rows []uint32
	// ByType counts the matched identifiers per identifier type (each
	// detection that matched counts once; "name" counts full names found
	// within the name window of another identifier of the same customer).
	ByType map[string]int

	hits    []hit
	cands   []cand
	sink    uint32
	norm    []byte
	scratch []byte
	rowsb   []uint32
	words   [3]span
}

type hit struct {
	start, end int
	row        uint32
}

type span struct{ start, end int }

// cand is a detection to look up.
type cand struct {
	fp         uint64
	typ        string
	start, end int
}

// Reset empties m, keeping its storage.
func (m *Match) Reset() {
	m.Rows = m.Rows[:0]
	clear(m.ByType)
	m.hits = m.hits[:0]
}

// identifierType returns the identifier type a detection type maps to.
func (mt *Matcher) identifierType(t inspect.Type) string {
	if it, ok := mt.types[t]; ok {
		return it
	}
	if mt.byName {
		var buf [MaxTypeLen]byte
		if len(t) > len(buf) {
			return ""
		}
		for i := 0; i < len(t); i++ {
			c := t[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		name := buf[:len(t)]
		for i := range mt.idx.types {
			if mt.idx.types[i].name == string(name) {
				return mt.idx.types[i].name
			}
		}
	}
	return ""
}

// Match looks up every detection of a mapped type (ds, as Scan returned
// them for text) and, when some matched, full names near them, and
// stores the result in res (reset first).
func (mt *Matcher) Match(text []byte, ds []inspect.Detection, res *Match) {
	res.Reset()
	if res.ByType == nil {
		res.ByType = make(map[string]int)
	}
	// Fingerprint every candidate, touch their slots (the cache misses
	// overlap), then look them up.
	res.cands = res.cands[:0]
	for _, d := range ds {
		if d.Start < 0 || d.End > len(text) || d.Start >= d.End {
			continue
		}
		it := mt.identifierType(d.Type)
		if it == "" {
			continue
		}
		var ok bool
		res.norm, ok = Normalize(it, text[d.Start:d.End], res.norm[:0])
		if !ok {
			continue
		}
		fp, ok := mt.idx.Fingerprint(it, res.norm)
		if !ok {
			continue
		}
		res.cands = append(res.cands, cand{fp: fp, typ: it, start: d.Start, end: d.End})
	}
	var sink uint32
	for _, c := range res.cands {
		sink += mt.idx.Touch(c.fp)
	}
	res.sink = sink
	for _, c := range res.cands {
		res.rowsb = mt.idx.LookupAllFingerprint(c.fp, res.rowsb[:0])
		if len(res.rowsb) == 0 || len(res.rowsb) > mt.maxRows {
			continue
		}
		res.ByType[c.typ]++
		for _, r := range res.rowsb {
			res.hits = append(res.hits, hit{c.start, c.end, r})
			res.Rows = append(res.Rows, r)
		}
	}
	if len(res.hits) == 0 {
		return
	}
	slices.Sort(res.Rows)
	res.Rows = slices.Compact(res.Rows)
	if mt.hasNames {
		mt.names(text, res)
	}
}

// MatchString is Match for a string (it is not copied).
func (mt *Matcher) MatchString(text string, ds []inspect.Detection, res *Match) {
	mt.Match(unsafeBytes(text), ds, res)
}

// names scans the surroundings of the hits for capitalized word pairs and
// triples and counts those that are the name of a customer with a hit
// within the window.
func (mt *Matcher) names(text []byte, res *Match) {
	slices.SortFunc(res.hits, func(a, b hit) int { return a.start - b.start })
	w := mt.window
	// Windows around the hits, merged.
	for i := 0; i < len(res.hits); {
		lo, hi := max(res.hits[i].start-w, 0), min(res.hits[i].end+w, len(text))
		j := i + 1
		for j < len(res.hits) && res.hits[j].start-w <= hi {
			hi = min(max(hi, res.hits[j].end+w), len(text))
			j++
		}
		mt.namesIn(text, lo, hi, res)
		i = j
	}
}

// namesIn finds capitalized words in text[lo:hi] and tries each run's
// last two or three words (and first-and-last of three) as names.
func (mt *Matcher) namesIn(text []byte, lo, hi int, res *Match) {
	n := 0 // consecutive capitalized words in res.words (last 3)
	prevEnd := -1
	for p := lo; p < hi; {
		r, size := utf8.DecodeRune(text[p:])
		_, kind := nameRune(r)
		if kind != 1 || wordBefore(text, p) {
			p += size
			continue
		}
		// A word starts at p.
		e := wordEnd(text, p)
		if !unicode.IsUpper(r) && !unicode.IsTitle(r) {
			n, prevEnd = 0, -1
			p = e
			continue
		}
		if prevEnd < 0 || !onlySpaces(text[prevEnd:p]) {
			n = 0
		}
		if n == 3 {
			res.words[0], res.words[1] = res.words[1], res.words[2]
			n = 2
		}
		res.words[n] = span{p, e}
		n++
		prevEnd = e
		if n >= 2 {
			mt.tryNames(text, res, n)
		}
		p = e
	}
}

// tryNames looks up the name candidates ending with the newest word:
// last two words, last three, first and last of three. At most one counts.
func (mt *Matcher) tryNames(text []byte, res *Match, n int) {
	ws := res.words[:n]
	last := ws[n-1]
	cands := [3][2]int{{n - 2, -1}, {-1, -1}, {-1, -1}}
	if n == 3 {
		cands[1] = [2]int{0, -1} // all three
		cands[2] = [2]int{0, 1}  // first and last, skipping the middle
	}
	for _, c := range cands {
		if c[0] < 0 {
			continue
		}
		from := ws[c[0]]
		var value []byte
		if c[1] < 0 {
			value = text[from.start:last.end]
		} else {
			res.scratch = append(append(append(res.scratch[:0], text[from.start:from.end]...), ' '), text[last.start:last.end]...)
			value = res.scratch
		}
		var ok bool
		res.norm, ok = NormalizeName(value, res.norm[:0])
		if !ok {
			continue
		}
		res.rowsb = mt.idx.LookupAll(TypeName, res.norm, res.rowsb[:0])
		for _, r := range res.rowsb {
			if mt.nearHit(res, r, from.start, last.end) {
				res.ByType[TypeName]++
				return
			}
		}
	}
}

// nearHit reports whether a hit of row r lies within the window of
// [start, end).
func (mt *Matcher) nearHit(res *Match, r uint32, start, end int) bool {
	for _, h := range res.hits {
		if h.row != r {
			continue
		}
		gap := 0
		switch {
		case h.end <= start:
			gap = start - h.end
		case h.start >= end:
			gap = h.start - end
		}
		if gap <= mt.window {
			return true
		}
	}
	return false
}

// wordBefore reports whether a letter (or an in-word apostrophe/hyphen
// glued to one) ends right before text[p].
func wordBefore(text []byte, p int) bool {
	if p == 0 {
		return false
	}
	r, size := utf8.DecodeLastRune(text[:p])
	switch _, kind := nameRune(r); kind {
	case 1:
		return true
	case 2:
		r2, _ := utf8.DecodeLastRune(text[:p-size])
		_, k2 := nameRune(r2)
		return k2 == 1
	}
	return false
}

// wordEnd returns the end of the word starting at p: letters, with
// apostrophes and hyphens between letters.
func wordEnd(text []byte, p int) int {
	for p < len(text) {
		r, size := utf8.DecodeRune(text[p:])
		_, kind := nameRune(r)
		switch kind {
		case 1, 3:
			p += size
			continue
		case 2:
			if p+size < len(text) {
				r2, _ := utf8.DecodeRune(text[p+size:])
				if _, k2 := nameRune(r2); k2 == 1 {
					p += size
					continue
				}
			}
		}
		return p
	}
	return p
}

// onlySpaces reports whether b is one to three spaces or tabs (words of a
// name are separated by white space only, on one line).
func onlySpaces(b []byte) bool {
	if len(b) == 0 || len(b) > 3 {
		return false
	}
	for _, c := range b {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// unsafeBytes is a read-only view of s.
func unsafeBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
