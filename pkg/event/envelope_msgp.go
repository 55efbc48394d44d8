package event

//go:generate go run github.com/tinylib/msgp@v1.6.5 -file envelope_msgp.go -o envelope_msgp_gen.go -io=false -tests=false -unexported

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tinylib/msgp/msgp"
)

// The binary envelope on dlp.events.
//
// MarshalEvent writes an Event as envelopeMagic, a version byte, then one
// MessagePack array (wireEvent, below; every struct is a positional tuple,
// so the form has no field names and changing the layout means a new
// version). 0xC1 is a byte MessagePack never uses and that can never start
// JSON text (not even after a byte order mark), so UnmarshalEvent tells the
// two forms apart by the first byte and still reads the JSON written by an
// older normalizer.
//
// The binary form carries exactly what the JSON form carries: an empty
// slice in an omitempty field is written as nil (JSON omits it and reads it
// back as nil); Records.IDs, which JSON writes as null or [], keeps nil and
// empty apart; times keep their instant and UTC offset (JSON's RFC 3339
// does the same; normalized events are UTC).

const (
	// envelopeMagic is the first byte of a binary envelope.
	envelopeMagic = 0xC1
	// envelopeVersion is the version of the wire layout below.
	envelopeVersion = 1
	// maxWireArray bounds every array in a binary envelope, so that a
	// corrupted length cannot make the decoder allocate gigabytes. An
	// Event with a longer slice is written as JSON instead (see
	// marshalBinary).
	maxWireArray = 1 << 20
)

// ReasonInvalidBinary is the DecodeError reason of a binary envelope that
// cannot be decoded (truncated, corrupted or of an unknown version).
const ReasonInvalidBinary = "invalid_binary"

// The directives below make every struct a tuple and bound arrays at
// maxWireArray (TestEnvelopeArrayLimit checks the two agree).
//
//msgp:tuple wireTime wireActor wireRecords wireCRM wireDevice wireDestination wireContent wireOutbound wireEvent
//msgp:limit arrays:1048576 maps:0 marshal:false

// wireTime is a time.Time: Unix seconds, nanoseconds and UTC offset in
// seconds.
type wireTime struct {
	Sec    int64
	Nsec   int32
	Offset int32
}

type wireActor struct {
	UID        string
	Email      string
	Department string
	Role       string
}

type wireRecords struct {
	IDs     []string `msg:",allownil"`
	Count   int
	Fields  []string `msg:",allownil"`
	Segment string
	Region  string
}

type wireCRM struct {
	SchemaVersion int
	ClassUID      int
	ActivityID    int
	EventID       string
	Time          wireTime
	Actor         wireActor
	Action        string
	Records       wireRecords
	TicketID      string
	SrcIP         string
	AppName       string
}

type wireDevice struct {
	Vendor  string
	Product string
	Serial  string
}

type wireDestination struct {
	Recipients  []string `msg:",allownil"`
	Domains     []string `msg:",allownil"`
	Device      *wireDevice
	URL         string
	Host        string
	Application string
}

type wireContent struct {
	FileName  string
	MimeType  string
	Size      int64
	SHA256    string
	Text      string
	Truncated bool
}

type wireOutbound struct {
	SchemaVersion int
	ClassUID      int
	ActivityID    int
	EventID       string
	Time          wireTime
	Actor         wireActor
	Channel       string
	Subject       string
	Destination   wireDestination
	Content       wireContent
	Attachments   []wireContent `msg:",allownil"`
	SrcIP         string
}

type wireEvent struct {
	Kind             string
	EventID          string
	Time             wireTime
	Actor            wireActor
	CRM              *wireCRM
	Outbound         *wireOutbound
	SourceTopic      string
	SourcePartition  int
	SourceOffset     int64
	InvalidUTF8Bytes int
	IngestedAt       wireTime
}

// isBinaryEnvelope tells whether b is a binary envelope (of any version).
func isBinaryEnvelope(b []byte) bool { return len(b) > 0 && b[0] == envelopeMagic }

// marshalBinary writes e as a binary envelope. It reports false for an
// Event the binary form cannot carry (a slice longer than maxWireArray),
// which MarshalEvent then writes as JSON.
func marshalBinary(e *Event) ([]byte, bool) {
	s := scratchPool.Get().(*wireScratch)
	defer func() {
		*s = wireScratch{} // hold no event's strings while pooled
		scratchPool.Put(s)
	}()
	if !e.toWire(&s.ev, &s.crm, &s.out) {
		return nil, false
	}
	b := make([]byte, 2, 2+s.ev.Msgsize())
	b[0], b[1] = envelopeMagic, envelopeVersion
	b, err := s.ev.MarshalMsg(b)
	if err != nil {
		return nil, false
	}
	return b, true
}

// wireScratch is marshalBinary's working copy of an Event.
type wireScratch struct {
	ev  wireEvent
	crm wireCRM
	out wireOutbound
}

//msgp:ignore wireScratch

var scratchPool = sync.Pool{New: func() any { return new(wireScratch) }}

// wirePool recycles the decoder's scratch envelopes: decoding into a used
// one reuses its payload structs and slices, whose contents are copied
// into the returned Event.
var wirePool = sync.Pool{New: func() any { return new(wireEvent) }}

// unmarshalBinary reads a binary envelope. Errors name no value; a panic on
// malformed input becomes an error.
func unmarshalBinary(b []byte) (e *Event, err error) {
	if len(b) < 2 || b[1] != envelopeVersion {
		return nil, newDecodeError(ReasonInvalidBinary, &FieldError{Rule: "version", Detail: "unknown binary envelope version"})
	}
	w := wirePool.Get().(*wireEvent)
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, newDecodeError(ReasonInvalidBinary, &FieldError{Rule: "binary", Detail: "malformed binary envelope"})
			w = new(wireEvent) // do not reuse a half-decoded one
		}
		wirePool.Put(w)
	}()
	rest, err := w.UnmarshalMsg(b[2:])
	if err != nil {
		return nil, newDecodeError(ReasonInvalidBinary, &FieldError{Rule: "binary", Detail: wireErrorDetail(err)})
	}
	if len(rest) != 0 {
		return nil, newDecodeError(ReasonInvalidBinary, &FieldError{Rule: "binary",
			Detail: fmt.Sprintf("%d trailing bytes after the binary envelope", len(rest))})
	}
	return w.toEvent(), nil
}

// wireErrorDetail describes a msgp error without any value from the input:
// msgp's errors carry only field names, types and lengths, but only the
// kind of failure is kept.
func wireErrorDetail(err error) string {
	var te msgp.TypeError
	var ae msgp.ArrayError
	switch c := msgp.Cause(err); {
	case errors.Is(c, msgp.ErrShortBytes):
		return "truncated binary envelope"
	case errors.Is(c, msgp.ErrLimitExceeded):
		return "array longer than the binary envelope allows"
	case errors.As(c, &te):
		return "malformed binary envelope: unexpected type"
	case errors.As(c, &ae):
		return "malformed binary envelope: wrong field count"
	default:
		return "malformed binary envelope"
	}
}

// --- conversions ------------------------------------------------------------

func toWireTime(t time.Time) wireTime {
	_, off := t.Zone()
	return wireTime{Sec: t.Unix(), Nsec: int32(t.Nanosecond()), Offset: int32(off)}
}

// time returns the instant in UTC or, for a non-zero offset, in an unnamed
// zone of that offset: what RFC 3339 JSON decodes to.
func (w wireTime) time() time.Time {
	t := time.Unix(w.Sec, int64(w.Nsec))
	if w.Offset == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(w.Offset)))
}

// omitEmpty is what JSON's omitempty does to a slice: an empty one reads
// back as nil.
func omitEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// cloneSlice copies s, keeping nil and empty apart.
func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}

func fitsWire(n int) bool { return n <= maxWireArray }

// toWire fills w (and crm or out, which w then points to) from e. It
// reports false if a slice is too long for the binary form.
func (e *Event) toWire(w *wireEvent, crm *wireCRM, out *wireOutbound) bool {
	*w = wireEvent{
		Kind:             string(e.Kind),
		EventID:          e.EventID,
		Time:             toWireTime(e.Time),
		Actor:            wireActor(e.Actor),
		SourceTopic:      e.Source.Topic,
		SourcePartition:  e.Source.Partition,
		SourceOffset:     e.Source.Offset,
		InvalidUTF8Bytes: e.Quality.InvalidUTF8Bytes,
		IngestedAt:       toWireTime(e.IngestedAt),
	}
	if c := e.CRM; c != nil {
		if !fitsWire(len(c.Records.IDs)) || !fitsWire(len(c.Records.Fields)) {
			return false
		}
		*crm = wireCRM{
			SchemaVersion: c.SchemaVersion,
			ClassUID:      c.ClassUID,
			ActivityID:    c.ActivityID,
			EventID:       c.EventID,
			Time:          toWireTime(c.Time),
			Actor:         wireActor(c.Actor),
			Action:        c.Action,
			Records: wireRecords{
				IDs:     c.Records.IDs,
				Count:   c.Records.Count,
				Fields:  omitEmpty(c.Records.Fields),
				Segment: c.Records.Segment,
				Region:  c.Records.Region,
			},
			TicketID: c.TicketID,
			SrcIP:    c.SrcEndpoint.IP,
			AppName:  c.AppName,
		}
		w.CRM = crm
	}
	if o := e.Outbound; o != nil {
		d := &o.Destination
		if !fitsWire(len(d.Recipients)) || !fitsWire(len(d.Domains)) || !fitsWire(len(o.Attachments)) {
			return false
		}
		*out = wireOutbound{
			SchemaVersion: o.SchemaVersion,
			ClassUID:      o.ClassUID,
			ActivityID:    o.ActivityID,
			EventID:       o.EventID,
			Time:          toWireTime(o.Time),
			Actor:         wireActor(o.Actor),
			Channel:       o.Channel,
			Subject:       o.Subject,
			Destination: wireDestination{
				Recipients:  omitEmpty(d.Recipients),
				Domains:     omitEmpty(d.Domains),
				Device:      (*wireDevice)(d.Device),
				URL:         d.URL,
				Host:        d.Host,
				Application: d.Application,
			},
			Content: wireContent(o.Content),
			SrcIP:   o.SrcEndpoint.IP,
		}
		if len(o.Attachments) > 0 {
			out.Attachments = make([]wireContent, len(o.Attachments))
			for i, a := range o.Attachments {
				out.Attachments[i] = wireContent(a)
			}
		}
		w.Outbound = out
	}
	return true
}

// toEvent builds a new Event from w, sharing no memory with it (w is
// reused by the next decode).
func (w *wireEvent) toEvent() *Event {
	e := &Event{
		Kind:       Kind(w.Kind),
		EventID:    w.EventID,
		Time:       w.Time.time(),
		Actor:      Actor(w.Actor),
		Source:     Source{Topic: w.SourceTopic, Partition: w.SourcePartition, Offset: w.SourceOffset},
		Quality:    Quality{InvalidUTF8Bytes: w.InvalidUTF8Bytes},
		IngestedAt: w.IngestedAt.time(),
	}
	if c := w.CRM; c != nil {
		e.CRM = &CRMAccess{
			SchemaVersion: c.SchemaVersion,
			ClassUID:      c.ClassUID,
			ActivityID:    c.ActivityID,
			EventID:       c.EventID,
			Time:          c.Time.time(),
			Actor:         Actor(c.Actor),
			Action:        c.Action,
			Records: Records{
				IDs:     cloneSlice(c.Records.IDs),
				Count:   c.Records.Count,
				Fields:  cloneSlice(c.Records.Fields),
				Segment: c.Records.Segment,
				Region:  c.Records.Region,
			},
			TicketID:    c.TicketID,
			SrcEndpoint: Endpoint{IP: c.SrcIP},
			AppName:     c.AppName,
		}
	}
	if o := w.Outbound; o != nil {
		d := &o.Destination
		e.Outbound = &Outbound{
			SchemaVersion: o.SchemaVersion,
			ClassUID:      o.ClassUID,
			ActivityID:    o.ActivityID,
			EventID:       o.EventID,
			Time:          o.Time.time(),
			Actor:         Actor(o.Actor),
			Channel:       o.Channel,
			Subject:       o.Subject,
			Destination: Destination{
				Recipients:  cloneSlice(d.Recipients),
				Domains:     cloneSlice(d.Domains),
				URL:         d.URL,
				Host:        d.Host,
				Application: d.Application,
			},
			Content:     Content(o.Content),
			SrcEndpoint: Endpoint{IP: o.SrcIP},
		}
		if d.Device != nil {
			dev := Device(*d.Device)
			e.Outbound.Destination.Device = &dev
		}
		if o.Attachments != nil {
			e.Outbound.Attachments = make([]Content, len(o.Attachments))
			for i, a := range o.Attachments {
				e.Outbound.Attachments[i] = Content(a)
			}
		}
	}
	return e
}
