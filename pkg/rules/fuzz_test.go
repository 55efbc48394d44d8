package rules

import (
	"errors"
	"io/fs"
	"path"
	"testing"

	"github.com/hashicorp/go-multierror"
)

// checkErrors asserts that err is a *multierror.Error of positioned *Error.
func checkErrors(t *testing.T, err error) {
	t.Helper()
	var me *multierror.Error
	if !errors.As(err, &me) || len(me.Errors) == 0 {
		t.Fatalf("error is %T, not a *multierror.Error: %v", err, err)
	}
	for _, e := range me.Errors {
		var re *Error
		if !errors.As(e, &re) {
			t.Fatalf("error %T without position: %v", e, e)
		}
		if re.Pos.File == "" || re.Pos.Line < 1 || re.Pos.Column < 1 || re.Msg == "" {
			t.Fatalf("bad position or message: %#v", re)
		}
	}
}

func addSeeds(f *testing.F, dir string) {
	entries, _ := fs.ReadDir(DefaultPack, dir)
	for _, e := range entries {
		if !e.IsDir() {
			b, _ := fs.ReadFile(DefaultPack, path.Join(dir, e.Name()))
			f.Add(b)
		}
	}
}

// FuzzParse: Parse never panics, and every error carries a position.
func FuzzParse(f *testing.F) {
	f.Add([]byte(baseRules))
	for _, c := range validateCases {
		f.Add([]byte(c.edit(baseRules)))
	}
	addSeeds(f, defaultDir)
	env := NewEnv()
	env.SetEvent(crmEvent())
	m := NewVM()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(map[string][]byte{"pack.yaml": []byte(testPackYAML), "rules.yaml": data})
		if err != nil {
			checkErrors(t, err)
			return
		}
		if len(p.Checksum) != 64 {
			t.Fatalf("checksum %q", p.Checksum)
		}
		for _, r := range p.Rules {
			if r.Match == nil || r.GroupBy == nil || r.Version == "" {
				t.Fatalf("rule %s incomplete", r.ID)
			}
			// Evaluation never panics either.
			_, _ = r.Match.Bool(m, env)
			_, _ = r.GroupBy.Text(m, env)
			if r.Window.Value != nil {
				if r.Window.Value.Result() == ResultStrings {
					_, _ = r.Window.Value.Strings(m, env, nil)
				} else {
					_, _ = r.Window.Value.Number(m, env)
				}
			}
		}
	})
}

// FuzzParsePackFile fuzzes pack.yaml (lists, defaults).
func FuzzParsePackFile(f *testing.F) {
	f.Add([]byte(testPackYAML))
	f.Add([]byte("version: \"7\"\ndefaults: {mode: shadow, enabled: false, group_by: actor.department}\n"))
	addSeeds(f, defaultDir)
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := Parse(map[string][]byte{"pack.yaml": data, "rules.yaml": []byte(baseRules)}); err != nil {
			checkErrors(t, err)
		}
	})
}

// FuzzParseTests: the fixture parser never panics and positions its errors.
func FuzzParseTests(f *testing.F) {
	addSeeds(f, path.Join(defaultDir, TestsDir))
	f.Add([]byte("name: t\nstart: 2026-11-02T09:00:00Z\nabsent: [a.b]\nevents: [{at: +0m, kind: crm_access, repeat: 3, every: 1m, actor: {uid: \"u-{i*2:03}\"}, action: view, records: {ids: \"C-{i}..C-{i+9}\"}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tcs, err := ParseTests(map[string][]byte{"t.yaml": data})
		if err != nil {
			checkErrors(t, err)
			return
		}
		for _, tc := range tcs {
			if len(tc.Events) == 0 || len(tc.Events) > MaxTestEvents {
				t.Fatalf("%d events", len(tc.Events))
			}
		}
	})
}
