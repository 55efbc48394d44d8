// Package privacy turns raw PII values into what Leakline may store: a
// type-aware masked form for humans and a keyed HMAC token for correlation.
// Raw values never leave the process; nothing here logs them.
package privacy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"sync"
	"unicode/utf8"
)

// MinKeyLen is the shortest HMAC key NewTokenizer accepts, in bytes.
const MinKeyLen = 32

// TokenLen is the length of a token in hex characters (16 bytes of HMAC).
const TokenLen = 32

// maxKeyFile bounds the size of a key file LoadKey reads.
const maxKeyFile = 4096

// Type names Mask knows. They equal the inspect package's Type values; they
// are repeated here so that privacy does not depend on inspect.
const (
	TypeEmail = "EMAIL_ADDRESS"
	TypeCard  = "CREDIT_CARD"
	TypePhone = "PHONE_NUMBER"
	TypeSSN   = "US_SSN"
	TypeIBAN  = "IBAN"
	TypeIP    = "IP_ADDRESS"
)

// Tokenizer computes keyed HMAC-SHA256 tokens of normalized PII values. The
// same (type, normalized value) always yields the same token under the same
// key, so findings can be correlated without storing the value. A Tokenizer
// is safe for concurrent use.
type Tokenizer struct {
	pool sync.Pool // of *macState
}

// macState is one pooled HMAC with scratch space, so that computing a token
// does not allocate.
type macState struct {
	h   hash.Hash
	buf [128]byte
	sum [sha256.Size]byte
}

// NewTokenizer returns a Tokenizer keyed with key, which must be at least
// MinKeyLen bytes long. The key is copied.
func NewTokenizer(key []byte) (*Tokenizer, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("privacy: HMAC key is %d bytes, need at least %d", len(key), MinKeyLen)
	}
	k := append([]byte(nil), key...)
	t := &Tokenizer{}
	t.pool.New = func() any { return &macState{h: hmac.New(sha256.New, k)} }
	return t, nil
}

// Token returns the hex encoding of the first 16 bytes of
// HMAC-SHA256(key, typ || 0x00 || normalized): 32 lower-case hex characters.
func (t *Tokenizer) Token(typ string, normalized []byte) string {
	var buf [TokenLen]byte
	return string(t.AppendToken(buf[:0], typ, normalized))
}

// AppendToken appends the token of (typ, normalized) to dst and returns the
// extended slice. It does not allocate when dst has room for TokenLen bytes.
func (t *Tokenizer) AppendToken(dst []byte, typ string, normalized []byte) []byte {
	m := t.pool.Get().(*macState)
	m.h.Reset()
	// Everything goes through m.buf so that neither typ nor normalized
	// escapes to the heap through the hash.Hash interface.
	for len(typ) > 0 {
		n := copy(m.buf[:], typ)
		_, _ = m.h.Write(m.buf[:n])
		typ = typ[n:]
	}
	m.buf[0] = 0
	_, _ = m.h.Write(m.buf[:1])
	for len(normalized) > 0 {
		n := copy(m.buf[:], normalized)
		_, _ = m.h.Write(m.buf[:n])
		normalized = normalized[n:]
	}
	s := m.h.Sum(m.sum[:0])
	var hx [TokenLen]byte
	hex.Encode(hx[:], s[:TokenLen/2])
	t.pool.Put(m)
	return append(dst, hx[:]...)
}

// LoadKey reads an HMAC key from the file at path (LEAKLINE_HMAC_KEY_FILE).
// A file that holds only hex digits (surrounding white space ignored) is read
// as a hex-encoded key; any other content is the raw key (a trailing line
// break is ignored). The key must be at least MinKeyLen bytes long. The key itself is
// never included in an error.
func LoadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("privacy: open key file: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("privacy: read key file: %w", err)
	}
	if len(raw) > maxKeyFile {
		return nil, fmt.Errorf("privacy: key file %s is larger than %d bytes", path, maxKeyFile)
	}
	trimmed := strings.TrimSpace(string(raw))
	if len(trimmed) > 0 && len(trimmed)%2 == 0 && isHex(trimmed) {
		k, err := hex.DecodeString(trimmed)
		if err != nil || len(k) < MinKeyLen {
			return nil, fmt.Errorf("privacy: hex key in %s is %d bytes, need at least %d", path, len(k), MinKeyLen)
		}
		return k, nil
	}
	k := raw
	for len(k) > 0 && (k[len(k)-1] == '\n' || k[len(k)-1] == '\r') {
		k = k[:len(k)-1]
	}
	if len(k) < MinKeyLen {
		return nil, errors.New("privacy: key file holds fewer than 32 key bytes (raw) or 64 hex digits")
	}
	return k, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// Mask returns a masked form of a normalized value that is safe to show and
// store:
//   - EMAIL_ADDRESS: first character of the local part, "***", domain kept
//     ("j***@example.com");
//   - CREDIT_CARD: every digit but the last 4 starred ("************1111");
//   - PHONE_NUMBER: a leading '+' kept, every digit but the last 4 starred;
//   - US_SSN: "***-**-6789";
//   - IBAN: country code and last 4 characters kept;
//   - IP_ADDRESS: first octet (IPv4, "10.*.*.*") or first group (IPv6) kept;
//   - anything else: last 4 characters kept if the value has at least 8,
//     else every character starred.
//
// Whatever the type, a run of 5 or more digits never survives masking.
func Mask(typ string, normalized string) string {
	var buf [64]byte
	return string(AppendMask(buf[:0], typ, []byte(normalized)))
}

// AppendMask appends Mask(typ, normalized) to dst and returns the extended
// slice.
func AppendMask(dst []byte, typ string, normalized []byte) []byte {
	start := len(dst)
	v := normalized
	switch typ {
	case TypeEmail:
		at := lastIndexByte(v, '@')
		if at <= 0 {
			dst = appendDefault(dst, v)
			break
		}
		_, n := utf8.DecodeRune(v)
		if n > at {
			n = at
		}
		dst = append(dst, v[:n]...)
		dst = append(dst, "***"...)
		dst = append(dst, v[at:]...)
	case TypeCard:
		dst = appendKeepLast(dst, v, 4, false)
	case TypePhone:
		if len(v) > 0 && v[0] == '+' {
			dst = append(dst, '+')
			v = v[1:]
		}
		dst = appendKeepLast(dst, v, 4, false)
	case TypeSSN:
		if len(v) == 9 {
			dst = append(dst, "***-**-"...)
			dst = append(dst, v[5:]...)
		} else {
			dst = appendKeepLast(dst, v, 4, true)
		}
	case TypeIBAN:
		if len(v) < 8 {
			dst = appendStars(dst, len(v))
		} else {
			dst = append(dst, v[:2]...)
			dst = appendStars(dst, len(v)-6)
			dst = append(dst, v[len(v)-4:]...)
		}
	case TypeIP:
		if i := indexByte(v, ':'); i >= 0 {
			// IPv6: first group, then every further group starred.
			if i == 0 {
				dst = append(dst, '*')
			} else {
				dst = append(dst, v[:i]...)
			}
			dst = append(dst, ":*:*:*:*:*:*:*"...)
		} else if i := indexByte(v, '.'); i > 0 {
			dst = append(dst, v[:i]...)
			dst = append(dst, ".*.*.*"...)
		} else {
			dst = appendDefault(dst, v)
		}
	default:
		dst = appendDefault(dst, v)
	}
	scrubDigitRuns(dst[start:])
	return dst
}

// appendDefault keeps the last 4 characters (runes) of values of 8 or more
// characters and stars everything else.
func appendDefault(dst, v []byte) []byte {
	n := utf8.RuneCount(v)
	if n < 8 {
		return appendStars(dst, n)
	}
	// Byte offset of the 4th rune from the end.
	cut := len(v)
	for k := 0; k < 4; k++ {
		_, size := utf8.DecodeLastRune(v[:cut])
		cut -= size
	}
	dst = appendStars(dst, n-4)
	return append(dst, v[cut:]...)
}

// appendKeepLast stars every digit of v but the last keep and drops other
// characters unless keepOther.
func appendKeepLast(dst, v []byte, keep int, keepOther bool) []byte {
	digits := 0
	for _, c := range v {
		if '0' <= c && c <= '9' {
			digits++
		}
	}
	seen := 0
	for _, c := range v {
		if '0' <= c && c <= '9' {
			seen++
			if seen > digits-keep {
				dst = append(dst, c)
			} else {
				dst = append(dst, '*')
			}
		} else if keepOther {
			dst = append(dst, c)
		} else {
			dst = append(dst, '*')
		}
	}
	return dst
}

func appendStars(dst []byte, n int) []byte {
	for ; n > 0; n-- {
		dst = append(dst, '*')
	}
	return dst
}

// scrubDigitRuns stars every run of 5 or more ASCII digits in b.
func scrubDigitRuns(b []byte) {
	for i := 0; i < len(b); {
		if b[i] < '0' || b[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		if j-i >= 5 {
			for k := i; k < j; k++ {
				b[k] = '*'
			}
		}
		i = j
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func lastIndexByte(b []byte, c byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == c {
			return i
		}
	}
	return -1
}
