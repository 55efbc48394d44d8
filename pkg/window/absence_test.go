package window

import (
	"testing"
	"time"
)

func TestAbsence(t *testing.T) {
	type op struct {
		kind string // "expect", "satisfy", "expired"
		at   float64
		ref  string
		want []string // refs from Expired
	}
	tests := []struct {
		name    string
		within  time.Duration
		max     int
		ops     []op
		pending int
	}{
		{"A followed by B is satisfied", 10 * time.Minute, 0, []op{
			{kind: "expect", at: 0, ref: "a"}, {kind: "satisfy", at: 5}, {kind: "expired", at: 60},
		}, 0},
		{"A not followed by B expires", 10 * time.Minute, 0, []op{
			{kind: "expect", at: 0, ref: "a"}, {kind: "satisfy", at: 11},
			{kind: "expired", at: 10},                                 // deadline 10 not before the watermark
			{kind: "expired", at: 10 + 1.0/60e9, want: []string{"a"}}, // now it is
		}, 0},
		{"B exactly at the deadline satisfies", 10 * time.Minute, 0, []op{
			{kind: "expect", at: 0, ref: "a"}, {kind: "satisfy", at: 10}, {kind: "expired", at: 60},
		}, 0},
		{"B at A's time satisfies, B before A does not", 10 * time.Minute, 0, []op{
			{kind: "satisfy", at: 1}, {kind: "expect", at: 2, ref: "a2"}, {kind: "expect", at: 3, ref: "a3"},
			{kind: "satisfy", at: 2},
			{kind: "expired", at: 60, want: []string{"a3"}},
		}, 0},
		{"late A is satisfied by a B that arrived earlier", 10 * time.Minute, 0, []op{
			{kind: "satisfy", at: 8}, {kind: "expect", at: 5, ref: "late"}, {kind: "expired", at: 60},
		}, 0},
		{"late B satisfies pending As it covers only", 10 * time.Minute, 0, []op{
			{kind: "expect", at: 0, ref: "a0"}, {kind: "expect", at: 6, ref: "a6"}, {kind: "expect", at: 20, ref: "a20"},
			{kind: "satisfy", at: 7}, // covers a0 (deadline 10) and a6
			{kind: "expired", at: 100, want: []string{"a20"}},
		}, 0},
		{"expired in time order, the rest stays pending", 10 * time.Minute, 0, []op{
			{kind: "expect", at: 3, ref: "a3"}, {kind: "expect", at: 1, ref: "a1"}, {kind: "expect", at: 30, ref: "a30"},
			{kind: "expired", at: 20, want: []string{"a1", "a3"}},
		}, 1},
		{"A older than the watermark is ignored", 10 * time.Minute, 0, []op{
			{kind: "expired", at: 50}, {kind: "expect", at: 49, ref: "too-late"}, {kind: "expect", at: 50, ref: "ok"},
		}, 1},
		{"bounded: the most recent As are kept", 10 * time.Minute, 2, []op{
			{kind: "expect", at: 1, ref: "a1"}, {kind: "expect", at: 2, ref: "a2"}, {kind: "expect", at: 3, ref: "a3"},
			{kind: "expect", at: 0, ref: "a0"},
			{kind: "expired", at: 60, want: []string{"a2", "a3"}},
		}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAbsence(tc.within, tc.max)
			for k, o := range tc.ops {
				switch o.kind {
				case "expect":
					a.Expect(mins(o.at), o.ref)
				case "satisfy":
					a.Satisfy(mins(o.at))
				default:
					got := a.Expired(mins(o.at))
					var refs []string
					for _, p := range got {
						refs = append(refs, p.Ref)
						if !p.Deadline.Equal(p.At.Add(tc.within)) {
							t.Fatalf("op %d: deadline %v for %v", k, p.Deadline, p.At)
						}
					}
					if len(refs) != len(o.want) {
						t.Fatalf("op %d: Expired = %v, want %v", k, refs, o.want)
					}
					for i := range refs {
						if refs[i] != o.want[i] {
							t.Fatalf("op %d: Expired = %v, want %v", k, refs, o.want)
						}
					}
				}
			}
			if a.Len() != tc.pending {
				t.Fatalf("Len() = %d, want %d", a.Len(), tc.pending)
			}
		})
	}
}

func TestAbsenceRemembersFewBs(t *testing.T) {
	a := NewAbsence(10*time.Minute, 0)
	for i := range 10000 {
		now := t0.Add(time.Duration(i) * time.Second)
		a.Satisfy(now)
		a.Expired(now.Add(-5 * time.Minute)) // the engine's watermark, 5 min lateness
		if len(a.seen) > 3 {
			t.Fatalf("%d B times kept for a dense stream, want <= 3", len(a.seen))
		}
	}
	// Late A just before the last B is still satisfied.
	a.Expect(t0.Add(9990*time.Second), "late")
	a.Expect(t0.Add(9800*time.Second), "covered-by-a-later-B")
	if a.Len() != 0 {
		t.Fatalf("Len() = %d, want 0", a.Len())
	}
	for i := range 100 {
		a.Satisfy(t0.Add(time.Duration(i) * time.Hour))
	}
	if len(a.seen) > maxSeen {
		t.Fatalf("%d B times kept, want <= %d", len(a.seen), maxSeen)
	}
}
