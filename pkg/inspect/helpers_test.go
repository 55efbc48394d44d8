package inspect

import (
	"testing"

	"github.com/leakline/leakline/pkg/privacy"
)

var testKey = []byte("leakline-test-key-0123456789abcdef")

func testTokenizer(t testing.TB) *privacy.Tokenizer {
	t.Helper()
	tok, err := privacy.NewTokenizer(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newTestScanner(t testing.TB, cfg Config) *Scanner {
	t.Helper()
	s, err := New(cfg, testTokenizer(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
