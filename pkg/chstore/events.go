package chstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// eventColumns are the events columns written, in the order of eventRow.
// inserted_at is left to its default (whole seconds); inserted_at_ms is
// stamped by InsertEvents.
var eventColumns = []string{
	"event_id", "kind", "time", "time_ms", "actor_uid", "department",
	"channel", "destination", "size", "pii_types", "pii_counts", "record_count",
	"inserted_at_ms",
}

// InsertEvents writes event metadata in one batch (one INSERT). Writing an
// event again is safe: the events table is a ReplacingMergeTree ordered by
// (actor_uid, time, event_id), so reads with FINAL see one row per event.
// Every row of the batch gets inserted_at_ms = the wall clock (Unix
// milliseconds) when the batch is assembled, just before it is sent: the
// row is readable once InsertEvents returned, a few milliseconds later.
func (s *Store) InsertEvents(ctx context.Context, evs []EventMeta) error {
	if len(evs) == 0 {
		return nil
	}
	for i := range evs {
		if evs[i].EventID == "" || evs[i].ActorUID == "" {
			return fmt.Errorf("chstore: insert events: event %d has no event id or actor", i)
		}
	}
	batch, err := s.conn.PrepareBatch(ctx,
		"INSERT INTO "+s.table("events")+" ("+strings.Join(eventColumns, ", ")+")")
	if err != nil {
		return fmt.Errorf("chstore: insert events: %w", err)
	}
	defer batch.Close()
	stamp := uint64(max(0, time.Now().UnixMilli()))
	for i := range evs {
		if err := batch.Append(append(eventRow(&evs[i]), stamp)...); err != nil {
			return fmt.Errorf("chstore: insert events: row %d (event %s): %w", i, evs[i].EventID, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("chstore: insert events: %w", err)
	}
	return nil
}

// eventRow is the row of an event, in eventColumns order without the
// trailing inserted_at_ms. The PII counts
// are written sorted by type, so equal events give equal rows.
func eventRow(e *EventMeta) []any {
	piiTypes := make([]string, 0, len(e.PIICounts))
	for t := range e.PIICounts {
		piiTypes = append(piiTypes, t)
	}
	slices.Sort(piiTypes)
	piiCounts := make([]uint32, len(piiTypes))
	for i, t := range piiTypes {
		piiCounts[i] = e.PIICounts[t]
	}
	return []any{
		e.EventID, e.Kind, dateTime(e.Time), unixMilli(e.Time), e.ActorUID, e.Department,
		e.Channel, e.Destination, e.Size, piiTypes, piiCounts, e.RecordCount,
	}
}
