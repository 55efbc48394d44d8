package detect

import (
	"testing"

	"github.com/leakline/leakline/pkg/rules"
)

// TestKindGate: only a leading `kind == "…"` operand of a chain of && gates
// an expression; anything else (an or, a later operand, a let, a negation)
// admits every event.
func TestKindGate(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want kindGate
	}{
		{`kind == "crm_access"`, "crm_access"},
		{`"outbound" == kind`, "outbound"},
		{`kind == "crm_access" && crm.ticket_id == ""`, "crm_access"},
		{`kind == "outbound" && outbound.external && pii.total >= 10 && outbound.channel == "email"`, "outbound"},
		{`(kind == "outbound" and pii.total > 0) and outbound.external`, "outbound"},
		{`crm.ticket_id == "" && kind == "crm_access"`, ""}, // the first operand runs first: it may fail
		{`kind == "crm_access" || kind == "outbound"`, ""},
		{`kind != "outbound"`, ""},
		{`!(kind == "outbound")`, ""},
		{`let k = kind; k == "outbound"`, ""},
		{`kind == ""`, ""},
		{`hour < 7`, ""},
		{`kind ==`, ""}, // does not parse: no gate
	} {
		if got := gateOf(&rules.Expr{Source: tc.src}); got != tc.want {
			t.Errorf("gateOf(%q) = %q, want %q", tc.src, got, tc.want)
		}
	}
	if gateOf(nil) != "" {
		t.Error("a nil expression must admit every event")
	}
	if !kindGate("").admits("outbound") || !kindGate("outbound").admits("outbound") || kindGate("outbound").admits("crm_access") {
		t.Error("admits is wrong")
	}
}

// TestDefaultPackIsGated: the default pack's conditions are mostly gated
// by kind (what makes the prefilter worth having); a change to the pack
// that loses that shows up here.
func TestDefaultPackIsGated(t *testing.T) {
	p, err := rules.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	gated, total := 0, 0
	for _, r := range p.Rules {
		rs := newRuleState(r)
		for _, g := range append([]kindGate{rs.gates.match}, rs.gates.steps...) {
			total++
			if g != "" {
				gated++
			}
		}
	}
	if gated*2 < total {
		t.Fatalf("only %d of %d match conditions are gated by kind", gated, total)
	}
}

// TestIsActorUID: only the plain field read takes the engine's fast path.
func TestIsActorUID(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{"actor.uid", true},
		{" actor . uid ", true},
		{"actor?.uid", false},
		{"actor.email", false},
		{`actor.uid + ":" + crm.region`, false},
		{`actor["uid"]`, true}, // the same member access
		{"lower(actor.uid)", false},
		{"actor.", false},
	} {
		if got := isActorUID(&rules.Expr{Source: tc.src}); got != tc.want {
			t.Errorf("isActorUID(%q) = %v, want %v", tc.src, got, tc.want)
		}
	}
	p, err := rules.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range p.Rules {
		if isActorUID(r.GroupBy) {
			n++
		}
	}
	if n == 0 {
		t.Fatal("no default rule groups by actor.uid: the default group_by changed?")
	}
}
