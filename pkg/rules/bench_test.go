package rules

import (
	"strings"
	"testing"
)

// Typical expressions of the default pack.
var benchExprs = []struct {
	name, src string
	want      ResultKind
}{
	{"match_crm", `kind == "crm_access" && crm.ticket_id == "" && crm.action == "export"`, ResultBool},
	{"match_after_hours", `kind == "crm_access" && crm.action == "export" && (hour < 7 || hour >= 20)`, ResultBool},
	{"match_pii_external", `kind == "outbound" && outbound.external && pii.total >= 10`, ResultBool},
	{"match_personal_list", `kind == "outbound" && outbound.channel == "email" && (pii.total >= 3 || pii.edm_customers >= 1) && any(outbound.domains, # in lists.personal)`, ResultBool},
	{"match_regex", `actor.email matches "^[a-z.]+@corp\\.example$"`, ResultBool},
	{"group_by_uid", `actor.uid`, ResultString},
	{"group_by_concat", `actor.uid + ":" + crm.region`, ResultString},
	{"value_bytes", `outbound.bytes`, ResultNumber},
	{"value_record_ids", `crm.record_ids`, ResultStrings},
}

func BenchmarkExpr(b *testing.B) {
	crm, out := crmEvent(), outboundEvent()
	for _, be := range benchExprs {
		b.Run(be.name, func(b *testing.B) {
			x := mustExpr(b, be.src, be.want)
			env := NewEnv()
			if strings.Contains(be.src, "outbound") {
				env.SetEvent(out)
				env.Outbound.External, env.PII.Total = true, 12
			} else {
				env.SetEvent(crm)
			}
			m := NewVM()
			buf := make([]string, 0, 16)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				switch be.want {
				case ResultBool:
					_, err = x.Bool(m, env)
				case ResultString:
					_, err = x.Text(m, env)
				case ResultNumber:
					_, err = x.Number(m, env)
				case ResultStrings:
					buf, err = x.Strings(m, env, buf[:0])
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkExprZeroEnv is match_crm over an Env not made by NewEnv: every
// field read is copied to the heap.
func BenchmarkExprZeroEnv(b *testing.B) {
	x := mustExpr(b, benchExprs[0].src, ResultBool)
	env := &Env{}
	env.SetEvent(crmEvent())
	m := NewVM()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.Bool(m, env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSetEvent(b *testing.B) {
	env := NewEnv()
	ev := outboundEvent()
	b.ReportAllocs()
	for b.Loop() {
		env.SetEvent(ev)
	}
}

// BenchmarkDefaultPackEvent evaluates match and group_by of every rule of
// the default pack (and the steps of sequences) for one CRM event.
func BenchmarkDefaultPackEvent(b *testing.B) {
	p, err := LoadDefault()
	if err != nil {
		b.Fatal(err)
	}
	env := NewEnv()
	ev := crmEvent()
	m := NewVM()
	b.ReportAllocs()
	for b.Loop() {
		env.SetEvent(ev)
		for _, r := range p.Rules {
			if _, err := r.Match.Bool(m, env); err != nil {
				b.Fatal(err)
			}
			if _, err := r.GroupBy.Text(m, env); err != nil {
				b.Fatal(err)
			}
			for _, s := range r.Window.Steps {
				_, _ = s.Match.Bool(m, env)
			}
		}
	}
}

func BenchmarkLoadDefault(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadDefault(); err != nil {
			b.Fatal(err)
		}
	}
}
