package event

import "time"

// Summary is the compact summary of one processed event for the events
// table (the Investigation timeline): who did what, when, over which
// channel, where to (masked like a finding's destination), how much, and
// how many detections of each PII type its content held. It never carries
// a raw value: no content text, no subject, no recipient address, no record
// ids.
type Summary struct {
	EventID    string    `json:"event_id"`
	Kind       string    `json:"kind"`
	Time       time.Time `json:"time"`
	ActorUID   string    `json:"actor_uid"`
	Department string    `json:"department,omitempty"`
	Channel    string    `json:"channel,omitempty"`
	// Destination is masked: email recipients masked, domains and hosts
	// kept.
	Destination string `json:"destination,omitempty"`
	// Size is the outbound content size plus its attachments', in bytes.
	Size uint64 `json:"size,omitempty"`
	// RecordCount is the number of customer records a CRM read touched.
	RecordCount uint64 `json:"record_count,omitempty"`
	// PIICounts counts the detections (medium confidence or better) in
	// outbound content by PII type.
	PIICounts map[string]uint32 `json:"pii_counts,omitempty"`
}
