package inspect

import "strings"

// Values that start with two upper-case letters (IBAN, UK NINO) are found
// from the digit run that follows the letters, so letters themselves are
// never scanned for.

// lettersPrefixed handles a digit run at i preceded by two upper-case
// letters ("DE89...", "AB123456C") or two letters and a space ("ES 58...",
// "AB 12 34 56 C"). Letters may be full-width and invisible characters may
// sit between them and the digits. It returns where scanning resumes, or 0.
func (st *state) lettersPrefixed(i int) int {
	b := st.text
	var c1, c2 byte
	l, after := -1, 0
	switch {
	case i >= 2 && isUpper(b[i-1]) && isUpper(b[i-2]):
		c1, c2, l, after = b[i-2], b[i-1], i-2, i
	case i >= 3 && b[i-1] == ' ' && isUpper(b[i-2]) && isUpper(b[i-3]):
		c1, c2, l, after = b[i-3], b[i-2], i-3, i-1
	default:
		// The slow path: full-width letters, invisible characters.
		k := skipZWBack(b, i)
		c, s2 := upperEnding(b, k)
		if s2 < 0 && k > 0 && b[k-1] == ' ' {
			k = skipZWBack(b, k-1)
			c, s2 = upperEnding(b, k)
		}
		if s2 < 0 {
			return 0
		}
		c2, after = c, k
		c1, l = upperEnding(b, skipZWBack(b, s2))
	}
	if l < 0 || l < st.floor || wordEnding(b, l) {
		return 0
	}
	if st.s.enabled&dIBAN != 0 {
		if e := st.iban(l, c1, c2, after); e > 0 {
			return e
		}
	}
	if st.s.enabled&dNINO != 0 {
		if e := st.nino(l, c1, c2, after); e > 0 {
			return e
		}
	}
	return 0
}

// ---- IBAN ----

// ibanFormats gives each IBAN country's total length and BBAN structure in
// the registry's notation (n digits, a upper-case letters, c letters or
// digits).
var ibanFormats = map[string]string{
	"AD": "24:4n4n12c", "AE": "23:3n16n", "AL": "28:8n16c", "AT": "20:5n11n",
	"AZ": "28:4a20c", "BA": "20:3n3n8n2n", "BE": "16:3n7n2n", "BG": "22:4a4n2n8c",
	"BH": "22:4a14c", "BI": "27:5n5n11n2n", "BR": "29:8n5n10n1a1c", "BY": "28:4c4n16c",
	"CH": "21:5n12c", "CR": "22:4n14n", "CY": "28:3n5n16c", "CZ": "24:4n6n10n",
	"DE": "22:8n10n", "DJ": "27:5n5n11n2n", "DK": "18:4n9n1n", "DO": "28:4c20n",
	"EE": "20:2n2n11n1n", "EG": "29:4n4n17n", "ES": "24:4n4n1n1n10n", "FI": "18:3n11n",
	"FK": "18:2a12n", "FO": "18:4n9n1n", "FR": "27:5n5n11c2n", "GB": "22:4a6n8n",
	"GE": "22:2a16n", "GI": "23:4a15c", "GL": "18:4n9n1n", "GR": "27:3n4n16c",
	"GT": "28:4c20c", "HN": "28:4a20n", "HR": "21:7n10n", "HU": "28:3n4n1n15n1n",
	"IE": "22:4a6n8n", "IL": "23:3n3n13n", "IQ": "23:4a3n12n", "IS": "26:4n2n6n10n",
	"IT": "27:1a5n5n12c", "JO": "30:4a4n18c", "KW": "30:4a22c", "KZ": "20:3n13c",
	"LB": "28:4n20c", "LC": "32:4a24c", "LI": "21:5n12c", "LT": "20:5n11n",
	"LU": "20:3n13c", "LV": "21:4a13c", "LY": "25:3n3n15n", "MC": "27:5n5n11c2n",
	"MD": "24:2c18c", "ME": "22:3n13n2n", "MK": "19:3n10c2n", "MN": "20:4n12n",
	"MR": "27:5n5n11n2n", "MT": "31:4a5n18c", "MU": "30:4a2n2n12n3n3a", "NI": "28:4a20n",
	"NL": "18:4a10n", "NO": "15:4n6n1n", "OM": "23:3n16c", "PK": "24:4a16c",
	"PL": "28:8n16n", "PS": "29:4a21c", "PT": "25:4n4n11n2n", "QA": "29:4a21c",
	"RO": "24:4a16c", "RS": "22:3n13n2n", "RU": "33:9n5n15c", "SA": "24:2n18c",
	"SC": "31:4a2n2n16n3a", "SD": "18:2n12n", "SE": "24:3n16n1n", "SI": "19:5n8n2n",
	"SK": "24:4n6n10n", "SM": "27:1a5n5n12c", "SO": "23:4n3n12n", "ST": "25:4n4n11n2n",
	"SV": "28:4a20n", "TL": "23:3n14n2n", "TN": "24:2n3n13n2n", "TR": "26:5n1n16c",
	"UA": "29:6n19c", "VA": "22:3n15n", "VG": "24:4a16n", "XK": "20:4n10n2n",
	"YE": "30:4a4n18c",
}

// ibanSpec is a country's IBAN length and per-position BBAN class.
type ibanSpec struct {
	length int
	bban   string // one of 'n', 'a', 'c' per BBAN character
}

var ibanSpecs [26 * 26]*ibanSpec

func init() {
	for cc, f := range ibanFormats {
		ls, format, _ := strings.Cut(f, ":")
		length := 0
		for _, c := range ls {
			length = length*10 + int(c-'0')
		}
		var bban strings.Builder
		num := 0
		for _, c := range format {
			if c >= '0' && c <= '9' {
				num = num*10 + int(c-'0')
				continue
			}
			bban.WriteString(strings.Repeat(string(c), num))
			num = 0
		}
		if bban.Len()+4 != length {
			panic("inspect: IBAN format length mismatch for " + cc)
		}
		ibanSpecs[int(cc[0]-'A')*26+int(cc[1]-'A')] = &ibanSpec{length: length, bban: bban.String()}
	}
}

// iban validates an IBAN whose country letters c1 c2 start at l and end at
// k: the country's length, BBAN structure and the ISO 7064 mod-97 check
// (plus the Spanish national check digits). Groups may be separated by
// single spaces, dashes or dots anywhere; invisible characters are skipped
// and full-width letters and digits read as ASCII. IBANs are reported
// High.
func (st *state) iban(l int, c1, c2 byte, k int) int {
	b := st.text
	n := len(b)
	spec := ibanSpecs[int(c1-'A')*26+int(c2-'A')]
	if spec == nil {
		return 0
	}
	buf := append(st.norm[:0], c1, c2)
	prevAlnum := true
	for len(buf) < spec.length && k < n {
		c := b[k]
		if isAlnum(c) {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			buf = append(buf, c)
			k++
			prevAlnum = true
			continue
		}
		// Full-width forms read as ASCII, invisible characters are
		// skipped.
		c, w := charAt(b, k)
		if w == 0 {
			break
		}
		if c == 0 {
			k += w
			continue
		}
		if isAlnum(c) {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			buf = append(buf, c)
			k += w
			prevAlnum = true
			continue
		}
		if prevAlnum && (c == ' ' || c == '-' || c == '.') {
			if j := skipZW(b, k+w); j < n {
				if _, w2 := alnumAt(b, j); w2 > 0 {
					k = j
					prevAlnum = false
					continue
				}
			}
		}
		break
	}
	if len(buf) < spec.length {
		return 0
	}
	if k < n {
		if _, w := alnumAt(b, k); w > 0 || isWord(b[k]) {
			return 0
		}
	}
	if !isDigit(buf[2]) || !isDigit(buf[3]) {
		return 0
	}
	for p, c := range buf[4:] {
		switch spec.bban[p] {
		case 'n':
			if !isDigit(c) {
				return 0
			}
		case 'a':
			if !isUpper(c) {
				return 0
			}
		}
	}
	if !mod97(buf) {
		return 0
	}
	if buf[0] == 'E' && buf[1] == 'S' && !spanishCCC(buf[4:]) {
		return 0
	}
	st.emit(IBAN, l, k, High, buf)
	return k
}

// mod97 reports whether an IBAN (upper case, no separators) passes the ISO
// 7064 MOD 97-10 check: the first four characters moved to the end, letters
// as 10-35, the number mod 97 equals 1.
func mod97(v []byte) bool {
	if len(v) < 5 {
		return false
	}
	// Digits are folded in up to 8 at a time (letters count as two), so
	// there is one division per chunk rather than per character.
	rem, acc, scale := uint64(0), uint64(0), uint64(1)
	add := func(c byte) bool {
		switch {
		case isDigit(c):
			acc, scale = acc*10+uint64(c-'0'), scale*10
		case isUpper(c):
			acc, scale = acc*100+uint64(c-'A')+10, scale*100
		default:
			return false
		}
		if scale >= 1e8 {
			rem = (rem*scale + acc) % 97
			acc, scale = 0, 1
		}
		return true
	}
	for _, c := range v[4:] {
		if !add(c) {
			return false
		}
	}
	for _, c := range v[:4] {
		if !add(c) {
			return false
		}
	}
	return (rem*scale+acc)%97 == 1
}

// spanishCCC checks the two national check digits of a Spanish BBAN
// (bank 4, branch 4, check 2, account 10).
func spanishCCC(bban []byte) bool {
	if len(bban) != 20 {
		return false
	}
	weights := [10]int{1, 2, 4, 8, 5, 10, 9, 7, 3, 6}
	check := func(d []byte) byte {
		s := 0
		off := 10 - len(d)
		for k, c := range d {
			s += int(c-'0') * weights[off+k]
		}
		v := 11 - s%11
		switch v {
		case 11:
			v = 0
		case 10:
			v = 1
		}
		return byte('0' + v)
	}
	return check(bban[:8]) == bban[8] && check(bban[10:]) == bban[9]
}

// ---- UK National Insurance number ----

// nino validates a UK National Insurance number whose prefix letters c1 c2
// start at l and end at k: first letter not D F I Q U V, second not D F I O
// Q U V, not BG GB KN NK NT TN ZZ; six digits (optionally in spaced
// pairs); a suffix A-D. Invisible characters are skipped and full-width
// forms read as ASCII. Medium; High with a keyword.
func (st *state) nino(l int, p1, p2 byte, k int) int {
	b := st.text
	n := len(b)
	if strings.IndexByte("DFIQUV", p1) >= 0 || strings.IndexByte("DFIOQUV", p2) >= 0 {
		return 0
	}
	switch string([]byte{p1, p2}) {
	case "BG", "GB", "KN", "NK", "NT", "TN", "ZZ":
		return 0
	}
	norm := append(st.norm[:0], p1, p2)
	space := func() {
		k = skipZW(b, k)
		if k < n && b[k] == ' ' {
			k = skipZW(b, k+1)
		}
	}
	space()
	for pair := 0; pair < 3; pair++ {
		if pair > 0 {
			space()
		}
		for x := 0; x < 2; x++ {
			if x > 0 {
				k = skipZW(b, k)
			}
			if k >= n {
				return 0
			}
			d, w := digitAt(b, k)
			if w == 0 {
				return 0
			}
			norm = append(norm, d)
			k += w
		}
	}
	space()
	if k >= n {
		return 0
	}
	c, w := b[k], 1
	if c >= 0x80 {
		c, w = fwAt(b, k), 3
	}
	if c < 'A' || c > 'D' {
		return 0
	}
	norm = append(norm, c)
	k += w
	if k < n {
		if _, w := alnumAt(b, k); w > 0 || isWord(b[k]) {
			return 0
		}
	}
	conf := Medium
	if st.keyword(ninoKeywords, l, k) {
		conf = High
	}
	st.emit(NINO, l, k, conf, norm)
	return k
}
