package loadtest

import (
	"bytes"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/pager"
)

// FuzzParseTemplate: whatever the input, parseTemplate either fails or
// returns a template that renders its own input back unchanged (with its
// id, time and actor) and any other id, time and suffix into the same
// frame.
func FuzzParseTemplate(f *testing.F) {
	f.Add([]byte(`{"schema_version":1,"event_id":"evt-org-1","time":"2026-11-28T09:00:48Z","actor":{"uid":"u-10003"},"action":"view"}`))
	f.Add([]byte(`{"event_id":"e","time":"2026-11-28T09:00:48.123456789+01:00","actor":{"uid":"u"},"content":{"text":"\"time\":\"x\""}}`))
	f.Add([]byte(`{"event_id":"e","time":"x","actor":{"uid":"u"}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		tpl, err := parseTemplate("outbound", raw)
		if err != nil {
			return
		}
		at := time.Date(2026, 11, 28, 19, 0, 0, 123, time.UTC)
		out := tpl.render(nil, []byte("evt-rate-9"), at, []byte("~p1"))
		frame := len(tpl.parts[0]) + len(tpl.parts[1]) + len(tpl.parts[2]) + len(tpl.parts[3])
		if want := frame + len("evt-rate-9") + len(at.Format(timeLayout)) + len(tpl.uid) + len("~p1"); len(out) != want {
			t.Fatalf("rendered %d bytes, want %d", len(out), want)
		}
		if len(out) > tpl.size(len("evt-rate-9"), len("~p1")) {
			t.Fatalf("rendered %d bytes, more than size() %d", len(out), tpl.size(len("evt-rate-9"), len("~p1")))
		}
		if !bytes.HasPrefix(out, tpl.parts[0]) || !bytes.HasSuffix(out, tpl.parts[3]) {
			t.Fatalf("frame changed: %q", out)
		}
		if !bytes.Contains(raw, []byte(tpl.id)) || !bytes.Contains(raw, []byte(tpl.uid)) {
			t.Fatalf("id %q or uid %q not from the input", tpl.id, tpl.uid)
		}
	})
}

// FuzzDecodePage: a body is accepted only with a valid signature, and an
// accepted body has a dedup key and a known action.
func FuzzDecodePage(f *testing.F) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	f.Add([]byte(`{"version":1,"action":"trigger","kind":"new","dedup_key":"f1","page":{"rule_id":"r1"}}`), true)
	f.Add([]byte(`{"action":"resolve","dedup_key":"f1"}`), true)
	f.Add([]byte(`{"action":"explode","dedup_key":"f1"}`), true)
	f.Add([]byte(`not json`), false)
	f.Fuzz(func(t *testing.T, body []byte, signed bool) {
		sig := "sha256=00"
		if signed {
			sig = pager.Sign(secret, body)
		}
		b, err := decodePage(secret, body, sig)
		if err != nil {
			return
		}
		if !signed {
			t.Fatal("accepted an unsigned body")
		}
		if b.DedupKey == "" || (b.Action != "trigger" && b.Action != "resolve") {
			t.Fatalf("accepted %+v", b)
		}
	})
}
