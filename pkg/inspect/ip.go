package inspect

import (
	"net/netip"
	"unsafe"
)

const maxIPv6Len = 45

// ipv6 handles a ':' at c: it expands over hex digits, colons and dots (an
// embedded IPv4 tail) and reports a valid IPv6 address with "::"
// compression or all eight groups. IPv6 addresses are Low confidence.
func (st *state) ipv6(c int) int {
	b := st.text
	n := len(b)
	prevOK := c > 0 && class[b[c-1]]&cHex != 0
	nextColon := c+1 < n && b[c+1] == ':'
	nextHex := c+1 < n && class[b[c+1]]&cHex != 0
	if !(prevOK || nextColon) || !(nextHex || nextColon) {
		return c + 1
	}
	// Groups have at most 4 hex digits: another colon must follow soon.
	if !nextColon {
		k := c + 2
		for k < n && k < c+6 && class[b[k]]&cHex != 0 {
			k++
		}
		if k >= n || b[k] != ':' {
			return c + 1
		}
	}
	s := c
	for s > st.floor && c-s < maxIPv6Len && (class[b[s-1]]&cHex != 0 || b[s-1] == ':') {
		s--
	}
	e := c + 1
	for e < n && e-s < maxIPv6Len+1 && (class[b[e]]&cHex != 0 || b[e] == ':' || b[e] == '.') {
		e++
	}
	// Trailing punctuation is not part of the address.
	for e > c+1 && (b[e-1] == '.' || (b[e-1] == ':' && b[e-2] != ':')) {
		e--
	}
	// On rejection scanning resumes right after the colon, so that a
	// value after it ("Ref:4111...") is still seen.
	if e-s > maxIPv6Len {
		return c + 1
	}
	if s > 0 {
		if p := b[s-1]; isWord(p) || p == '.' || p == ':' {
			return c + 1
		}
	}
	if e < n && (isWord(b[e]) || b[e] == ':') {
		return c + 1
	}
	colons, hexd, double := 0, 0, false
	for k := s; k < e; k++ {
		switch {
		case b[k] == ':':
			colons++
			if k+1 < e && b[k+1] == ':' {
				double = true
			}
		case b[k] != '.':
			hexd++
		}
	}
	if colons < 2 || hexd < 4 || (!double && colons != 7 && colons != 6) {
		return c + 1
	}
	a, err := netip.ParseAddr(unsafe.String(&b[s], e-s))
	if err != nil || !a.Is6() {
		return c + 1
	}
	var buf [maxIPv6Len + 1]byte
	norm := a.AppendTo(buf[:0])
	st.emit(IP, s, e, Low, norm)
	return e
}
