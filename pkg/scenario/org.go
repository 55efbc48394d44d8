package scenario

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/leakline/leakline/pkg/event"
)

// Roles of the synthetic organisation's employees (also their departments).
const (
	RoleSupport     = "support"
	RoleSales       = "sales"
	RoleMarketing   = "marketing"
	RoleEngineering = "engineering"
	RoleAdmin       = "admin"
)

// Scenario kinds.
const (
	KindAttack = "attack"
	KindBenign = "benign"
)

// Working hours of the organisation (UTC): baseline activity happens in
// [WorkStart, WorkEnd) every simulated day.
const (
	WorkStartHour = 9
	WorkEndHour   = 17
)

// OrgCustomer is a CRM customer of the synthetic organisation.
type OrgCustomer struct {
	Customer
	Region  string
	Address string
}

// Employee is an employee of the synthetic organisation.
type Employee struct {
	Actor event.Actor
	Role  string
	Name  string
}

// Scenario is one labelled, injected behaviour with its ground truth.
type Scenario struct {
	Name string
	// Kind is KindAttack (must be detected) or KindBenign (a look-alike that
	// must not produce a live finding).
	Kind  string
	Actor string
	// Start is the event time of the scenario's first event.
	Start time.Time
	// Exfil is the event time of the first exfiltration event (data leaving,
	// or for a pure collection scenario its first bulk read): time to detect
	// is measured from here.
	Exfil time.Time
	// ExpectRules are the rules of which any one firing for Actor at or after
	// Start counts as a detection (attacks), or that must stay silent
	// (benign look-alikes: no live rule at all may fire for Actor).
	ExpectRules []string
	// EventIDs are the ids of the scenario's injected events.
	EventIDs []string
	// Note says what the scenario does, for reports.
	Note string
}

// OrgOptions configures a synthetic organisation.
type OrgOptions struct {
	Seed      uint64
	Employees int // at least MinOrgEmployees
	Customers int // at least MinOrgCustomers
	Days      int // at least 1
	// Start is the first simulated day (truncated to midnight UTC).
	Start time.Time
}

// Minimum sizes: the scenarios need their actors and the low-and-slow
// insider needs enough customers of one region.
const (
	MinOrgEmployees = 20
	MinOrgCustomers = 2400
)

// Org is a generated organisation with its traffic and ground truth.
type Org struct {
	Opt       OrgOptions
	Employees []Employee
	Customers []OrgCustomer
	// Events are every raw event of the run in event-time order.
	Events    []Raw
	Scenarios []Scenario
}

// EmployeeDays is employees × simulated days, the denominator of
// false-positive rates.
func (o *Org) EmployeeDays() int { return len(o.Employees) * o.Opt.Days }

// CRMExport is the CRM export of the organisation's customers as CSV
// (header customer_id,name,email,phone), the input of `leakline edm build`.
func (o *Org) CRMExport() []byte {
	var b strings.Builder
	b.WriteString("customer_id,name,email,phone\n")
	for _, c := range o.Customers {
		fmt.Fprintf(&b, "%s,%s,%s,%s\n", c.ID, c.Name, c.Email, c.Phone)
	}
	return []byte(b.String())
}

// AttackActors is the set of actors of attack scenarios.
func (o *Org) AttackActors() map[string]bool {
	m := map[string]bool{}
	for _, s := range o.Scenarios {
		if s.Kind == KindAttack {
			m[s.Actor] = true
		}
	}
	return m
}

var (
	streets     = []string{"High Street", "Main Street", "Church Road", "Park Avenue", "Station Road", "Queen Street", "King Street", "Victoria Road"}
	cities      = map[string][]string{"US": {"Boston", "Denver", "Austin"}, "UK": {"Leeds", "Bristol", "London"}, "IE": {"Dublin", "Cork", "Galway"}, "AU": {"Sydney", "Perth", "Brisbane"}, "NZ": {"Auckland", "Wellington", "Dunedin"}, "CA": {"Toronto", "Ottawa", "Calgary"}}
	internalMsg = []string{
		"Hi, notes from today's stand-up: the queue is under control, see the wiki for details.",
		"Can we move the sync to 3pm? The release review overran.",
		"Attached the agenda for Thursday; please add your items.",
		"Thanks for the quick turnaround on the dashboard fix.",
		"Reminder: the quarterly all-hands is on Friday in the big room.",
	}
)

// phone returns a phone number in the format of the customer's country.
func phone(r *rand.Rand, region string) string {
	switch region {
	case "UK":
		return fmt.Sprintf("+44 20 %04d %04d", r.IntN(10000), r.IntN(10000))
	case "IE":
		return fmt.Sprintf("+353 1 %03d %04d", r.IntN(1000), r.IntN(10000))
	case "AU":
		return fmt.Sprintf("+61 2 %04d %04d", r.IntN(10000), r.IntN(10000))
	case "NZ":
		return fmt.Sprintf("+64 9 %03d %04d", r.IntN(1000), r.IntN(10000))
	default: // US, CA
		return fmt.Sprintf("+1 %03d %03d %04d", 201+r.IntN(700), 200+r.IntN(700), r.IntN(10000))
	}
}

// orgGen carries the generator's state.
type orgGen struct {
	r        *rand.Rand
	o        *Org
	seq      int
	byRole   map[string][]int
	byRegion map[string][]int
	day0     time.Time
	// scenario actors are excluded from some baseline behaviour
	taken map[int]bool
	// busy is the busy_support_queue scenario's index and busyDaily its
	// agent's ticketed reads per day in the baseline (calibrateBusyQueue).
	busy      int
	busyDaily []int
}

func (g *orgGen) nextID() string {
	g.seq++
	return fmt.Sprintf("evt-org-%08d", g.seq)
}

func (g *orgGen) add(kind event.Kind, id string, at time.Time, v any) string {
	d := Day{}
	d.add(kind, id, at, v)
	g.o.Events = append(g.o.Events, d.Events[0])
	return id
}

// workTime is a uniformly random instant of day d's working hours.
func (g *orgGen) workTime(d int) time.Time {
	return g.day0.AddDate(0, 0, d).Add(WorkStartHour*time.Hour + time.Duration(g.r.IntN((WorkEndHour-WorkStartHour)*3600))*time.Second)
}

func (g *orgGen) customer() OrgCustomer { return g.o.Customers[g.r.IntN(len(g.o.Customers))] }

// NewOrg generates a deterministic organisation (same options, same events)
// with its baseline traffic over opt.Days days and the labelled scenarios
// (see Scenario) injected at fixed days of the run. Every day is a working
// day; baseline activity happens in working hours, 09:00–17:00 UTC.
//
// The low-and-slow insider reads about 40 customers a day of one region
// without tickets for 10 days; in runs shorter than that the same total
// (~400 customers) is spread over the days available, so the pattern is
// always there to be found.
func NewOrg(opt OrgOptions) (*Org, error) {
	if opt.Employees < MinOrgEmployees {
		return nil, fmt.Errorf("scenario: an organisation needs at least %d employees, got %d", MinOrgEmployees, opt.Employees)
	}
	if opt.Customers < MinOrgCustomers {
		return nil, fmt.Errorf("scenario: an organisation needs at least %d customers, got %d", MinOrgCustomers, opt.Customers)
	}
	if opt.Days < 1 {
		return nil, fmt.Errorf("scenario: days must be at least 1, got %d", opt.Days)
	}
	s := opt.Start.UTC()
	opt.Start = time.Date(s.Year(), s.Month(), s.Day(), 0, 0, 0, 0, time.UTC)
	o := &Org{Opt: opt}
	g := &orgGen{r: rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x0a9)), o: o, byRole: map[string][]int{}, byRegion: map[string][]int{}, day0: opt.Start, taken: map[int]bool{}}
	g.people()
	g.scenarios()
	g.baseline()
	g.calibrateBusyQueue()
	sort.SliceStable(o.Events, func(i, j int) bool { return o.Events[i].Time.Before(o.Events[j].Time) })
	return o, nil
}

// people creates the customers and the employees.
func (g *orgGen) people() {
	o, r := g.o, g.r
	for i := 0; i < o.Opt.Customers; i++ {
		fn, ln := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
		reg := regions[i%len(regions)]
		cs := cities[reg]
		o.Customers = append(o.Customers, OrgCustomer{
			Customer: Customer{
				ID:    fmt.Sprintf("C-%07d", 1000000+i),
				Name:  fn + " " + ln,
				Email: fmt.Sprintf("%s.%s%d@%s", strings.ToLower(fn), strings.ToLower(ln), i, mailHosts[i%len(mailHosts)]),
				Phone: phone(r, reg),
				Card:  luhnCard(r),
			},
			Region:  reg,
			Address: fmt.Sprintf("%d %s, %s", 1+r.IntN(200), streets[r.IntN(len(streets))], cs[r.IntN(len(cs))]),
		})
		g.byRegion[reg] = append(g.byRegion[reg], i)
	}
	n := o.Opt.Employees
	// 40 % support, 20 % sales, 10 % marketing, 5 % admin (at least 1 each
	// where a scenario needs it), the rest engineering.
	counts := map[string]int{RoleSupport: max(4, n*40/100), RoleSales: max(3, n*20/100), RoleMarketing: max(2, n*10/100), RoleAdmin: max(1, n*5/100)}
	roles := []string{RoleSupport, RoleSales, RoleMarketing, RoleAdmin}
	var order []string
	for _, ro := range roles {
		for k := 0; k < counts[ro]; k++ {
			order = append(order, ro)
		}
	}
	for len(order) < n {
		order = append(order, RoleEngineering)
	}
	for i, ro := range order[:n] {
		fn, ln := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
		uid := fmt.Sprintf("u-%05d", 10000+i)
		o.Employees = append(o.Employees, Employee{
			Actor: event.Actor{UID: uid, Email: fmt.Sprintf("%s.%s.%d@corp.example", strings.ToLower(fn), strings.ToLower(ln), i), Department: ro, Role: ro},
			Role:  ro,
			Name:  fn + " " + ln,
		})
		g.byRole[ro] = append(g.byRole[ro], i)
	}
}

// dayOf clamps a scenario's preferred day into the run.
func (g *orgGen) dayOf(preferred int) int { return min(preferred, g.o.Opt.Days-1) }

// at is day d at hh:mm UTC.
func (g *orgGen) at(d, hh, mm int) time.Time {
	return g.day0.AddDate(0, 0, d).Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute)
}

// pick takes the k-th employee of role for a scenario.
func (g *orgGen) pick(role string, k int) Employee {
	i := g.byRole[role][k%len(g.byRole[role])]
	g.taken[i] = true
	return g.o.Employees[i]
}

// customerCSV renders customers as a spreadsheet export with full PII.
func customerCSV(cs []OrgCustomer) string {
	var b strings.Builder
	b.WriteString("customer_id,name,email,phone,card,address\n")
	for _, c := range cs {
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s,\"%s\"\n", c.ID, c.Name, c.Email, c.Phone, c.Card, c.Address)
	}
	return b.String()
}

func (g *orgGen) regionCustomers(reg string, from, n int) []OrgCustomer {
	ids := g.byRegion[reg]
	out := make([]OrgCustomer, 0, n)
	for k := 0; k < n; k++ {
		out = append(out, g.o.Customers[ids[(from+k)%len(ids)]])
	}
	return out
}

func ids(cs []OrgCustomer) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func usb(id string, at time.Time, a event.Actor, files []event.Content) (event.Kind, string, time.Time, any) {
	var total int64
	for _, f := range files {
		total += f.Size
	}
	return event.KindOutbound, id, at, event.Outbound{
		SchemaVersion: event.SchemaVersion, ClassUID: event.ClassFileSystemActivity, ActivityID: 1,
		EventID: id, Time: at, Actor: a, Channel: event.ChannelUSB,
		Destination: event.Destination{Device: &event.Device{Vendor: "SanDisk", Product: "Ultra", Serial: "4C53" + id[len(id)-6:]}},
		Content:     event.Content{Size: total},
		Attachments: files,
	}
}

func upload(id string, at time.Time, a event.Actor, host string, file event.Content) (event.Kind, string, time.Time, any) {
	return event.KindOutbound, id, at, event.Outbound{
		SchemaVersion: event.SchemaVersion, ClassUID: event.ClassFileHostingActivity, ActivityID: 1,
		EventID: id, Time: at, Actor: a, Channel: event.ChannelUpload,
		Destination: event.Destination{URL: "https://" + host + "/upload", Host: host, Application: host},
		Content:     file,
	}
}

func csvFile(name, text string) event.Content {
	return event.Content{FileName: name, MimeType: "text/csv", Size: int64(len(text)), Text: text}
}

// scenarios injects the labelled scenarios.
func (g *orgGen) scenarios() {
	o := g.o
	days := o.Opt.Days
	// add(&s)(ev) injects ev as one of scenario s's events.
	add := func(s *Scenario) func(event.Kind, string, time.Time, any) {
		return func(kind event.Kind, id string, at time.Time, v any) {
			g.add(kind, id, at, v)
			s.EventIDs = append(s.EventIDs, id)
			if s.Start.IsZero() || at.Before(s.Start) {
				s.Start = at
			}
		}
	}

	// 1. The 2019 incident, low and slow: a support agent reads ~40
	// customers a day of one region (AU) without tickets, a few at a time,
	// and uploads a small encrypted archive (no inspectable text) every
	// evening to a file-sharing host.
	{
		e := g.pick(RoleSupport, 0)
		s := Scenario{Name: "low_and_slow_2019", Kind: KindAttack, Actor: e.Actor.UID, ExpectRules: []string{"crm.low_and_slow"},
			Note: "support agent reads ~40 AU customers/day without tickets for 10 days; small encrypted uploads"}
		first := 0
		if days >= 5 {
			first = 2
		}
		n := min(10, days-first)
		perDay := max(40, (400+n-1)/n)
		next := 0
		for d := first; d < first+n; d++ {
			for got := 0; got < perDay; {
				k := min(perDay-got, 1+g.r.IntN(4))
				cs := g.regionCustomers("AU", next, k)
				next += k
				got += k
				add(&s)(crm(g.nextID(), g.workTime(d), e.Actor, event.ActionView, ids(cs), "", "AU"))
			}
			at := g.at(d, 17, 20+g.r.IntN(30))
			f := event.Content{FileName: fmt.Sprintf("notes-%d.7z", d), MimeType: "application/x-7z-compressed", Size: int64(20_000 + g.r.IntN(30_000))}
			add(&s)(upload(g.nextID(), at, e.Actor, "files.anonshare.example", f))
			if s.Exfil.IsZero() {
				s.Exfil = at
			}
		}
		o.Scenarios = append(o.Scenarios, s)
	}
	// 2. A departing employee (sales) exports customers without a ticket,
	// then copies a customer spreadsheet and ~900 MB of files to USB.
	{
		e := g.pick(RoleSales, 0)
		d := g.dayOf(9)
		s := Scenario{Name: "departing_usb_dump", Kind: KindAttack, Actor: e.Actor.UID, ExpectRules: []string{"usb.departing_dump", "crm.read_then_usb"},
			Note: "departing sales rep exports 150 customers without a ticket, then writes ~900 MB to USB"}
		cs := g.regionCustomers("US", 0, 150)
		add(&s)(crm(g.nextID(), g.at(d, 16, 0), e.Actor, event.ActionExport, ids(cs), "", ""))
		sheet := customerCSV(cs[:40])
		s.Exfil = g.at(d, 16, 30)
		add(&s)(usb(g.nextID(), s.Exfil, e.Actor, []event.Content{csvFile("my-accounts.csv", sheet)}))
		for k := 0; k < 6; k++ {
			f := event.Content{FileName: fmt.Sprintf("archive-%d.zip", k), MimeType: "application/zip", Size: 150_000_000}
			add(&s)(usb(g.nextID(), g.at(d, 16, 31+k), e.Actor, []event.Content{f}))
		}
		o.Scenarios = append(o.Scenarios, s)
	}
	// 3. A customer list mailed to a personal address.
	{
		e := g.pick(RoleSupport, 1)
		d := g.dayOf(5)
		s := Scenario{Name: "customer_list_personal_email", Kind: KindAttack, Actor: e.Actor.UID, ExpectRules: []string{"outbound.personal_email", "outbound.pii_external"},
			Note: "support agent mails a spreadsheet of 25 customers to a gmail address"}
		cs := g.regionCustomers("UK", 10, 25)
		s.Exfil = g.at(d, 12, 10)
		add(&s)(mail(g.nextID(), s.Exfil, e.Actor, strings.ToLower(strings.ReplaceAll(e.Name, " ", "."))+".home@gmail.com", "for later", "see attached",
			[]event.Content{csvFile("customers.csv", customerCSV(cs))}))
		o.Scenarios = append(o.Scenarios, s)
	}
	// 4. A cloud upload to an unsanctioned host (after layoffs were announced).
	{
		e := g.pick(RoleSales, 1)
		d := g.dayOf(7)
		s := Scenario{Name: "cloud_upload_unsanctioned", Kind: KindAttack, Actor: e.Actor.UID, ExpectRules: []string{"upload.unsanctioned_cloud", "outbound.pii_external"},
			Note: "sales rep uploads 60 customers to an unsanctioned file host"}
		cs := g.regionCustomers("CA", 20, 60)
		s.Exfil = g.at(d, 14, 45)
		add(&s)(upload(g.nextID(), s.Exfil, e.Actor, "upload.filebin.example", csvFile("pipeline.csv", customerCSV(cs))))
		o.Scenarios = append(o.Scenarios, s)
	}
	// 5. An after-hours bulk export by an admin.
	{
		e := g.pick(RoleAdmin, 0)
		d := g.dayOf(3)
		s := Scenario{Name: "after_hours_bulk_export", Kind: KindAttack, Actor: e.Actor.UID, ExpectRules: []string{"crm.after_hours_export", "crm.bulk_read_no_ticket"},
			Note: "admin runs 4 exports of 100 customers without a ticket at 23:00"}
		for k := 0; k < 4; k++ {
			cs := g.regionCustomers(regions[k], 100, 100)
			at := g.at(d, 23, 5+k*7)
			add(&s)(crm(g.nextID(), at, e.Actor, event.ActionExport, ids(cs), "", ""))
			if k == 0 {
				s.Exfil = at
			}
		}
		o.Scenarios = append(o.Scenarios, s)
	}
	// 6. Benign: an authorised marketing export (under a campaign ticket) sent
	// to the sanctioned vendor.
	{
		e := g.pick(RoleMarketing, 0)
		d := g.dayOf(8)
		s := Scenario{Name: "authorised_marketing_export", Kind: KindBenign, Actor: e.Actor.UID,
			Note: "marketing exports 1,000 customers under a campaign ticket and mails 200 to campaigns@vendor.example"}
		var all []OrgCustomer
		for k := 0; k < 4; k++ {
			cs := g.regionCustomers(regions[k+2], 300, 250)
			all = append(all, cs...)
			add(&s)(crm(g.nextID(), g.at(d, 10, 5*k), e.Actor, event.ActionExport, ids(cs), "CMP-2026-11", ""))
		}
		s.Exfil = g.at(d, 10, 40)
		add(&s)(mail(g.nextID(), s.Exfil, e.Actor, "campaigns@vendor.example", "November mailing list", "List for the November campaign, as agreed in the DPA.",
			[]event.Content{csvFile("mailing.csv", customerCSV(all[:200]))}))
		o.Scenarios = append(o.Scenarios, s)
	}
	// 7. Benign: a support agent with a very busy ticket queue — ~8× their
	// usual reads in a day, every read under a ticket (up to 180 tickets
	// drawn here; calibrateBusyQueue keeps 7 × the agent's usual day).
	{
		e := g.pick(RoleSupport, 2)
		d := g.dayOf(6)
		s := Scenario{Name: "busy_support_queue", Kind: KindBenign, Actor: e.Actor.UID,
			Note: "support agent works ~8× their usual tickets in a day, every read ticketed"}
		for k := 0; k < busyQueueTickets; k++ {
			c := g.customer()
			at := g.workTime(d)
			add(&s)(crm(g.nextID(), at, e.Actor, event.ActionView, []string{c.ID}, fmt.Sprintf("T-%06d", 500000+k), c.Region))
			s.Exfil = maxTime(s.Exfil, at)
		}
		g.busy = len(o.Scenarios)
		g.busyDaily = make([]int, o.Opt.Days)
		o.Scenarios = append(o.Scenarios, s)
	}
}

// busyQueueTickets is the most tickets of the busy_support_queue day.
const busyQueueTickets = 180

// calibrateBusyQueue makes the busy support queue what its label says:
// ~8× the agent's usual day — its usual (median) day of baseline reads
// plus 7 × that in extra tickets (at most busyQueueTickets). A fixed
// count would be 7× for one agent and 12× for a quieter one, i.e. above
// crm.volume_baseline's 10× for some seeds: no longer the look-alike the
// scenario claims to be.
func (g *orgGen) calibrateBusyQueue() {
	daily := slices.Clone(g.busyDaily)
	slices.Sort(daily)
	keep := min(busyQueueTickets, 7*daily[len(daily)/2])
	s := &g.o.Scenarios[g.busy]
	kept := map[string]bool{}
	for i, id := range s.EventIDs {
		kept[id] = i < keep
	}
	s.EventIDs = s.EventIDs[:keep]
	s.Exfil = time.Time{}
	g.o.Events = slices.DeleteFunc(g.o.Events, func(r Raw) bool {
		k, ok := kept[string(r.Key)]
		if k {
			s.Exfil = maxTime(s.Exfil, r.Time)
		}
		return ok && !k
	})
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// baseline generates every employee's ordinary days.
func (g *orgGen) baseline() {
	o, r := g.o, g.r
	staff := o.Employees
	ticket := 100000
	for d := 0; d < o.Opt.Days; d++ {
		for i, e := range staff {
			a := e.Actor
			switch e.Role {
			case RoleSupport:
				// ~12 tickets a day, each read 1–3 times, only that ticket's customer.
				for k := 0; k < 8+r.IntN(9); k++ {
					ticket++
					c := g.customer()
					for v := 0; v < 1+r.IntN(3); v++ {
						g.add(crm(g.nextID(), g.workTime(d), a, event.ActionView, []string{c.ID}, fmt.Sprintf("T-%06d", ticket), c.Region))
						if a.UID == g.o.Scenarios[g.busy].Actor {
							g.busyDaily[d]++
						}
					}
				}
			case RoleSales:
				// A few account reviews a day, no ticket (accounts, not cases).
				for k := 0; k < 2+r.IntN(4); k++ {
					c := g.customer()
					g.add(crm(g.nextID(), g.workTime(d), a, event.ActionView, []string{c.ID}, "", c.Region))
				}
			case RoleMarketing:
				// Every few days a campaign export under a ticket, sent to the
				// sanctioned vendor.
				if !g.taken[i] && r.IntN(4) == 0 {
					at := g.workTime(d)
					cs := make([]OrgCustomer, 0, 60)
					for k := 0; k < 40+r.IntN(20); k++ {
						cs = append(cs, g.customer())
					}
					g.add(crm(g.nextID(), at, a, event.ActionExport, ids(cs), fmt.Sprintf("CMP-%d-%d", d, i), ""))
					g.add(mail(g.nextID(), at.Add(10*time.Minute), a, "campaigns@vendor.example", "segment", "Segment for the next send.",
						[]event.Content{csvFile("segment.csv", customerCSV(cs[:20]))}))
				}
			case RoleEngineering:
				// Rarely a CRM lookup while debugging (under a ticket).
				if r.IntN(10) == 0 {
					c := g.customer()
					g.add(crm(g.nextID(), g.workTime(d), a, event.ActionView, []string{c.ID}, fmt.Sprintf("BUG-%d", 1000+r.IntN(9000)), c.Region))
				}
				// Now and then a small USB copy or a push of code to a public host.
				if r.IntN(8) == 0 {
					g.add(usb(g.nextID(), g.workTime(d), a, []event.Content{{FileName: "slides.pdf", MimeType: "application/pdf", Size: int64(2_000_000 + r.IntN(20_000_000))}}))
				}
				if r.IntN(5) == 0 {
					g.add(upload(g.nextID(), g.workTime(d), a, "github.com", event.Content{FileName: "patch.diff", MimeType: "text/x-diff", Size: 4000, Text: "diff --git a/main.go b/main.go\n+\treturn nil\n"}))
				}
			case RoleAdmin:
				// Exports for reporting, under a change ticket, in working hours.
				if r.IntN(3) == 0 {
					cs := make([]string, 0, 20)
					for k := 0; k < 20; k++ {
						cs = append(cs, g.customer().ID)
					}
					g.add(crm(g.nextID(), g.workTime(d), a, event.ActionExport, cs, fmt.Sprintf("CHG-%d", 100+r.IntN(900)), ""))
				}
			}
			// Everybody mails: mostly internal; sometimes a partner mail with
			// one customer's address (incidental PII), sometimes a private
			// note without customer data.
			for k := 0; k < 10+r.IntN(8); k++ {
				at := g.workTime(d)
				switch x := r.IntN(20); {
				case x == 0:
					c := g.customer()
					g.add(mail(g.nextID(), at, a, "partner@vendor.example", "Renewal", "Please follow up with the customer at "+c.Email+" about the renewal.", nil))
				case x == 1:
					g.add(mail(g.nextID(), at, a, strings.ToLower(strings.ReplaceAll(e.Name, " ", "."))+"@gmail.com", "weekend", "Remember to book the restaurant for Saturday.", nil))
				default:
					to := staff[r.IntN(len(staff))].Actor.Email
					g.add(mail(g.nextID(), at, a, to, "Update", internalMsg[r.IntN(len(internalMsg))], nil))
				}
			}
		}
	}
}
