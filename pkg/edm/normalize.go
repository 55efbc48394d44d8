package edm

import (
	"unicode"
	"unicode/utf8"

	"github.com/leakline/leakline/pkg/inspect"
)

// Identifier types with a normalization of their own. Any other type name
// (customer_id, account_id, ticket, ...) is an opaque identifier,
// normalized by NormalizeID.
const (
	TypeEmail      = "email"
	TypePhone      = "phone"
	TypeName       = "name"
	TypeCard       = "card"
	TypeSSN        = "ssn"
	TypeIBAN       = "iban"
	TypeNINO       = "nino"
	TypeCustomerID = "customer_id"
	// TypeFirstName and TypeLastName are column types only: Build joins
	// them into a TypeName identifier "first last".
	TypeFirstName = "first_name"
	TypeLastName  = "last_name"
)

// Bounds on identifiers.
const (
	MaxTypeLen  = 32
	MaxValueLen = 256
)

// inspectTypes maps the identifier types that are built-in detector types.
var inspectTypes = map[string]inspect.Type{
	TypeEmail: inspect.Email,
	TypePhone: inspect.Phone,
	TypeCard:  inspect.Card,
	TypeSSN:   inspect.SSN,
	TypeIBAN:  inspect.IBAN,
	TypeNINO:  inspect.NINO,
}

// ValidType reports whether typ is a usable identifier type name: a
// lower-case letter, then lower-case letters, digits and '_', at most
// MaxTypeLen bytes.
func ValidType(typ string) bool {
	if typ == "" || len(typ) > MaxTypeLen || typ[0] < 'a' || typ[0] > 'z' {
		return false
	}
	for i := 1; i < len(typ); i++ {
		c := typ[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Normalize appends to dst the normalized form of value as an identifier
// of type typ — the form the index fingerprints — and reports whether
// value is a valid identifier of that type:
//   - email, phone, card, ssn, iban, nino: exactly the scanner's
//     normalization (inspect.NormalizeValue): lower-case e-mail, E.164
//     phone ("020 7946 0958" → "+442079460958"), digits, upper-case IBAN;
//   - name: NormalizeName ("  JANE   van der BERG " → "jane van der berg");
//   - anything else: NormalizeID.
func Normalize(typ string, value []byte, dst []byte) ([]byte, bool) {
	if len(value) > MaxValueLen {
		return dst, false
	}
	if it, ok := inspectTypes[typ]; ok {
		return inspect.NormalizeValue(it, value, dst)
	}
	if typ == TypeName {
		return NormalizeName(value, dst)
	}
	return NormalizeID(value, dst)
}

// NormalizeID appends an opaque identifier in normalized form: white space
// and invisible characters removed, full-width forms read as ASCII, ASCII
// letters upper-cased ("c-000123 " → "C-000123"). It reports false for an
// empty identifier or one longer than MaxValueLen.
func NormalizeID(value []byte, dst []byte) ([]byte, bool) {
	start := len(dst)
	for i := 0; i < len(value); {
		r, w := utf8.DecodeRune(value[i:])
		i += w
		switch {
		case r == utf8.RuneError && w == 1:
			continue // invalid byte: dropped
		case invisible(r) || unicode.IsSpace(r):
			continue
		case r >= 0xFF01 && r <= 0xFF5E:
			r -= 0xFEE0
		}
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		dst = utf8.AppendRune(dst, r)
	}
	n := len(dst) - start
	return dst, n > 0 && n <= MaxValueLen
}

// invisible reports the zero-width and soft-hyphen characters the scanner
// skips inside values.
func invisible(r rune) bool {
	switch r {
	case 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD:
		return true
	}
	return false
}

// nameRune classifies r for names: a letter (or combining mark), an
// in-word joiner (apostrophe, hyphen), or a separator; it also folds it.
func nameRune(r rune) (rune, int) {
	switch {
	case r < utf8.RuneSelf:
		switch {
		case 'a' <= r && r <= 'z':
			return r, 1
		case 'A' <= r && r <= 'Z':
			return r + 'a' - 'A', 1
		case r == '\'' || r == '-':
			return r, 2
		}
		return r, 0
	case r >= 0xFF01 && r <= 0xFF5E:
		return nameRune(r - 0xFEE0)
	case r == 0x2019: // right single quotation mark, as in O’Brien
		return '\'', 2
	case invisible(r):
		return r, 3
	case unicode.IsLetter(r) || unicode.Is(unicode.Mn, r):
		return unicode.ToLower(r), 1
	}
	return r, 0
}

// NormalizeName appends a person's name in normalized form: words of
// letters (apostrophes and hyphens inside a word kept), case-folded,
// joined by single spaces; everything else separates words; invisible
// characters are dropped and full-width forms read as ASCII ("Dr. JANE
// O’Brien-Smith" → "dr jane o'brien-smith"). A name needs at least two
// words: a lone first or last name is not identifying.
func NormalizeName(value []byte, dst []byte) ([]byte, bool) {
	start := len(dst)
	words := 0
	inWord := false
	for i := 0; i < len(value); {
		r, w := utf8.DecodeRune(value[i:])
		i += w
		if r == utf8.RuneError && w == 1 {
			inWord = false
			continue
		}
		f, kind := nameRune(r)
		switch kind {
		case 1: // letter
			if !inWord {
				if words > 0 {
					dst = append(dst, ' ')
				}
				words++
				inWord = true
			}
			dst = utf8.AppendRune(dst, f)
		case 2: // joiner: only inside a word
			if inWord && i < len(value) {
				if r2, _ := utf8.DecodeRune(value[i:]); r2 != utf8.RuneError {
					if _, k2 := nameRune(r2); k2 == 1 {
						dst = append(dst, byte(f))
						continue
					}
				}
			}
			inWord = false
		case 3: // invisible
		default:
			inWord = false
		}
	}
	return dst, words >= 2 && len(dst)-start <= MaxValueLen
}
