//go:build !race

// Allocation counts differ under the race detector, so this file is left
// out of -race builds rather than skipping.

package rules

import (
	"testing"
)

func TestEvalAllocs(t *testing.T) {
	env := NewEnv()
	env.SetEvent(crmEvent())
	m := NewVM()
	for _, src := range []string{
		`kind == "crm_access" && crm.ticket_id == "" && crm.action == "export"`,
		`kind == "crm_access" && crm.action == "export" && (hour < 7 || hour >= 20)`,
		`kind == "outbound" && outbound.external && pii.total >= 10`,
	} {
		x := mustExpr(t, src, ResultBool)
		if n := testing.AllocsPerRun(200, func() { _, _ = x.Bool(m, env) }); n != 0 {
			t.Errorf("%s: %v allocs", src, n)
		}
	}
	ids := mustExpr(t, "crm.record_ids", ResultStrings)
	buf := make([]string, 0, 16)
	if n := testing.AllocsPerRun(200, func() { buf, _ = ids.Strings(m, env, buf[:0]) }); n != 0 {
		t.Errorf("Strings: %v allocs", n)
	}
	uid := mustExpr(t, "actor.uid", ResultString)
	if n := testing.AllocsPerRun(200, func() { _, _ = uid.Text(m, env) }); n != 0 {
		t.Errorf("Text: %v allocs", n)
	}
}
