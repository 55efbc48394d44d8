package event

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestNormalizeCRM(t *testing.T) {
	d := newTestDecoder(t, Limits{})
	src := Source{Topic: "raw.crm", Partition: 2, Offset: 99}
	doc := strings.Replace(crm, `"2025-03-14T09:26:53Z"`, `"2025-03-14T10:26:53+01:00"`, 1)
	e, err := d.DecodeRaw(KindCRMAccess, []byte(doc), src, testNow.In(time.FixedZone("X", 3600)))
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	if e.Kind != KindCRMAccess || e.EventID != "e-1" || e.Time != want || e.CRM.Time != want || e.Source != src || e.IngestedAt != testNow {
		t.Errorf("envelope %+v", e)
	}
	if e.Actor.Email != "jane@example.com" || e.Actor != e.CRM.Actor {
		t.Errorf("actor %+v / %+v", e.Actor, e.CRM.Actor)
	}
	if !reflect.DeepEqual(e.CRM.Records.IDs, []string{"c-1", "c-2"}) || e.CRM.Records.Count != 2 {
		t.Errorf("records %+v", e.CRM.Records)
	}

	// count absent (0) becomes the number of ids.
	doc = strings.Replace(crm, `,"count":2`, ``, 1)
	e, err = d.DecodeRaw(KindCRMAccess, []byte(doc), src, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if e.CRM.Records.Count != 2 {
		t.Errorf("count = %d, want 2", e.CRM.Records.Count)
	}
}

func TestNormalizeOutbound(t *testing.T) {
	d := newTestDecoder(t, Limits{MaxTextBytes: 10})
	doc := strings.Replace(outbound, `"recipients":["a@example.com"]`, `"recipients":["B@Example.COM","a@other.example","c@example.com"],"host":"MX.Example.com"`, 1)
	doc = strings.Replace(doc, `"content":{"size":10,"text":"TEXT"}`, `"content":{"size":10,"text":"ab€€€€","sha256":"`+strings.Repeat("AB", 32)+`"},`+
		`"attachments":[{"text":"short"},{"text":"0123456789x","truncated":false}]`, 1) // body: 2 + 4×3 bytes
	e, err := d.DecodeRaw(KindOutbound, []byte(doc), Source{}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	o := e.Outbound
	if !reflect.DeepEqual(o.Destination.Recipients, []string{"b@example.com", "a@other.example", "c@example.com"}) {
		t.Errorf("recipients %q", o.Destination.Recipients)
	}
	if !reflect.DeepEqual(o.Destination.Domains, []string{"example.com", "other.example"}) {
		t.Errorf("domains %q", o.Destination.Domains)
	}
	if o.Destination.Host != "mx.example.com" || o.Content.SHA256 != strings.Repeat("ab", 32) {
		t.Errorf("host %q sha %q", o.Destination.Host, o.Content.SHA256)
	}
	if o.Content.Text != "ab€€" || !o.Content.Truncated || !utf8.ValidString(o.Content.Text) {
		t.Errorf("content %+v", o.Content)
	}
	if a := o.Attachments; a[0].Text != "short" || a[0].Truncated || a[1].Text != "0123456789" || !a[1].Truncated {
		t.Errorf("attachments %+v", a)
	}

	// Given domains are canonicalized, not replaced.
	doc = strings.Replace(outbound, `"recipients":["a@example.com"]`, `"recipients":["a@example.com","b@Example.com"],"domains":["EXAMPLE.COM","example.com"]`, 1)
	e, err = d.DecodeRaw(KindOutbound, []byte(doc), Source{}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e.Outbound.Destination.Domains, []string{"example.com"}) {
		t.Errorf("domains %q", e.Outbound.Destination.Domains)
	}
}

func TestNormalizeIdempotent(t *testing.T) {
	d := newTestDecoder(t, Limits{MaxTextBytes: 16})
	for _, name := range []string{"crm_access.export.json", "outbound.email.json", "outbound.upload.json"} {
		e, err := d.DecodeRaw(kindOf(name), readExample(t, name), Source{}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		once := mustMarshal(t, e)
		if err := Normalize(e, testNow, d.Limits()); err != nil {
			t.Fatal(err)
		}
		if twice := mustMarshal(t, e); string(once) != string(twice) {
			t.Errorf("%s: not idempotent:\n%s\n%s", name, once, twice)
		}
	}
}

func TestNormalizeNeedsOnePayload(t *testing.T) {
	for name, e := range map[string]*Event{
		"none":     {},
		"both":     {CRM: &CRMAccess{}, Outbound: &Outbound{}},
		"mismatch": {Kind: KindOutbound, CRM: &CRMAccess{}},
	} {
		err := Normalize(e, testNow, Limits{})
		if reasonOf(err) != ReasonUnknownKind {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCapText(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc"},
		{"a€", 3, "a"},
		{"a€", 4, "a€"},
		{"€", 2, ""},
		{"😀x", 4, "😀"},
	} {
		if got := capText(c.in, c.n); got != c.want {
			t.Errorf("capText(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

// TestNormalizedPayloadRevalidates covers inputs whose naive normalization
// would produce an invalid payload.
func TestNormalizedPayloadRevalidates(t *testing.T) {
	d := newTestDecoder(t, Limits{MaxTextBytes: 5})
	for name, doc := range map[string]string{
		"address literals": strings.Replace(outbound, `"a@example.com"`, `"a@[192.0.2.1]","B@[IPv6:2001:DB8::1]","c@Example.com."`, 1),
		"quoted local":     strings.Replace(outbound, `"a@example.com"`, `"\"İSTANBUL K\"@example.com"`, 1),
		"given domains":    strings.Replace(outbound, `"a@example.com"]`, `"a@example.com","b@[192.0.2.1]"],"domains":["Example.COM."]`, 1),
		"text cut":         strings.Replace(outbound, `"TEXT"`, `"€€€"`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			e, err := d.DecodeRaw(KindOutbound, []byte(doc), Source{}, testNow)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(e.Outbound)
			if _, _, err := d.DecodeOutbound(b); err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
		})
	}
	e, err := d.DecodeRaw(KindOutbound, []byte(strings.Replace(outbound, `"a@example.com"`, `"a@[192.0.2.1]","B@[IPv6:2001:DB8::1]","c@Example.com."`, 1)), Source{}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if dst := e.Outbound.Destination; !reflect.DeepEqual(dst.Recipients, []string{"a@[192.0.2.1]", "b@[IPv6:2001:DB8::1]", "c@example.com."}) ||
		!reflect.DeepEqual(dst.Domains, []string{"example.com"}) {
		t.Errorf("destination %+v", dst)
	}
}

func TestTimeOutOfRangeInUTC(t *testing.T) {
	d := newTestDecoder(t, Limits{})
	for _, ts := range []string{"9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00"} {
		_, _, err := d.DecodeCRMAccess([]byte(strings.Replace(crm, "2025-03-14T09:26:53Z", ts, 1)))
		if reasonOf(err) != ReasonSemantic || !strings.Contains(err.Error(), "/time: semantic: out of range") {
			t.Errorf("%s: %v", ts, err)
		}
	}
}
