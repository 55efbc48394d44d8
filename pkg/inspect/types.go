// Package inspect is Leakline's content-inspection core: it finds PII
// (email addresses, payment cards, phone numbers, US SSNs, UK NINOs, IBANs,
// IP addresses and operator-defined patterns) in text at memory speed.
//
// A Scanner makes one pass over its input. A SWAR skip loop (32 bytes per
// iteration) finds the few bytes that can start a value — digits, '@', ':'
// and 0xEF, the lead byte of full-width digits and '＠' — and everything
// else is skipped without per-byte work. A digit run is collected once,
// with its separators, and offered to every numeric validator (card, SSN,
// IP, phone); letters only matter just before a digit run (IBAN and NINO
// prefixes). Invisible characters and full-width forms inside a value are
// read through, so they hide nothing. Every candidate is validated (Luhn,
// mod-97, issuer and numbering-plan tables) before it is reported, and
// every Detection carries only a masked value and a keyed HMAC token, never
// the raw value. Detection offsets refer to the scanned input.
//
// Inspect reads a body as the pipeline sees it — a MIME message (ScanMIME:
// quoted-printable and base64 parts, bounded nesting and decoded size), a
// CSV/TSV table (ScanCSV: PII columns raise their cells' confidence), or
// text — and reports binary content instead of scanning it. NormalizeValue
// gives the normalized form a detection's token is computed from, which
// exact data matching (package edm) fingerprints.
package inspect

import (
	"fmt"
	"strings"
)

// Type names a kind of PII. Built-in types are the constants below; a
// custom detector's Name is used as its Type.
type Type string

// Built-in detector types.
const (
	Email Type = "EMAIL_ADDRESS"
	Card  Type = "CREDIT_CARD"
	Phone Type = "PHONE_NUMBER"
	SSN   Type = "US_SSN"
	NINO  Type = "UK_NINO"
	IBAN  Type = "IBAN"
	IP    Type = "IP_ADDRESS"
)

// DefaultDetectors is the detector set used when Config.Detectors is empty.
var DefaultDetectors = []Type{Email, Card, Phone, SSN, NINO, IBAN, IP}

// Confidence says how sure a detector is that a match is the PII it names.
type Confidence uint8

// Confidence levels, lowest first.
const (
	Low    Confidence = 1
	Medium Confidence = 2
	High   Confidence = 3
)

// String returns "low", "medium" or "high" ("unknown" for other values).
func (c Confidence) String() string {
	switch c {
	case Low:
		return "low"
	case Medium:
		return "medium"
	case High:
		return "high"
	}
	return "unknown"
}

// MarshalText encodes the confidence as its String form.
func (c Confidence) MarshalText() ([]byte, error) {
	if c < Low || c > High {
		return nil, fmt.Errorf("inspect: invalid confidence %d", uint8(c))
	}
	return []byte(c.String()), nil
}

// UnmarshalText decodes "low", "medium" or "high" (any case).
func (c *Confidence) UnmarshalText(b []byte) error {
	switch strings.ToLower(string(b)) {
	case "low":
		*c = Low
	case "medium":
		*c = Medium
	case "high":
		*c = High
	default:
		return fmt.Errorf("inspect: invalid confidence %q", b)
	}
	return nil
}

// Detection is one PII value found in scanned text. Start and End are byte
// offsets into the scanned input: text[Start:End] is the value as written
// (including separators, zero-width characters and full-width digits that
// were part of it). The raw value itself is never kept: Masked is a
// type-aware masked form and Token a keyed HMAC of the normalized value
// (privacy.Tokenizer), equal for equal normalized values.
type Detection struct {
	Type       Type       `json:"type"`
	Start      int        `json:"start"`
	End        int        `json:"end"`
	Confidence Confidence `json:"confidence"`
	Masked     string     `json:"masked"`
	Token      string     `json:"token"`
}

// CustomDetector is an operator-defined detector.
type CustomDetector struct {
	// Name is the detection Type: upper-case letters, digits and '_', not
	// the name of a built-in type.
	Name string
	// Pattern is an RE2 expression (Go regexp syntax) of at most
	// MaxCustomPatternLen bytes whose compiled program has at most
	// MaxCustomProgInsts instructions.
	Pattern string
	// Checksum, if set, must hold for a match to be reported: "luhn" (over
	// the match's digits) or "mod97" (ISO 7064 over its letters and
	// digits, IBAN-style with the first four characters moved to the end).
	Checksum string
	// Keywords, if any, are searched (ASCII case-insensitive, at word
	// starts) in the context window around a match: found means High
	// confidence, not found Low. Without keywords a match is Medium.
	Keywords []string
}

// Limits on custom detectors, so that a rule cannot make compilation or
// scanning unbounded.
const (
	MaxCustomDetectors  = 64
	MaxCustomPatternLen = 1024
	MaxCustomProgInsts  = 4096
	MaxKeywordLen       = 32
	MaxContextWindow    = 256
)

// Defaults for Config fields left zero.
const (
	DefaultContextWindow = 64
	DefaultMaxScanBytes  = 8 << 20
)

// Config configures a Scanner.
type Config struct {
	// Detectors lists the types to detect; empty means DefaultDetectors
	// plus every custom detector. When set, custom detectors run only if
	// their Name is listed.
	Detectors []Type
	// AllowDomains are the company's own mail domains: addresses there (or
	// at a subdomain) are reported with Low confidence (internal), not
	// dropped. Compared case-insensitively.
	AllowDomains []string
	// AllowValues are normalized values that are never reported (for
	// example published test card numbers). Digits-only entries also match
	// values written with separators; e-mail addresses compare
	// case-insensitively; IBANs compare without spaces.
	AllowValues []string
	// Custom are operator-defined detectors; they run after the built-in
	// pass.
	Custom []CustomDetector
	// Exclude drops detections whose normalized value matches an
	// exclusion of their type (see Exclusion); at most MaxExclusions.
	Exclude []Exclusion
	// MinCount, per type, is how many detections of that type one scanned
	// text (a body, a table, a MIME part) must hold for any of them to be
	// reported; below it none of that type is. 0 and 1 mean no minimum.
	MinCount map[Type]int
	// ContextWindow is the number of bytes on each side of a candidate
	// searched for keywords; 0 means DefaultContextWindow, at most
	// MaxContextWindow.
	ContextWindow int
	// MaxScanBytes caps how much of an input is scanned; longer inputs are
	// scanned up to the cap and Scan reports truncated. 0 means
	// DefaultMaxScanBytes.
	MaxScanBytes int
}

// Counts returns how many detections of each type have at least confidence
// minConf.
func Counts(ds []Detection, minConf Confidence) map[Type]int {
	m := make(map[Type]int)
	for i := range ds {
		if ds[i].Confidence >= minConf {
			m[ds[i].Type]++
		}
	}
	return m
}
