package scenario

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/event"
)

var orgStart = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

func smallOrg(t *testing.T, seed uint64, days int) *Org {
	t.Helper()
	o, err := NewOrg(OrgOptions{Seed: seed, Employees: 30, Customers: 3000, Days: days, Start: orgStart})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestOrgDeterministic(t *testing.T) {
	a, b := smallOrg(t, 7, 3), smallOrg(t, 7, 3)
	if len(a.Events) != len(b.Events) {
		t.Fatalf("same seed: %d vs %d events", len(a.Events), len(b.Events))
	}
	for i := range a.Events {
		if !bytes.Equal(a.Events[i].Value, b.Events[i].Value) || !a.Events[i].Time.Equal(b.Events[i].Time) {
			t.Fatalf("same seed: event %d differs", i)
		}
	}
	if !bytes.Equal(a.CRMExport(), b.CRMExport()) {
		t.Fatal("same seed: CRM exports differ")
	}
	c := smallOrg(t, 8, 3)
	if bytes.Equal(a.CRMExport(), c.CRMExport()) {
		t.Fatal("different seeds give the same customers")
	}
}

func TestOrgCountsAndOrder(t *testing.T) {
	o := smallOrg(t, 1, 3)
	if len(o.Employees) != 30 || len(o.Customers) != 3000 || o.EmployeeDays() != 90 {
		t.Fatalf("employees %d customers %d employee-days %d", len(o.Employees), len(o.Customers), o.EmployeeDays())
	}
	roles := map[string]int{}
	for _, e := range o.Employees {
		roles[e.Role]++
	}
	for _, r := range []string{RoleSupport, RoleSales, RoleMarketing, RoleEngineering, RoleAdmin} {
		if roles[r] == 0 {
			t.Errorf("no %s employees: %v", r, roles)
		}
	}
	regs := map[string]int{}
	for _, c := range o.Customers {
		regs[c.Region]++
	}
	if len(regs) != 6 {
		t.Errorf("customer regions %v, want US/UK/IE/AU/NZ/CA", regs)
	}
	if got := strings.Count(string(o.CRMExport()), "\n"); got != 3001 {
		t.Errorf("CRM export has %d lines, want 3001", got)
	}
	// ~30 employees × 3 days × (≥10 mails + role work): a few thousand.
	if n := len(o.Events); n < 900 || n > 5000 {
		t.Errorf("%d events for 30 employees × 3 days", n)
	}
	end := orgStart.AddDate(0, 0, 3)
	dec, err := event.NewDecoder(event.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, e := range o.Events {
		if i > 0 && e.Time.Before(o.Events[i-1].Time) {
			t.Fatalf("event %d out of event-time order", i)
		}
		if e.Time.Before(orgStart) || !e.Time.Before(end) {
			t.Fatalf("event %d at %s outside the run", i, e.Time)
		}
		if seen[string(e.Key)] {
			t.Fatalf("duplicate event id %s", e.Key)
		}
		seen[string(e.Key)] = true
		// Every event is valid under the event contract.
		if e.Kind == event.KindCRMAccess {
			_, _, err = dec.DecodeCRMAccess(e.Value)
		} else {
			_, _, err = dec.DecodeOutbound(e.Value)
		}
		if err != nil {
			t.Fatalf("event %s invalid: %v", e.Key, err)
		}
	}
}

func TestOrgScenarios(t *testing.T) {
	for _, days := range []int{3, 14} {
		o, err := NewOrg(OrgOptions{Seed: 3, Employees: 200, Customers: 20000, Days: days, Start: orgStart})
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]Raw{}
		for _, e := range o.Events {
			byID[string(e.Key)] = e
		}
		want := map[string]string{
			"low_and_slow_2019": KindAttack, "departing_usb_dump": KindAttack, "customer_list_personal_email": KindAttack,
			"cloud_upload_unsanctioned": KindAttack, "after_hours_bulk_export": KindAttack,
			"authorised_marketing_export": KindBenign, "busy_support_queue": KindBenign,
		}
		actors := map[string]bool{}
		for _, s := range o.Scenarios {
			if want[s.Name] != s.Kind {
				t.Errorf("days=%d: scenario %s kind %q", days, s.Name, s.Kind)
			}
			delete(want, s.Name)
			if actors[s.Actor] {
				t.Errorf("days=%d: actor %s in two scenarios", days, s.Actor)
			}
			actors[s.Actor] = true
			if s.Kind == KindAttack && len(s.ExpectRules) == 0 {
				t.Errorf("days=%d: attack %s expects no rule", days, s.Name)
			}
			if len(s.EventIDs) == 0 || s.Start.IsZero() || s.Exfil.Before(s.Start) {
				t.Errorf("days=%d: scenario %s: %d events, start %s, exfil %s", days, s.Name, len(s.EventIDs), s.Start, s.Exfil)
			}
			for _, id := range s.EventIDs {
				e, ok := byID[id]
				if !ok {
					t.Fatalf("days=%d: scenario %s event %s missing from the events", days, s.Name, id)
				}
				var env struct {
					Actor event.Actor `json:"actor"`
				}
				if err := json.Unmarshal(e.Value, &env); err != nil || env.Actor.UID != s.Actor {
					t.Fatalf("days=%d: scenario %s event %s by %q (%v)", days, s.Name, id, env.Actor.UID, err)
				}
			}
		}
		if len(want) > 0 {
			t.Errorf("days=%d: scenarios missing: %v", days, want)
		}
		// The low-and-slow insider reads ≥ 300 distinct customers of one
		// region without tickets (the rule's threshold), under 200 per hour.
		ls := o.Scenarios[0]
		distinct := map[string]bool{}
		for _, id := range ls.EventIDs {
			if e := byID[id]; e.Kind == event.KindCRMAccess {
				var c event.CRMAccess
				if err := json.Unmarshal(e.Value, &c); err != nil {
					t.Fatal(err)
				}
				if c.TicketID != "" || c.Records.Region != "AU" {
					t.Fatalf("low-and-slow read %s has ticket %q region %q", id, c.TicketID, c.Records.Region)
				}
				for _, r := range c.Records.IDs {
					distinct[r] = true
				}
			}
		}
		if len(distinct) < 300 {
			t.Errorf("days=%d: low-and-slow reads %d distinct customers, want ≥ 300", days, len(distinct))
		}
	}
}

func TestOrgRejectsTooSmall(t *testing.T) {
	if _, err := NewOrg(OrgOptions{Employees: 5, Customers: 3000, Days: 1}); err == nil {
		t.Error("5 employees accepted")
	}
	if _, err := NewOrg(OrgOptions{Employees: 30, Customers: 100, Days: 1}); err == nil {
		t.Error("100 customers accepted")
	}
	if _, err := NewOrg(OrgOptions{Employees: 30, Customers: 3000, Days: 0}); err == nil {
		t.Error("0 days accepted")
	}
}

// TestBusyQueueIsALookAlike checks that the busy support queue is what its
// label says for any seed and size: its day is ~8× the agent's usual
// (median) day of reads — busy, but below crm.volume_baseline's 10×.
func TestBusyQueueIsALookAlike(t *testing.T) {
	dec, err := event.NewDecoder(event.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		seed            uint64
		employees, days int
	}{{11, 30, 3}, {1, 30, 3}, {2, 30, 5}, {3, 60, 7}, {1, 200, 14}} {
		o, err := NewOrg(OrgOptions{Seed: tc.seed, Employees: tc.employees, Customers: 3000, Days: tc.days, Start: orgStart})
		if err != nil {
			t.Fatal(err)
		}
		var s Scenario
		for _, sc := range o.Scenarios {
			if sc.Name == "busy_support_queue" {
				s = sc
			}
		}
		busy := map[string]bool{}
		for _, id := range s.EventIDs {
			busy[id] = true
		}
		daily := make([]int, tc.days)
		extra, busyDay := 0, -1
		for _, r := range o.Events {
			ev, err := dec.DecodeRaw(r.Kind, r.Value, event.Source{}, r.Time)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Actor.UID != s.Actor || ev.CRM == nil {
				continue
			}
			d := int(ev.Time.Sub(orgStart) / (24 * time.Hour))
			if busy[ev.EventID] {
				extra++
				busyDay = d
				continue
			}
			daily[d] += len(ev.CRM.Records.IDs)
		}
		sorted := append([]int(nil), daily...)
		slices.Sort(sorted)
		usual := sorted[len(sorted)/2]
		ratio := float64(daily[busyDay]+extra) / float64(usual)
		if extra != len(s.EventIDs) || extra != min(180, 7*usual) || ratio < 6 || ratio >= 10 {
			t.Errorf("seed %d, %d employees × %d days: busy day %d + %d ticketed reads, usual day %d: %.1f× (want ~8×, below 10×)",
				tc.seed, tc.employees, tc.days, daily[busyDay], extra, usual, ratio)
		}
	}
}
