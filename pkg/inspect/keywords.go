package inspect

import (
	"encoding/binary"
	"math/bits"
	"strings"
)

// Keyword lists (lower-case ASCII). A keyword matches at a word start;
// keywords of three letters or fewer must also end at a word boundary
// ("cc" matches "CC:" but not "accept" or "ccache").
var (
	cardKeywords    = newKwSet("card", "visa", "cc", "credit", "debit", "expiry", "exp", "cvv", "cvc", "mastercard", "amex", "pan").forDetector(dCard)
	ssnKeywords     = newKwSet("ssn", "social security", "ss#", "soc sec", "taxpayer").forDetector(dSSN)
	phoneKeywords   = newKwSet("phone", "tel", "telephone", "mobile", "cell", "call", "fax", "ph", "mob", "contact", "sms", "whatsapp").forDetector(dPhone)
	ninoKeywords    = newKwSet("national insurance", "nino", "ni", "nin").forDetector(dNINO)
	versionKeywords = newKwSet("version", "ver", "v", "revision", "rev", "release", "build", "firmware")
)

// kwSet is a small fixed keyword matcher: keywords bucketed by their first
// byte, tried at each word start of a lower-cased window.
type kwSet struct {
	byFirst [256][][]byte
	// first marks the bytes (both cases) that start a keyword.
	first [256]bool
	// bit is the detector whose context keywords these are (0: none). A
	// scan that forces a detector's keywords (a CSV column headed "phone",
	// a value normalized on its own) treats them as present.
	bit uint16
}

// forDetector records the detector bit the set belongs to and returns k.
func (k *kwSet) forDetector(bit uint16) *kwSet {
	k.bit = bit
	return k
}

func newKwSet(ws ...string) *kwSet {
	k := &kwSet{}
	for _, w := range ws {
		w = strings.ToLower(w)
		if w == "" {
			continue
		}
		k.byFirst[w[0]] = append(k.byFirst[w[0]], []byte(w))
		k.first[w[0]] = true
		if 'a' <= w[0] && w[0] <= 'z' {
			k.first[w[0]-'a'+'A'] = true
		}
	}
	return k
}

// keyword reports whether one of kws occurs within the context window
// before start or after end.
func (st *state) keyword(kws *kwSet, start, end int) bool {
	if st.kwForce&kws.bit != 0 {
		return true
	}
	w := st.s.window
	lo := max(start-w, 0)
	hi := min(end+w, len(st.text))
	return kws.match(st.text[lo:start]) || kws.match(st.text[end:hi])
}

// keywordBefore reports whether one of kws occurs in the 16 bytes before
// start.
func (st *state) keywordBefore(kws *kwSet, start int) bool {
	return kws.match(st.text[max(start-16, 0):start])
}

// lower maps ASCII upper-case letters to lower case.
func lower(c byte) byte {
	if isUpper(c) {
		return c + 'a' - 'A'
	}
	return c
}

// match reports whether a keyword occurs in buf (compared ASCII
// case-insensitively) at a word start and, for keywords of three bytes or
// fewer, at a word end, so that "cc" matches "CC:" but not "accept" or
// "ccache". Word starts are found eight bytes at a time: only they are
// looked at.
func (k *kwSet) match(buf []byte) bool {
	var carry uint64 // 0x80 when the byte before the current word was a letter
	for base := 0; base < len(buf); base += 8 {
		var x uint64
		if base+8 <= len(buf) {
			x = binary.LittleEndian.Uint64(buf[base:])
		} else {
			for q := len(buf) - 1; q >= base; q-- {
				x = x<<8 | uint64(buf[q])
			}
		}
		// Letters: x|0x20 maps A-Z onto a-z; bytes >= 0x80 are excluded.
		l := x | 0x2020202020202020 | highs
		alpha := (l - 'a'*ones) &^ (l - ('z'+1)*ones) &^ x & highs
		starts := alpha &^ (alpha<<8 | carry)
		carry = alpha >> 56 & 0x80
		for starts != 0 {
			p := base + bits.TrailingZeros64(starts)>>3
			starts &= starts - 1
			if p >= len(buf) {
				break
			}
			c := buf[p]
			if !k.first[c] {
				continue
			}
		next:
			for _, kw := range k.byFirst[lower(c)] {
				e := p + len(kw)
				if e > len(buf) {
					continue
				}
				for q := 1; q < len(kw); q++ {
					if lower(buf[p+q]) != kw[q] {
						continue next
					}
				}
				if len(kw) > 3 || e == len(buf) || !isAlpha(buf[e]) {
					return true
				}
			}
		}
	}
	return false
}

func isAlpha(c byte) bool { return class[c]&(cUpper|cLower) != 0 }
