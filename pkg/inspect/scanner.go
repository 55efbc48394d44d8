package inspect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"regexp"
	"slices"
	"strings"
	"unsafe"

	"github.com/leakline/leakline/pkg/privacy"
)

// Byte classes (bit set per byte value).
const (
	cDigit  = 1 << iota // '0'-'9'
	cUpper              // 'A'-'Z'
	cLower              // 'a'-'z'
	cWord               // letter, digit or '_'
	cLocal              // common e-mail local-part character: alnum . _ % + -
	cAtext              // any RFC 5322 atext character, or '.'
	cDomain             // domain character: alnum . -
	cHex                // hex digit
)

var class [256]uint8

func init() {
	for c := 0; c < 256; c++ {
		var k uint8
		switch {
		case '0' <= c && c <= '9':
			k |= cDigit | cWord | cLocal | cAtext | cDomain | cHex
		case 'A' <= c && c <= 'Z':
			k |= cUpper | cWord | cLocal | cAtext | cDomain
		case 'a' <= c && c <= 'z':
			k |= cLower | cWord | cLocal | cAtext | cDomain
		}
		if 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' {
			k |= cHex
		}
		switch c {
		case '_':
			k |= cWord | cLocal | cAtext
		case '.', '-':
			k |= cLocal | cAtext | cDomain
		case '%', '+':
			k |= cLocal | cAtext
		case '!', '#', '$', '&', '\'', '*', '/', '=', '?', '^', '`', '{', '|', '}', '~':
			k |= cAtext
		}
		class[c] = k
	}
}

func isDigit(c byte) bool { return c-'0' < 10 }
func isUpper(c byte) bool { return c-'A' < 26 }
func isWord(c byte) bool  { return class[c]&cWord != 0 }
func isAlnum(c byte) bool { return class[c]&(cDigit|cUpper|cLower) != 0 }

// Built-in detector bits.
const (
	dEmail = 1 << iota
	dCard
	dPhone
	dSSN
	dNINO
	dIBAN
	dIP
)

var builtinBits = map[Type]uint16{
	Email: dEmail, Card: dCard, Phone: dPhone, SSN: dSSN, NINO: dNINO, IBAN: dIBAN, IP: dIP,
}

// SWAR constants.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// Scanner finds PII in text. It is immutable after New and safe for
// concurrent use.
type Scanner struct {
	tok          *privacy.Tokenizer
	enabled      uint16
	numeric      bool // some detector needs digit runs
	allowDomains []string
	allowValues  map[string]struct{}
	exclude      []exclusion
	minCount     map[Type]int // only minimums above 1
	custom       []customDetector
	window       int
	maxScan      int
	forceWide    bool // tests: take the invisible/full-width e-mail path always

	// Trigger bytes, and the SWAR constants of a superset of them: bytes
	// in [swarLo, swarHi) and bytes equal to swarEq (per-byte broadcast).
	trig   [256]bool
	swarLo uint64
	swarHi uint64
	swarEq uint64
	// The strict mask: [strictLo, strictHi) (digits, ':') and bytes equal
	// to swarEq or strictEq2 ('@').
	strictLo  uint64
	strictHi  uint64
	strictEq2 uint64
}

type customDetector struct {
	typ      Type
	re       *regexp.Regexp
	checksum string
	keywords *kwSet // nil: none configured
}

// NewWithKey builds a Scanner from cfg whose tokens are keyed with hmacKey
// (see privacy.NewTokenizer): what a detector, a backtest and a test oracle
// all need.
func NewWithKey(cfg Config, hmacKey []byte) (*Scanner, error) {
	tok, err := privacy.NewTokenizer(hmacKey)
	if err != nil {
		return nil, err
	}
	return New(cfg, tok)
}

// New builds a Scanner from cfg. tok computes the detections' tokens and
// must not be nil. Errors in the exclusions and minimum counts are
// reported together with the first error in the rest of cfg.
func New(cfg Config, tok *privacy.Tokenizer) (*Scanner, error) {
	s, err := newScanner(cfg, tok)
	if s == nil {
		s = &Scanner{}
	}
	if err = errors.Join(err, s.compileExclusions(&cfg)); err != nil {
		return nil, err
	}
	return s, nil
}

func newScanner(cfg Config, tok *privacy.Tokenizer) (*Scanner, error) {
	if tok == nil {
		return nil, errors.New("inspect: nil tokenizer")
	}
	s := &Scanner{tok: tok, window: cfg.ContextWindow, maxScan: cfg.MaxScanBytes}
	if s.window == 0 {
		s.window = DefaultContextWindow
	}
	if s.window < 0 || s.window > MaxContextWindow {
		return nil, fmt.Errorf("inspect: ContextWindow %d out of range [0, %d]", cfg.ContextWindow, MaxContextWindow)
	}
	if s.maxScan == 0 {
		s.maxScan = DefaultMaxScanBytes
	}
	if s.maxScan < 0 {
		return nil, fmt.Errorf("inspect: negative MaxScanBytes %d", cfg.MaxScanBytes)
	}

	if len(cfg.Custom) > MaxCustomDetectors {
		return nil, fmt.Errorf("inspect: %d custom detectors, at most %d", len(cfg.Custom), MaxCustomDetectors)
	}
	customNames := map[Type]bool{}
	var customs []customDetector
	for _, cd := range cfg.Custom {
		c, err := compileCustom(cd)
		if err != nil {
			return nil, err
		}
		if customNames[c.typ] {
			return nil, fmt.Errorf("inspect: duplicate custom detector %q", cd.Name)
		}
		customNames[c.typ] = true
		customs = append(customs, c)
	}

	if len(cfg.Detectors) == 0 {
		for _, t := range DefaultDetectors {
			s.enabled |= builtinBits[t]
		}
		s.custom = customs
	} else {
		want := map[Type]bool{}
		for _, t := range cfg.Detectors {
			if b, ok := builtinBits[t]; ok {
				s.enabled |= b
			} else if customNames[t] {
				want[t] = true
			} else {
				return nil, fmt.Errorf("inspect: unknown detector %q", t)
			}
		}
		for _, c := range customs {
			if want[c.typ] {
				s.custom = append(s.custom, c)
			}
		}
	}

	for _, d := range cfg.AllowDomains {
		d = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(d), "@")))
		if d != "" {
			s.allowDomains = append(s.allowDomains, d)
		}
	}
	if len(cfg.AllowValues) > 0 {
		s.allowValues = make(map[string]struct{})
		for _, v := range cfg.AllowValues {
			for _, k := range allowVariants(v) {
				s.allowValues[k] = struct{}{}
			}
		}
	}

	// Trigger bytes: digits and the full-width digit lead byte 0xEF for
	// numeric detectors, '@' and 0xEF (full-width '＠') for e-mail, ':'
	// for IPv6. The SWAR loop flags a superset (a byte range plus one
	// byte); the table decides.
	s.numeric = s.enabled&(dCard|dPhone|dSSN|dNINO|dIBAN|dIP) != 0
	s.setTriggers()
	return s, nil
}

// setTriggers fills the trigger table and the SWAR masks from s.enabled:
// digits and 0xEF (full-width digits) for the numeric detectors, '@' and
// 0xEF (full-width '＠') for e-mail, ':' for IPv6. The loose mask flags a
// byte range and 0xEF; the strict one a narrower range, 0xEF and '@'. Both
// flag supersets of the triggers; the table decides. An empty range is
// [1, 1).
func (s *Scanner) setTriggers() {
	lo, hi := byte(1), byte(1)   // loose range
	slo, shi := byte(1), byte(1) // strict range
	eq2 := byte(0xEF)
	if s.numeric {
		lo, hi = '0', '9'+1
		slo, shi = '0', '9'+1
		for c := '0'; c <= '9'; c++ {
			s.trig[c] = true
		}
		s.trig[0xEF] = true
	}
	if s.enabled&dIP != 0 {
		s.trig[':'] = true
		if !s.numeric {
			lo, slo = ':', ':'
		}
		hi, shi = ':'+1, ':'+1
	}
	if s.enabled&dEmail != 0 {
		s.trig['@'] = true
		s.trig[0xEF] = true
		if lo == 1 {
			lo = '@'
		}
		hi = '@' + 1
		eq2 = '@'
	}
	s.swarLo = uint64(lo) * ones
	s.swarHi = uint64(hi) * ones
	s.swarEq = 0xEF * ones
	s.strictLo = uint64(slo) * ones
	s.strictHi = uint64(shi) * ones
	s.strictEq2 = uint64(eq2) * ones
}

// allowVariants returns the forms under which an AllowValues entry is
// matched against normalized values.
func allowVariants(v string) []string {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	out := []string{v, strings.ToLower(v)}
	var compact, digits strings.Builder
	onlyNumeric := true
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case isDigit(c):
			digits.WriteByte(c)
			compact.WriteByte(c)
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		case c == '+' && i == 0:
		default:
			onlyNumeric = false
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			compact.WriteByte(c)
		}
	}
	out = append(out, compact.String())
	if onlyNumeric && digits.Len() > 0 {
		out = append(out, digits.String())
		if v[0] == '+' {
			out = append(out, "+"+digits.String())
		}
	}
	return out
}

// Scan appends the detections found in text to dst and returns the
// extended slice. Inputs longer than Config.MaxScanBytes are scanned up to
// the cap and truncated is true. Detections are ordered by Start.
func (s *Scanner) Scan(text []byte, dst []Detection) (out []Detection, truncated bool) {
	if len(text) > s.maxScan {
		text = text[:s.maxScan]
		truncated = true
	}
	st := state{s: s, text: text, dst: dst}
	st.scanAll()
	base := len(dst)
	return append(st.dst[:base], s.applyMinCount(st.dst[base:])...), truncated
}

// scanAll scans st.text with the built-in pass and the custom detectors.
func (st *state) scanAll() {
	s := st.s
	dst := st.dst
	if s.enabled != 0 {
		st.scan()
	}
	if len(s.custom) > 0 {
		base := len(dst)
		st.runCustom()
		ds := st.dst[base:]
		slices.SortStableFunc(ds, func(a, b Detection) int { return a.Start - b.Start })
	}
}

// ScanString is Scan for a string; the string is not copied.
func (s *Scanner) ScanString(text string, dst []Detection) ([]Detection, bool) {
	return s.Scan(unsafe.Slice(unsafe.StringData(text), len(text)), dst)
}

// state is the per-call scanning state; it lives on the caller's stack.
type state struct {
	s     *Scanner
	text  []byte
	dst   []Detection
	floor int // end of the last detection: no new one starts before it
	// kwForce holds the detector bits whose context keywords count as
	// present (a CSV column's type; every detector when a lone value is
	// normalized); forceCustom does the same for one custom detector.
	kwForce     uint16
	forceCustom Type
	// capture, when on, receives normalized values instead of detections
	// being emitted (NormalizeValue). It is a value, not a pointer, so
	// that it stays on the stack.
	capture capture
	r       run
	cache   tokenCache
	norm    [maxLocalLen + 1 + maxDomainLen + 2]byte // normalized value scratch
}

// swarLoose sets the high bit of each byte of x that lies in [lo, hi) or
// equals eq (each broadcast to every byte; lo, hi < 0x80).
func swarLoose(x, lo, hi, eq uint64) uint64 {
	h, e := x|highs, x^eq
	return ((h-lo)&^(h-hi)&^x | (e-ones)&^e) & highs
}

// swarStrict is swarLoose with a second byte eq2 compared for equality.
func swarStrict(x, lo, hi, eq, eq2 uint64) uint64 {
	h, e, f := x|highs, x^eq, x^eq2
	return ((h-lo)&^(h-hi)&^x | (e-ones)&^e | (f-ones)&^f) & highs
}

// skipLoose returns the index of the first byte at or after i flagged by
// swarLoose (or a position within the last 7 bytes), 32 bytes per
// iteration.
func skipLoose(b []byte, i int, lo, hi, eq uint64) int {
	n := len(b)
	for i+32 <= n {
		w := b[i : i+32 : i+32]
		mx := swarLoose(binary.LittleEndian.Uint64(w[0:8]), lo, hi, eq)
		my := swarLoose(binary.LittleEndian.Uint64(w[8:16]), lo, hi, eq)
		mz := swarLoose(binary.LittleEndian.Uint64(w[16:24]), lo, hi, eq)
		mv := swarLoose(binary.LittleEndian.Uint64(w[24:32]), lo, hi, eq)
		if mx|my|mz|mv != 0 {
			return i + firstMarked(mx, my, mz, mv)
		}
		i += 32
	}
	for i+8 <= n {
		if m := swarLoose(binary.LittleEndian.Uint64(b[i:]), lo, hi, eq); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	return i
}

// firstMarked is the offset of the first marked byte in four consecutive
// SWAR masks of 8 bytes each, at least one of them non-zero.
func firstMarked(mx, my, mz, mv uint64) int {
	switch {
	case mx != 0:
		return bits.TrailingZeros64(mx) >> 3
	case my != 0:
		return 8 + bits.TrailingZeros64(my)>>3
	case mz != 0:
		return 16 + bits.TrailingZeros64(mz)>>3
	}
	return 24 + bits.TrailingZeros64(mv)>>3
}

// skipStrict is skipLoose for swarStrict.
func skipStrict(b []byte, i int, lo, hi, eq, eq2 uint64) int {
	n := len(b)
	for i+32 <= n {
		w := b[i : i+32 : i+32]
		mx := swarStrict(binary.LittleEndian.Uint64(w[0:8]), lo, hi, eq, eq2)
		my := swarStrict(binary.LittleEndian.Uint64(w[8:16]), lo, hi, eq, eq2)
		mz := swarStrict(binary.LittleEndian.Uint64(w[16:24]), lo, hi, eq, eq2)
		mv := swarStrict(binary.LittleEndian.Uint64(w[24:32]), lo, hi, eq, eq2)
		if mx|my|mz|mv != 0 {
			return i + firstMarked(mx, my, mz, mv)
		}
		i += 32
	}
	for i+8 <= n {
		if m := swarStrict(binary.LittleEndian.Uint64(b[i:]), lo, hi, eq, eq2); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	return i
}

// strictAfter is how many false exits (bytes the loose mask flags that are
// no trigger: ; < = > ? in HTML and code) make a scan switch to the strict
// mask for the rest of the input.
const strictAfter = 32

// scan is the single pass over the input.
func (st *state) scan() {
	b := st.text
	n := len(b)
	s := st.s
	// The loose mask (a byte range plus 0xEF) is the cheapest and fits
	// prose; where it flags many bytes for nothing the strict one (the
	// range narrowed to digits and ':', '@' compared) takes over.
	lo, hi, eq := s.swarLo, s.swarHi, s.swarEq
	slo, shi, seq, seq2 := s.strictLo, s.strictHi, s.swarEq, s.strictEq2
	strict := false
	falseExits := 0
	numeric := s.numeric
	i := 0
	for {
		if strict {
			i = skipStrict(b, i, slo, shi, seq, seq2)
		} else {
			i = skipLoose(b, i, lo, hi, eq)
		}
		if i+8 > n {
			for i < n && !s.trig[b[i]] {
				i++
			}
			if i >= n {
				return
			}
		}
		c := b[i]
		if isDigit(c) && numeric {
			i = st.numericAt(i) // always > i
			continue
		}
		if !s.trig[c] {
			i++
			if falseExits++; falseExits == strictAfter {
				strict = true
			}
			continue
		}
		next := i + 1
		switch {
		case c == '@':
			next = st.email(i)
		case c == ':':
			next = st.ipv6(i)
		case c == 0xEF:
			if _, w := digitAt(b, i); w != 0 {
				if numeric {
					next = st.numericAt(i)
				}
			} else if s.enabled&dEmail != 0 && i+2 < n && b[i+1] == 0xBC && b[i+2] == 0xA0 {
				next = st.emailWide(i, i+3) // full-width '＠'
			}
		}
		if next <= i {
			next = i + 1
		}
		i = next
	}
}

// emit records a detection of typ over text[start:end] whose normalized
// value is norm. It masks and tokenizes norm; the Masked and Token strings
// share one allocation.
func (st *state) emit(typ Type, start, end int, conf Confidence, norm []byte) {
	if st.capture.on {
		st.capture.add(typ, start, end, norm)
		if end > st.floor {
			st.floor = end
		}
		return
	}
	if st.s.allowValues != nil {
		if _, ok := st.s.allowValues[string(norm)]; ok {
			st.floor = end
			return
		}
	}
	if st.s.exclude != nil && st.s.excluded(typ, norm) {
		st.floor = end
		return
	}
	masked, token, ok := st.cached(typ, norm)
	if !ok {
		buf := make([]byte, 0, len(norm)+24+privacy.TokenLen)
		buf = privacy.AppendMask(buf, string(typ), norm)
		ml := len(buf)
		buf = st.s.tok.AppendToken(buf, string(typ), norm)
		str := unsafe.String(unsafe.SliceData(buf), len(buf))
		masked, token = str[:ml], str[ml:]
		st.remember(typ, norm, masked, token)
	}
	st.dst = append(st.dst, Detection{
		Type:       typ,
		Start:      start,
		End:        end,
		Confidence: conf,
		Masked:     masked,
		Token:      token,
	})
	if end > st.floor {
		st.floor = end
	}
}

// Values often repeat within one input (an address in From, To and
// Return-Path). A small per-call cache of recent (type, normalized value)
// pairs saves the HMAC and the allocation of a repeat. The normalized
// copies live on the caller's stack and die with the call.
const (
	cacheSlots = 16
	cacheArena = 1024
)

type cacheEntry struct {
	key           uint32 // length and last two bytes: a cheap first filter
	off           uint16
	typ           Type
	masked, token string
}

func cacheKey(norm []byte) uint32 {
	k := uint32(len(norm)) << 16
	if len(norm) >= 2 {
		k |= uint32(norm[len(norm)-2])<<8 | uint32(norm[len(norm)-1])
	}
	return k
}

type tokenCache struct {
	entries [cacheSlots]cacheEntry
	used    int // entries filled
	next    int // next entry to replace
	arena   [cacheArena]byte
	arenaN  int
}

func (st *state) cached(typ Type, norm []byte) (string, string, bool) {
	c := &st.cache
	key := cacheKey(norm)
	for k := 0; k < c.used; k++ {
		e := &c.entries[k]
		if e.key == key && e.typ == typ && string(c.arena[e.off:int(e.off)+len(norm)]) == string(norm) {
			return e.masked, e.token, true
		}
	}
	return "", "", false
}

func (st *state) remember(typ Type, norm []byte, masked, token string) {
	c := &st.cache
	if len(norm) > cacheArena/4 {
		return
	}
	if c.arenaN+len(norm) > cacheArena {
		c.used, c.next, c.arenaN = 0, 0, 0
	}
	e := &c.entries[c.next]
	e.key, e.off, e.typ, e.masked, e.token = cacheKey(norm), uint16(c.arenaN), typ, masked, token
	c.arenaN += copy(c.arena[c.arenaN:], norm)
	c.next = (c.next + 1) % cacheSlots
	if c.used < cacheSlots {
		c.used++
	}
}

// digitAt returns the ASCII digit at b[i] and its width in bytes: 1 for an
// ASCII digit, 3 for a full-width digit (U+FF10-U+FF19), 0 for no digit.
func digitAt(b []byte, i int) (byte, int) {
	c := b[i]
	if isDigit(c) {
		return c, 1
	}
	if c == 0xEF && i+2 < len(b) && b[i+1] == 0xBC && b[i+2]-0x90 < 10 {
		return '0' + b[i+2] - 0x90, 3
	}
	return 0, 0
}

// zwAt returns the width of an invisible character at b[i] (U+200B-U+200D,
// U+2060, U+FEFF, U+00AD soft hyphen), or 0.
func zwAt(b []byte, i int) int {
	switch b[i] {
	case 0xE2:
		if i+2 < len(b) {
			if b[i+1] == 0x80 && b[i+2] >= 0x8B && b[i+2] <= 0x8D {
				return 3
			}
			if b[i+1] == 0x81 && b[i+2] == 0xA0 {
				return 3
			}
		}
	case 0xEF:
		if i+2 < len(b) && b[i+1] == 0xBB && b[i+2] == 0xBF {
			return 3
		}
	case 0xC2:
		if i+1 < len(b) && b[i+1] == 0xAD {
			return 2
		}
	}
	return 0
}

// skipZW returns the first index at or after i that does not start an
// invisible character.
func skipZW(b []byte, i int) int {
	for i < len(b) && b[i] >= 0x80 {
		w := zwAt(b, i)
		if w == 0 {
			break
		}
		i += w
	}
	return i
}

// prevChar returns the index of the byte before i, skipping invisible
// characters backwards, or -1.
func prevChar(b []byte, i int) int {
	for i > 0 {
		j := i - 1
		if j >= 2 && zwAt(b, j-2) == 3 {
			i = j - 2
			continue
		}
		if j >= 1 && b[j] == 0xAD && b[j-1] == 0xC2 {
			i = j - 1
			continue
		}
		return j
	}
	return -1
}
