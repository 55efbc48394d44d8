package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// ConfigFileEnv names the configuration file: a list of LEAKLINE_*
// variables (see ParseFile). Services also take it as -config FILE.
const ConfigFileEnv = "LEAKLINE_CONFIG_FILE"

// maxConfigFile bounds the size of a configuration file.
const maxConfigFile = 1 << 20

var configKeyRE = regexp.MustCompile(`^LEAKLINE_[A-Z0-9_]+$`)

// secretKeys may not be set in a configuration file: secrets come from their
// own files (the matching *_FILE variable) or the environment.
var secretKeys = []string{
	"LEAKLINE_CLICKHOUSE_PASSWORD",
	"LEAKLINE_KAFKA_SASL_PASSWORD",
	"LEAKLINE_HMAC_KEY",
	"LEAKLINE_PAGERDUTY_ROUTING_KEY",
	"LEAKLINE_WEBHOOK_SECRET",
}

// ParseFile parses a configuration file: one NAME=VALUE per line, NAME a
// LEAKLINE_* environment variable of the configuration reference, VALUE the
// rest of the line with surrounding blanks removed (no quoting, no
// expansion). Blank lines and lines starting with # are ignored. A name
// given twice, a malformed line and a secret (a password or key: name its
// *_FILE instead) are errors, each with its line number and never with the
// value. Names of other services' settings are accepted, so that one file
// can serve every service.
func ParseFile(data []byte) (map[string]string, error) {
	if len(data) > maxConfigFile {
		return nil, fmt.Errorf("larger than %d bytes", maxConfigFile)
	}
	vals := map[string]string{}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxConfigFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("line %d: not NAME=VALUE", n))
			continue
		case !configKeyRE.MatchString(name):
			errs = append(errs, fmt.Errorf("line %d: %q is not a LEAKLINE_* variable name", n, truncate(name, 64)))
			continue
		}
		if isSecretKey(name) {
			errs = append(errs, fmt.Errorf("line %d: %s is a secret: name a file holding it with %s_FILE, or set it in the environment", n, name, name))
			continue
		}
		if _, dup := vals[name]; dup {
			errs = append(errs, fmt.Errorf("line %d: %s given twice", n, name))
			continue
		}
		vals[name] = strings.TrimSpace(value)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return vals, nil
}

func isSecretKey(name string) bool {
	for _, s := range secretKeys {
		if name == s {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// WithFile returns getenv extended by the configuration file named by
// LEAKLINE_CONFIG_FILE, if any: the environment wins over the file (and
// flags win over both). The error names the file and the lines at fault.
func WithFile(getenv Getenv) (Getenv, error) {
	path := getenv(ConfigFileEnv)
	if path == "" {
		return getenv, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return getenv, fmt.Errorf("config file: %w", err)
	}
	vals, err := ParseFile(data)
	if err != nil {
		return getenv, fmt.Errorf("config file %s: %w", path, err)
	}
	return func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return vals[name]
	}, nil
}

// ArgsWithFile returns getenv with LEAKLINE_CONFIG_FILE taken from a
// -config FILE (or -config=FILE, --config) argument, so that the file's
// values become the flags' defaults before the flags are parsed.
func ArgsWithFile(args []string, getenv Getenv) Getenv {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "config" {
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				break
			}
			value = args[i+1]
		}
		return func(k string) string {
			if k == ConfigFileEnv {
				return value
			}
			return getenv(k)
		}
	}
	return getenv
}
