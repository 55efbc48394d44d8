package config

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leakline/leakline/pkg/ruledeploy"
)

// TestRulesPublicKeyFile: -rules-public-key-file (or its environment
// variable) reaches the pipeline configuration; a key that does not load
// is a configuration error.
func TestRulesPublicKeyFile(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "rules.key")
	_, priv, err := ruledeploy.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := ruledeploy.WriteKeyPair(key, priv); err != nil {
		t.Fatal(err)
	}
	hmac := map[string]string{"LEAKLINE_HMAC_KEY": strings.Repeat("ab", 32)}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for k, v := range hmac {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    string
		wantErr string
	}{
		{"none", hmac, nil, "", ""},
		{"flag", hmac, []string{"-rules-public-key-file", key + ".pub"}, key + ".pub", ""},
		{"environment", with(ruledeploy.EnvPublicKeyFile, key+".pub"), nil, key + ".pub", ""},
		{"flag wins", with(ruledeploy.EnvPublicKeyFile, "/nonexistent"), []string{"-rules-public-key-file", key + ".pub"}, key + ".pub", ""},
		{"missing file", hmac, []string{"-rules-public-key-file", filepath.Join(dir, "none.pub")}, "", "rules public key"},
		{"a private key is not a public key", hmac, []string{"-rules-public-key-file", key}, "", "rules public key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			f := Register(fs, env(tc.env))
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := f.Resolve(true)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Resolve error %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.RulesPublicKeyFile != tc.want {
				t.Errorf("RulesPublicKeyFile = %q, want %q", cfg.RulesPublicKeyFile, tc.want)
			}
		})
	}
}
