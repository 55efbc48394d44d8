package inspect

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestDumpHam(t *testing.T) {
	want := Type(os.Getenv("DUMP_TYPE"))
	if want == "" {
		t.Skip()
	}
	s := newTestScanner(t, Config{})
	f := openEval(t, "background-ham.jsonl")
	dec := json.NewDecoder(f)
	n := 0
	for dec.More() {
		var m hamMessage
		dec.Decode(&m)
		ds, _ := s.ScanString(m.Text, nil)
		for _, d := range ds {
			if d.Type != want || (os.Getenv("DUMP_BODY") != "" && d.Start < m.BodyStart) {
				continue
			}
			lo, hi := max(0, d.Start-30), min(len(m.Text), d.End+20)
			ctx := strings.ReplaceAll(m.Text[lo:hi], "\n", "⏎")
			fmt.Printf("%s %-6s %q  ctx=%q\n", d.Type, d.Confidence, m.Text[d.Start:d.End], ctx)
			n++
			if n > 400 {
				return
			}
		}
	}
}
