package inspect

import "sync"

// Obfuscation-tolerant reading. Values are sometimes written with
// invisible characters (U+200B–U+200D, U+2060, U+FEFF, U+00AD) or in
// full-width forms (U+FF01–U+FF5E: "ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ",
// "ＤＥ８９…"), by accident (copied from a web page or a PDF) or to slip past
// a DLP. The scanner reads through both: invisible characters are skipped
// and full-width forms read as their ASCII counterparts, so the value is
// found and normalized — and tokenized — exactly as if it had been written
// in plain ASCII. Offsets stay those of the original bytes. The fast paths
// only look at ASCII; these helpers run when a non-ASCII byte sits where a
// value continues.

// fwAt returns the ASCII character that the full-width form (U+FF01 to
// U+FF5E) at b[i] stands for, or 0.
func fwAt(b []byte, i int) byte {
	if i+2 < len(b) && b[i] == 0xEF {
		switch c := b[i+2]; b[i+1] {
		case 0xBC:
			if c >= 0x81 && c <= 0xBF {
				return c - 0x81 + 0x21
			}
		case 0xBD:
			if c >= 0x80 && c <= 0x9E {
				return c - 0x80 + 0x60
			}
		}
	}
	return 0
}

// charAt reads the character at b[i] for value matching: an ASCII byte as
// itself (w = 1), a full-width form as its ASCII character (w = 3), an
// invisible character as c = 0 with its width (to be skipped). w = 0 means
// some other character: the value stops there.
func charAt(b []byte, i int) (c byte, w int) {
	c = b[i]
	if c < 0x80 {
		return c, 1
	}
	if f := fwAt(b, i); f != 0 {
		return f, 3
	}
	if z := zwAt(b, i); z > 0 {
		return 0, z
	}
	return 0, 0
}

// charBefore is charAt for the character that ends right before b[i]
// (i > 0).
func charBefore(b []byte, i int) (c byte, w int) {
	c = b[i-1]
	if c < 0x80 {
		return c, 1
	}
	if i >= 3 {
		if f := fwAt(b, i-3); f != 0 {
			return f, 3
		}
		if zwAt(b, i-3) == 3 {
			return 0, 3
		}
	}
	if i >= 2 && b[i-2] == 0xC2 && c == 0xAD {
		return 0, 2
	}
	return 0, 0
}

// skipZWBack returns the first index at or before i such that no invisible
// character ends right before it.
func skipZWBack(b []byte, i int) int {
	for i > 0 && b[i-1] >= 0x80 {
		c, w := charBefore(b, i)
		if w == 0 || c != 0 {
			break
		}
		i -= w
	}
	return i
}

// upperEnding returns the upper-case letter (ASCII or full-width A–Z)
// that ends right before b[i] and its start offset, or -1.
func upperEnding(b []byte, i int) (byte, int) {
	if i <= 0 {
		return 0, -1
	}
	if c := b[i-1]; isUpper(c) {
		return c, i - 1
	}
	if i >= 3 {
		if f := fwAt(b, i-3); isUpper(f) {
			return f, i - 3
		}
	}
	return 0, -1
}

// wordEnding reports whether a letter, digit or '_' (ASCII or full-width)
// ends right before b[i].
func wordEnding(b []byte, i int) bool {
	if i <= 0 {
		return false
	}
	if isWord(b[i-1]) {
		return true
	}
	return i >= 3 && isWord(fwAt(b, i-3))
}

// alnumAt reads an ASCII letter or digit (upper-cased) or its full-width
// form at b[i]: the character and its width, or w = 0.
func alnumAt(b []byte, i int) (byte, int) {
	c, w := b[i], 1
	if c >= 0x80 {
		c, w = fwAt(b, i), 3
	}
	if !isAlnum(c) {
		return 0, 0
	}
	if 'a' <= c && c <= 'z' {
		c -= 'a' - 'A'
	}
	return c, w
}

// emailWide handles an e-mail address whose '@' spans b[as:ae] (one byte,
// or three for '＠') and that has invisible characters or full-width forms
// in or next to it. It follows the rules of email exactly, reading each
// character through charAt. It returns where scanning resumes.
func (st *state) emailWide(as, ae int) int {
	b := st.text
	n := len(b)

	// Domain, lower-cased, with the end offset of each character.
	var dom [maxDomainLen + 2]byte
	var domEnd [maxDomainLen + 2]int32
	nd := 0
	k := ae
	for k < n {
		c, w := charAt(b, k)
		if w == 0 {
			break
		}
		if c != 0 {
			if class[c]&cDomain == 0 {
				break
			}
			if nd == len(dom) {
				return k // longer than any domain
			}
			dom[nd] = lower(c)
			domEnd[nd] = int32(k + w)
			nd++
		}
		k += w
	}
	for x := 0; x+1 < nd; x++ {
		if dom[x] == '.' && dom[x+1] == '.' {
			nd = x
			break
		}
	}
	for nd > 0 && (dom[nd-1] == '.' || dom[nd-1] == '-') {
		nd--
	}
	if !validDomain(dom[:nd]) {
		return ae
	}
	end := int(domEnd[nd-1])

	// Local part, read backwards: common characters first, the full atext
	// set only when no common character precedes the '@'.
	var loc [maxLocalLen]byte
	var locStart [maxLocalLen]int32
	nl, ok := st.localBefore(as, cLocal, &loc, &locStart)
	if ok && nl == 0 {
		nl, ok = st.localBefore(as, cAtext, &loc, &locStart)
	}
	if !ok {
		return end
	}
	local := loc[len(loc)-nl:]
	starts := locStart[len(loc)-nl:]
	first := 0
	for x := len(local) - 1; x > 0; x-- {
		if local[x] == '.' && local[x-1] == '.' {
			first = x + 1
			break
		}
	}
	for first < len(local) && local[first] == '.' {
		first++
	}
	if first == len(local) || local[len(local)-1] == '.' {
		return ae
	}
	local, start := local[first:], int(starts[first])

	norm := st.norm[:0]
	for _, c := range local {
		norm = append(norm, lower(c))
	}
	norm = append(norm, '@')
	norm = append(norm, dom[:nd]...)
	conf := High
	if st.s.internalDomain(dom[:nd]) {
		conf = Low
	} else if machineLocal(norm[:len(local)]) {
		conf = Medium
	}
	st.emit(Email, start, end, conf, norm)
	return end
}

// localBefore reads the local-part characters of class mask that end at
// b[as] (skipping invisible characters, not crossing st.floor) into the
// tail of loc, with their start offsets in the tail of starts. It returns
// how many it read, and false when there are more than maxLocalLen.
func (st *state) localBefore(as int, mask uint8, loc *[maxLocalLen]byte, starts *[maxLocalLen]int32) (int, bool) {
	b := st.text
	nl := 0
	k := as
	for k > st.floor {
		c, w := charBefore(b, k)
		if w == 0 || k-w < st.floor {
			break
		}
		if c != 0 {
			if class[c]&mask == 0 {
				break
			}
			if nl == maxLocalLen {
				return nl, false
			}
			nl++
			loc[len(loc)-nl] = c
			starts[len(loc)-nl] = int32(k - w)
		}
		k -= w
	}
	return nl, true
}

// ---- normalizing a lone value ----

// capture collects what a scan would have emitted, for NormalizeValue.
type capture struct {
	on    bool
	want  Type
	found bool
	start int
	end   int
	buf   []byte
}

func (c *capture) add(typ Type, start, end int, norm []byte) {
	if c.found || typ != c.want {
		return
	}
	c.found, c.start, c.end = true, start, end
	c.buf = append(c.buf, norm...)
}

// normScanner runs every built-in detector; it never emits, so it has no
// tokenizer.
var normScanner = sync.OnceValue(func() *Scanner {
	s := &Scanner{window: DefaultContextWindow, maxScan: MaxNormalizeLen}
	for _, t := range DefaultDetectors {
		s.enabled |= builtinBits[t]
	}
	s.numeric = true
	s.setTriggers()
	return s
})

// MaxNormalizeLen bounds the values NormalizeValue reads.
const MaxNormalizeLen = 1024

// NormalizeValue appends to dst the normalized form — the input of the
// detection's token — of the first typ value found in value, a built-in
// type written as a person or a detection's span (text[d.Start:d.End]) would
// write it: "Jane.Doe@Example.COM", "(415) 555-2671", "020 7946 0958",
// "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00". Context keywords
// count as present, so numbers that need one in running text ("4155552671"
// as a phone, a bare SSN) are accepted. The result is exactly what Scan
// tokenizes: a Tokenizer's Token(typ, normalized) equals the Token of the
// detection the value yields in running text. It reports false when value
// holds no valid value of typ, typ is not a built-in type, or value is
// longer than MaxNormalizeLen. It does not allocate when dst has room.
func NormalizeValue(typ Type, value []byte, dst []byte) ([]byte, bool) {
	bit, ok := builtinBits[typ]
	if !ok || len(value) > MaxNormalizeLen || len(value) == 0 {
		return dst, false
	}
	st := state{s: normScanner(), text: value, kwForce: bit | dCard | dSSN | dPhone | dNINO}
	st.capture = capture{on: true, want: typ, buf: dst}
	st.scan()
	if !st.capture.found {
		return dst, false
	}
	return st.capture.buf, true
}

// NormalizeString is NormalizeValue for a string.
func NormalizeString(typ Type, value string) (string, bool) {
	var buf [64]byte
	out, ok := NormalizeValue(typ, []byte(value), buf[:0])
	if !ok {
		return "", false
	}
	return string(out), true
}
