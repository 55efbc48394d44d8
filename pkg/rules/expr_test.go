package rules

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/event"
)

var testLists = map[string][]string{"personal": {"gmail.com", "yahoo.com"}, "vendors": {"vendor.example"}}

func mustExpr(t testing.TB, src string, want ResultKind) *Expr {
	t.Helper()
	x, errs := compileExpr(src, want, testLists)
	if errs != nil {
		t.Fatalf("%s: %v", src, errs)
	}
	return x
}

func crmEvent() *event.Event {
	return &event.Event{
		Kind: event.KindCRMAccess, EventID: "e-1", Time: time.Date(2026, 11, 7, 22, 15, 0, 0, time.FixedZone("x", 3600)),
		Actor: event.Actor{UID: "u-1", Email: "jane@corp.example", Department: "support", Role: "agent"},
		CRM: &event.CRMAccess{
			Action: "export", TicketID: "", AppName: "crm-web",
			Records: event.Records{IDs: []string{"C-1", "C-2", "C-3"}, Count: 40, Fields: []string{"email", "iban"}, Segment: "retail", Region: "US"},
		},
	}
}

func outboundEvent() *event.Event {
	return &event.Event{
		Kind: event.KindOutbound, EventID: "e-2", Time: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC),
		Actor: event.Actor{UID: "u-2"},
		Outbound: &event.Outbound{
			Channel:     "email",
			Destination: event.Destination{Domains: []string{"gmail.com", "partner.example"}, Device: &event.Device{Vendor: "SanDisk", Product: "Ultra"}},
			Content:     event.Content{FileName: "a.csv", Size: 100},
			Attachments: []event.Content{{FileName: "b.xlsx", Size: 1000}, {Size: 5}},
		},
	}
}

func TestSetEvent(t *testing.T) {
	env := NewEnv()
	env.PII.Total, env.PII.Counts["IBAN"], env.Outbound.External = 9, 9, true
	env.SetEvent(crmEvent())
	want := CRMEnv{Action: "export", RecordIDs: []string{"C-1", "C-2", "C-3"}, RecordCount: 40, Fields: []string{"email", "iban"},
		Segment: "retail", Region: "US", App: "crm-web"}
	if !crmEqual(env.CRM, want) || env.Kind != "crm_access" || env.Hour != 21 || env.Weekday != int(time.Saturday) ||
		env.Actor != (ActorEnv{UID: "u-1", Email: "jane@corp.example", Department: "support", Role: "agent"}) {
		t.Errorf("crm: %+v", env)
	}
	if env.PII.Total != 0 || len(env.PII.Counts) != 0 || env.PII.Counts == nil || env.Outbound.External || env.Outbound.Channel != "" {
		t.Errorf("not reset: %+v %+v", env.PII, env.Outbound)
	}
	env.SetEvent(outboundEvent())
	o := env.Outbound
	if o.Channel != "email" || !slices.Equal(o.Domains, []string{"gmail.com", "partner.example"}) || o.Bytes != 1105 ||
		!slices.Equal(o.FileNames, []string{"a.csv", "b.xlsx"}) || o.Attachments != 2 || o.DeviceVendor != "SanDisk" ||
		o.DeviceProduct != "Ultra" || env.CRM.Action != "" || env.CRM.RecordIDs != nil {
		t.Errorf("outbound: %+v crm %+v", o, env.CRM)
	}
	// SetEvent does not allocate once its buffers exist.
	ev := outboundEvent()
	if n := testing.AllocsPerRun(100, func() { env.SetEvent(ev) }); n != 0 && !raceEnabled {
		t.Errorf("SetEvent allocates %v times", n)
	}
}

func crmEqual(a, b CRMEnv) bool {
	return slices.Equal(a.RecordIDs, b.RecordIDs) && slices.Equal(a.Fields, b.Fields) &&
		a.Action == b.Action && a.RecordCount == b.RecordCount && a.TicketID == b.TicketID &&
		a.Segment == b.Segment && a.Region == b.Region && a.App == b.App
}

func TestEvaluate(t *testing.T) {
	m := NewVM()
	for _, mk := range []struct {
		name string
		env  func() *Env
	}{
		{"NewEnv", NewEnv},
		{"zero Env", func() *Env { return &Env{} }},
		{"copied Env", func() *Env { e := *NewEnv(); return &e }},
	} {
		t.Run(mk.name, func(t *testing.T) {
			env := mk.env()
			env.SetEvent(crmEvent())
			for src, want := range map[string]bool{
				`kind == "crm_access" && crm.ticket_id == "" && crm.action == "export"`: true,
				`hour < 7 || hour >= 20`:                             true,
				`crm.record_count >= 40 && len(crm.record_ids) == 3`: true,
				`"iban" in crm.fields`:                               true,
				`actor.email matches "^[a-z]+@corp\\.example$"`:      true,
				`actor.email endsWith "@gmail.com"`:                  false,
				`any(outbound.domains, # in lists.personal)`:         false,
				`pii.counts["IBAN"] > 0`:                             false,
			} {
				got, err := mustExpr(t, src, ResultBool).Bool(m, env)
				if err != nil || got != want {
					t.Errorf("%s: got %v, %v", src, got, err)
				}
			}
			// The engine's fields are seen after SetEvent.
			env.SetEvent(outboundEvent())
			env.Outbound.External = true
			env.PII.Total = 12
			env.PII.Counts["EMAIL_ADDRESS"] = 12
			for src, want := range map[string]bool{
				`outbound.external && pii.total >= 10 && pii.counts["EMAIL_ADDRESS"] == 12`:    true,
				`any(outbound.domains, # in lists.personal)`:                                   true,
				`none(lists.vendors, outbound.host == # || hasSuffix(outbound.host, "." + #))`: true,
			} {
				got, err := mustExpr(t, src, ResultBool).Bool(m, env)
				if err != nil || got != want {
					t.Errorf("%s: got %v, %v", src, got, err)
				}
			}
			if n, err := mustExpr(t, "outbound.bytes", ResultNumber).Number(m, env); n != 1105 || err != nil {
				t.Errorf("Number: %v %v", n, err)
			}
			if n, err := mustExpr(t, "outbound.bytes / 2", ResultNumber).Number(m, env); n != 552.5 || err != nil {
				t.Errorf("Number float: %v %v", n, err)
			}
			if s, err := mustExpr(t, `actor.uid + ":" + outbound.channel`, ResultString).Text(m, env); s != "u-2:email" || err != nil {
				t.Errorf("Text: %q %v", s, err)
			}
			buf := []string{"keep"}
			buf, err := mustExpr(t, "outbound.file_names", ResultStrings).Strings(m, env, buf)
			if !slices.Equal(buf, []string{"keep", "a.csv", "b.xlsx"}) || err != nil {
				t.Errorf("Strings list: %q %v", buf, err)
			}
			buf, err = mustExpr(t, "actor.uid", ResultStrings).Strings(m, env, buf[:0])
			if !slices.Equal(buf, []string{"u-2"}) || err != nil {
				t.Errorf("Strings one: %q %v", buf, err)
			}
			buf, err = mustExpr(t, `map(outbound.domains, upper(#))`, ResultStrings).Strings(m, env, buf[:0])
			if !slices.Equal(buf, []string{"GMAIL.COM", "PARTNER.EXAMPLE"}) || err != nil {
				t.Errorf("Strings mapped: %q %v", buf, err)
			}
			// A runtime error is an error, not a panic.
			if _, err := mustExpr(t, `crm.record_ids[5] == "x"`, ResultBool).Bool(m, env); err == nil {
				t.Errorf("no runtime error")
			}
			if _, err := mustExpr(t, `outbound.bytes % (pii.truncated ? 1 : 0) == 0`, ResultBool).Bool(m, env); err == nil {
				t.Errorf("no division error")
			}
			var nilExpr *Expr
			if _, err := nilExpr.Bool(m, env); err != ErrNilExpr {
				t.Errorf("nil: %v", err)
			}
		})
	}
}

// TestEnvAliasing: a write to an Env made by NewEnv is what the next
// evaluation sees (the VM reads the Env in place).
func TestEnvAliasing(t *testing.T) {
	env := NewEnv()
	if !env.selfBoxed() {
		t.Fatal("NewEnv is not self-boxed: evaluations would allocate")
	}
	x := mustExpr(t, `hour == 22 && actor.uid == "z" && "b" in outbound.domains`, ResultBool)
	m := NewVM()
	env.Hour, env.Actor.UID, env.Outbound.Domains = 22, "z", []string{"a", "b"}
	if ok, err := x.Bool(m, env); !ok || err != nil {
		t.Fatal(ok, err)
	}
	env.Hour = 3
	if ok, _ := x.Bool(m, env); ok {
		t.Fatal("stale read")
	}
}

// bigAlternation is a{1000}|b{1000}|…|9{1000}: about 36000 instructions.
var bigAlternation = func() string {
	var alts []string
	for _, c := range "abcdefghijklmnopqrstuvwxyz0123456789" {
		alts = append(alts, string(c)+"{1000}")
	}
	return strings.Join(alts, "|")
}()

func TestCheckRegex(t *testing.T) {
	for re, want := range map[string]string{
		`^[a-z]+@corp\.example$`: "",
		`(abc|def|ghi){300}`:     "",
		`(abc|def|ghi){500}`:     "compiles to 6502 instructions, the limit is 5000",
		`(x{1000}){100}`:         "invalid repeat count", // RE2 bounds nested repeats
		bigAlternation:           "compiles to about",
		`[a-z]{1000}`:            "",
		`[a-z]{1000}[0-9]{1000}[a-f]{1000}[x-z]{1000}[a-c]{1000}`: "compiles to 5002 instructions",
		strings.Repeat(`(a|b)`, 100):                              "",
		strings.Repeat("x", 513):                                  "513 bytes long",
		`(a`:                                                      "invalid regular expression",
		`((((a{10}){10}){10}){10})`:                               "invalid regular expression", // RE2's nesting limit
		`\pL{50}[0-9]{50}[[:alpha:]]{40}.{9}`:                     "",
	} {
		got := checkRegex(re)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("%.40s: got %q, want %q", re, got, want)
		}
	}
}

// TestDocExamples compiles the examples of docs/RULES.md.
func TestDocExamples(t *testing.T) {
	lists := map[string][]string{"personal_mail_domains": {"gmail.com"}, "sanctioned_vendors": {"vendor.example"}, "personal": {"gmail.com"}}
	for src, want := range map[string]ResultKind{
		`kind == "outbound" && outbound.external && pii.total >= 10`:                              ResultBool,
		`any(outbound.domains, # in lists.personal_mail_domains)`:                                 ResultBool,
		`none(lists.sanctioned_vendors, outbound.host == # || hasSuffix(outbound.host, "." + #))`: ResultBool,
		`actor.department == "support" && crm.action in ["export", "api_read"]`:                   ResultBool,
		`actor.email matches "^svc-[a-z]+@corp\\.example$"`:                                       ResultBool,
		`pii.counts["CREDIT_CARD"] > 0 || pii.counts["IBAN"] > 0`:                                 ResultBool,
		`let d = outbound.domains; len(d) > 0 && all(d, # endsWith ".example")`:                   ResultBool,
		`(first(crm.record_ids) ?? "") startsWith "C-" and not (crm.action in ["view"])`:          ResultBool,
		`crm.record_count ** 2 > 10 && crm.action not in ["search"] && "email" in crm.fields`:     ResultBool,
		`weekday == 0 || weekday == 6 ? hour >= 0 : hour < 7`:                                     ResultBool,
		`actor.uid + ":" + crm.region`:                                                            ResultString,
		`crm.record_ids`:                                                                          ResultStrings,
		`outbound.domains`:                                                                        ResultStrings,
		`outbound.bytes`:                                                                          ResultNumber,
		`1`:                                                                                       ResultNumber,
	} {
		if _, errs := compileExpr(src, want, lists); errs != nil {
			t.Errorf("%s: %v", src, errs)
		}
	}
}
