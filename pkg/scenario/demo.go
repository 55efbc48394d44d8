// Package scenario generates synthetic audit traffic with ground truth: a
// small organisation's working day with one insider, used by the demo and the
// end-to-end tests (and, grown up, by the load test).
package scenario

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/leakline/leakline/pkg/event"
)

// Raw is one raw audit event as a source would produce it.
type Raw struct {
	Kind  event.Kind
	Key   []byte
	Value []byte
	Time  time.Time
}

// Customer is a synthetic CRM customer.
type Customer struct {
	ID, Name, Email, Phone, Card string
}

// Day is a generated day of traffic and what a correct pipeline concludes.
type Day struct {
	Events    []Raw
	Customers []Customer
	// Employees is the size of the organisation.
	Employees int
	// Insider is the uid of the employee who exfiltrates.
	Insider string
	// Malformed counts the deliberately invalid raw events in Events.
	Malformed int
	// ExpectedRules are the rule ids that must fire for the insider.
	ExpectedRules []string
}

// CRMExport is the CRM export of the day's customers as CSV (header
// customer_id,name,email,phone), the input of `leakline edm build`.
func (d Day) CRMExport() []byte {
	var b strings.Builder
	b.WriteString("customer_id,name,email,phone\n")
	for _, c := range d.Customers {
		fmt.Fprintf(&b, "%s,%s,%s,%s\n", c.ID, c.Name, c.Email, c.Phone)
	}
	return []byte(b.String())
}

// RawPII lists every raw customer value the day contains; none of them may
// ever appear in storage.
func (d Day) RawPII() []string {
	var out []string
	for _, c := range d.Customers {
		out = append(out, c.Email, c.Phone, c.Card, strings.ReplaceAll(c.Card, " ", ""))
	}
	return out
}

var (
	firstNames = []string{"Olivia", "Liam", "Amelia", "Noah", "Isla", "Jack", "Ava", "Oliver", "Mia", "Leo", "Grace", "Harry", "Chloe", "Lucas", "Ella", "Henry", "Zoe", "Ethan", "Ruby", "Mason"}
	lastNames  = []string{"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Walker", "Wright", "Thompson", "White", "Hughes", "Edwards", "Green", "Hall", "Wood", "Harris", "Clarke", "Martin"}
	regions    = []string{"US", "UK", "IE", "AU", "NZ", "CA"}
	mailHosts  = []string{"example.com", "example.net", "example.org", "mail.example"}
)

type employee struct {
	actor event.Actor
}

// DemoDay generates the demo's scripted day starting at start (UTC): twelve
// support agents answering tickets, engineers and marketing mailing each
// other and partners, and one support agent (the insider) who reads hundreds
// of customer records without tickets in the morning and mails a spreadsheet
// of them to a personal address before lunch. One raw event is malformed.
func DemoDay(seed uint64, start time.Time) Day {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	start = start.UTC()
	day := Day{Insider: "u-1007", ExpectedRules: []string{"crm.bulk_read_no_ticket", "outbound.pii_external"}}

	for i := 0; i < 2000; i++ {
		fn, ln := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
		day.Customers = append(day.Customers, Customer{
			ID:    fmt.Sprintf("C-%06d", 100000+i),
			Name:  fn + " " + ln,
			Email: fmt.Sprintf("%s.%s%d@%s", strings.ToLower(fn), strings.ToLower(ln), i, mailHosts[i%len(mailHosts)]),
			Phone: fmt.Sprintf("+1 %03d %03d %04d", 201+r.IntN(700), 200+r.IntN(700), r.IntN(10000)),
			Card:  luhnCard(r),
		})
	}
	var staff []employee
	for i := 1; i <= 12; i++ {
		staff = append(staff, employee{event.Actor{UID: fmt.Sprintf("u-%d", 1000+i), Email: fmt.Sprintf("agent%02d@corp.example", i), Department: "support", Role: "support_agent"}})
	}
	for i := 1; i <= 3; i++ {
		staff = append(staff, employee{event.Actor{UID: fmt.Sprintf("u-%d", 2000+i), Email: fmt.Sprintf("eng%02d@corp.example", i), Department: "engineering", Role: "engineer"}})
	}
	for i := 1; i <= 2; i++ {
		staff = append(staff, employee{event.Actor{UID: fmt.Sprintf("u-%d", 3000+i), Email: fmt.Sprintf("mkt%02d@corp.example", i), Department: "marketing", Role: "marketing"}})
	}
	day.Employees = len(staff)
	insider := staff[6].actor // u-1007
	seq := 0
	nextID := func() string { seq++; return fmt.Sprintf("evt-%s-%06d", start.Format("20060102"), seq) }

	// Support agents: ~40 ticketed reads of 1–3 customers each, 09:00–17:00.
	for _, e := range staff[:12] {
		for k := 0; k < 40; k++ {
			at := start.Add(time.Duration(r.IntN(8*3600)) * time.Second)
			n := 1 + r.IntN(3)
			ids := make([]string, 0, n)
			for j := 0; j < n; j++ {
				ids = append(ids, day.Customers[r.IntN(len(day.Customers))].ID)
			}
			day.add(crm(nextID(), at, e.actor, event.ActionView, ids, fmt.Sprintf("T-%05d", 10000+r.IntN(90000)), regions[r.IntN(len(regions))]))
		}
	}
	// Everybody mails: internal notes, and a partner mail with one address.
	for _, e := range staff {
		for k := 0; k < 6; k++ {
			at := start.Add(time.Duration(r.IntN(8*3600)) * time.Second)
			to := staff[r.IntN(len(staff))].actor.Email
			body := "Hi, notes from today's stand-up: the queue is under control, see the wiki for details."
			if k == 0 {
				to = "partner@vendor.example"
				c := day.Customers[r.IntN(len(day.Customers))]
				body = "Please follow up with the customer at " + c.Email + " about the renewal."
			}
			day.add(mail(nextID(), at, e.actor, to, "Update", body, nil))
		}
	}
	// The insider: 10:00–10:45 exports 450 customers in batches of 15, no ticket,
	// concentrated on one region.
	var stolen []Customer
	for b := 0; b < 30; b++ {
		at := start.Add(time.Hour + time.Duration(b*90)*time.Second)
		ids := make([]string, 0, 15)
		for j := 0; j < 15; j++ {
			c := day.Customers[b*15+j]
			ids = append(ids, c.ID)
			stolen = append(stolen, c)
		}
		day.add(crm(nextID(), at, insider, event.ActionExport, ids, "", "US"))
	}
	// 11:05 the spreadsheet leaves by mail to a personal address.
	var csv strings.Builder
	csv.WriteString("customer_id,name,email,phone,card\n")
	for _, c := range stolen[:120] {
		fmt.Fprintf(&csv, "%s,%s,%s,%s,%s\n", c.ID, c.Name, c.Email, c.Phone, c.Card)
	}
	att := []event.Content{{FileName: "customers.csv", MimeType: "text/csv", Size: int64(csv.Len()), Text: csv.String()}}
	day.add(mail(nextID(), start.Add(2*time.Hour+5*time.Minute), insider, "dana.w.private@gmail.com", "stuff", "see attached", att))

	// One malformed event from a broken source.
	day.Events = append(day.Events, Raw{Kind: event.KindOutbound, Key: []byte("broken"), Value: []byte(`{"event_id": "evt-broken", "channel": "fax"`), Time: start.Add(3 * time.Hour)})
	day.Malformed = 1

	sort.SliceStable(day.Events, func(i, j int) bool { return day.Events[i].Time.Before(day.Events[j].Time) })
	return day
}

func (d *Day) add(kind event.Kind, id string, at time.Time, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("scenario: marshal %s: %v", id, err)) // static types: cannot fail
	}
	d.Events = append(d.Events, Raw{Kind: kind, Key: []byte(id), Value: b, Time: at})
}

func crm(id string, at time.Time, a event.Actor, action string, ids []string, ticket, region string) (event.Kind, string, time.Time, any) {
	return event.KindCRMAccess, id, at, event.CRMAccess{
		SchemaVersion: event.SchemaVersion, ClassUID: event.ClassAPIActivity, ActivityID: 2,
		EventID: id, Time: at, Actor: a, Action: action,
		Records:  event.Records{IDs: ids, Count: len(ids), Fields: []string{"name", "email", "phone"}, Region: region},
		TicketID: ticket, SrcEndpoint: event.Endpoint{IP: "10.20.0.17"}, AppName: "crm",
	}
}

func mail(id string, at time.Time, a event.Actor, to, subject, body string, att []event.Content) (event.Kind, string, time.Time, any) {
	domain := to[strings.LastIndexByte(to, '@')+1:]
	return event.KindOutbound, id, at, event.Outbound{
		SchemaVersion: event.SchemaVersion, ClassUID: event.ClassEmailActivity, ActivityID: 1,
		EventID: id, Time: at, Actor: a, Channel: event.ChannelEmail, Subject: subject,
		Destination: event.Destination{Recipients: []string{to}, Domains: []string{domain}},
		Content:     event.Content{MimeType: "text/plain", Size: int64(len(body)), Text: body},
		Attachments: att,
	}
}

// luhnCard returns a Visa-prefixed 16-digit number with a valid Luhn digit,
// grouped in fours.
func luhnCard(r *rand.Rand) string {
	return VisaCard(func() int { return r.IntN(10) })
}

// VisaCard returns a Visa-prefixed 16-digit card number grouped in fours:
// digit returns the 14 digits after the leading 4 (each 0–9) and the last
// digit makes the Luhn check pass. Synthetic data only.
func VisaCard(digit func() int) string {
	d := make([]int, 16)
	d[0] = 4
	for i := 1; i < 15; i++ {
		d[i] = digit()
	}
	sum := 0
	for i := 0; i < 15; i++ {
		v := d[14-i]
		if i%2 == 0 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	d[15] = (10 - sum%10) % 10
	var b strings.Builder
	for i, v := range d {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteByte(byte('0' + v))
	}
	return b.String()
}
