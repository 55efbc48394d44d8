package rules

import (
	"reflect"
	"unsafe"

	"github.com/leakline/leakline/pkg/event"
)

// Env is the typed environment every rule expression is checked against at
// load time and evaluated over at run time. The expr tags are the names rule
// authors write (crm.record_ids, outbound.external, pii.total, ...).
//
// The engine keeps one Env per goroutine, made by NewEnv, and per event
// calls SetEvent, then sets PII and Outbound.External, then evaluates the
// rules. An Env is not safe for concurrent use.
type Env struct {
	// Kind is the event kind: "crm_access" or "outbound".
	Kind string `expr:"kind"`
	// Hour (0–23) and Weekday (0 = Sunday … 6 = Saturday) of the event
	// time in UTC.
	Hour    int `expr:"hour"`
	Weekday int `expr:"weekday"`

	Actor    ActorEnv    `expr:"actor"`
	CRM      CRMEnv      `expr:"crm"`
	Outbound OutboundEnv `expr:"outbound"`
	PII      PIIEnv      `expr:"pii"`

	// self is a boxed Env value whose storage is this Env (see NewEnv):
	// passing it to the VM lets expr read fields without copying them.
	self any
}

// ActorEnv is the employee or service account that acted.
type ActorEnv struct {
	UID        string `expr:"uid"`
	Email      string `expr:"email"`
	Department string `expr:"department"`
	Role       string `expr:"role"`
}

// CRMEnv describes a crm_access event; zero for outbound events.
type CRMEnv struct {
	// Action is view, search, export or api_read.
	Action string `expr:"action"`
	// RecordIDs are the distinct record ids (sorted; possibly a sample),
	// RecordCount the true number of records touched.
	RecordIDs   []string `expr:"record_ids"`
	RecordCount int      `expr:"record_count"`
	// Fields are the CRM fields read (email, phone, iban, ...).
	Fields   []string `expr:"fields"`
	TicketID string   `expr:"ticket_id"`
	Segment  string   `expr:"segment"`
	Region   string   `expr:"region"`
	// App is the CRM application or integration (app_name).
	App string `expr:"app"`
}

// OutboundEnv describes an outbound event; zero for crm_access events.
type OutboundEnv struct {
	// Channel is email, usb or upload.
	Channel string `expr:"channel"`
	// Domains are the recipient domains (email; lower case, sorted, unique).
	Domains []string `expr:"domains"`
	// Host, URL and Application describe an upload (host in lower case).
	Host        string `expr:"host"`
	URL         string `expr:"url"`
	Application string `expr:"application"`
	// DeviceVendor and DeviceProduct describe a USB device.
	DeviceVendor  string `expr:"device_vendor"`
	DeviceProduct string `expr:"device_product"`
	// External is true when the destination is outside the company (set
	// by the engine, which knows the company domains).
	External bool `expr:"external"`
	// Bytes is the size of the content plus the attachments as reported by
	// the source.
	Bytes int `expr:"bytes"`
	// FileNames are the non-empty file names of content and attachments.
	FileNames []string `expr:"file_names"`
	// Attachments is the number of attachments.
	Attachments int `expr:"attachments"`
}

// PIIEnv is what content inspection found in an outbound event (set by
// the engine; zero for crm_access events).
type PIIEnv struct {
	// Total counts detections of at least medium confidence.
	Total int `expr:"total"`
	// Counts counts them by type: EMAIL_ADDRESS, CREDIT_CARD,
	// PHONE_NUMBER, US_SSN, UK_NINO, IBAN, IP_ADDRESS and custom types.
	Counts map[string]int `expr:"counts"`
	// EDMCustomers is the number of distinct known customers (exact data
	// match) in the content; EDMReadByActor how many of them the actor
	// read from the CRM recently.
	EDMCustomers   int `expr:"edm_customers"`
	EDMReadByActor int `expr:"edm_read_by_actor"`
	// Truncated is true when some content was cut before inspection.
	Truncated bool `expr:"truncated"`
}

var envType = reflect.TypeFor[Env]()

// eface is the layout of an empty interface.
type eface struct {
	typ, data unsafe.Pointer
}

// NewEnv returns an Env for evaluation. Expressions read its fields without
// allocating: the Env lives inside a boxed interface value, which the VM
// reads in place. (A zero Env works too, but every field read then copies
// the field to the heap.)
func NewEnv() *Env {
	// Interface on an addressable reflect.Value copies the value into a new
	// heap object that the interface owns; e points to that object.
	box := reflect.New(envType).Elem().Interface()
	e := (*Env)((*eface)(unsafe.Pointer(&box)).data)
	e.self = box
	e.PII.Counts = make(map[string]int, 8)
	if !e.selfBoxed() || !e.readsThroughBox() {
		e.self = nil
	}
	return e
}

// selfBoxed reports whether e.self is a boxed Env stored at e.
func (e *Env) selfBoxed() bool {
	return e.self != nil && (*eface)(unsafe.Pointer(&e.self)).data == unsafe.Pointer(e)
}

// readsThroughBox checks once, at construction, that a write to the Env is
// seen through the box.
func (e *Env) readsThroughBox() bool {
	f, _ := envType.FieldByName("Hour")
	e.Hour = 0x5eed
	ok := reflect.ValueOf(e.self).FieldByIndex(f.Index).Int() == 0x5eed
	e.Hour = 0
	return ok
}

// value is what the VM is given: the box when e was made by NewEnv (and
// not copied since), else the pointer.
func (e *Env) value() any {
	if e.selfBoxed() {
		return e.self
	}
	return e
}

// SetEvent fills the Env from a normalized event. It sets everything except
// PII and Outbound.External, which it resets to zero (the PII.Counts map is
// cleared and kept): the engine sets them after content inspection. Slices
// alias the event's; the event must not change while rules are evaluated.
// SetEvent does not allocate after the first events.
func (e *Env) SetEvent(ev *event.Event) {
	e.Kind = string(ev.Kind)
	t := ev.Time.UTC()
	e.Hour, e.Weekday = t.Hour(), int(t.Weekday())
	e.Actor = ActorEnv{UID: ev.Actor.UID, Email: ev.Actor.Email, Department: ev.Actor.Department, Role: ev.Actor.Role}

	if c := ev.CRM; c != nil {
		e.CRM = CRMEnv{
			Action: c.Action, RecordIDs: c.Records.IDs, RecordCount: max(c.Records.Count, len(c.Records.IDs)),
			Fields: c.Records.Fields, TicketID: c.TicketID, Segment: c.Records.Segment, Region: c.Records.Region,
			App: c.AppName,
		}
	} else {
		e.CRM = CRMEnv{}
	}

	names := e.Outbound.FileNames[:0]
	if o := ev.Outbound; o != nil {
		size := o.Content.Size
		if o.Content.FileName != "" {
			names = append(names, o.Content.FileName)
		}
		for i := range o.Attachments {
			size += o.Attachments[i].Size
			if n := o.Attachments[i].FileName; n != "" {
				names = append(names, n)
			}
		}
		var vendor, product string
		if d := o.Destination.Device; d != nil {
			vendor, product = d.Vendor, d.Product
		}
		e.Outbound = OutboundEnv{
			Channel: o.Channel, Domains: o.Destination.Domains, Host: o.Destination.Host,
			URL: o.Destination.URL, Application: o.Destination.Application,
			DeviceVendor: vendor, DeviceProduct: product,
			Bytes: int(size), FileNames: names, Attachments: len(o.Attachments),
		}
	} else {
		e.Outbound = OutboundEnv{FileNames: names}
	}

	counts := e.PII.Counts
	if counts == nil {
		counts = make(map[string]int, 8)
	} else {
		clear(counts)
	}
	e.PII = PIIEnv{Counts: counts}
}
