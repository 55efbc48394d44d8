package inspect

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
)

// Exclusion drops detections whose normalized value matches Pattern — the
// company's own support phone number, a range of test cards ("^4111").
type Exclusion struct {
	// Type is the detection type the exclusion applies to; empty means
	// every type.
	Type Type
	// Pattern is an RE2 expression (Go regexp syntax) matched against the
	// normalized value (the input of the token: digits only for cards and
	// phone numbers, lower-case e-mail addresses, IBANs without spaces).
	// It is bounded like a custom detector's: at most MaxCustomPatternLen
	// bytes and MaxCustomProgInsts compiled instructions, and it must not
	// match the empty string.
	Pattern string
}

// MaxExclusions bounds Config.Exclude.
const MaxExclusions = 256

// exclusion is a compiled Exclusion.
type exclusion struct {
	typ Type // "" = every type
	re  *regexp.Regexp
}

// compileBounded checks a pattern's size and compiled program before
// compiling it, so configuration cannot make compilation or matching
// unbounded.
func compileBounded(pattern string) (*regexp.Regexp, error) {
	if pattern == "" || len(pattern) > MaxCustomPatternLen {
		return nil, fmt.Errorf("pattern must be 1-%d bytes", MaxCustomPatternLen)
	}
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, err
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil, err
	}
	if len(prog.Inst) > MaxCustomProgInsts {
		return nil, fmt.Errorf("pattern compiles to %d instructions, at most %d", len(prog.Inst), MaxCustomProgInsts)
	}
	rx, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	if rx.MatchString("") {
		return nil, errors.New("pattern matches the empty string")
	}
	return rx, nil
}

// knownType reports whether t names a built-in type or one of cfg's
// custom detectors.
func knownType(t Type, cfg *Config) bool {
	if _, ok := builtinBits[t]; ok {
		return true
	}
	for _, cd := range cfg.Custom {
		if Type(strings.TrimSpace(cd.Name)) == t {
			return true
		}
	}
	return false
}

// compileExclusions compiles cfg.Exclude and checks cfg.MinCount,
// reporting every error at once.
func (s *Scanner) compileExclusions(cfg *Config) error {
	var errs []error
	if len(cfg.Exclude) > MaxExclusions {
		errs = append(errs, fmt.Errorf("inspect: %d exclusions, at most %d", len(cfg.Exclude), MaxExclusions))
	}
	for i, ex := range cfg.Exclude {
		if ex.Type != "" && !knownType(ex.Type, cfg) {
			errs = append(errs, fmt.Errorf("inspect: exclusion %d: unknown type %q", i+1, ex.Type))
		}
		re, err := compileBounded(ex.Pattern)
		if err != nil {
			errs = append(errs, fmt.Errorf("inspect: exclusion %d (%s): %w", i+1, typeOrAny(ex.Type), err))
			continue
		}
		s.exclude = append(s.exclude, exclusion{typ: ex.Type, re: re})
	}
	for t, n := range cfg.MinCount {
		if !knownType(t, cfg) {
			errs = append(errs, fmt.Errorf("inspect: minimum count: unknown type %q", t))
		}
		if n < 0 {
			errs = append(errs, fmt.Errorf("inspect: minimum count of %s: %d is negative", t, n))
		}
		if n > 1 {
			if s.minCount == nil {
				s.minCount = make(map[Type]int)
			}
			s.minCount[t] = n
		}
	}
	return errors.Join(errs...)
}

func typeOrAny(t Type) string {
	if t == "" {
		return "*"
	}
	return string(t)
}

// excluded reports whether a detection of typ with normalized value norm
// matches an exclusion.
// norm is copied into a pooled buffer first: regexp's parameters escape,
// and norm lives in the scanning state on the caller's stack.
func (s *Scanner) excluded(typ Type, norm []byte) bool {
	var bp *[]byte
	hit := false
	for i := range s.exclude {
		ex := &s.exclude[i]
		if ex.typ != "" && ex.typ != typ {
			continue
		}
		if bp == nil {
			bp = excludeBufs.Get().(*[]byte)
			*bp = append((*bp)[:0], norm...)
		}
		if ex.re.Match(*bp) {
			hit = true
			break
		}
	}
	if bp != nil {
		excludeBufs.Put(bp)
	}
	return hit
}

var excludeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 128); return &b }}

// applyMinCount removes from ds the detections of every type that has
// fewer detections in ds than its configured minimum, keeping the order of
// the rest, and returns the shortened slice.
func (s *Scanner) applyMinCount(ds []Detection) []Detection {
	if len(s.minCount) == 0 || len(ds) == 0 {
		return ds
	}
	var drop map[Type]bool
	for t, n := range s.minCount {
		c := 0
		for i := range ds {
			if ds[i].Type == t {
				c++
			}
		}
		if c > 0 && c < n {
			if drop == nil {
				drop = make(map[Type]bool, len(s.minCount))
			}
			drop[t] = true
		}
	}
	if drop == nil {
		return ds
	}
	out := ds[:0]
	for _, d := range ds {
		if !drop[d.Type] {
			out = append(out, d)
		}
	}
	clear(ds[len(out):])
	return out
}
