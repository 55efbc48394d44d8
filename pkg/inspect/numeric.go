package inspect

import (
	"encoding/binary"
	"math/bits"
)

// Digit runs: a run is a sequence of digit groups joined by single
// separators (space, '-', '.', no-break space) or parentheses, collected
// once and offered to every numeric validator. Full-width digits count as
// digits and invisible characters between digits are skipped, so neither
// hides a value; offsets stay those of the original bytes.

const (
	maxGroups      = 24
	maxRunDigits   = 64
	maxGroupDigits = 34 // a longer group is never part of a value
	maxCandDigits  = 20 // most digits in one candidate (card 19, +44 (0)...)
)

// Separators before a group.
const (
	sepNone  = iota // only next to a parenthesis: "(415)555", "(0)20"
	sepSpace        // ' ' or U+00A0
	sepDash
	sepDot
)

type run struct {
	n      int                  // groups
	nd     int                  // digits stored
	gd     [maxGroups + 1]uint8 // index in digits of group k's first digit; gd[n] = nd
	glen   [maxGroups]uint8     // digits in group k
	start  [maxGroups]int       // offset of group k's first digit, or of its '('
	end    [maxGroups]int       // offset after group k's last digit
	sep    [maxGroups]uint8     // separator before group k (k >= 1)
	paren  [maxGroups]bool      // group k is written "(ddd)"
	long   [maxGroups]bool      // group k is too long to be (part of) a value
	digits [maxRunDigits]byte   // normalized ASCII digits
	plus   int                  // offset of a '+' right before group 0, or -1
	tFirst bool                 // group 0 is glued to a preceding letter/digit
	tLast  bool                 // the last group is glued to a following letter/'@'
	obf    bool                 // invisible characters or full-width digits inside
}

// collect reads the digit run whose first digit is at i into st.r and
// returns the offset after its last digit.
func (st *state) collect(i int) int {
	b := st.text
	n := len(b)
	r := &st.r
	r.n, r.nd, r.plus = 0, 0, -1
	r.tFirst, r.tLast, r.obf = false, false, false
	openParen := -1
	if p := prevChar(b, i); p >= 0 {
		switch c := b[p]; {
		case c == '+':
			if q := prevChar(b, p); q < 0 || !isWord(b[q]) {
				r.plus = p
			}
		case c == '(':
			openParen = p
		case isWord(c):
			r.tFirst = true
		}
	}
	j := i
	for {
		g := r.n
		r.gd[g] = uint8(r.nd)
		first := j
		cnt := 0
		stored := 0
		for j < n {
			d, w := digitAt(b, j)
			if w == 0 {
				if b[j] >= 0x80 && zwAt(b, j) > 0 {
					k := skipZW(b, j)
					if k < n {
						if _, w2 := digitAt(b, k); w2 > 0 {
							j = k
							r.obf = true
							continue
						}
					}
				}
				break
			}
			if w == 3 {
				r.obf = true
			}
			if r.nd < maxRunDigits && cnt < maxGroupDigits {
				r.digits[r.nd] = d
				r.nd++
				stored++
			}
			cnt++
			j += w
		}
		if cnt > 255 {
			cnt = 255
		}
		r.glen[g] = uint8(cnt)
		r.long[g] = stored < cnt || cnt > maxGroupDigits
		r.start[g] = first
		r.end[g] = j
		r.paren[g] = false
		r.n++

		k := skipZW(b, j)
		if openParen >= 0 {
			if k < n && b[k] == ')' {
				r.paren[g] = true
				r.start[g] = openParen
				k++
			}
			openParen = -1
		}
		if r.n == maxGroups || r.nd >= maxRunDigits {
			break
		}
		sep := uint8(sepNone)
		if k < n {
			switch b[k] {
			case ' ':
				sep = sepSpace
				k++
			case '-':
				sep = sepDash
				k++
			case '.':
				sep = sepDot
				k++
			case 0xC2:
				if k+1 < n && b[k+1] == 0xA0 {
					sep = sepSpace
					k += 2
				}
			}
		}
		k = skipZW(b, k)
		if k+1 < n && b[k] == '(' && (sep == sepNone || sep == sepSpace) {
			if _, w := digitAt(b, k+1); w > 0 {
				openParen = k
				k++
			}
		}
		if sep == sepNone && !r.paren[g] && openParen < 0 {
			break
		}
		if k >= n {
			break
		}
		if _, w := digitAt(b, k); w == 0 {
			break
		}
		r.sep[g+1] = sep
		j = k
	}
	r.gd[r.n] = uint8(r.nd)
	e := r.end[r.n-1]
	if e < n {
		if c := b[e]; isWord(c) || c == '@' {
			r.tLast = true
		}
	}
	return e
}

// numericAt handles a digit (ASCII or full-width) at i and returns where
// scanning resumes.
func (st *state) numericAt(i int) int {
	s := st.s
	b := st.text
	if s.enabled&(dIBAN|dNINO) != 0 && i >= 2 && (isUpper(b[i-1]) || b[i-1] >= 0x80 || b[i-1] == ' ' && (isUpper(b[i-2]) || b[i-2] >= 0x80)) {
		if e := st.lettersPrefixed(i); e > 0 {
			return e
		}
	}
	// Fast paths for the common short numbers: a lone group of ASCII
	// digits too short to be anything ("2024", "12", "10:30"), or two
	// groups with fewer than 7 digits in all ("$4999.99", "3.5", "12-15").
	// They return exactly where collect and the checks below would.
	n := len(b)
	j := digitRun(b, i)
	if j-i < 9 && !st.mayContinue(j) && (j-i < 7 || i == 0 || b[i-1] != '+') {
		return j
	}
	if j-i < 6 && j+1 < n && (b[j] == '.' || b[j] == ' ' || b[j] == '-') && isDigit(b[j+1]) {
		j2 := digitRun(b, j+1)
		if j-i+j2-j-1 < 7 && !st.mayContinue(j2) && (j2 == n || b[j2] != '(') {
			return j2
		}
	}
	end := st.collect(i)
	r := &st.r
	if r.n == 1 {
		// A lone group: only long numbers or '+' numbers can be values.
		if r.tFirst || r.tLast || r.long[0] || r.nd < 7 || (r.nd < 9 && r.plus < 0) {
			return end
		}
	} else if r.nd < 7 && r.n < 4 {
		return end // IPv4 needs four groups, everything else 7 digits
	}
	st.candidates()
	return end
}

// digitRun returns the end of the run of ASCII digits starting at i,
// counting eight bytes at a time (no branch per digit).
func digitRun(b []byte, i int) int {
	for i+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[i:])
		hx := x | highs
		digits := (hx - '0'*ones) &^ (hx - ('9'+1)*ones) &^ x & highs
		if other := ^digits & highs; other != 0 {
			return i + bits.TrailingZeros64(other)>>3
		}
		i += 8
	}
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

// mayContinue reports whether the digit run that stops at j might go on:
// a separator or parenthesis followed by a digit, or a non-ASCII byte
// (invisible character, full-width digit, no-break space).
func (st *state) mayContinue(j int) bool {
	b := st.text
	if j >= len(b) {
		return false
	}
	switch c := b[j]; {
	case c >= 0x80 || c == ')':
		return true
	case c == ' ' || c == '-' || c == '.':
		if j+1 < len(b) {
			c2 := b[j+1]
			return isDigit(c2) || c2 == '(' || c2 >= 0x80
		}
	}
	return false
}

// candidates offers the sub-sequences of the run that start and end at
// group boundaries to the validators, longest first. A value may start at
// the run start or after a space, and end at the run end or before a
// space; it never starts or ends next to '-' or '.', so a value is never
// cut out of a longer dashed or dotted run.
func (st *state) candidates() {
	r := &st.r
	for i := 0; i < r.n; {
		okStart := (i == 0 && !r.tFirst) || (i > 0 && r.sep[i] == sepSpace)
		if !okStart || r.long[i] || r.start[i] < st.floor {
			i++
			continue
		}
		jmax, tot := i, int(r.glen[i])
		for jmax+1 < r.n && !r.long[jmax+1] && tot+int(r.glen[jmax+1]) <= maxCandDigits {
			jmax++
			tot += int(r.glen[jmax])
		}
		next := i + 1
		for j := jmax; j >= i; j-- {
			okEnd := (j == r.n-1 && !r.tLast) || (j < r.n-1 && r.sep[j+1] == sepSpace)
			if okEnd && st.validate(i, j) {
				next = j + 1
				break
			}
		}
		i = next
	}
}

// validate tries the validators on groups i..j and emits the first match.
func (st *state) validate(i, j int) bool {
	r := &st.r
	en := st.s.enabled
	nd := int(r.gd[j+1]) - int(r.gd[i])
	if nd > maxCandDigits {
		return false
	}
	if en&dIP != 0 && j-i == 3 && nd <= 12 && st.ipv4(i, j) {
		return true
	}
	if en&dCard != 0 && nd >= 13 && nd <= 19 && st.card(i, j) {
		return true
	}
	if en&dSSN != 0 && nd == 9 && st.ssn(i, j) {
		return true
	}
	if en&dPhone != 0 && nd >= 7 && st.phone(i, j) {
		return true
	}
	return false
}

// span returns the byte span of groups i..j, including a leading '+' or
// '(' of the first group.
func (st *state) span(i, j int) (int, int) {
	r := &st.r
	start := r.start[i]
	if i == 0 && r.plus >= 0 {
		start = r.plus
	}
	return start, r.end[j]
}

// sameSeps reports whether every separator inside groups i..j is sep and no
// group is parenthesized.
func (r *run) sameSeps(i, j int, sep uint8) bool {
	for k := i; k <= j; k++ {
		if r.paren[k] || (k > i && r.sep[k] != sep) {
			return false
		}
	}
	return true
}

// inList reports whether groups i..j are part of a longer list of
// space-separated numbers ("800 824 896 1024 600"), where a phone-shaped
// or SSN-shaped sub-sequence is more likely a coincidence.
func (r *run) inList(i, j int) bool {
	if r.paren[i] {
		return false
	}
	return (i > 0 && r.sep[i] == sepSpace && r.isolated(i-1)) ||
		(j < r.n-1 && r.sep[j+1] == sepSpace && r.isolated(j+1))
}

// isolated reports whether group k stands alone between spaces (or run
// edges), i.e. is a plain number rather than part of a dotted or dashed
// value.
func (r *run) isolated(k int) bool {
	return !r.paren[k] && (k == 0 || r.sep[k] == sepSpace) && (k == r.n-1 || r.sep[k+1] == sepSpace)
}

func (r *run) candDigits(i, j int) []byte {
	return r.digits[r.gd[i]:r.gd[j+1]]
}

// ---- payment cards ----

// card validates groups i..j as a payment card number: 13-19 digits, bare
// or in consistent groups of 4 (or Amex/Diners 4-6-5 / 4-6-4) separated by
// spaces or dashes, a known issuer prefix for that length, and Luhn.
func (st *state) card(i, j int) bool {
	r := &st.r
	if i == 0 && r.plus >= 0 {
		return false
	}
	grouped := j > i
	if grouped {
		sep := r.sep[i+1]
		if (sep != sepSpace && sep != sepDash) || !r.sameSeps(i, j, sep) {
			return false
		}
		ok := true
		for k := i; k < j; k++ {
			if r.glen[k] != 4 {
				ok = false
				break
			}
		}
		ok = ok && r.glen[j] >= 1 && r.glen[j] <= 4
		if !ok && j-i == 2 && r.glen[i] == 4 && r.glen[i+1] == 6 && (r.glen[j] == 5 || r.glen[j] == 4) {
			ok = true
		}
		if !ok {
			return false
		}
	} else if r.paren[i] {
		return false
	}
	d := r.candDigits(i, j)
	if !cardIssuer(d) || !luhn(d) {
		return false
	}
	start, end := st.span(i, j)
	var conf Confidence
	switch {
	case degenerate(d):
		conf = Low
		if st.keyword(cardKeywords, start, end) {
			conf = Medium
		}
	case grouped || r.obf || st.keyword(cardKeywords, start, end):
		conf = High
	case st.urlish(start, end):
		conf = Low
	default:
		conf = Medium
	}
	st.emit(Card, start, end, conf, d)
	return true
}

// luhn reports whether the digits pass the Luhn (mod 10) check.
func luhn(d []byte) bool {
	sum := 0
	dbl := false
	for k := len(d) - 1; k >= 0; k-- {
		v := int(d[k] - '0')
		if dbl {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		dbl = !dbl
	}
	return sum%10 == 0
}

// issuer is a range of card number prefixes of one length (in digits) and
// the card lengths it issues.
type issuer struct {
	lo, hi     int // prefix range, inclusive
	plen       int // prefix length in digits
	minL, maxL int
	only       uint32 // if set, the allowed lengths as a bit set (1<<len)
}

// issuers lists IIN ranges (ISO/IEC 7812) of the major schemes.
var issuers = []issuer{
	{4, 4, 1, 13, 19, 1<<13 | 1<<16 | 1<<19}, // Visa
	{51, 55, 2, 16, 16, 0},                   // Mastercard
	{2221, 2720, 4, 16, 16, 0},               // Mastercard 2-series
	{34, 34, 2, 15, 15, 0},                   // American Express
	{37, 37, 2, 15, 15, 0},                   // American Express
	{6011, 6011, 4, 16, 19, 0},               // Discover
	{644, 649, 3, 16, 19, 0},                 // Discover
	{65, 65, 2, 16, 19, 0},                   // Discover / RuPay
	{3528, 3589, 4, 16, 19, 0},               // JCB
	{300, 305, 3, 14, 19, 0},                 // Diners Club International
	{3095, 3095, 4, 14, 19, 0},               // Diners Club
	{36, 36, 2, 14, 19, 0},                   // Diners Club
	{38, 39, 2, 14, 19, 0},                   // Diners Club
	{62, 62, 2, 16, 19, 0},                   // UnionPay
	{81, 81, 2, 16, 19, 0},                   // UnionPay 81, RuPay
	{5018, 5018, 4, 12, 19, 0},               // Maestro
	{5019, 5019, 4, 16, 16, 0},               // Dankort
	{5020, 5020, 4, 12, 19, 0},               // Maestro
	{5038, 5038, 4, 12, 19, 0},               // Maestro
	{5893, 5893, 4, 12, 19, 0},               // Maestro
	{6304, 6304, 4, 12, 19, 0},               // Maestro
	{6759, 6759, 4, 12, 19, 0},               // Maestro UK / Switch
	{6761, 6763, 4, 12, 19, 0},               // Maestro
	{6333, 6334, 4, 16, 19, 0},               // Switch / Solo
	{6767, 6767, 4, 16, 19, 0},               // Solo
	{633110, 633110, 6, 16, 19, 0},           // Switch
	{564182, 564182, 6, 16, 19, 0},           // Switch
	{5610, 5610, 4, 16, 16, 0},               // Bankcard (Australia)
	{560221, 560225, 6, 16, 16, 0},           // Bankcard (Australia)
	{2200, 2204, 4, 16, 19, 0},               // Mir
	{60, 60, 2, 16, 16, 0},                   // RuPay
	{508, 508, 3, 16, 16, 0},                 // RuPay
	{506099, 506198, 6, 16, 19, 0},           // Verve
	{650002, 650027, 6, 16, 19, 0},           // Verve
	{9792, 9792, 4, 16, 16, 0},               // Troy
	{636, 636, 3, 16, 19, 0},                 // InterPayment
	{637, 639, 3, 16, 16, 0},                 // InstaPayment
}

// cardIssuer reports whether d starts with a known issuer prefix that
// issues numbers of len(d) digits.
func cardIssuer(d []byte) bool {
	l := len(d)
	for _, is := range issuers {
		if l < is.minL || l > is.maxL || l < is.plen || (is.only != 0 && is.only&(1<<l) == 0) {
			continue
		}
		p := 0
		for k := 0; k < is.plen; k++ {
			p = p*10 + int(d[k]-'0')
		}
		if p >= is.lo && p <= is.hi {
			return true
		}
	}
	return false
}

// degenerate reports whether every digit but the last (a check digit) is
// the same: "4444 4444 4444 4448" is more likely filler than a card.
func degenerate(d []byte) bool {
	return len(d) > 1 && distinctDigits(d[:len(d)-1]) == 1
}

func distinctDigits(d []byte) int {
	var seen uint16
	for _, c := range d {
		seen |= 1 << (c - '0')
	}
	n := 0
	for ; seen != 0; seen &= seen - 1 {
		n++
	}
	return n
}

// urlish reports whether text[start:end] sits inside a URL path or query,
// where long numbers are usually identifiers.
func (st *state) urlish(start, end int) bool {
	b := st.text
	if start > 0 {
		switch b[start-1] {
		case '/', '=', '?', '&':
			return true
		}
	}
	if end < len(b) {
		switch b[end] {
		case '/', '&':
			return true
		}
	}
	return false
}

// ---- US SSN ----

// ssn validates groups i..j as a US Social Security number: "AAA-GG-SSSS"
// (Medium, High with a keyword), "AAA GG SSSS" (Low, High with a keyword)
// or nine bare digits (only with a keyword, Medium).
func (st *state) ssn(i, j int) bool {
	r := &st.r
	if i == 0 && r.plus >= 0 {
		return false
	}
	d := r.candDigits(i, j)
	if !validSSN(d) {
		return false
	}
	start, end := st.span(i, j)
	var conf Confidence
	switch {
	case i == j:
		if r.paren[i] || !st.keyword(ssnKeywords, start, end) {
			return false
		}
		conf = Medium
	case j == i+2 && r.glen[i] == 3 && r.glen[i+1] == 2 && r.glen[j] == 4:
		sep := r.sep[i+1]
		if !r.sameSeps(i, j, sep) {
			return false
		}
		conf = Low
		if sep == sepDash && !r.inList(i, j) {
			conf = Medium
		}
		if st.keyword(ssnKeywords, start, end) {
			conf = High
		}
	default:
		return false
	}
	st.emit(SSN, start, end, conf, d)
	return true
}

// validSSN reports whether 9 digits form an assignable SSN: area not 000,
// 666 or 9xx, group not 00, serial not 0000, and not a known published
// example (123-45-6789, 078-05-1120, 219-09-9999, 457-55-5462).
func validSSN(d []byte) bool {
	if len(d) != 9 {
		return false
	}
	area := string(d[:3])
	if area == "000" || area == "666" || d[0] == '9' {
		return false
	}
	if d[3] == '0' && d[4] == '0' {
		return false
	}
	if string(d[5:]) == "0000" {
		return false
	}
	switch string(d) {
	case "123456789", "078051120", "219099999", "457555462":
		return false
	}
	return true
}

// ---- IPv4 ----

// ipv4 validates four dot-separated groups as an IPv4 address: octets of
// 1-3 digits, at most 255, no leading zeros. Private, loopback, link-local
// and other special ranges, and addresses after "version", are Low; others
// Medium.
func (st *state) ipv4(i, j int) bool {
	r := &st.r
	if i == 0 && r.plus >= 0 {
		return false
	}
	if !r.sameSeps(i, j, sepDot) {
		return false
	}
	var oct [4]int
	for k := i; k <= j; k++ {
		l := int(r.glen[k])
		if l < 1 || l > 3 {
			return false
		}
		g := r.digits[r.gd[k]:r.gd[k+1]]
		if l > 1 && g[0] == '0' {
			return false
		}
		v := 0
		for _, c := range g {
			v = v*10 + int(c-'0')
		}
		if v > 255 {
			return false
		}
		oct[k-i] = v
	}
	start, end := st.span(i, j)
	conf := Medium
	if specialIPv4(oct) || st.keywordBefore(versionKeywords, start) {
		conf = Low
	}
	norm := st.norm[:0]
	for k := i; k <= j; k++ {
		if k > i {
			norm = append(norm, '.')
		}
		norm = append(norm, r.digits[r.gd[k]:r.gd[k+1]]...)
	}
	st.emit(IP, start, end, conf, norm)
	return true
}

// specialIPv4 reports private, loopback, link-local, CGNAT, documentation,
// multicast, reserved and "this network" addresses.
func specialIPv4(o [4]int) bool {
	switch {
	case o[0] == 0, o[0] == 10, o[0] == 127, o[0] >= 224:
		return true
	case o[0] == 172 && o[1] >= 16 && o[1] <= 31:
		return true
	case o[0] == 192 && o[1] == 168:
		return true
	case o[0] == 169 && o[1] == 254:
		return true
	case o[0] == 100 && o[1] >= 64 && o[1] <= 127:
		return true
	case o[0] == 192 && o[1] == 0 && (o[2] == 0 || o[2] == 2):
		return true
	case o[0] == 198 && (o[1] == 18 || o[1] == 19):
		return true
	case o[0] == 198 && o[1] == 51 && o[2] == 100, o[0] == 203 && o[1] == 0 && o[2] == 113:
		return true
	}
	return false
}
