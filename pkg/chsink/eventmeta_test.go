package chsink

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/event"
)

func TestDecodeEventMeta(t *testing.T) {
	at := time.Date(2026, 11, 2, 9, 30, 0, 123_000_000, time.UTC)
	valid, err := json.Marshal(event.Summary{
		EventID: "e1", Kind: "outbound", Time: at, ActorUID: "u1", Department: "sales",
		Channel: "email", Destination: "d***@example.net", Size: 42,
		PIICounts: map[string]uint32{"EMAIL_ADDRESS": 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	e, err := decodeEventMeta(valid)
	if err != nil {
		t.Fatal(err)
	}
	if e.EventID != "e1" || e.Kind != "outbound" || !e.Time.Equal(at) || e.ActorUID != "u1" || e.Department != "sales" ||
		e.Channel != "email" || e.Destination != "d***@example.net" || e.Size != 42 || e.PIICounts["EMAIL_ADDRESS"] != 3 {
		t.Fatalf("decodeEventMeta = %+v", e)
	}
	for name, tc := range map[string]struct{ in, wantErr string }{
		"not json":   {`{"event_id":`, "decode event metadata"},
		"no actor":   {`{"event_id":"e","kind":"crm_access","time":"2026-11-02T09:00:00Z"}`, "lacks"},
		"no time":    {`{"event_id":"e","kind":"crm_access","actor_uid":"u"}`, "lacks"},
		"no kind":    {`{"event_id":"e","actor_uid":"u","time":"2026-11-02T09:00:00Z"}`, "lacks"},
		"oversized":  {`{"event_id":"` + strings.Repeat("x", MaxEventMetaBytes) + `"}`, "exceeds"},
		"wrong type": {`{"event_id":"e","kind":"k","actor_uid":"u","time":"2026-11-02T09:00:00Z","size":-1}`, "decode event metadata"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decodeEventMeta([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

// FuzzDecodeEventMeta: the goccy/go-json fast path of decodeEventMeta
// accepts nothing encoding/json rejects and decodes what it accepts the
// same way.
func FuzzDecodeEventMeta(f *testing.F) {
	at := time.Date(2026, 11, 2, 9, 30, 0, 123_000_000, time.UTC)
	for _, s := range []event.Summary{
		{EventID: "e1", Kind: "outbound", Time: at, ActorUID: "u1", Department: "sales", Channel: "email",
			Destination: "d***@example.net, x***@corp.example", Size: 42, PIICounts: map[string]uint32{"EMAIL_ADDRESS": 3, "CREDIT_CARD": 1}},
		{EventID: "e2", Kind: "crm_access", Time: at.Add(time.Hour), ActorUID: "u-\u2028é", RecordCount: 500},
	} {
		b, err := json.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"event_id":"e","kind":"k","actor_uid":"u","time":"2026-11-02T09:00:00Z","size":-1}`))
	f.Add([]byte(`{"event_id":"e","KIND":"k","actor_uid":"u","time":"2026-11-02T09:00:00+01:00","pii_counts":{"A":1,"A":2}} `))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast, std event.Summary
		if fastUnmarshal(b, &fast) != nil {
			return // decoded again by encoding/json
		}
		if err := json.Unmarshal(b, &std); err != nil {
			t.Fatalf("goccy/go-json accepts what encoding/json rejects (%v): %q", err, b)
		}
		if !fast.Time.Equal(std.Time) {
			t.Fatalf("times differ: %v, %v", fast.Time, std.Time)
		}
		fast.Time, std.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(fast, std) {
			t.Fatalf("decoders differ on %q:\n%+v\n%+v", b, fast, std)
		}
	})
}
