package chsink

import (
	"strings"
	"testing"
)

func TestDecodeFinding(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"valid", `{"finding_id":"f","rule_id":"r","actor_uid":"u","revision":2}`, ""},
		{"not json", `{"finding_id":`, "decode finding"},
		{"missing id", `{"rule_id":"r","actor_uid":"u"}`, "lacks"},
		{"missing actor", `{"finding_id":"f","rule_id":"r"}`, "lacks"},
		{"oversized", `{"finding_id":"` + strings.Repeat("x", MaxFindingBytes) + `"}`, "exceeds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := decodeFinding([]byte(tc.in))
			if tc.wantErr == "" {
				if err != nil || f.FindingID != "f" || f.Revision != 2 {
					t.Fatalf("decodeFinding = %+v, %v", f, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

func FuzzDecodeFinding(f *testing.F) {
	f.Add([]byte(`{"finding_id":"f","rule_id":"r","actor_uid":"u"}`))
	f.Add([]byte(`{"pii_counts":{"EMAIL_ADDRESS":3},"evidence":[{"type":"x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fd, err := decodeFinding(b)
		if err == nil && (fd.FindingID == "" || fd.RuleID == "" || fd.ActorUID == "") {
			t.Fatalf("accepted a finding without identity: %+v", fd)
		}
	})
}
