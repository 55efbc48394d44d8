package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addSeeds adds every example (valid and invalid) whose file name starts
// with prefix, plus a few hand-made edge cases.
func addSeeds(f *testing.F, prefix string, extra ...string) {
	for _, pattern := range []string{"*.json", "invalid/*.json"} {
		files, err := filepath.Glob(filepath.Join(examplesDir, pattern))
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			if !strings.HasPrefix(filepath.Base(file), prefix) {
				continue
			}
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	for _, s := range extra {
		f.Add([]byte(s))
	}
}

var knownReasons = map[string]bool{
	ReasonOversized: true, ReasonInvalidJSON: true, ReasonDuplicateKey: true,
	ReasonSchema: true, ReasonSemantic: true, ReasonUnknownKind: true, ReasonInvalidBinary: true,
}

func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("not a *DecodeError: %T %v", err, err)
	}
	if !knownReasons[de.Reason] || de.Len() == 0 || de.Error() == "" {
		t.Fatalf("malformed DecodeError: %q %d %v", de.Reason, de.Len(), de)
	}
}

// fuzzRoundTrip checks what an accepted raw event must satisfy: the decoded
// payload re-marshals and re-validates to the same thing, and so does the
// normalized envelope and its payload.
func fuzzRoundTrip(t *testing.T, d *Decoder, kind Kind, raw []byte, payload any) {
	b1, err := json.Marshal(payload)
	if err != nil {
		t.Fatalf("marshal payload: %v", err)
	}
	var again any
	switch kind {
	case KindCRMAccess:
		again, _, err = d.DecodeCRMAccess(b1)
	case KindOutbound:
		again, _, err = d.DecodeOutbound(b1)
	}
	if err != nil {
		t.Fatalf("re-marshaled payload rejected: %v\n%s", err, b1)
	}
	if b2, _ := json.Marshal(again); !bytes.Equal(b1, b2) {
		t.Fatalf("payload not stable:\n%s\n%s", b1, b2)
	}

	e, err := d.DecodeRaw(kind, raw, Source{Topic: "t"}, testNow)
	if err != nil {
		t.Fatalf("DecodeRaw rejected what the kind decoder accepted: %v", err)
	}
	env, err := MarshalEvent(e)
	if err != nil {
		t.Fatalf("MarshalEvent: %v", err)
	}
	back, err := UnmarshalEvent(env)
	if err != nil {
		t.Fatalf("UnmarshalEvent: %v\n%s", err, env)
	}
	if env2, _ := MarshalEvent(back); !bytes.Equal(env, env2) {
		t.Fatalf("envelope not stable:\n%s\n%s", env, env2)
	}
	// The normalized payload is still valid.
	var p any = e.CRM
	if kind == KindOutbound {
		p = e.Outbound
	}
	nb, _ := json.Marshal(p)
	switch kind {
	case KindCRMAccess:
		_, _, err = d.DecodeCRMAccess(nb)
	case KindOutbound:
		_, _, err = d.DecodeOutbound(nb)
	}
	if err != nil {
		t.Fatalf("normalized payload rejected: %v\n%s", err, nb)
	}
}

func FuzzDecodeCRMAccess(f *testing.F) {
	addSeeds(f, "crm_access.", crm, "{}", "[]", `{"a":1,"a":2}`, "\"\xff\"", `"\ud800"`)
	d := newTestDecoder(f, Limits{MaxTextBytes: 64})
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, _, err := d.DecodeCRMAccess(raw)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		fuzzRoundTrip(t, d, KindCRMAccess, raw, c)
	})
}

func FuzzDecodeOutbound(f *testing.F) {
	addSeeds(f, "outbound.", outbound, "{}", `{"channel":"email","channel":"usb"}`, "\"jo\xffhn\"")
	d := newTestDecoder(f, Limits{MaxTextBytes: 64})
	f.Fuzz(func(t *testing.T, raw []byte) {
		o, _, err := d.DecodeOutbound(raw)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		fuzzRoundTrip(t, d, KindOutbound, raw, o)
	})
}

func FuzzUnmarshalEvent(f *testing.F) {
	d := newTestDecoder(f, Limits{})
	files, _ := filepath.Glob(filepath.Join(examplesDir, "*.json"))
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		e, err := d.DecodeRaw(kindOf(file), raw, Source{Topic: "raw", Offset: 1}, testNow)
		if err != nil {
			f.Fatal(err)
		}
		b, err := MarshalEvent(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"kind":"crm_access"}`))
	f.Add([]byte(`{"kind":"outbound","outbound":{},"crm":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := UnmarshalEvent(b)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		env, err := MarshalEvent(e)
		if err != nil {
			t.Fatalf("accepted event does not marshal: %v", err)
		}
		back, err := UnmarshalEvent(env)
		if err != nil {
			t.Fatalf("re-marshaled event rejected: %v\n%s", err, env)
		}
		if env2, _ := MarshalEvent(back); !bytes.Equal(env, env2) {
			t.Fatalf("not stable:\n%s\n%s", env, env2)
		}
	})
}
