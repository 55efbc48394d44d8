package inspect

import (
	"strconv"
	"strings"
)

// ccLengths lists ITU-T E.164 country calling codes with the range of
// national (significant) number lengths in use, all number types included
// (fixed, mobile, toll-free, premium, shared-cost, personal, VoIP, UAN,
// pager, voicemail). Calling codes form a prefix code, so a number has at
// most one matching code. "cc:min-max" or "cc:len".
const ccLengths = `
1:7-10 7:10-14 20:8-10 27:5-10 30:10-12 31:5-11 32:8-9 33:9 34:9 36:8-9
39:6-12 40:6-9 41:9-12 43:4-13 44:7-10 45:8 46:6-12 47:5-8 48:6-10 49:4-15
51:8-9 52:10 53:6-10 54:10-11 55:8-11 56:9-11 57:8-11 58:10 60:8-10 61:5-12
62:7-17 63:6-13 64:5-10 65:8-11 66:8-13 81:8-17 82:5-14 84:7-10 86:7-12
90:7-13 91:8-13 92:8-12 93:9 94:9 95:6-10 98:4-10 211:9 212:9 213:8-9 216:8
218:8-9 220:7 221:9 222:8 223:8 224:8-9 225:8-10 226:8 227:8 228:8 229:8-10
230:7-10 231:7-9 232:8 233:8-9 234:7-14 235:8 236:8 237:8-9 238:7 239:7
240:9 241:7-8 242:9 243:7-10 244:9 245:7-9 246:7 247:4-6 248:7 249:9 250:8-9
251:9 252:6-9 253:8 254:7-10 255:9 256:9 257:8 258:8-9 260:9 261:9 262:9
263:5-10 264:8-10 265:7-9 266:8 267:7-10 268:8-9 269:7 290:4-5 291:7 297:7
298:6 299:6 350:8 351:9 352:4-11 353:7-10 354:7-9 355:6-9 356:8 357:8
358:5-12 359:6-12 370:8 371:8 372:7-10 373:8 374:8 375:6-11 376:6-9 377:8-9
378:6-10 380:9-10 381:6-12 382:8-9 383:8-12 385:6-9 386:5-8 387:8-9 389:8
420:9-12 421:6-9 423:7-9 500:5 501:7-11 502:8-11 503:7-11 504:8-11 505:8
506:8-10 507:7-11 508:6-9 509:8 590:9 591:8-9 592:7 593:8-11 594:9 595:6-11
596:9 597:6-7 598:4-13 599:7-8 670:7-8 672:6 673:7 674:7 675:7-8 676:5-7
677:5-7 678:5-7 679:7-11 680:7 681:6-9 682:5 683:4-7 685:5-10 686:5-8 687:6
688:5-7 689:6-9 690:4-7 691:7 692:7 800:8 808:8 850:8-10 852:5-11 853:7-8
855:8-10 856:8-10 870:9-12 878:12 880:6-10 881:9-10 882:7-12 883:8-12
886:7-11 888:11 960:7-10 961:7-8 962:8-9 963:8-9 964:8-10 965:7-8 966:9-10
967:7-9 968:7-9 970:8-10 971:5-12 972:7-12 973:8 974:7-11 975:7-8 976:8-10
977:8-11 979:9 992:9 993:8 994:9 995:9 996:9-10 998:9
`

type lenRange struct{ min, max uint8 }

// ccTab maps a calling code (1-3 digits, as a number) to its national
// number length range; ccLen says how many digits the code has (0 = none).
var (
	ccTab [1000]lenRange
	ccLen [1000]uint8
)

func init() {
	for _, f := range strings.Fields(ccLengths) {
		cc, lens, ok := strings.Cut(f, ":")
		if !ok {
			panic("inspect: bad ccLengths entry " + f)
		}
		lo, hi, found := strings.Cut(lens, "-")
		if !found {
			hi = lo
		}
		c, err1 := strconv.Atoi(cc)
		mn, err2 := strconv.Atoi(lo)
		mx, err3 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || err3 != nil || mn > mx {
			panic("inspect: bad ccLengths entry " + f)
		}
		ccTab[c] = lenRange{uint8(mn), uint8(mx)}
		ccLen[c] = uint8(len(cc))
	}
}

// callingCode returns the length of the calling code d starts with, or 0.
func callingCode(d []byte) int {
	v := 0
	for k := 0; k < 3 && k < len(d); k++ {
		v = v*10 + int(d[k]-'0')
		if int(ccLen[v]) == k+1 && ccTab[v].max > 0 {
			return k + 1
		}
	}
	return 0
}

// phone validates groups i..j as a phone number: international ("+CC ...",
// checked against the calling code's national number lengths), NANP
// ("(NXX) NXX-XXXX"), or a national format of the UK, Ireland, Australia or
// New Zealand. Confidence: Medium when the shape is a recognised one, High
// with a phone keyword nearby, Low for fictional or degenerate numbers;
// unformatted national numbers need a keyword.
func (st *state) phone(i, j int) bool {
	r := &st.r
	if i == 0 && r.plus >= 0 {
		return st.phoneIntl(i, j)
	}
	return st.phoneNational(i, j)
}

func (st *state) phoneIntl(i, j int) bool {
	r := &st.r
	norm := st.norm[:0]
	norm = append(norm, '+')
	for k := i; k <= j; k++ {
		if r.paren[k] && k == i+1 && r.glen[k] == 1 && r.digits[r.gd[k]] == '0' {
			continue // "+44 (0)20 ...": the trunk prefix is not dialled
		}
		norm = append(norm, r.digits[r.gd[k]:r.gd[k+1]]...)
	}
	d := norm[1:]
	if len(d) < 7 || len(d) > 15 || d[0] == '0' {
		return false
	}
	cl := callingCode(d)
	if cl == 0 {
		return false
	}
	cc := 0
	for _, c := range d[:cl] {
		cc = cc*10 + int(c-'0')
	}
	nsn := d[cl:]
	lr := ccTab[cc]
	if len(nsn) < int(lr.min) || len(nsn) > int(lr.max) {
		return false
	}
	conf := Medium
	switch cc {
	case 1:
		if len(nsn) == 7 {
			// Canadian 310-XXXX numbers are the only 7-digit ones.
			if string(nsn[:3]) != "310" {
				return false
			}
			break
		}
		c, ok := nanpCheck(nsn)
		if !ok {
			return false
		}
		conf = c
	case 44:
		if !strings.ContainsRune("1235789", rune(nsn[0])) {
			return false
		}
	}
	if distinctDigits(nsn) == 1 {
		conf = Low
	}
	start, end := st.span(i, j)
	if conf == Medium && st.keyword(phoneKeywords, start, end) {
		conf = High
	}
	st.emit(Phone, start, end, conf, norm)
	return true
}

// nanpCheck validates a 10-digit NANP number NXX-NXX-XXXX: area code and
// exchange start with 2-9 and are not N11, the area code's middle digit is
// not 9 (reserved). 555-01XX numbers are fictional (Low).
func nanpCheck(d []byte) (Confidence, bool) {
	if len(d) != 10 {
		return 0, false
	}
	if d[0] < '2' || d[1] == '9' || (d[1] == '1' && d[2] == '1') {
		return 0, false
	}
	if d[3] < '2' || (d[4] == '1' && d[5] == '1') {
		return 0, false
	}
	if d[3] == '5' && d[4] == '5' && d[5] == '5' && d[6] == '0' && d[7] == '1' {
		return Low, true
	}
	return Medium, true
}

// natPattern is a national number format: total digits including the
// trunk '0', the leading digits, the group lengths as written, and the
// calling code that replaces the trunk prefix.
type natPattern struct {
	cc     string
	total  int
	prefix []string // leading digits (including the trunk 0)
	groups [][]int
	trunk  bool // the leading 0 is a trunk prefix, dropped in E.164
}

// natPatterns are tried in order; the first match wins. Where two
// countries share a shape (e.g. "021 123 4567": Cork or an NZ mobile) the
// earlier entry decides; the normalized value (and so the token) is then
// that country's E.164 form.
var natPatterns = []natPattern{
	// United Kingdom.
	{"44", 11, []string{"01", "02", "03", "05", "07", "08", "09"}, [][]int{{3, 4, 4}, {4, 3, 4}, {5, 6}, {5, 3, 3}, {6, 5}, {4, 7}}, true},
	{"44", 10, []string{"01", "0500", "0800"}, [][]int{{5, 5}, {4, 6}, {6, 4}, {5, 4}}, true},
	// Australia.
	{"61", 10, []string{"02", "03", "07", "08"}, [][]int{{2, 4, 4}}, true},
	{"61", 10, []string{"04", "05"}, [][]int{{4, 3, 3}, {2, 4, 4}}, true},
	{"61", 10, []string{"1300", "1800"}, [][]int{{4, 3, 3}}, false},
	// New Zealand.
	{"64", 9, []string{"03", "04", "06", "07", "09"}, [][]int{{2, 3, 4}}, true},
	{"64", 9, []string{"02"}, [][]int{{3, 3, 3}}, true},
	{"64", 10, []string{"02"}, [][]int{{3, 3, 4}}, true},
	{"64", 11, []string{"02"}, [][]int{{3, 4, 4}}, true},
	// Ireland.
	{"353", 9, []string{"01"}, [][]int{{2, 3, 4}}, true},
	{"353", 10, []string{"08"}, [][]int{{3, 3, 4}, {3, 7}}, true},
	{"353", 10, []string{"04", "05", "06", "07", "09"}, [][]int{{3, 3, 4}}, true},
	{"353", 9, []string{"02", "04", "05", "06", "07", "09"}, [][]int{{3, 6}, {3, 3, 3}}, true},
}

func (st *state) phoneNational(i, j int) bool {
	r := &st.r
	d := r.candDigits(i, j)
	start, end := st.span(i, j)
	// NANP: "NXX-NXX-XXXX", "(NXX) NXX-XXXX", "1-NXX-NXX-XXXX".
	if (len(d) == 10 && d[0] != '0' || len(d) == 11 && d[0] == '1') && st.nanpShape(i, j) {
		nsn := d[len(d)-10:]
		conf, ok := nanpCheck(nsn)
		if !ok {
			return false
		}
		if conf == Medium {
			if st.keyword(phoneKeywords, start, end) {
				conf = High
			} else if r.inList(i, j) {
				conf = Low
			}
		}
		norm := append(append(st.norm[:0], '+', '1'), nsn...)
		st.emit(Phone, start, end, conf, norm)
		return true
	}
	if i == j {
		return st.phoneBare(d, start, end)
	}
	// Other national formats: the group shape must be a known one.
	for k := i; k <= j; k++ {
		if r.paren[k] && k != i {
			return false
		}
		if k > i+1 && r.sep[k] != r.sep[i+1] {
			return false
		}
	}
	if r.sep[i+1] == sepDot && !r.paren[i] {
		return false
	}
	for pi := range natPatterns {
		p := &natPatterns[pi]
		if len(d) != p.total || !hasPrefix(d, p.prefix) {
			continue
		}
		for _, g := range p.groups {
			if len(g) != j-i+1 {
				continue
			}
			match := true
			for k, l := range g {
				if int(r.glen[i+k]) != l {
					match = false
					break
				}
			}
			if !match {
				continue
			}
			conf := Medium
			if distinctDigits(d[1:]) == 1 {
				conf = Low
			} else if st.keyword(phoneKeywords, start, end) {
				conf = High
			} else if r.inList(i, j) {
				conf = Low
			}
			norm := append(st.norm[:0], '+')
			norm = append(norm, p.cc...)
			if p.trunk {
				norm = append(norm, d[1:]...)
			} else {
				norm = append(norm, d...)
			}
			st.emit(Phone, start, end, conf, norm)
			return true
		}
	}
	return false
}

// nanpShape reports whether groups i..j are written as a NANP number:
// 3-3-4 with one separator kind (or "(3) 3-4"), optionally after a "1".
func (st *state) nanpShape(i, j int) bool {
	r := &st.r
	if j-i == 3 && r.glen[i] == 1 && !r.paren[i] {
		i++
	}
	if j-i != 2 || r.glen[i] != 3 || r.glen[i+1] != 3 || r.glen[j] != 4 || r.paren[i+1] || r.paren[j] {
		return false
	}
	if r.paren[i] {
		return r.sep[i+1] != sepDot && r.sep[j] != sepNone
	}
	return r.sep[i+1] == r.sep[j] && r.sep[j] != sepNone
}

// phoneBare accepts an unformatted national number only next to a phone
// keyword: 10-digit NANP, 11-digit UK, 10-digit Australian mobile.
func (st *state) phoneBare(d []byte, start, end int) bool {
	var norm []byte
	switch {
	case len(d) == 10 && d[0] != '0' && d[0] != '1':
		if c, ok := nanpCheck(d); !ok || c != Medium {
			return false
		}
		norm = append(append(st.norm[:0], '+', '1'), d...)
	case len(d) == 11 && d[0] == '0' && strings.ContainsRune("1237", rune(d[1])):
		norm = append(append(st.norm[:0], '+', '4', '4'), d[1:]...)
	case len(d) == 10 && d[0] == '0' && d[1] == '4':
		norm = append(append(st.norm[:0], '+', '6', '1'), d[1:]...)
	default:
		return false
	}
	if distinctDigits(d) <= 2 || !st.keyword(phoneKeywords, start, end) {
		return false
	}
	st.emit(Phone, start, end, Medium, norm)
	return true
}

func hasPrefix(d []byte, prefixes []string) bool {
	for _, p := range prefixes {
		if len(d) >= len(p) && string(d[:len(p)]) == p {
			return true
		}
	}
	return false
}
