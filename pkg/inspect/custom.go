package inspect

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// compileCustom checks and compiles an operator-defined detector. The
// pattern's size and compiled program are bounded before regexp.Compile
// runs, so a rule cannot make compilation or matching unbounded.
func compileCustom(cd CustomDetector) (customDetector, error) {
	name := strings.TrimSpace(cd.Name)
	if name == "" {
		return customDetector{}, fmt.Errorf("inspect: custom detector without a name")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isUpper(c) || isDigit(c) || c == '_') {
			return customDetector{}, fmt.Errorf("inspect: custom detector name %q: use A-Z, 0-9 and _", name)
		}
	}
	if _, builtin := builtinBits[Type(name)]; builtin {
		return customDetector{}, fmt.Errorf("inspect: custom detector name %q is a built-in type", name)
	}
	if cd.Pattern == "" || len(cd.Pattern) > MaxCustomPatternLen {
		return customDetector{}, fmt.Errorf("inspect: custom detector %s: pattern must be 1-%d bytes", name, MaxCustomPatternLen)
	}
	re, err := syntax.Parse(cd.Pattern, syntax.Perl)
	if err != nil {
		return customDetector{}, fmt.Errorf("inspect: custom detector %s: %w", name, err)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return customDetector{}, fmt.Errorf("inspect: custom detector %s: %w", name, err)
	}
	if len(prog.Inst) > MaxCustomProgInsts {
		return customDetector{}, fmt.Errorf("inspect: custom detector %s: pattern compiles to %d instructions, at most %d", name, len(prog.Inst), MaxCustomProgInsts)
	}
	rx, err := regexp.Compile(cd.Pattern)
	if err != nil {
		return customDetector{}, fmt.Errorf("inspect: custom detector %s: %w", name, err)
	}
	if rx.MatchString("") {
		return customDetector{}, fmt.Errorf("inspect: custom detector %s: pattern matches the empty string", name)
	}
	switch cd.Checksum {
	case "", "luhn", "mod97":
	default:
		return customDetector{}, fmt.Errorf("inspect: custom detector %s: unknown checksum %q (want \"\", \"luhn\" or \"mod97\")", name, cd.Checksum)
	}
	c := customDetector{typ: Type(name), re: rx, checksum: cd.Checksum}
	var kws []string
	for _, k := range cd.Keywords {
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "" {
			continue
		}
		if len(k) > MaxKeywordLen {
			return customDetector{}, fmt.Errorf("inspect: custom detector %s: keyword longer than %d bytes", name, MaxKeywordLen)
		}
		kws = append(kws, k)
	}
	if len(kws) > 0 {
		c.keywords = newKwSet(kws...)
	}
	return c, nil
}

// runCustom runs every custom detector over the scanned text.
func (st *state) runCustom() {
	b := st.text
	for ci := range st.s.custom {
		cd := &st.s.custom[ci]
		pos := 0
		for pos <= len(b) {
			loc := cd.re.FindIndex(b[pos:])
			if loc == nil {
				break
			}
			start, end := pos+loc[0], pos+loc[1]
			if end == start {
				pos = end + 1
				continue
			}
			pos = end
			st.customMatch(cd, start, end)
		}
	}
}

func (st *state) customMatch(cd *customDetector, start, end int) {
	v := st.text[start:end]
	var norm []byte
	switch cd.checksum {
	case "luhn":
		norm = st.norm[:0]
		for _, c := range v {
			if isDigit(c) {
				if len(norm) == len(st.norm) {
					return
				}
				norm = append(norm, c)
			}
		}
		if len(norm) < 2 || !luhn(norm) {
			return
		}
	case "mod97":
		norm = st.norm[:0]
		for _, c := range v {
			if isAlnum(c) {
				if len(norm) == len(st.norm) {
					return
				}
				if 'a' <= c && c <= 'z' {
					c -= 'a' - 'A'
				}
				norm = append(norm, c)
			}
		}
		if !mod97(norm) {
			return
		}
	default:
		norm = v
	}
	conf := Medium
	if cd.keywords != nil {
		conf = Low
		if st.forceCustom == cd.typ || st.keyword(cd.keywords, start, end) {
			conf = High
		}
	}
	saved := st.floor
	st.emit(cd.typ, start, end, conf, norm)
	st.floor = saved
}
