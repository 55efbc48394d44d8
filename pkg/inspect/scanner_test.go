package inspect

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// want is one expected detection: its type, the value as written, and its
// confidence (0: any).
type want struct {
	typ  Type
	val  string
	conf Confidence
}

type scanCase struct {
	name string
	in   string
	want []want
}

// checkInvariants verifies what must hold for every detection.
func checkInvariants(t *testing.T, in string, ds []Detection) {
	t.Helper()
	for _, d := range ds {
		if d.Start < 0 || d.Start >= d.End || d.End > len(in) {
			t.Fatalf("%q: bad span %d..%d", in, d.Start, d.End)
		}
		raw := in[d.Start:d.End]
		if d.Masked == raw || d.Token == raw {
			t.Errorf("%q: %s masked/token equals the raw value %q", in, d.Type, raw)
		}
		if len(d.Token) != 32 {
			t.Errorf("%q: token %q is not 32 hex chars", in, d.Token)
		}
		if d.Confidence < Low || d.Confidence > High {
			t.Errorf("%q: bad confidence %d", in, d.Confidence)
		}
	}
}

func runCases(t *testing.T, s *Scanner, cases []scanCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds, trunc := s.ScanString(c.in, nil)
			if trunc {
				t.Fatalf("unexpected truncation")
			}
			checkInvariants(t, c.in, ds)
			var got []string
			for _, d := range ds {
				got = append(got, fmt.Sprintf("%s %q %s", d.Type, c.in[d.Start:d.End], d.Confidence))
			}
			if len(ds) != len(c.want) {
				t.Fatalf("%q: got %d detections %v, want %d %v", c.in, len(ds), got, len(c.want), c.want)
			}
			for i, w := range c.want {
				d := ds[i]
				if d.Type != w.typ || c.in[d.Start:d.End] != w.val || (w.conf != 0 && d.Confidence != w.conf) {
					t.Errorf("%q: detection %d = %s, want %s %q %v", c.in, i, got[i], w.typ, w.val, w.conf)
				}
			}
		})
	}
}

func TestEmail(t *testing.T) {
	s := newTestScanner(t, Config{})
	runCases(t, s, []scanCase{
		{"plain", "contact john.doe@example.com today", []want{{Email, "john.doe@example.com", High}}},
		{"sentence end", "Mail John.Doe@Example.COM.", []want{{Email, "John.Doe@Example.COM", High}}},
		{"angle brackets", "To: <a.b+tag@sub.example.co.uk>", []want{{Email, "a.b+tag@sub.example.co.uk", High}}},
		{"quoted", "'joe@x-y.com'", []want{{Email, "joe@x-y.com", High}}},
		{"query string", "?email=joe@example.org&x=1", []want{{Email, "joe@example.org", High}}},
		{"leading dot", ".test@iana.org", []want{{Email, "test@iana.org", High}}},
		{"digits domain", "test@123.com", []want{{Email, "test@123.com", High}}},
		{"punycode", "test@xn--hxajbheg2az3al.xn--jxalpdlp", []want{{Email, "test@xn--hxajbheg2az3al.xn--jxalpdlp", High}}},
		{"exotic atext", "!#$%&`*+/=?^`{|}~@iana.org", []want{{Email, "!#$%&`*+/=?^`{|}~@iana.org", Medium}}},
		{"message id", "<1029945287.4797.TMDA@deepeddy.vircio.com>", []want{{Email, "1029945287.4797.TMDA@deepeddy.vircio.com", Medium}}},
		{"two", "a@example.com,b@example.net", []want{{Email, "a@example.com", High}, {Email, "b@example.net", High}}},
		{"no dot", "root@localhost", nil},
		{"one-letter tld", "test@iana.a", nil},
		{"numeric tld", "test@iana.123", nil},
		{"no local", "@example.com", nil},
		{"no domain", "test@", nil},
		{"file name", "logo@2x.png and icon@3x.jpg", nil},
		{"hyphen label", "test@-iana.org", nil},
		{"hyphen end", "test@iana-.com", nil},
		{"double dot", "test@iana..com", nil},
		{"dot before at", "test.@iana.org", nil},
		{"npm scope", "npm i @babel/core", nil},
		{"bare at", "meet @ 5pm", nil},
	})
}

func TestEmailAllowDomains(t *testing.T) {
	s := newTestScanner(t, Config{AllowDomains: []string{"Corp.Example", "@acme.io"}})
	runCases(t, s, []scanCase{
		{"internal", "x@corp.example", []want{{Email, "x@corp.example", Low}}},
		{"subdomain", "x@mail.CORP.example", []want{{Email, "x@mail.CORP.example", Low}}},
		{"at-prefixed entry", "y@acme.io", []want{{Email, "y@acme.io", Low}}},
		{"lookalike", "x@evilcorp.example", []want{{Email, "x@evilcorp.example", High}}},
		{"external", "x@gmail.com", []want{{Email, "x@gmail.com", High}}},
	})
}

// withLuhn appends the Luhn check digit to a digit string.
func withLuhn(p string) string {
	for c := byte('0'); c <= '9'; c++ {
		if luhn([]byte(p + string(c))) {
			return p + string(c)
		}
	}
	panic("unreachable")
}

func TestCard(t *testing.T) {
	s := newTestScanner(t, Config{})
	badPrefix := withLuhn("911111111111111") // 16 digits, Luhn-valid, no issuer
	degenerate := withLuhn("444444444444444")
	runCases(t, s, []scanCase{
		{"spaced keyword", "Card: 4111 1111 1111 1111 exp 12/29", []want{{Card, "4111 1111 1111 1111", High}}},
		{"dashed", "4111-1111-1111-1111", []want{{Card, "4111-1111-1111-1111", High}}},
		{"bare", "number 4111111111111111.", []want{{Card, "4111111111111111", Medium}}},
		{"bare keyword", "visa 4111111111111111", []want{{Card, "4111111111111111", High}}},
		{"amex bare", "378282246310005", []want{{Card, "378282246310005", Medium}}},
		{"amex 4-6-5", "3782 822463 10005", []want{{Card, "3782 822463 10005", High}}},
		{"diners 4-6-4", "3056 930902 5904", []want{{Card, "3056 930902 5904", High}}},
		{"mastercard 2-series", "2221000000000009", []want{{Card, "2221000000000009", Medium}}},
		{"visa 13", "4222222222222", []want{{Card, "4222222222222", Medium}}},
		{"jcb", "3530111333300000", []want{{Card, "3530111333300000", Medium}}},
		{"discover", "6011 1111 1111 1117", []want{{Card, "6011 1111 1111 1117", High}}},
		{"unionpay 19", "6212345678901265", []want{{Card, "6212345678901265", Medium}}},
		{"degenerate", degenerate, []want{{Card, degenerate, Low}}},
		{"url id", "https://example.com/item/4111111111111111/view", []want{{Card, "4111111111111111", Low}}},
		{"full-width", "ｃａｒｄ ４１１１１１１１１１１１１１１１", []want{{Card, "４１１１１１１１１１１１１１１１", High}}},
		{"zero-width", "4111\u200b1111\u200b1111\u200b1111", []want{{Card, "4111\u200b1111\u200b1111\u200b1111", High}}},
		{"bom and word joiner", "4111\ufeff1111\u20601111\u200d1111", []want{{Card, "4111\ufeff1111\u20601111\u200d1111", High}}},
		{"in a table", "12 4111 1111 1111 1111 9", []want{{Card, "4111 1111 1111 1111", High}}},
		{"two in a row", "4111111111111111 5555555555554444", []want{{Card, "4111111111111111", Medium}, {Card, "5555555555554444", Medium}}},
		{"luhn fail", "4111111111111112", nil},
		{"no issuer", badPrefix, nil},
		{"visa 17", withLuhn("4111111111111111"), nil},
		{"mixed separators", "4111 1111-1111 1111", nil},
		{"bad grouping", "41111 111 1111 1111", nil},
		{"glued to letters", "abc4111111111111111 4111111111111111abc", nil},
		{"glued to digits", "94111111111111111", nil},
		{"longer dashed run", "4111-1111-1111-1111-5555", nil},
		{"decimal", "3.4111111111111111", nil},
		{"email local part", "4111111111111111@example.com", []want{{Email, "4111111111111111@example.com", Medium}}},
		{"plus", "+4111111111111111", nil},
	})
}

func TestSSN(t *testing.T) {
	s := newTestScanner(t, Config{})
	runCases(t, s, []scanCase{
		{"dashed keyword", "SSN: 536-90-4399", []want{{SSN, "536-90-4399", High}}},
		{"social security", "social security number 536-90-4399", []want{{SSN, "536-90-4399", High}}},
		{"dashed", "id 536-90-4399 on file", []want{{SSN, "536-90-4399", Medium}}},
		{"spaced", "536 90 4399", []want{{SSN, "536 90 4399", Low}}},
		{"spaced keyword", "ssn 536 90 4399", []want{{SSN, "536 90 4399", High}}},
		{"bare keyword", "SSN#: 536904399", []want{{SSN, "536904399", Medium}}},
		{"bare", "order 536904399", nil},
		{"woolworth", "ssn 078-05-1120", nil},
		{"lifelock", "ssn 457-55-5462", nil},
		{"ssa ad", "ssn 219-09-9999", nil},
		{"example", "ssn 123-45-6789", nil},
		{"area 000", "ssn 000-12-3456", nil},
		{"area 666", "ssn 666-12-3456", nil},
		{"area 9xx", "ssn 900-12-3456", nil},
		{"group 00", "ssn 536-00-4399", nil},
		{"serial 0000", "ssn 536-90-0000", nil},
		{"wrong dashes", "ssn 1112-23333", nil},
		{"mixed separators", "ssn 536-90 4399", nil},
		{"longer run", "536-90-4399-12", nil},
	})
}

func TestPhone(t *testing.T) {
	s := newTestScanner(t, Config{})
	runCases(t, s, []scanCase{
		{"nanp paren", "(415) 555-2671", []want{{Phone, "(415) 555-2671", Medium}}},
		{"nanp keyword", "call 415-555-2671", []want{{Phone, "415-555-2671", High}}},
		{"nanp dots", "415.555.2671", []want{{Phone, "415.555.2671", Medium}}},
		{"nanp spaces", "415 555 2671", []want{{Phone, "415 555 2671", Medium}}},
		{"nanp leading 1", "1-415-555-2671", []want{{Phone, "1-415-555-2671", Medium}}},
		{"nanp paren no space", "(415)555-2671", []want{{Phone, "(415)555-2671", Medium}}},
		{"nanp fictional", "(415) 555-0142", []want{{Phone, "(415) 555-0142", Low}}},
		{"e164", "+14155552671", []want{{Phone, "+14155552671", Medium}}},
		{"e164 spaced", "tel +1 415 555 2671", []want{{Phone, "+1 415 555 2671", High}}},
		{"e164 paren", "+1 (415) 555-2671", []want{{Phone, "+1 (415) 555-2671", Medium}}},
		{"uk intl", "+44 20 7946 0958", []want{{Phone, "+44 20 7946 0958", Medium}}},
		{"uk trunk", "+44 (0)20 7946 0958", []want{{Phone, "+44 (0)20 7946 0958", Medium}}},
		{"uk london", "020 7946 0958", []want{{Phone, "020 7946 0958", Medium}}},
		{"uk mobile", "07700 900123", []want{{Phone, "07700 900123", Medium}}},
		{"uk 4-3-4", "0161 496 0000", []want{{Phone, "0161 496 0000", Medium}}},
		{"uk paren", "(020) 7946 0958", []want{{Phone, "(020) 7946 0958", Medium}}},
		{"ie dublin", "01 234 5678", []want{{Phone, "01 234 5678", Medium}}},
		{"ie mobile", "mobile 087 123 4567", []want{{Phone, "087 123 4567", High}}},
		{"ie intl", "+353 1 234 5678", []want{{Phone, "+353 1 234 5678", Medium}}},
		{"au landline", "(02) 9876 5432", []want{{Phone, "(02) 9876 5432", Medium}}},
		{"au mobile", "0412 345 678", []want{{Phone, "0412 345 678", Medium}}},
		{"au 1300", "1300 123 456", []want{{Phone, "1300 123 456", Medium}}},
		{"au intl", "+61 412 345 678", []want{{Phone, "+61 412 345 678", Medium}}},
		{"nz landline", "09 123 4567", []want{{Phone, "09 123 4567", Medium}}},
		{"nz intl", "+64 21 123 4567", []want{{Phone, "+64 21 123 4567", Medium}}},
		{"short e164", "+24762889", []want{{Phone, "+24762889", Medium}}},
		{"bare with keyword", "phone: 4155552671", []want{{Phone, "4155552671", Medium}}},
		{"bare uk with keyword", "tel 02079460958", []want{{Phone, "02079460958", Medium}}},
		{"number list", "Modeline 36 800 824 896 1024 600", []want{{Phone, "824 896 1024", Low}}},
		{"bare", "id 4155552671", nil},
		{"n11 area", "(911) 555-2671", nil},
		{"n11 exchange", "(415) 411-2671", nil},
		{"area starts 1", "(195) 555-2671", nil},
		{"area middle 9", "(492) 555-2671", nil},
		{"mixed nanp separators", "415-555.2671", nil},
		{"timezone", "Thu, 22 Aug 2002 12:36:16 +0100", nil},
		{"plus one", "+1 for this", nil},
		{"date", "2024-01-15", nil},
		{"unknown cc", "+8091234567", nil},
		{"too long nsn", "+33123456789012", nil},
		{"trailing group", "+33 1 23 45 67 89 01", []want{{Phone, "+33 1 23 45 67 89", Medium}}},
		{"glued", "x+14155552671", nil},
	})
}

func TestNINO(t *testing.T) {
	s := newTestScanner(t, Config{})
	runCases(t, s, []scanCase{
		{"compact", "AB123456C", []want{{NINO, "AB123456C", Medium}}},
		{"spaced keyword", "NI number: AB 12 34 56 C", []want{{NINO, "AB 12 34 56 C", High}}},
		{"national insurance", "National Insurance JG103759A", []want{{NINO, "JG103759A", High}}},
		{"bad first letter", "QQ123456C", nil},
		{"bad second letter", "AO123456C", nil},
		{"unallocated prefix", "GB123456A", nil},
		{"bad suffix", "AB123456E", nil},
		{"no suffix", "AB123456", nil},
		{"glued", "XAB123456C", nil},
		{"lower case", "ab123456c", nil},
	})
}

func TestIBAN(t *testing.T) {
	s := newTestScanner(t, Config{})
	runCases(t, s, []scanCase{
		{"spaced", "IBAN DE89 3704 0044 0532 0130 00 please", []want{{IBAN, "DE89 3704 0044 0532 0130 00", High}}},
		{"compact", "DE89370400440532013000", []want{{IBAN, "DE89370400440532013000", High}}},
		{"letters in bban", "GB82 WEST 1234 5698 7654 32", []want{{IBAN, "GB82 WEST 1234 5698 7654 32", High}}},
		{"space after country", "ES 58 0049 0290 3424 1352 8341", []want{{IBAN, "ES 58 0049 0290 3424 1352 8341", High}}},
		{"dashes", "ES15-0049-1806-9121-1186-9374", []want{{IBAN, "ES15-0049-1806-9121-1186-9374", High}}},
		{"norway dots", "NO07.8380.08.06006", []want{{IBAN, "NO07.8380.08.06006", High}}},
		{"bad check", "DE89 3704 0044 0532 0130 01", nil},
		{"short", "DE89 3704 0044 0532 0130", nil},
		{"long", "DE89370400440532013000 1", []want{{IBAN, "DE89370400440532013000", High}}},
		{"glued long", "DE893704004405320130001", nil},
		{"unknown country", "QQ93 1234 5678", nil},
		{"spanish national check", "ES2121000418450200051331", nil},
		{"letter where digit", "NL56 3003 0A17 1643 00", nil},
		{"lower-case country", "de89370400440532013000", nil},
	})
}

func TestIP(t *testing.T) {
	s := newTestScanner(t, Config{})
	runCases(t, s, []scanCase{
		{"public", "host 8.8.8.8 up", []want{{IP, "8.8.8.8", Medium}}},
		{"sentence end", "from 203.0.114.7.", []want{{IP, "203.0.114.7", Medium}}},
		{"port", "198.51.99.1:8080", []want{{IP, "198.51.99.1", Medium}}},
		{"bracketed", "[207.172.11.147]", []want{{IP, "207.172.11.147", Medium}}},
		{"private", "10.1.2.3 and 192.168.1.1 and 172.16.0.9", []want{{IP, "10.1.2.3", Low}, {IP, "192.168.1.1", Low}, {IP, "172.16.0.9", Low}}},
		{"loopback", "127.0.0.1", []want{{IP, "127.0.0.1", Low}}},
		{"version keyword", "revision 1.67.2.1", []want{{IP, "1.67.2.1", Low}}},
		{"ipv6", "2001:db8::1", []want{{IP, "2001:db8::1", Low}}},
		{"ipv6 full", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", []want{{IP, "2001:0db8:85a3:0000:0000:8a2e:0370:7334", Low}}},
		{"ipv6 link local", "fe80::1ff:fe23:4567:890a", []want{{IP, "fe80::1ff:fe23:4567:890a", Low}}},
		{"ipv6 mapped", "::ffff:192.0.2.128", []want{{IP, "::ffff:192.0.2.128", Low}}},
		{"octet too big", "256.1.1.1", nil},
		{"five parts", "1.2.3.4.5", nil},
		{"three parts", "1.2.3", nil},
		{"leading zeros", "01.02.03.04", nil},
		{"glued", "v1.2.3.4", nil},
		{"time", "12:30:45", nil},
		{"mac", "00:1a:2b:3c:4d:5e", nil},
		{"cpp", "std::vector and Foo::Bar", nil},
		{"short v6", "::1", nil},
		{"after colon", "Ref:4111111111111111", []want{{Card, "4111111111111111", Medium}}},
	})
}

func TestOffsetsMixed(t *testing.T) {
	s := newTestScanner(t, Config{})
	in := "Hi, call (415) 555-2671 or mail jane@example.com; card 4111 1111 1111 1111, SSN 536-90-4399, " +
		"IBAN GB82 WEST 1234 5698 7654 32, NI AB123456C, from 8.8.4.4."
	runCases(t, s, []scanCase{{"mixed", in, []want{
		{Phone, "(415) 555-2671", High},
		{Email, "jane@example.com", High},
		{Card, "4111 1111 1111 1111", High},
		{SSN, "536-90-4399", High},
		{IBAN, "GB82 WEST 1234 5698 7654 32", High},
		{NINO, "AB123456C", High},
		{IP, "8.8.4.4", Medium},
	}}})
}

func TestTokensStable(t *testing.T) {
	s := newTestScanner(t, Config{})
	groups := [][]string{
		{"4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "４１１１１１１１１１１１１１１１", "4111\u200b1111\u200b1111\u200b1111"},
		{"John.Doe@Example.com", "john.doe@example.com", "JOHN.DOE@EXAMPLE.COM"},
		{"+44 20 7946 0958", "020 7946 0958", "+44 (0)20 7946 0958", "+442079460958"},
		{"(415) 555-2671", "+1 415 555 2671", "415.555.2671", "1-415-555-2671"},
		{"SSN 536-90-4399", "SSN 536 90 4399", "SSN 536904399"},
		{"DE89 3704 0044 0532 0130 00", "DE89370400440532013000"},
		{"AB 12 34 56 C", "AB123456C"},
	}
	seen := map[string]int{}
	for gi, g := range groups {
		var tok, masked string
		for _, in := range g {
			ds, _ := s.ScanString(in, nil)
			if len(ds) != 1 {
				t.Fatalf("%q: %d detections", in, len(ds))
			}
			if tok == "" {
				tok, masked = ds[0].Token, ds[0].Masked
			} else if ds[0].Token != tok || ds[0].Masked != masked {
				t.Errorf("%q: token/mask %s %s differ from %s %s", in, ds[0].Token, ds[0].Masked, tok, masked)
			}
		}
		if prev, dup := seen[tok]; dup {
			t.Errorf("groups %d and %d share a token", prev, gi)
		}
		seen[tok] = gi
	}
}

func TestMaskedValues(t *testing.T) {
	s := newTestScanner(t, Config{})
	cases := map[string]string{
		"jane.doe@example.com":        "j***@example.com",
		"4111 1111 1111 1111":         "************1111",
		"(415) 555-2671":              "+*******2671",
		"ssn 536-90-4399":             "***-**-4399",
		"DE89 3704 0044 0532 0130 00": "DE****************3000",
		"8.8.4.4":                     "8.*.*.*",
		"AB123456C":                   "*****456C",
	}
	for in, m := range cases {
		ds, _ := s.ScanString(in, nil)
		if len(ds) != 1 || ds[0].Masked != m {
			t.Errorf("%q: got %+v, want masked %q", in, ds, m)
		}
	}
}

func TestAllowValues(t *testing.T) {
	s := newTestScanner(t, Config{AllowValues: []string{"4111 1111 1111 1111", "Test@Example.com", "+1 415 555 2671", "de89 3704 0044 0532 0130 00"}})
	runCases(t, s, []scanCase{
		{"card", "4111-1111-1111-1111 and 5555 5555 5555 4444", []want{{Card, "5555 5555 5555 4444", High}}},
		{"email", "TEST@example.com x@example.com", []want{{Email, "x@example.com", High}}},
		{"phone", "(415) 555-2671", nil},
		{"iban", "DE89370400440532013000", nil},
	})
}

func TestDetectorSelection(t *testing.T) {
	s := newTestScanner(t, Config{Detectors: []Type{Email, Card}})
	runCases(t, s, []scanCase{
		{"only email and card", "a@example.com 4111111111111111 536-90-4399 8.8.8.8 (415) 555-2671 DE89370400440532013000",
			[]want{{Email, "a@example.com", High}, {Card, "4111111111111111", Medium}}},
	})
	s = newTestScanner(t, Config{Detectors: []Type{IP}})
	runCases(t, s, []scanCase{
		{"only ip", "a@example.com 4111111111111111 8.8.8.8 2001:db8::2", []want{{IP, "8.8.8.8", Medium}, {IP, "2001:db8::2", Low}}},
	})
	s = newTestScanner(t, Config{Detectors: []Type{Phone}})
	runCases(t, s, []scanCase{
		{"only phone", "a@example.com 8.8.8.8 (415) 555-2671", []want{{Phone, "(415) 555-2671", Medium}}},
	})
}

func TestNewErrors(t *testing.T) {
	tok := testTokenizer(t)
	bad := []Config{
		{Detectors: []Type{"NOPE"}},
		{ContextWindow: MaxContextWindow + 1},
		{ContextWindow: -1},
		{MaxScanBytes: -1},
		{Custom: []CustomDetector{{Name: "lower", Pattern: "x"}}},
		{Custom: []CustomDetector{{Name: "CREDIT_CARD", Pattern: "x"}}},
		{Custom: []CustomDetector{{Name: "X", Pattern: "("}}},
		{Custom: []CustomDetector{{Name: "X", Pattern: "a*"}}},
		{Custom: []CustomDetector{{Name: "X", Pattern: strings.Repeat("a", MaxCustomPatternLen+1)}}},
		{Custom: []CustomDetector{{Name: "X", Pattern: "[a-z]{900}[0-9]{900}[a-z]{900}[0-9]{900}[a-z]{900}"}}},
		{Custom: []CustomDetector{{Name: "X", Pattern: "x", Checksum: "crc"}}},
		{Custom: []CustomDetector{{Name: "X", Pattern: "x"}, {Name: "X", Pattern: "y"}}},
	}
	for i, c := range bad {
		if _, err := New(c, tok); err == nil {
			t.Errorf("config %d accepted: %+v", i, c)
		}
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Error("nil tokenizer accepted")
	}
}

func TestCustom(t *testing.T) {
	s := newTestScanner(t, Config{Custom: []CustomDetector{
		{Name: "EMPLOYEE_ID", Pattern: `\bEMP-\d{6}\b`, Keywords: []string{"Employee"}},
		{Name: "ACCOUNT", Pattern: `\bACC\d{8}\b`},
		{Name: "LUHN_ID", Pattern: `\bL\d{10}\b`, Checksum: "luhn"},
		{Name: "REF97", Pattern: `\bRF\d{2}[A-Z0-9]{4,21}\b`, Checksum: "mod97"},
	}})
	luhnID := "L" + withLuhn("123456789")
	runCases(t, s, []scanCase{
		{"keyword", "employee EMP-123456 left", []want{{"EMPLOYEE_ID", "EMP-123456", High}}},
		{"no keyword", "EMP-123456", []want{{"EMPLOYEE_ID", "EMP-123456", Low}}},
		{"no keywords configured", "ACC12345678", []want{{"ACCOUNT", "ACC12345678", Medium}}},
		{"luhn ok", luhnID, []want{{"LUHN_ID", luhnID, Medium}}},
		{"luhn bad", "L1234567890", nil},
		{"mod97 ok", "RF18539007547034", []want{{"REF97", "RF18539007547034", Medium}}},
		{"mod97 bad", "RF19539007547034", nil},
		{"sorted with builtins", "ACC12345678 a@example.com EMP-000001", []want{{"ACCOUNT", "ACC12345678", Medium}, {Email, "a@example.com", High}, {"EMPLOYEE_ID", "EMP-000001", Low}}},
	})
	// Selected by name only.
	s = newTestScanner(t, Config{Detectors: []Type{Email}, Custom: []CustomDetector{{Name: "ACCOUNT", Pattern: `ACC\d{8}`}}})
	runCases(t, s, []scanCase{{"not selected", "ACC12345678", nil}})
	s = newTestScanner(t, Config{Detectors: []Type{"ACCOUNT"}, Custom: []CustomDetector{{Name: "ACCOUNT", Pattern: `ACC\d{8}`}}})
	runCases(t, s, []scanCase{{"selected", "ACC12345678 a@example.com", []want{{"ACCOUNT", "ACC12345678", Medium}}}})
}

func TestMaxScanBytes(t *testing.T) {
	s := newTestScanner(t, Config{MaxScanBytes: 32})
	in := "mail a@example.com now ........ later b@example.com"
	ds, trunc := s.ScanString(in, nil)
	if !trunc {
		t.Fatal("not truncated")
	}
	if len(ds) != 1 || in[ds[0].Start:ds[0].End] != "a@example.com" {
		t.Fatalf("got %+v", ds)
	}
	// A value crossing the cap is not reported.
	in = strings.Repeat(" ", 20) + "4111111111111111"
	ds, trunc = s.ScanString(in, nil)
	if !trunc || len(ds) != 0 {
		t.Fatalf("crossing value: %+v %v", ds, trunc)
	}
	ds, trunc = s.ScanString("short a@example.com", nil)
	if trunc || len(ds) != 1 {
		t.Fatalf("short input: %+v %v", ds, trunc)
	}
}

func TestAppendsToDst(t *testing.T) {
	s := newTestScanner(t, Config{})
	dst := []Detection{{Type: "PREVIOUS"}}
	dst, _ = s.ScanString("a@example.com", dst)
	if len(dst) != 2 || dst[0].Type != "PREVIOUS" || dst[1].Type != Email {
		t.Fatalf("got %+v", dst)
	}
}

func TestConcurrentScan(t *testing.T) {
	s := newTestScanner(t, Config{})
	text := []byte(mixedText(64<<10, 7))
	want, _ := s.Scan(text, nil)
	if len(want) == 0 {
		t.Fatal("no detections in mixed text")
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ds []Detection
			for i := 0; i < 20; i++ {
				ds, _ = s.Scan(text, ds[:0])
				if len(ds) != len(want) || ds[len(ds)-1] != want[len(want)-1] {
					t.Errorf("concurrent scan differs: %d vs %d", len(ds), len(want))
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestCounts(t *testing.T) {
	ds := []Detection{{Type: Email, Confidence: Low}, {Type: Email, Confidence: High}, {Type: Card, Confidence: Medium}}
	c := Counts(ds, Medium)
	if c[Email] != 1 || c[Card] != 1 || len(c) != 2 {
		t.Fatalf("Counts = %v", c)
	}
	if c := Counts(ds, Low); c[Email] != 2 {
		t.Fatalf("Counts(Low) = %v", c)
	}
}

func TestConfidenceText(t *testing.T) {
	for c, s := range map[Confidence]string{Low: "low", Medium: "medium", High: "high"} {
		if c.String() != s {
			t.Errorf("%d.String() = %q", c, c.String())
		}
		b, err := c.MarshalText()
		if err != nil || string(b) != s {
			t.Errorf("MarshalText(%d) = %q, %v", c, b, err)
		}
		var back Confidence
		if err := back.UnmarshalText([]byte(strings.ToUpper(s))); err != nil || back != c {
			t.Errorf("UnmarshalText(%q) = %d, %v", s, back, err)
		}
	}
	if _, err := Confidence(0).MarshalText(); err == nil {
		t.Error("MarshalText(0) succeeded")
	}
	var c Confidence
	if err := c.UnmarshalText([]byte("certain")); err == nil {
		t.Error("UnmarshalText accepted garbage")
	}
	b, _ := json.Marshal(Detection{Type: Card, Confidence: High})
	if !strings.Contains(string(b), `"confidence":"high"`) {
		t.Errorf("JSON %s", b)
	}
}
