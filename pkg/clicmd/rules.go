package clicmd

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/inspect"
	"github.com/leakline/leakline/pkg/privacy"
	"github.com/leakline/leakline/pkg/rules"
)

// Rules implements `leakline rules validate|test DIR`.
//
//	validate DIR   compile the pack: every error with file:line:col, exit 1
//	test DIR       validate, then run DIR/tests/*.yaml through the engine
func Rules(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, rulesUsage)
		return ExitUsage
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("rules "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "test: list every case, not only failures")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		return usageError(fs, stderr, "want exactly one pack directory")
	}
	dir := pos[0]
	switch sub {
	case "validate":
		p, ok := loadPack(dir, stderr)
		if !ok {
			return ExitError
		}
		fmt.Fprintf(stdout, "ok: %s: %d rules, pack version %s, checksum %s\n", dir, len(p.Rules), p.Version, p.Checksum[:12])
		return ExitOK
	case "test":
		p, ok := loadPack(dir, stderr)
		if !ok {
			return ExitError
		}
		return testPack(p, dir, *verbose, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "leakline rules: unknown command %q\n\n%s", sub, rulesUsage)
		return ExitUsage
	}
}

const rulesUsage = `usage: leakline rules <command> DIR

commands:
  validate DIR   compile a rule pack; report every error with file:line:col
  test DIR       validate, then run the pack's fixtures (DIR/tests/*.yaml)
`

func loadPack(dir string, stderr io.Writer) (*rules.Pack, bool) {
	p, err := rules.LoadDir(dir)
	if err == nil {
		return p, true
	}
	errs := rules.Errors(err)
	if len(errs) == 0 {
		fmt.Fprintf(stderr, "%s: %v\n", dir, err)
		return nil, false
	}
	for _, e := range errs {
		fmt.Fprintln(stderr, e)
	}
	fmt.Fprintf(stderr, "%s: %d error(s); the pack is invalid\n", dir, len(errs))
	return nil, false
}

func testPack(p *rules.Pack, dir string, verbose bool, stdout, stderr io.Writer) int {
	cases, err := rules.LoadTests(filepath.Join(dir))
	if err != nil {
		for _, e := range rules.Errors(err) {
			fmt.Fprintln(stderr, e)
		}
		fmt.Fprintf(stderr, "%s: invalid fixtures: %v\n", dir, err)
		return ExitError
	}
	if len(cases) == 0 {
		fmt.Fprintf(stderr, "%s: no fixtures in %s\n", dir, filepath.Join(dir, rules.TestsDir))
		return ExitError
	}
	key := make([]byte, privacy.MinKeyLen)
	if _, err := rand.Read(key); err != nil {
		fmt.Fprintln(stderr, err)
		return ExitError
	}
	tok, err := privacy.NewTokenizer(key)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitError
	}
	sc, err := inspect.New(inspect.Config{}, tok)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitError
	}
	cfg := detect.DefaultConfig()
	cfg.Pack = p
	res, err := detect.RunTests(cfg, sc, cases)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitError
	}
	failed := 0
	for _, r := range res {
		if len(r.Diffs) == 0 {
			if verbose {
				fmt.Fprintf(stdout, "PASS  %s  %s\n", r.Case.Pos, r.Case.Name)
			}
			continue
		}
		failed++
		fmt.Fprintf(stdout, "FAIL  %s  %s\n", r.Case.Pos, r.Case.Name)
		for _, d := range r.Diffs {
			fmt.Fprintf(stdout, "      %s\n", strings.ReplaceAll(d, "\n", "\n      "))
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", len(res)-failed, failed)
	if failed > 0 {
		return ExitError
	}
	return ExitOK
}
