package rules

import (
	"errors"
	"fmt"
	"github.com/leakline/leakline/pkg/scenario"
	"regexp"
	"strconv"
	"strings"
)

// tmplCtx is what a fixture template sees: i, the repetition index (0 …
// repeat-1), and n, the index of the event in the test case.
type tmplCtx struct {
	i, n int
	g    *generator
}

// interpolate expands {…} templates in s: {i}, {n}, integer arithmetic
// ({i*15+1}), zero padding ({i+1:06}) and PII generators ({emails(12)},
// {cards(3)}, {ibans(2)}). {{ and }} are literal braces.
func (c tmplCtx) interpolate(s string) (string, error) {
	if !strings.ContainsAny(s, "{}") {
		return s, nil
	}
	var b strings.Builder
	for k := 0; k < len(s); {
		ch := s[k]
		switch {
		case ch == '{' && k+1 < len(s) && s[k+1] == '{':
			b.WriteByte('{')
			k += 2
		case ch == '}' && k+1 < len(s) && s[k+1] == '}':
			b.WriteByte('}')
			k += 2
		case ch == '{':
			end := strings.IndexByte(s[k:], '}')
			if end < 0 {
				return "", fmt.Errorf("unclosed { in %q (write {{ for a literal brace)", s)
			}
			out, err := c.eval(s[k+1 : k+end])
			if err != nil {
				return "", fmt.Errorf("template {%s}: %v", s[k+1:k+end], err)
			}
			b.WriteString(out)
			k += end + 1
		default:
			b.WriteByte(ch)
			k++
		}
		if b.Len() > 4<<20 {
			return "", errors.New("generated text longer than 4 MiB")
		}
	}
	return b.String(), nil
}

var genCallRE = regexp.MustCompile(`^\s*(emails|cards|ibans)\s*\((.*)\)\s*$`)

func (c tmplCtx) eval(body string) (string, error) {
	if m := genCallRE.FindStringSubmatch(body); m != nil {
		n, err := c.evalInt(m[2])
		if err != nil {
			return "", err
		}
		if n < 0 || n > MaxGenerated {
			return "", fmt.Errorf("%s(%d): the count must be 0 to %d", m[1], n, MaxGenerated)
		}
		return c.g.generate(m[1], n), nil
	}
	expr, width := body, ""
	if j := strings.LastIndexByte(body, ':'); j >= 0 {
		expr, width = body[:j], strings.TrimSpace(body[j+1:])
	}
	v, err := c.evalInt(expr)
	if err != nil {
		return "", err
	}
	if width == "" {
		return strconv.Itoa(v), nil
	}
	w, err := strconv.Atoi(width)
	if err != nil || w < 1 || w > 32 {
		return "", fmt.Errorf("width %q must be a number 1 to 32, e.g. {i:06}", width)
	}
	return fmt.Sprintf("%0*d", w, v), nil
}

// evalInt evaluates integer arithmetic over i and n: + - * / % and
// parentheses.
func (c tmplCtx) evalInt(s string) (int, error) {
	p := &arith{s: s, c: c}
	v, err := p.sum()
	if err != nil {
		return 0, err
	}
	p.space()
	if p.k < len(p.s) {
		return 0, fmt.Errorf("unexpected %q (templates know i, n, integers, + - * / %% and parentheses, and emails(n), cards(n), ibans(n))", p.s[p.k:])
	}
	return v, nil
}

type arith struct {
	s     string
	k     int
	c     tmplCtx
	depth int
}

func (p *arith) space() {
	for p.k < len(p.s) && p.s[p.k] == ' ' {
		p.k++
	}
}

func (p *arith) sum() (int, error) {
	v, err := p.product()
	if err != nil {
		return 0, err
	}
	for {
		p.space()
		if p.k >= len(p.s) || (p.s[p.k] != '+' && p.s[p.k] != '-') {
			return v, nil
		}
		op := p.s[p.k]
		p.k++
		w, err := p.product()
		if err != nil {
			return 0, err
		}
		if op == '+' {
			v += w
		} else {
			v -= w
		}
	}
}

func (p *arith) product() (int, error) {
	v, err := p.factor()
	if err != nil {
		return 0, err
	}
	for {
		p.space()
		if p.k >= len(p.s) || (p.s[p.k] != '*' && p.s[p.k] != '/' && p.s[p.k] != '%') {
			return v, nil
		}
		op := p.s[p.k]
		p.k++
		w, err := p.factor()
		if err != nil {
			return 0, err
		}
		switch op {
		case '*':
			v *= w
		case '/', '%':
			if w == 0 {
				return 0, errors.New("division by zero")
			}
			if op == '/' {
				v /= w
			} else {
				v %= w
			}
		}
	}
}

func (p *arith) factor() (int, error) {
	p.space()
	if p.k >= len(p.s) {
		return 0, errors.New("expression ends early")
	}
	switch ch := p.s[p.k]; {
	case ch == '(':
		p.depth++
		if p.depth > 32 {
			return 0, errors.New("too many parentheses")
		}
		p.k++
		v, err := p.sum()
		if err != nil {
			return 0, err
		}
		p.space()
		if p.k >= len(p.s) || p.s[p.k] != ')' {
			return 0, errors.New("missing )")
		}
		p.k++
		p.depth--
		return v, nil
	case ch == '-':
		p.k++
		v, err := p.factor()
		return -v, err
	case ch == 'i':
		p.k++
		return p.c.i, nil
	case ch == 'n':
		p.k++
		return p.c.n, nil
	case ch >= '0' && ch <= '9':
		j := p.k
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		v, err := strconv.Atoi(p.s[p.k:j])
		if err != nil || v > 1<<40 {
			return 0, fmt.Errorf("number %q too large", p.s[p.k:j])
		}
		p.k = j
		return v, nil
	}
	return 0, fmt.Errorf("unexpected %q (templates know i, n, integers, + - * / %% and parentheses, and emails(n), cards(n), ibans(n))", p.s[p.k:])
}

var (
	firstNames = []string{"anna", "ben", "chloe", "david", "emma", "felix", "grace", "henry", "isla", "jonas", "kate", "liam"}
	lastNames  = []string{"berg", "clark", "diaz", "evans", "fischer", "garcia", "hughes", "ito", "jensen", "kowalski", "lopez", "meyer"}
	mailHosts  = []string{"example.com", "example.net", "example.org"}
)

// generate produces n synthetic PII values of a kind, one per line. The
// values are distinct within a test case (they draw from a counter) and
// pass the detectors' checks (Luhn, mod-97); none is real.
func (g *generator) generate(kind string, n int) string {
	var b strings.Builder
	for j := 0; j < n; j++ {
		k := g.seq
		g.seq++
		if j > 0 {
			b.WriteByte('\n')
		}
		switch kind {
		case "emails":
			fmt.Fprintf(&b, "%s.%s%d@%s", firstNames[k%len(firstNames)], lastNames[(k/len(firstNames))%len(lastNames)], k, mailHosts[k%len(mailHosts)])
		case "cards":
			b.WriteString(luhnCard(k))
		case "ibans":
			b.WriteString(germanIBAN(k))
		}
	}
	return b.String()
}

// luhnCard is a Visa-prefixed 16-digit number with a valid Luhn digit,
// grouped in fours, derived from k.
func luhnCard(k int) string {
	x := uint64(k)*0x9E3779B97F4A7C15 + 0x1234567
	return scenario.VisaCard(func() int {
		x ^= x >> 29
		x *= 0xBF58476D1CE4E5B9
		return int(x>>33) % 10
	})
}

// germanIBAN is a valid DE IBAN (bank code 37040044, account from k),
// grouped in fours.
func germanIBAN(k int) string {
	bban := fmt.Sprintf("37040044%010d", 532013000+k)
	// Check digits: (BBAN + "DE00" as digits) mod 97.
	rem := 0
	for _, ch := range bban + "131400" {
		rem = (rem*10 + int(ch-'0')) % 97
	}
	iban := fmt.Sprintf("DE%02d%s", 98-rem, bban)
	var b strings.Builder
	for i := 0; i < len(iban); i++ {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteByte(iban[i])
	}
	return b.String()
}
