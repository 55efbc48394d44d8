package inspect

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestObfuscatedValues(t *testing.T) {
	s := newTestScanner(t, Config{})
	const zw = "\u200b"
	runCases(t, s, []scanCase{
		{"email zero-width in local", "mail john" + zw + ".doe@example.com now", []want{{Email, "john" + zw + ".doe@example.com", High}}},
		{"email zero-width before at", "john" + zw + "@example.com", []want{{Email, "john" + zw + "@example.com", High}}},
		{"email zero-width after at", "john@" + zw + "example.com", []want{{Email, "john@" + zw + "example.com", High}}},
		{"email zero-width in domain", "john@exa" + zw + "mple.com.", []want{{Email, "john@exa" + zw + "mple.com", High}}},
		{"email soft hyphen and bom", "jo\u00adhn@example\ufeff.com", []want{{Email, "jo\u00adhn@example\ufeff.com", High}}},
		{"email full-width at", "john＠example.com", []want{{Email, "john＠example.com", High}}},
		{"email all full-width", "ｊｏｈｎ．ｄｏｅ＠ｅｘａｍｐｌｅ．ｃｏｍ。", []want{{Email, "ｊｏｈｎ．ｄｏｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", High}}},
		{"email curly quotes", "“john@example.com”", []want{{Email, "john@example.com", High}}},
		{"email trailing zero-width", "john@example.com" + zw + " x", []want{{Email, "john@example.com", High}}},
		{"email accented neighbour", "é john@example.com é", []want{{Email, "john@example.com", High}}},
		{"full-width at alone", "meet ＠ noon", nil},
		{"full-width at no domain", "john＠localhost", nil},
		{"iban full-width", "ＤＥ８９３７０４００４４０５３２０１３０００", []want{{IBAN, "ＤＥ８９３７０４００４４０５３２０１３０００", High}}},
		{"iban full-width letters", "ＤＥ89 3704 0044 0532 0130 00", []want{{IBAN, "ＤＥ89 3704 0044 0532 0130 00", High}}},
		{"iban zero-width", "DE" + zw + "89" + zw + "3704" + zw + "0044 0532 0130 00", []want{{IBAN, "DE" + zw + "89" + zw + "3704" + zw + "0044 0532 0130 00", High}}},
		{"iban full-width bban letters", "GB82 ＷＥＳＴ 1234 5698 7654 32", []want{{IBAN, "GB82 ＷＥＳＴ 1234 5698 7654 32", High}}},
		{"iban glued to full-width letter", "ＸＤＥ８９３７０４００４４０５３２０１３０００", nil},
		{"nino full-width", "ＡＢ１２３４５６Ｃ", []want{{NINO, "ＡＢ１２３４５６Ｃ", Medium}}},
		{"nino zero-width", "NI AB" + zw + "12" + zw + "34" + zw + "56C", []want{{NINO, "AB" + zw + "12" + zw + "34" + zw + "56C", High}}},
		{"nino spaced zero-width", "AB 12 34" + zw + " 56 C", []want{{NINO, "AB 12 34" + zw + " 56 C", Medium}}},
		{"nino lower-case full-width suffix", "ＡＢ１２３４５６ｃ", nil},
	})
}

// TestObfuscatedTokens checks that an obfuscated value has the token of its
// plain form.
func TestObfuscatedTokens(t *testing.T) {
	s := newTestScanner(t, Config{})
	pairs := [][2]string{
		{"john.doe@example.com", "ｊｏｈｎ．ｄｏｅ＠ｅｘａｍｐｌｅ．ｃｏｍ"},
		{"john.doe@example.com", "John\u200b.Doe@EXAMPLE\u200b.com"},
		{"DE89370400440532013000", "ＤＥ８９ ３７０４ ００４４ ０５３２ ０１３０ ００"},
		{"AB123456C", "ＡＢ\u200b１２３４５６Ｃ"},
	}
	for _, p := range pairs {
		a, _ := s.ScanString(p[0], nil)
		b, _ := s.ScanString(p[1], nil)
		if len(a) != 1 || len(b) != 1 {
			t.Fatalf("%q: %d detections, %q: %d", p[0], len(a), p[1], len(b))
		}
		if a[0].Token != b[0].Token || a[0].Masked != b[0].Masked {
			t.Errorf("%q and %q: tokens/masks differ: %s %s / %s %s", p[0], p[1], a[0].Masked, a[0].Token, b[0].Masked, b[0].Token)
		}
	}
}

// TestEmailWideMatchesFast checks that the obfuscation-tolerant e-mail
// path finds exactly what the fast path finds on ASCII text.
func TestEmailWideMatchesFast(t *testing.T) {
	fast := newTestScanner(t, Config{AllowDomains: []string{"corp.example"}})
	wide := newTestScanner(t, Config{AllowDomains: []string{"corp.example"}})
	wide.forceWide = true
	inputs := []string{
		"contact john.doe@example.com today", "Mail John.Doe@Example.COM.", "To: <a.b+tag@sub.example.co.uk>",
		"'joe@x-y.com'", "?email=joe@example.org&x=1", ".test@iana.org", "test@123.com",
		"!#$%&`*+/=?^`{|}~@iana.org", "<1029945287.4797.TMDA@deepeddy.vircio.com>", "a@example.com,b@example.net",
		"root@localhost", "test@iana.a", "logo@2x.png", "test@-iana.org", "test@iana..com", "test.@iana.org",
		"a..b@example.com", "x@corp.example", "x@mail.corp.example", "@example.com", "test@", "a@b@c.com",
		"x@" + strings.Repeat("a", 300) + ".com", strings.Repeat("l", 70) + "@example.com", "4111111111111111@example.com",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := "ab.-_+@%!#Z9 .."
	for k := 0; k < 3000; k++ {
		var sb strings.Builder
		for n := 3 + rng.IntN(24); n > 0; n-- {
			sb.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		inputs = append(inputs, sb.String()+".com")
	}
	for _, in := range inputs {
		a, _ := fast.ScanString(in, nil)
		b, _ := wide.ScanString(in, nil)
		if len(a) != len(b) {
			t.Fatalf("%q: fast %v, wide %v", in, a, b)
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%q: fast %+v, wide %+v", in, a[i], b[i])
			}
		}
	}
}

// TestNormalizeValueMatchesTokens checks the invariant the EDM matcher
// relies on: normalizing a detection's span on its own gives the value
// that detection's token was computed from.
func TestNormalizeValueMatchesTokens(t *testing.T) {
	tok := testTokenizer(t)
	s := newTestScanner(t, Config{})
	texts := []string{
		mixedText(1<<18, 7),
		"call 4155552671 now; phone 02079460958; mobile 0412345678; ssn 536904399",
		"+44 (0)20 7946 0958, 1-415-555-2671, (02) 9876 5432, 021 123 4567, 01 234 5678",
		"ｊｏｈｎ．ｄｏｅ＠ｅｘａｍｐｌｅ．ｃｏｍ and John\u200b.Doe@EXAMPLE.com",
		"ＤＥ８９３７０４００４４０５３２０１３０００ AB 12 34 56 C 2001:db8::1 8.8.8.8",
		"4111\u200b1111\u200b1111\u200b1111 ４１１１１１１１１１１１１１１１",
	}
	n := 0
	for _, text := range texts {
		ds, _ := s.ScanString(text, nil)
		for _, d := range ds {
			norm, ok := NormalizeValue(d.Type, []byte(text[d.Start:d.End]), nil)
			if !ok {
				t.Errorf("%s %q: not normalizable on its own", d.Type, text[d.Start:d.End])
				continue
			}
			if got := tok.Token(string(d.Type), norm); got != d.Token {
				t.Errorf("%s %q: normalized %q, token differs", d.Type, text[d.Start:d.End], norm)
			}
			n++
		}
	}
	if n < 100 {
		t.Fatalf("only %d detections checked", n)
	}
	for _, c := range []struct {
		typ       Type
		in, want  string
		wantFound bool
	}{
		{Email, " Jane.Doe@Example.COM ", "jane.doe@example.com", true},
		{Phone, "(415) 555-2671", "+14155552671", true},
		{Phone, "4155552671", "+14155552671", true},
		{Phone, "020 7946 0958", "+442079460958", true},
		{Phone, "+44 20 7946 0958", "+442079460958", true},
		{Card, "4111-1111-1111-1111", "4111111111111111", true},
		{SSN, "536904399", "536904399", true},
		{IBAN, "de89 3704 0044 0532 0130 00", "", false}, // lower-case country code
		{Phone, "not a phone", "", false},
		{Type("CUSTOM"), "x", "", false},
		{Email, "", "", false},
	} {
		got, ok := NormalizeString(c.typ, c.in)
		if ok != c.wantFound || got != c.want {
			t.Errorf("NormalizeString(%s, %q) = %q, %v; want %q, %v", c.typ, c.in, got, ok, c.want, c.wantFound)
		}
	}
	val, buf := []byte("(415) 555-2671"), make([]byte, 0, 64)
	if a := testing.AllocsPerRun(100, func() {
		NormalizeValue(Phone, val, buf[:0])
	}); a > 0 && !raceEnabled {
		t.Errorf("NormalizeValue allocates %.0f times", a)
	}
}
