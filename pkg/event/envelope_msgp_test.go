package event

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// genEvent builds a pseudo-random normalized-looking Event that exercises
// every field of the envelope: both kinds, nil, empty and filled slices,
// a nil, empty and filled device, attachments, zero and non-zero times in
// UTC or a fixed offset (monotonic-free, as times read from JSON are).
func genEvent(r *rand.Rand) *Event {
	str := func() string {
		switch r.IntN(6) {
		case 0:
			return ""
		case 1:
			return "Jane.Doe@example.com <b>&</b> \u2028 ü 😀"
		default:
			b := make([]byte, r.IntN(24))
			for i := range b {
				b[i] = byte(' ' + r.IntN(95))
			}
			return string(b)
		}
	}
	strs := func() []string {
		switch r.IntN(4) {
		case 0:
			return nil
		case 1:
			return []string{}
		default:
			s := make([]string, 1+r.IntN(5))
			for i := range s {
				s[i] = str()
			}
			return s
		}
	}
	tm := func() time.Time {
		switch r.IntN(5) {
		case 0:
			return time.Time{}
		case 1: // a non-zero offset: JSON reads a zero one as UTC
			off := (r.IntN(28) - 14) * 1800
			if off == 0 {
				off = 45 * 60
			}
			return time.Unix(r.Int64N(1<<34)-1<<33, r.Int64N(1e9)).In(time.FixedZone("", off))
		default:
			return time.Unix(r.Int64N(1<<32), r.Int64N(1e9)).UTC()
		}
	}
	actor := func() Actor { return Actor{UID: str(), Email: str(), Department: str(), Role: str()} }
	content := func() Content {
		return Content{FileName: str(), MimeType: str(), Size: r.Int64() - r.Int64(), SHA256: str(), Text: str(), Truncated: r.IntN(2) == 0}
	}
	e := &Event{
		EventID:    str(),
		Time:       tm(),
		Actor:      actor(),
		Source:     Source{Topic: str(), Partition: r.IntN(1 << 20), Offset: r.Int64() - r.Int64()},
		Quality:    Quality{InvalidUTF8Bytes: r.IntN(3) * r.IntN(1<<20)},
		IngestedAt: tm(),
	}
	if r.IntN(2) == 0 {
		e.Kind = KindCRMAccess
		e.CRM = &CRMAccess{
			SchemaVersion: r.IntN(3), ClassUID: ClassAPIActivity, ActivityID: r.IntN(9) - 1,
			EventID: e.EventID, Time: tm(), Actor: actor(), Action: str(),
			Records:  Records{IDs: strs(), Count: r.Int() - r.Int(), Fields: strs(), Segment: str(), Region: str()},
			TicketID: str(), SrcEndpoint: Endpoint{IP: str()}, AppName: str(),
		}
	} else {
		e.Kind = KindOutbound
		o := &Outbound{
			SchemaVersion: r.IntN(3), ClassUID: ClassEmailActivity, ActivityID: r.IntN(9) - 1,
			EventID: e.EventID, Time: tm(), Actor: actor(), Channel: str(), Subject: str(),
			Destination: Destination{Recipients: strs(), Domains: strs(), URL: str(), Host: str(), Application: str()},
			Content:     content(), SrcEndpoint: Endpoint{IP: str()},
		}
		switch r.IntN(3) {
		case 0:
			o.Destination.Device = &Device{}
		case 1:
			o.Destination.Device = &Device{Vendor: str(), Product: str(), Serial: str()}
		}
		switch r.IntN(3) {
		case 0:
			o.Attachments = []Content{}
		case 1:
			o.Attachments = []Content{content(), content()}
		}
		e.Outbound = o
	}
	return e
}

// asJSONReads returns a copy of e as the JSON envelope reads it back: an
// empty slice in an omitempty field becomes nil. Everything else survives.
func asJSONReads(e *Event) *Event {
	c := *e
	if e.CRM != nil {
		crm := *e.CRM
		crm.Records.Fields = omitEmpty(crm.Records.Fields)
		c.CRM = &crm
	}
	if e.Outbound != nil {
		o := *e.Outbound
		o.Destination.Recipients = omitEmpty(o.Destination.Recipients)
		o.Destination.Domains = omitEmpty(o.Destination.Domains)
		o.Attachments = omitEmpty(o.Attachments)
		c.Outbound = &o
	}
	return &c
}

// checkDifferential: the binary round trip, the JSON round trip and the
// original (as JSON can carry it) are deeply equal, and re-marshaling the
// decoded event gives the same bytes.
func checkDifferential(t *testing.T, e *Event) {
	t.Helper()
	bin, err := MarshalEvent(e)
	if err != nil {
		t.Fatalf("MarshalEvent: %v", err)
	}
	if !isBinaryEnvelope(bin) || bin[1] != envelopeVersion {
		t.Fatalf("MarshalEvent did not write the binary envelope: % x", bin[:min(len(bin), 8)])
	}
	fromBin, err := UnmarshalEvent(bin)
	if err != nil {
		t.Fatalf("UnmarshalEvent(binary): %v", err)
	}
	want := asJSONReads(e)
	if !reflect.DeepEqual(fromBin, want) {
		t.Fatalf("binary round trip differs:\n got %#v %#v %#v\nwant %#v %#v %#v", fromBin, fromBin.CRM, fromBin.Outbound, want, want.CRM, want.Outbound)
	}
	if again, err := MarshalEvent(fromBin); err != nil || !bytes.Equal(again, bin) {
		t.Fatalf("re-marshal differs (%v)", err)
	}
	js, err := marshalEventJSON(e)
	if err != nil {
		t.Fatalf("marshalEventJSON: %v", err)
	}
	fromJSON, err := UnmarshalEvent(js)
	if err != nil {
		t.Fatalf("UnmarshalEvent(JSON): %v", err)
	}
	if !reflect.DeepEqual(fromBin, fromJSON) {
		t.Fatalf("binary and JSON round trips differ:\nbinary %#v\n  JSON %#v", fromBin, fromJSON)
	}
}

func TestEnvelopeDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 2))
	for range 3000 {
		checkDifferential(t, genEvent(r))
	}
	// Every example, through the normalizer's path.
	d := newTestDecoder(t, Limits{})
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.json"))
	if err != nil || len(files) < 4 {
		t.Fatalf("examples: %v %d", err, len(files))
	}
	for _, file := range files {
		kind := KindOutbound
		if strings.HasPrefix(filepath.Base(file), "crm_access") {
			kind = KindCRMAccess
		}
		e, err := d.DecodeRaw(kind, readExample(t, filepath.Base(file)), Source{Topic: "raw", Partition: 2, Offset: 9}, testNow)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		checkDifferential(t, e)
	}
}

// TestEnvelopeKeepsExactly: what the binary form keeps that matters to the
// differential: nil and empty IDs stay apart, empty omitempty slices read
// back nil (as from JSON), a zero time stays zero, an offset stays.
func TestEnvelopeKeepsExactly(t *testing.T) {
	berlin := time.FixedZone("", 3600)
	base := func() *Event {
		return &Event{Kind: KindCRMAccess, EventID: "e", CRM: &CRMAccess{EventID: "e", Time: time.Date(2025, 3, 14, 9, 41, 7, 120, berlin)}}
	}
	tests := []struct {
		name  string
		edit  func(*Event)
		check func(*Event) bool
	}{
		{"nil ids", func(e *Event) { e.CRM.Records.IDs = nil }, func(e *Event) bool { return e.CRM.Records.IDs == nil }},
		{"empty ids", func(e *Event) { e.CRM.Records.IDs = []string{} }, func(e *Event) bool { return e.CRM.Records.IDs != nil && len(e.CRM.Records.IDs) == 0 }},
		{"empty fields", func(e *Event) { e.CRM.Records.Fields = []string{} }, func(e *Event) bool { return e.CRM.Records.Fields == nil }},
		{"zero time", func(e *Event) {}, func(e *Event) bool { return e.Time == (time.Time{}) && e.IngestedAt.IsZero() }},
		{"offset", func(e *Event) {}, func(e *Event) bool {
			_, off := e.CRM.Time.Zone()
			return off == 3600 && e.CRM.Time.Nanosecond() == 120
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := base()
			tt.edit(e)
			back, err := UnmarshalEvent(mustMarshal(t, e))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(back) {
				t.Errorf("got %#v", back.CRM)
			}
			checkDifferential(t, e)
		})
	}
}

func TestEnvelopeBinaryErrors(t *testing.T) {
	const secret = "jane.secret@example.com"
	e := &Event{Kind: KindOutbound, EventID: "m-1", Actor: Actor{UID: secret},
		Outbound: &Outbound{EventID: "m-1", Subject: secret, Content: Content{Text: secret}}}
	b := mustMarshal(t, e)
	binErr := func(name string, in []byte) {
		t.Helper()
		_, err := UnmarshalEvent(in)
		var de *DecodeError
		if !errors.As(err, &de) || de.Reason != ReasonInvalidBinary && de.Reason != ReasonSemantic && de.Reason != ReasonUnknownKind {
			t.Errorf("%s: want a DecodeError, got %v", name, err)
			return
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "m-1") {
			t.Errorf("%s: error shows a value: %v", name, err)
		}
	}
	// Every strict prefix is truncated.
	for i := 1; i < len(b); i++ {
		binErr("prefix", b[:i])
	}
	binErr("trailing byte", append(bytes.Clone(b), 0))
	binErr("unknown version", append([]byte{envelopeMagic, envelopeVersion + 1}, b[2:]...))
	// A huge array length is refused before anything is allocated.
	binErr("huge array", []byte{envelopeMagic, envelopeVersion, 0xdd, 0xff, 0xff, 0xff, 0xff})
	var rec wireRecords
	if _, err := rec.UnmarshalMsg([]byte{0x95, 0xdd, 0xff, 0xff, 0xff, 0xff}); wireErrorDetail(err) != "array longer than the binary envelope allows" || rec.IDs != nil {
		t.Errorf("a 2^32-entry list: %v", err)
	}
	// Every single-byte corruption errors or decodes to an Event that
	// round-trips; it never panics.
	for i := 2; i < len(b); i++ {
		for _, x := range []byte{0x00, 0xff, 0xc0, 0xc1, 0xdd, 0x91, 0x7f, b[i] ^ 0x20} {
			c := bytes.Clone(b)
			c[i] = x
			checkDecodes(t, c)
		}
	}
	// The envelope checks apply to the binary form too.
	w := new(wireEvent)
	if _, err := w.UnmarshalMsg(b[2:]); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*wireEvent){
		"kind without payload": func(w *wireEvent) { w.Kind = string(KindCRMAccess) },
		"unknown kind":         func(w *wireEvent) { w.Kind = "print" },
		"two payloads":         func(w *wireEvent) { w.CRM = &wireCRM{EventID: "m-1"} },
		"event id":             func(w *wireEvent) { w.EventID = "other" },
	} {
		c := *w
		edit(&c)
		out, err := c.MarshalMsg([]byte{envelopeMagic, envelopeVersion})
		if err != nil {
			t.Fatal(err)
		}
		binErr(name, out)
	}
}

// checkDecodes: UnmarshalEvent does not panic; what it accepts
// re-marshals and decodes to the same Event.
func checkDecodes(t *testing.T, b []byte) {
	t.Helper()
	e, err := UnmarshalEvent(b)
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("not a *DecodeError: %T %v", err, err)
		}
		return
	}
	b2, err := MarshalEvent(e)
	if err != nil {
		t.Fatalf("accepted event does not marshal: %v", err)
	}
	e2, err := UnmarshalEvent(b2)
	if err != nil || !reflect.DeepEqual(e, e2) {
		t.Fatalf("accepted event does not round-trip: %v", err)
	}
}

// TestEnvelopeArrayLimit: the generated decoder's array limit (the
// //msgp:limit directive) admits maxWireArray entries, and a longer list is
// written as JSON, which reads back whole.
func TestEnvelopeArrayLimit(t *testing.T) {
	e := &Event{Kind: KindCRMAccess, EventID: "e", CRM: &CRMAccess{EventID: "e",
		Records: Records{IDs: make([]string, maxWireArray)}}}
	b := mustMarshal(t, e)
	if !isBinaryEnvelope(b) {
		t.Fatal("a list of maxWireArray entries was not written binary")
	}
	if back, err := UnmarshalEvent(b); err != nil || !reflect.DeepEqual(back, e) {
		t.Fatalf("maxWireArray entries do not round-trip: %v", err)
	}
	e.CRM.Records.IDs = append(e.CRM.Records.IDs, "one more")
	b = mustMarshal(t, e)
	if isBinaryEnvelope(b) || b[0] != '{' {
		t.Fatalf("want the JSON form, got % x", b[:8])
	}
	back, err := UnmarshalEvent(b)
	if err != nil || !reflect.DeepEqual(back, e) {
		t.Fatalf("JSON fallback does not round-trip: %v", err)
	}
}

func FuzzEnvelopeBinary(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 7))
	for range 20 {
		b, err := MarshalEvent(genEvent(r))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{envelopeMagic})
	f.Add([]byte{envelopeMagic, envelopeVersion, 0x9b})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecodes(t, b)
	})
}

// FuzzEnvelopeDifferential builds an Event from fuzzed values and checks
// binary round trip == JSON round trip == original.
func FuzzEnvelopeDifferential(f *testing.F) {
	f.Add(true, "u-1", "a@example.com", "text", int64(1741945267), int32(120), int32(0), 2, 1, -1, int64(5))
	f.Add(false, "", "\u2028<b>", "ü", int64(-62135596800), int32(0), int32(-3600), 0, 0, 0, int64(-1))
	f.Fuzz(func(t *testing.T, crm bool, s1, s2, s3 string, sec int64, nsec, off int32, n1, n2, n3 int, i64 int64) {
		// JSON (encoding/json) replaces invalid UTF-8; normalized events
		// have none. RFC 3339 needs a year in [0, 9999] and an offset
		// within ±24 h; JSON has minute precision for offsets.
		valid := utf8.ValidString(s1) && utf8.ValidString(s2) && utf8.ValidString(s3)
		sec = sec % (253402300799 + 62135596800)
		if sec < 0 {
			sec = -sec
		}
		sec -= 62135596800
		nsec = int32(uint32(nsec) % 1e9)
		off = off % (24 * 3600) / 60 * 60
		tm := time.Unix(sec, int64(nsec)).UTC()
		if off != 0 {
			tm = tm.In(time.FixedZone("", int(off)))
		}
		if y := tm.Year(); y < 0 || y > 9999 {
			return
		}
		list := func(n int) []string {
			switch {
			case n < 0:
				return nil
			case n%5 == 0:
				return []string{}
			}
			return []string{s1, s2, s3}[:1+n%3]
		}
		e := &Event{EventID: s1, Time: tm, Actor: Actor{UID: s1, Email: s2, Department: s3},
			Source: Source{Topic: s3, Partition: n1, Offset: i64}, Quality: Quality{InvalidUTF8Bytes: n2}, IngestedAt: tm}
		if crm {
			e.Kind = KindCRMAccess
			e.CRM = &CRMAccess{SchemaVersion: n1, ClassUID: n2, ActivityID: n3, EventID: s1, Time: tm, Actor: e.Actor,
				Action: s2, Records: Records{IDs: list(n1), Count: n3, Fields: list(n2), Segment: s3}, TicketID: s2}
		} else {
			e.Kind = KindOutbound
			e.Outbound = &Outbound{EventID: s1, Time: tm, Channel: s3, Subject: s2,
				Destination: Destination{Recipients: list(n1), Domains: list(n2)},
				Content:     Content{Text: s3, Size: i64, Truncated: n3%2 == 0}}
			if n3%3 == 0 {
				e.Outbound.Destination.Device = &Device{Serial: s1}
			}
			if n3 > 0 {
				e.Outbound.Attachments = []Content{{FileName: s2, Size: int64(n3)}}
			}
		}
		if valid {
			checkDifferential(t, e)
			return
		}
		// The binary form keeps bytes JSON would replace.
		back, err := UnmarshalEvent(mustMarshal(t, e))
		if err != nil || !reflect.DeepEqual(back, asJSONReads(e)) {
			t.Fatalf("binary round trip differs: %v", err)
		}
	})
}

// BenchmarkMarshalEventJSON is MarshalEvent's former (JSON) form, for
// comparison with BenchmarkMarshalEvent.
func BenchmarkMarshalEventJSON(b *testing.B) {
	d := newTestDecoder(b, Limits{})
	e, err := d.DecodeRaw(KindOutbound, []byte(benchOutbound), Source{}, testNow)
	if err != nil {
		b.Fatal(err)
	}
	js, err := marshalEventJSON(e)
	if err != nil {
		b.Fatal(err)
	}
	bin := mustMarshal(b, e)
	b.ReportMetric(float64(len(js)), "json-bytes")
	b.ReportMetric(float64(len(bin)), "binary-bytes")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := marshalEventJSON(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshalEventJSON decodes the JSON form an older normalizer
// wrote, for comparison with BenchmarkUnmarshalEvent.
func BenchmarkUnmarshalEventJSON(b *testing.B) {
	d := newTestDecoder(b, Limits{})
	e, err := d.DecodeRaw(KindOutbound, []byte(benchOutbound), Source{Topic: "raw.outbound", Partition: 3, Offset: 12345}, testNow)
	if err != nil {
		b.Fatal(err)
	}
	js, err := marshalEventJSON(e)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UnmarshalEvent(js); err != nil {
			b.Fatal(err)
		}
	}
}
