package detect

import (
	"maps"

	"github.com/leakline/leakline/pkg/event"
)

// EventMeta returns the summary (event.Summary) of the event the last Process call applied.
// It reports false when that call ignored the event as a duplicate (or no
// event was processed yet). The PII counts are a copy: the engine reuses its
// own map for the next event.
func (e *Engine) EventMeta() (event.Summary, bool) {
	ev := e.last
	if ev == nil {
		return event.Summary{}, false
	}
	m := event.Summary{
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
