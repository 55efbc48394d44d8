package detect

import (
	"maps"
	"time"

	"github.com/leakline/leakline/pkg/event"
)

// EventMeta is the compact summary of one processed event for the events
// table (the Investigation timeline): who did what, when, over which
// channel, where to (masked like a finding's destination), how much, and
// how many detections of each PII type its content held. It never carries
// a raw value: no content text, no subject, no recipient address, no record
// ids.
type EventMeta struct {
	EventID    string    `json:"event_id"`
	Kind       string    `json:"kind"`
	Time       time.Time `json:"time"`
	ActorUID   string    `json:"actor_uid"`
	Department string    `json:"department,omitempty"`
	Channel    string    `json:"channel,omitempty"`
	// Destination is masked: email recipients masked, domains and hosts
	// kept (see destination).
	Destination string `json:"destination,omitempty"`
	// Size is the outbound content size plus its attachments', in bytes.
	Size uint64 `json:"size,omitempty"`
	// RecordCount is the number of customer records a CRM read touched.
	RecordCount uint64 `json:"record_count,omitempty"`
	// PIICounts counts the detections (medium confidence or better) in
	// outbound content by PII type.
	PIICounts map[string]uint32 `json:"pii_counts,omitempty"`
}

// EventMeta returns the summary of the event the last Process call applied.
// It reports false when that call ignored the event as a duplicate (or no
// event was processed yet). The PII counts are a copy: the engine reuses its
// own map for the next event.
func (e *Engine) EventMeta() (EventMeta, bool) {
	ev := e.last
	if ev == nil {
		return EventMeta{}, false
	}
	m := EventMeta{
		EventID:    ev.EventID,
		Kind:       string(ev.Kind),
		Time:       ev.Time.UTC(),
		ActorUID:   ev.Actor.UID,
		Department: ev.Actor.Department,
	}
	switch {
	case ev.Kind == event.KindCRMAccess && ev.CRM != nil:
		if n := ev.CRM.Records.Count; n > 0 {
			m.RecordCount = uint64(n)
		}
	case ev.Kind == event.KindOutbound && ev.Outbound != nil:
		ob := ev.Outbound
		m.Channel = ob.Channel
		m.Destination = destination(ob)
		var size int64
		if ob.Content.Size > 0 {
			size += ob.Content.Size
		}
		for _, a := range ob.Attachments {
			if a.Size > 0 {
				size += a.Size
			}
		}
		m.Size = uint64(size)
		if len(e.insp.counts) > 0 {
			m.PIICounts = maps.Clone(e.insp.counts)
		}
	}
	return m, true
}
