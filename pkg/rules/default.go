package rules

import (
	"embed"
	"io/fs"
	"path"
)

// DefaultPack is Leakline's default rule pack: packs/default/pack.yaml, its
// rule files and its fixtures in packs/default/tests.
//
//go:embed packs/default
var DefaultPack embed.FS

// defaultDir is the pack's directory in DefaultPack.
const defaultDir = "packs/default"

// LoadDefault compiles the embedded default pack.
func LoadDefault() (*Pack, error) { return LoadFS(DefaultPack, defaultDir) }

// LoadDefaultTests loads the fixtures of the embedded default pack.
func LoadDefaultTests() ([]TestCase, error) { return LoadTestsFS(DefaultPack, defaultDir) }

// LoadFS loads the pack in directory dir of fsys (see LoadDir).
func LoadFS(fsys fs.FS, dir string) (*Pack, error) {
	files, err := loadFS(fsys, dir)
	if err != nil {
		return nil, err
	}
	return parse(files, dir)
}

// LoadTestsFS loads the fixtures of the pack in directory dir of fsys (see
// LoadTests).
func LoadTestsFS(fsys fs.FS, dir string) ([]TestCase, error) {
	tdir := path.Join(dir, TestsDir)
	if _, err := fs.Stat(fsys, tdir); err != nil {
		return nil, nil
	}
	files, err := loadFS(fsys, tdir)
	if err != nil {
		return nil, err
	}
	return parseTests(files, tdir)
}

// CheckTests reports every expectation and absent: entry that names a rule
// the pack does not have (a typo there would make a test pass vacuously),
// and every expectation of a disabled rule.
func (p *Pack) CheckTests(tests []TestCase) error {
	var l errList
	for _, tc := range tests {
		for _, e := range tc.Expect {
			switch r := p.Rule(e.Rule); {
			case r == nil:
				l.add(e.Pos, "test %q: expect: the pack has no rule %q", tc.Name, e.Rule)
			case !r.Enabled && e.Incidents != 0:
				l.add(e.Pos, "test %q: expect: rule %q is disabled and never fires", tc.Name, e.Rule)
			}
		}
		for i, id := range tc.Absent {
			if p.Rule(id) == nil {
				pos := tc.Pos
				if i < len(tc.AbsentPos) {
					pos = tc.AbsentPos[i]
				}
				l.add(pos, "test %q: absent: the pack has no rule %q", tc.Name, id)
			}
		}
	}
	return l.err()
}
