package privacy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestNewTokenizerKeyLength(t *testing.T) {
	if _, err := NewTokenizer(make([]byte, 31)); err == nil {
		t.Fatal("31-byte key accepted")
	}
	if _, err := NewTokenizer(nil); err == nil {
		t.Fatal("nil key accepted")
	}
	if _, err := NewTokenizer(make([]byte, 32)); err != nil {
		t.Fatalf("32-byte key rejected: %v", err)
	}
}

func TestTokenMatchesSpec(t *testing.T) {
	tok, err := NewTokenizer(testKey)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, testKey)
	m.Write([]byte("CREDIT_CARD\x004111111111111111"))
	want := hex.EncodeToString(m.Sum(nil)[:16])
	got := tok.Token("CREDIT_CARD", []byte("4111111111111111"))
	if got != want {
		t.Fatalf("Token = %s, want %s", got, want)
	}
	if len(got) != TokenLen {
		t.Fatalf("token length %d", len(got))
	}
	// Stable, and type-separated.
	if tok.Token("CREDIT_CARD", []byte("4111111111111111")) != got {
		t.Fatal("token not stable")
	}
	if tok.Token("PHONE_NUMBER", []byte("4111111111111111")) == got {
		t.Fatal("token does not depend on type")
	}
	// The 0x00 separator keeps (typ, value) pairs apart.
	if tok.Token("AB", []byte("C")) == tok.Token("A", []byte("BC")) {
		t.Fatal("type/value boundary not separated")
	}
	other, _ := NewTokenizer([]byte("another key, also 32 bytes long!"))
	if other.Token("CREDIT_CARD", []byte("4111111111111111")) == got {
		t.Fatal("token does not depend on key")
	}
}

func TestTokenConcurrent(t *testing.T) {
	tok, _ := NewTokenizer(testKey)
	want := tok.Token("US_SSN", []byte("536904399"))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				if got := tok.Token("US_SSN", []byte("536904399")); got != want {
					t.Errorf("concurrent token %s != %s", got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestMask(t *testing.T) {
	cases := []struct{ typ, in, want string }{
		{TypeEmail, "john.doe@example.com", "j***@example.com"},
		{TypeEmail, "a@b.co", "a***@b.co"},
		{TypeEmail, "x@1234567.com", "x***@*******.com"},
		{TypeCard, "4111111111111111", "************1111"},
		{TypeCard, "378282246310005", "***********0005"},
		{TypePhone, "+14155552671", "+*******2671"},
		{TypePhone, "+442079460958", "+********0958"},
		{TypeSSN, "536904399", "***-**-4399"},
		{TypeIBAN, "DE89370400440532013000", "DE****************3000"},
		{TypeIP, "10.1.2.3", "10.*.*.*"},
		{TypeIP, "2001:db8::1", "2001:*:*:*:*:*:*:*"},
		{TypeIP, "::1", "*:*:*:*:*:*:*:*"},
		{"UK_NINO", "AB123456C", "*****456C"},
		{"CUSTOM", "short", "*****"},
		{"CUSTOM", "EMP-0012345", "*******2345"},
		{"CUSTOM", "ab1234567890", "********7890"},
	}
	for _, c := range cases {
		got := Mask(c.typ, c.in)
		if got != c.want {
			t.Errorf("Mask(%s, %q) = %q, want %q", c.typ, c.in, got, c.want)
		}
		if got == c.in {
			t.Errorf("Mask(%s, %q) returned the raw value", c.typ, c.in)
		}
	}
}

func TestMaskNeverKeepsFiveDigits(t *testing.T) {
	types := []string{TypeEmail, TypeCard, TypePhone, TypeSSN, TypeIBAN, TypeIP, "X"}
	vals := []string{"12345678901234567890", "12345@67890.com", "+123456789", "1234567", "AB12345678901234", "123456.1.1.1", "1:2:3:4:5:6:7:8"}
	for _, ty := range types {
		for _, v := range vals {
			m := Mask(ty, v)
			run := 0
			for i := 0; i < len(m); i++ {
				if m[i] >= '0' && m[i] <= '9' {
					run++
					if run >= 5 {
						t.Fatalf("Mask(%s, %q) = %q keeps 5 digits", ty, v, m)
					}
				} else {
					run = 0
				}
			}
		}
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hexKey := strings.Repeat("ab", 32)
	k, err := LoadKey(write("hex", hexKey+"\n"))
	if err != nil || len(k) != 32 || k[0] != 0xab {
		t.Fatalf("hex key: %v %x", err, k)
	}
	raw := "this is a raw key of more than thirty-two bytes"
	k, err = LoadKey(write("raw", raw+"\n"))
	if err != nil || string(k) != raw {
		t.Fatalf("raw key: %v %q", err, k)
	}
	if _, err := LoadKey(write("short", "too short\n")); err == nil {
		t.Fatal("short key accepted")
	}
	if _, err := LoadKey(write("shorthex", strings.Repeat("ab", 16))); err == nil {
		t.Fatal("16-byte hex key accepted")
	}
	if _, err := LoadKey(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
	if _, err := LoadKey(write("big", strings.Repeat("x", maxKeyFile+10))); err == nil {
		t.Fatal("huge file accepted")
	}
	_, err = LoadKey(write("secret-short", "s3cr3t"))
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error leaks key material or is missing: %v", err)
	}
}

func BenchmarkToken(b *testing.B) {
	tok, _ := NewTokenizer(testKey)
	v := []byte("4111111111111111")
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = tok.AppendToken(buf[:0], "CREDIT_CARD", v)
	}
}
