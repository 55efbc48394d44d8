package clicmd

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestRulesBacktestRefusals: usage and configuration errors of `rules
// backtest` are reported before anything is read. (The backtest itself
// runs against a real broker and ClickHouse in pkg/backtest's tests.)
func TestRulesBacktestRefusals(t *testing.T) {
	t.Setenv("LEAKLINE_HMAC_KEY_FILE", "")
	const pack = "../rules/packs/default"
	tests := []struct {
		name string
		args []string
		key  string // $LEAKLINE_HMAC_KEY
		code int
		want string
	}{
		{"no pack", []string{"--from", "2026-11-02"}, testKeyHex, ExitUsage, "want exactly one pack directory"},
		{"no from", []string{pack}, testKeyHex, ExitUsage, "--from"},
		{"bad from", []string{pack, "--from", "yesterday"}, testKeyHex, ExitUsage, "--from"},
		{"bad to", []string{pack, "--from", "2026-11-02", "--to", "later"}, testKeyHex, ExitUsage, "--to"},
		{"empty span", []string{pack, "--from", "2026-11-02T10:00:00Z", "--to", "2026-11-02T10:00:00Z"}, testKeyHex, ExitUsage, "is not before"},
		{"no hmac key", []string{pack, "--from", "2026-11-02", "--to", "2026-11-03"}, "", ExitError, "hmac key"},
		{"missing pack", []string{"/nonexistent-pack", "--from", "2026-11-02", "--to", "2026-11-03"}, testKeyHex, ExitError, "/nonexistent-pack"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("LEAKLINE_HMAC_KEY", tc.key)
			var stdout, stderr bytes.Buffer
			code := Rules(context.Background(), append([]string{"backtest"}, tc.args...), nil, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.code, tc.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q", stdout.String())
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-11-02", time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), true},
		{"2026-11-02T09:30:00Z", time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC), true},
		{"2026-11-02T10:30:00+01:00", time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC), true},
		{"2026-11-02 09:30", time.Time{}, false},
		{"", time.Time{}, false},
	}
	for _, tc := range tests {
		got, err := parseTime(tc.in)
		if (err == nil) != tc.ok || (tc.ok && !got.Equal(tc.want)) {
			t.Errorf("parseTime(%q) = %v, %v; want %v ok %t", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzParseTime: parseTime never panics; what it accepts is UTC and reads
// back from its RFC 3339 form.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-11-02", "2026-11-02T09:30:00Z", "2026-11-02T10:30:00.5+01:00", "0000-01-01", "2026-13-40", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseTime(s)
		if err != nil {
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("parseTime(%q) = %v, not UTC", s, got)
		}
		back, err := parseTime(got.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(got) {
			t.Fatalf("parseTime(%q) = %v; its RFC 3339 form reads back as %v, %v", s, got, back, err)
		}
	})
}
