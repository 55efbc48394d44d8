package clicmd

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/edm"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/privacy"
	"github.com/leakline/leakline/pkg/testenv"
)

const testKeyHex = "6c65616b6c696e652d746573742d6b65792d30313233343536373839616263646566"

const customersCSV = "customer_id,name,email,phone\n" +
	"C-000001,Jane Doe,jane.doe@example.com,(415) 555-2671\n" +
	"C-000002,John Smith,john.smith@example.org,020 7946 0958\n"

// env is a temporary directory with a key file, a CRM export and its
// index.
type env struct {
	dir, key, csv, index string
}

func newEnv(t *testing.T) env {
	t.Helper()
	dir := t.TempDir()
	e := env{dir: dir, key: filepath.Join(dir, "key"), csv: filepath.Join(dir, "customers.csv"), index: filepath.Join(dir, "customers.edm")}
	must(t, os.WriteFile(e.key, []byte(testKeyHex+"\n"), 0o600))
	must(t, os.WriteFile(e.csv, []byte(customersCSV), 0o600))
	return e
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type result struct {
	code           int
	stdout, stderr string
}

func run(f func(context.Context, []string, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) int, stdin string, args ...string) result {
	var out, errb bytes.Buffer
	code := f(context.Background(), args, bytes.NewBufferString(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func inspectCmd(ctx context.Context, args []string, in, out, errb *bytes.Buffer) int {
	return Inspect(ctx, args, in, out, errb)
}

func edmCmd(ctx context.Context, args []string, in, out, errb *bytes.Buffer) int {
	return EDM(ctx, args, in, out, errb)
}

// lines decodes JSON lines.
func lines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestInspect(t *testing.T) {
	e := newEnv(t)
	file := filepath.Join(e.dir, "mail.txt")
	must(t, os.WriteFile(file, []byte("Hi, card 4111 1111 1111 1111\n"), 0o600))
	bin := filepath.Join(e.dir, "blob.bin")
	must(t, os.WriteFile(bin, []byte("\x00\x01\x02 jane@example.com"), 0o600))
	eml := filepath.Join(e.dir, "msg.eml")
	must(t, os.WriteFile(eml, []byte("Subject: hi\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"+
		base64.StdEncoding.EncodeToString([]byte("ssn 536-90-4399"))+"\n"), 0o600))

	cases := []struct {
		name     string
		stdin    string
		args     []string
		code     int
		want     []string // substrings of stdout lines, in order
		stderr   string   // substring of stderr
		notOut   string   // must not appear on stdout
		nDetects int
	}{
		{
			name: "stdin text", stdin: "mail jane.doe@example.com now",
			args:   []string{"--key-file", e.key},
			want:   []string{`{"type":"EMAIL_ADDRESS","start":5,"end":25,"confidence":"high","masked":"j***@example.com","token":"`},
			notOut: "jane.doe", nDetects: 1,
		},
		{
			name: "random key notice", stdin: "jane@example.com",
			stderr: "random per-run key", nDetects: 1,
		},
		{
			name: "min confidence", stdin: "SSN 536-90-4399, id 536-90-4398 x 10.1.2.3",
			args: []string{"--key-file", e.key, "--min-confidence", "medium"},
			want: []string{`"type":"US_SSN","start":4,"end":15,"confidence":"high"`, `"type":"US_SSN","start":20`}, nDetects: 2,
		},
		{
			name: "jsonl", stdin: `{"id":"m1","text":"call (415) 555-2671"}` + "\n\n" + `{"id":7,"text":"none here"}` + "\n" + `{"id":{"a": 1},"text":"a@example.com"}`,
			args: []string{"--jsonl", "--key-file", e.key},
			want: []string{`"type":"PHONE_NUMBER","start":5,"end":19,"confidence":"high","masked":"+*******2671"`, `"id":"m1"`, `"id":{"a":1}`}, nDetects: 2,
		},
		{
			name: "jsonl invalid utf-8 removed", stdin: "{\"id\":1,\"text\":\"jane\xff@example.com\"}\n",
			args: []string{"--jsonl", "--key-file", e.key}, want: []string{`"start":0,"end":16`}, nDetects: 1,
		},
		{
			name: "jsonl bad line", stdin: "{\"id\":1,\"text\":\"a@example.com\"}\nnot json\n{\"id\":2}\n",
			args: []string{"--jsonl", "--key-file", e.key}, code: 1, stderr: "line 2", nDetects: 1,
		},
		{
			name: "files", args: []string{file, "--key-file", e.key, bin, eml, filepath.Join(e.dir, "missing")},
			code:   1,
			want:   []string{`"type":"CREDIT_CARD","start":9,"end":28,"confidence":"high"`, `"file":"` + file + `"`, `"type":"US_SSN"`, `"part":"1"`},
			stderr: "binary content, not scanned", nDetects: 2,
		},
		{
			name: "cap", stdin: strings.Repeat("x", 100) + " jane@example.com",
			args: []string{"--key-file", e.key, "--max-bytes", "50"}, stderr: "inspected up to the cap", nDetects: 0,
		},
		{
			name: "csv format", stdin: "name,mobile\nJane,4155552671\n",
			args: []string{"--key-file", e.key, "--format", "csv"}, want: []string{`"type":"PHONE_NUMBER","start":17,"end":27,"confidence":"high"`}, nDetects: 1,
		},
		{
			name: "custom", stdin: "ticket C-000123",
			args: []string{"--key-file", e.key, "--custom", `CUSTOMER_ID=\bC-\d{6}\b`}, want: []string{`"type":"CUSTOMER_ID","start":7,"end":15,"confidence":"medium","masked":"****0123"`}, nDetects: 1,
		},
		{name: "bad confidence", args: []string{"--min-confidence", "huge"}, code: 2, stderr: "invalid confidence"},
		{name: "bad format", args: []string{"--format", "pdf"}, code: 2, stderr: "unknown format"},
		{name: "bad flag", args: []string{"--nope"}, code: 2},
		{name: "edm needs key", args: []string{"--edm", e.index}, code: 2, stderr: "--edm needs --key-file"},
		{name: "bad custom", args: []string{"--custom", "x"}, code: 2, stderr: "NAME=REGEX"},
		{name: "missing key file", args: []string{"--key-file", filepath.Join(e.dir, "nokey")}, code: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(inspectCmd, c.stdin, c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, c.code, r.stderr)
			}
			pos := 0
			for _, w := range c.want {
				i := strings.Index(r.stdout[pos:], w)
				if i < 0 {
					t.Fatalf("stdout lacks %q (in order):\n%s", w, r.stdout)
				}
				pos += i
			}
			if c.stderr != "" && !strings.Contains(r.stderr, c.stderr) {
				t.Errorf("stderr %q lacks %q", r.stderr, c.stderr)
			}
			if c.notOut != "" && strings.Contains(r.stdout, c.notOut) {
				t.Errorf("stdout holds %q", c.notOut)
			}
			n := 0
			if r.code != 2 {
				for _, l := range lines(t, r.stdout) {
					if _, ok := l["type"]; ok {
						n++
						for _, k := range []string{"start", "end", "confidence", "masked", "token"} {
							if _, ok := l[k]; !ok {
								t.Errorf("line %v lacks %s", l, k)
							}
						}
					}
				}
			}
			if n != c.nDetects {
				t.Errorf("%d detection lines, want %d:\n%s", n, c.nDetects, r.stdout)
			}
		})
	}
}

func TestEDMBuildInfoAndInspect(t *testing.T) {
	e := newEnv(t)
	r := run(edmCmd, "", "build", "--key-file", e.key, "--columns", "name=name,email,phone=phone,customer_id", "--id-column", "customer_id", e.csv, "-o", e.index)
	if r.code != 0 {
		t.Fatalf("build: exit %d: %s", r.code, r.stderr)
	}
	var sum map[string]any
	must(t, json.Unmarshal([]byte(r.stdout), &sum))
	if sum["rows"].(float64) != 2 || sum["identifiers"].(float64) != 8 || sum["bytes"].(float64) < 100 {
		t.Errorf("summary %v", sum)
	}
	data, err := os.ReadFile(e.index)
	must(t, err)
	for _, raw := range []string{"jane", "Jane", "C-000001", "2671", "example"} {
		if bytes.Contains(data, []byte(raw)) || strings.Contains(r.stdout, raw) {
			t.Errorf("index or summary holds %q", raw)
		}
	}

	r = run(edmCmd, "", "info", e.index)
	if r.code != 0 || !strings.Contains(r.stdout, `"id":"`+sum["id"].(string)+`"`) {
		t.Errorf("info: %d %s %s", r.code, r.stdout, r.stderr)
	}
	must(t, os.WriteFile(filepath.Join(e.dir, "bad.edm"), data[:len(data)-3], 0o600))
	if r = run(edmCmd, "", "info", filepath.Join(e.dir, "bad.edm")); r.code != 1 || !strings.Contains(r.stderr, "invalid index file") {
		t.Errorf("info of a damaged file: %d %s", r.code, r.stderr)
	}

	// Build from stdin to stdout; same index id (the build time differs).
	r2 := run(edmCmd, customersCSV, "build", "--key-file", e.key, "--columns", "name=name,email,phone=phone,customer_id", "--id-column", "customer_id", "-o", "-")
	if r2.code != 0 || !strings.Contains(r2.stderr, sum["id"].(string)) || len(r2.stdout) != len(data) {
		t.Errorf("build to stdout: %d, %s", r2.code, r2.stderr)
	}

	// inspect --edm: one EDM line per input.
	in := `{"id":"a","text":"From Jane Doe <jane.doe@example.com>, re C-000002"}` + "\n" + `{"id":"b","text":"Jane Doe alone"}` + "\n"
	r = run(inspectCmd, in, "--jsonl", "--key-file", e.key, "--edm", e.index, "--custom", `CUSTOMER_ID=\bC-\d{6}\b`)
	if r.code != 0 {
		t.Fatalf("inspect --edm: %d %s", r.code, r.stderr)
	}
	var edmLines []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if strings.Contains(l, `"edm"`) {
			edmLines = append(edmLines, l)
		}
	}
	want := []string{
		`{"id":"a","edm":{"customers":2,"by_type":{"customer_id":1,"email":1,"name":1}}}`,
		`{"id":"b","edm":{"customers":0,"by_type":{}}}`,
	}
	if strings.Join(edmLines, "\n") != strings.Join(want, "\n") {
		t.Errorf("edm lines:\n%s\nwant:\n%s", strings.Join(edmLines, "\n"), strings.Join(want, "\n"))
	}
	// A wrong key is refused.
	other := filepath.Join(e.dir, "other")
	must(t, os.WriteFile(other, []byte(strings.Repeat("ab", 32)), 0o600))
	if r = run(inspectCmd, "x", "--key-file", other, "--edm", e.index); r.code != 1 || !strings.Contains(r.stderr, "different key") {
		t.Errorf("wrong key: %d %s", r.code, r.stderr)
	}

	for _, c := range []struct {
		name string
		args []string
		code int
	}{
		{"no command", nil, 2},
		{"unknown command", []string{"frob"}, 2},
		{"build without key", []string{"build", "--columns", "email", "--id-column", "customer_id", "-o", "x"}, 2},
		{"build without columns", []string{"build", "--key-file", e.key, "--id-column", "customer_id", "-o", "x"}, 2},
		{"build bad column type", []string{"build", "--key-file", e.key, "--columns", "email=E-Mail", "--id-column", "customer_id", "-o", filepath.Join(e.dir, "x"), e.csv}, 1},
		{"build missing column", []string{"build", "--key-file", e.key, "--columns", "fax", "--id-column", "customer_id", "-o", filepath.Join(e.dir, "x"), e.csv}, 1},
		{"publish without brokers", []string{"publish", e.index}, 2},
		{"publish two files", []string{"publish", e.index, e.index, "--brokers", "127.0.0.1:1"}, 2},
		{"info missing", []string{"info", filepath.Join(e.dir, "missing")}, 1},
	} {
		if r := run(edmCmd, "", c.args...); r.code != c.code {
			t.Errorf("%s: exit %d, want %d (%s)", c.name, r.code, c.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(e.dir, "x")); !os.IsNotExist(err) {
		t.Errorf("a failed build left an output file")
	}
}

func TestEDMPublish(t *testing.T) {
	b := testenv.Kafka(t, nil)
	if b == nil {
		return
	}
	e := newEnv(t)
	if r := run(edmCmd, "", "build", "--key-file", e.key, "--columns", "email,phone", "--id-column", "customer_id", "-o", e.index, e.csv); r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	r := run(edmCmd, "", "publish", e.index, "--brokers", strings.Join(b.Addrs(), ","), "--topic", "dlp.edm", "--chunk-size", "1024")
	if r.code != 0 {
		t.Fatalf("publish: %d %s", r.code, r.stderr)
	}
	var res map[string]any
	must(t, json.Unmarshal([]byte(r.stdout), &res))
	if res["topic"] != "dlp.edm" || res["chunks"].(float64) < 1 {
		t.Errorf("publish result %v", res)
	}
	key, err := privacy.LoadKey(e.key)
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	x, err := edm.LoadFromKafka(ctx, kafkaio.Config{Brokers: b.Addrs()}, "dlp.edm", key)
	if err != nil || x.ID() != res["id"] {
		t.Fatalf("LoadFromKafka: %v", err)
	}
}

func TestParseArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		pos  string
		flag string
	}{
		{[]string{"a", "--x", "1", "b"}, "[a b]", "1"},
		{[]string{"--x", "2", "a"}, "[a]", "2"},
		{[]string{"a", "--", "--x", "b"}, "[a --x b]", ""},
		{nil, "[]", ""},
	} {
		fs := newFlagSet("t", "", &bytes.Buffer{})
		x := fs.String("x", "", "")
		pos, err := parseArgs(fs, c.args)
		if err != nil || strings.Join(pos, " ") != strings.Trim(c.pos, "[]") || *x != c.flag {
			t.Errorf("parseArgs(%q) = %q, x=%q, %v", c.args, pos, *x, err)
		}
	}
}
