package clicmd

import (
	"context"
	"strings"
	"testing"
)

// TestLoadtestUsage covers the flag checks that stop `leakline loadtest`
// before it starts anything.
func TestLoadtestUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"help", []string{"-h"}, ExitOK, "-rate"},
		{"unknown flag", []string{"-bogus"}, ExitUsage, "bogus"},
		{"negative rate", []string{"-rate", "-5"}, ExitUsage, "-rate must not be negative"},
		{"unpaced with rate", []string{"-rate", "100", "-unpaced"}, ExitUsage, "-unpaced is for the time-compressed mode"},
		{"negative cohorts", []string{"-rate", "100", "-cohorts", "-2"}, ExitUsage, "-cohorts must not be negative"},
		{"cohorts without rate", []string{"-cohorts", "3"}, ExitUsage, "-cohorts is for the rate mode"},
		{"argument", []string{"extra"}, ExitUsage, `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb strings.Builder
			if code := Loadtest(context.Background(), tc.args, &out, &errb); code != tc.code {
				t.Errorf("exit %d, want %d\nstderr: %s", code, tc.code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.err) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.err)
			}
		})
	}
}
