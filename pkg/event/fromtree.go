package event

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// # Step 5 without a second parse
//
// A document the fast path (fastvalid.go) found valid has exactly the
// shape of its schema: known keys only, every value of the expected JSON
// type, integers written as plain digits. Its Go value is then built from
// the tree that step 3 parsed, instead of parsing the bytes again with a
// JSON decoder. What encoding/json would give is the reference:
// TestTypedDecodeAgrees and FuzzFastValid check that both give the same Go
// value on every document the fast path accepts. Anything unexpected is an
// error, and the caller then decodes the bytes with encoding/json as
// before.

// errTreeShape: the tree is not what the fast path promised.
var errTreeShape = errors.New("event: tree does not have the schema's shape")

// typedFromTree fills v (*CRMAccess or *Outbound) from tree, a document of
// kind k that fastValid accepted; timeLit is the raw literal of its
// top-level "time" value (time.Time decodes from the literal, escapes
// included, as encoding/json hands it over).
func typedFromTree(tree any, timeLit []byte, v any) error {
	m, ok := tree.(object)
	if !ok {
		return errTreeShape
	}
	var b treeBuilder
	switch v := v.(type) {
	case *CRMAccess:
		b.crm(m, timeLit, v)
	case *Outbound:
		b.outbound(m, timeLit, v)
	default:
		return errTreeShape
	}
	return b.err
}

// treeBuilder records the first problem; later calls are no-ops in effect.
type treeBuilder struct{ err error }

func (b *treeBuilder) fail() {
	if b.err == nil {
		b.err = errTreeShape
	}
}

func (b *treeBuilder) str(v any) string {
	s, ok := v.(string)
	if !ok {
		b.fail()
	}
	return s
}

func (b *treeBuilder) int(v any) int64 {
	n, ok := v.(json.Number)
	if !ok {
		b.fail()
		return 0
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		b.fail()
	}
	return i
}

func (b *treeBuilder) obj(v any) object {
	m, ok := v.(object)
	if !ok {
		b.fail()
	}
	return m
}

func (b *treeBuilder) strs(v any) []string {
	a, ok := v.([]any)
	if !ok {
		b.fail()
		return nil
	}
	out := make([]string, len(a))
	for i, x := range a {
		out[i] = b.str(x)
	}
	return out
}

func (b *treeBuilder) time(lit []byte, t *time.Time) {
	if lit == nil || t.UnmarshalJSON(lit) != nil {
		b.fail()
	}
}

func (b *treeBuilder) crm(m object, timeLit []byte, v *CRMAccess) {
	for _, mb := range m {
		key, x := mb.key, mb.val
		switch key {
		case "schema_version":
			v.SchemaVersion = int(b.int(x))
		case "class_uid":
			v.ClassUID = int(b.int(x))
		case "activity_id":
			v.ActivityID = int(b.int(x))
		case "event_id":
			v.EventID = b.str(x)
		case "time":
			b.time(timeLit, &v.Time)
		case "actor":
			b.actor(x, &v.Actor)
		case "action":
			v.Action = b.str(x)
		case "records":
			b.records(x, &v.Records)
		case "ticket_id":
			v.TicketID = b.str(x)
		case "src_endpoint":
			b.endpoint(x, &v.SrcEndpoint)
		case "app_name":
			v.AppName = b.str(x)
		default:
			b.fail()
		}
	}
}

func (b *treeBuilder) outbound(m object, timeLit []byte, v *Outbound) {
	for _, mb := range m {
		key, x := mb.key, mb.val
		switch key {
		case "schema_version":
			v.SchemaVersion = int(b.int(x))
		case "class_uid":
			v.ClassUID = int(b.int(x))
		case "activity_id":
			v.ActivityID = int(b.int(x))
		case "event_id":
			v.EventID = b.str(x)
		case "time":
			b.time(timeLit, &v.Time)
		case "actor":
			b.actor(x, &v.Actor)
		case "channel":
			v.Channel = b.str(x)
		case "subject":
			v.Subject = b.str(x)
		case "destination":
			b.destination(x, &v.Destination)
		case "content":
			b.content(x, &v.Content)
		case "attachments":
			a, ok := x.([]any)
			if !ok {
				b.fail()
				continue
			}
			v.Attachments = make([]Content, len(a))
			for i, c := range a {
				b.content(c, &v.Attachments[i])
			}
		case "src_endpoint":
			b.endpoint(x, &v.SrcEndpoint)
		default:
			b.fail()
		}
	}
}

func (b *treeBuilder) actor(x any, a *Actor) {
	for _, mb := range b.obj(x) {
		key, y := mb.key, mb.val
		switch key {
		case "uid":
			a.UID = b.str(y)
		case "email_addr":
			a.Email = b.str(y)
		case "department":
			a.Department = b.str(y)
		case "role":
			a.Role = b.str(y)
		default:
			b.fail()
		}
	}
}

func (b *treeBuilder) endpoint(x any, e *Endpoint) {
	for _, mb := range b.obj(x) {
		key, y := mb.key, mb.val
		if key != "ip" {
			b.fail()
		}
		e.IP = b.str(y)
	}
}

func (b *treeBuilder) records(x any, r *Records) {
	for _, mb := range b.obj(x) {
		key, y := mb.key, mb.val
		switch key {
		case "ids":
			r.IDs = b.strs(y)
		case "count":
			r.Count = int(b.int(y))
		case "fields":
			r.Fields = b.strs(y)
		case "segment":
			r.Segment = b.str(y)
		case "region":
			r.Region = b.str(y)
		default:
			b.fail()
		}
	}
}

func (b *treeBuilder) destination(x any, d *Destination) {
	for _, mb := range b.obj(x) {
		key, y := mb.key, mb.val
		switch key {
		case "recipients":
			d.Recipients = b.strs(y)
		case "domains":
			d.Domains = b.strs(y)
		case "device":
			dev := &Device{}
			for _, mb := range b.obj(y) {
				k, z := mb.key, mb.val
				switch k {
				case "vendor":
					dev.Vendor = b.str(z)
				case "product":
					dev.Product = b.str(z)
				case "serial":
					dev.Serial = b.str(z)
				default:
					b.fail()
				}
			}
			d.Device = dev
		case "url":
			d.URL = b.str(y)
		case "host":
			d.Host = b.str(y)
		case "application":
			d.Application = b.str(y)
		default:
			b.fail()
		}
	}
}

func (b *treeBuilder) content(x any, c *Content) {
	for _, mb := range b.obj(x) {
		key, y := mb.key, mb.val
		switch key {
		case "file_name":
			c.FileName = b.str(y)
		case "mime_type":
			c.MimeType = b.str(y)
		case "size":
			c.Size = b.int(y)
		case "sha256":
			c.SHA256 = b.str(y)
		case "text":
			c.Text = b.str(y)
		case "truncated":
			t, ok := y.(bool)
			if !ok {
				b.fail()
			}
			c.Truncated = t
		default:
			b.fail()
		}
	}
}
