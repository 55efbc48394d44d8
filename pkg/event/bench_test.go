package event

import (
	"testing"
)

// benchOutbound is a ~0.5 KB outbound email.
const benchOutbound = `{"schema_version":1,"class_uid":4009,"activity_id":1,"event_id":"mail-5d1e9b7c-0001",` +
	`"time":"2025-03-14T09:41:07.120Z","actor":{"uid":"u-10482","email_addr":"jane.doe@example.com","department":"Customer Support"},` +
	`"channel":"email","subject":"Customer details as requested",` +
	`"destination":{"recipients":["Jane.Private@Gmail.com","partner@supplier.example.org"]},` +
	`"content":{"mime_type":"text/plain","size":171,"text":"Hi, here is the customer you asked about: john.smith@example.com, ` +
	`card 4111 1111 1111 1111, exp 12/29. Please keep it to yourself."},"src_endpoint":{"ip":"10.20.30.40"}}`

func BenchmarkDecodeOutbound(b *testing.B) {
	d := newTestDecoder(b, Limits{})
	raw := []byte(benchOutbound)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := d.DecodeOutbound(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRawOutbound(b *testing.B) {
	d := newTestDecoder(b, Limits{})
	raw := []byte(benchOutbound)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.DecodeRaw(KindOutbound, raw, Source{}, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalEvent(b *testing.B) {
	d := newTestDecoder(b, Limits{})
	e, err := d.DecodeRaw(KindOutbound, []byte(benchOutbound), Source{Topic: "raw.outbound", Partition: 3, Offset: 12345}, testNow)
	if err != nil {
		b.Fatal(err)
	}
	env := mustMarshal(b, e)
	b.SetBytes(int64(len(env)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UnmarshalEvent(env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalEvent(b *testing.B) {
	d := newTestDecoder(b, Limits{})
	e, err := d.DecodeRaw(KindOutbound, []byte(benchOutbound), Source{}, testNow)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MarshalEvent(e); err != nil {
			b.Fatal(err)
		}
	}
}
