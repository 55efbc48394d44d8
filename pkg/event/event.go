// Package event owns Leakline's event contract: the raw CRM-access and
// outbound-traffic events that arrive from the audit sources, and the
// normalized Event that flows on dlp.events. Field names follow OCSF where it
// is natural (class_uid, activity_id, time, actor, src_endpoint).
package event

import "time"

// SchemaVersion is the version of the event contract this package speaks.
const SchemaVersion = 1

// Kind tells which source an event came from.
type Kind string

const (
	KindCRMAccess Kind = "crm_access"
	KindOutbound  Kind = "outbound"
)

// OCSF class identifiers carried by the events.
const (
	ClassAPIActivity         = 6003 // CRM read
	ClassEmailActivity       = 4009 // outbound email
	ClassFileSystemActivity  = 1001 // write to a removable device
	ClassFileHostingActivity = 6006 // web / cloud upload
)

// CRM actions.
const (
	ActionView    = "view"
	ActionSearch  = "search"
	ActionExport  = "export"
	ActionAPIRead = "api_read"
)

// Outbound channels.
const (
	ChannelEmail  = "email"
	ChannelUSB    = "usb"
	ChannelUpload = "upload"
)

// Actor is the employee (or service account) that acted.
type Actor struct {
	UID        string `json:"uid"`
	Email      string `json:"email_addr,omitempty"`
	Department string `json:"department,omitempty"`
	Role       string `json:"role,omitempty"`
}

// Endpoint is the network origin of an action.
type Endpoint struct {
	IP string `json:"ip,omitempty"`
}

// Records describes the customer records a CRM action touched.
type Records struct {
	IDs     []string `json:"ids"`
	Count   int      `json:"count"`
	Fields  []string `json:"fields,omitempty"`
	Segment string   `json:"segment,omitempty"`
	Region  string   `json:"region,omitempty"`
}

// CRMAccess is one read of customer records from the CRM (OCSF API Activity).
type CRMAccess struct {
	SchemaVersion int       `json:"schema_version"`
	ClassUID      int       `json:"class_uid"`
	ActivityID    int       `json:"activity_id"`
	EventID       string    `json:"event_id"`
	Time          time.Time `json:"time"`
	Actor         Actor     `json:"actor"`
	Action        string    `json:"action"`
	Records       Records   `json:"records"`
	TicketID      string    `json:"ticket_id"`
	SrcEndpoint   Endpoint  `json:"src_endpoint,omitempty"`
	AppName       string    `json:"app_name,omitempty"`
}

// Device is a removable device written to.
type Device struct {
	Vendor  string `json:"vendor,omitempty"`
	Product string `json:"product,omitempty"`
	Serial  string `json:"serial,omitempty"`
}

// Destination is where outbound data went. Which fields are set depends on
// the channel: recipients/domains for email, device for usb, url/host/app
// for upload.
type Destination struct {
	Recipients  []string `json:"recipients,omitempty"`
	Domains     []string `json:"domains,omitempty"`
	Device      *Device  `json:"device,omitempty"`
	URL         string   `json:"url,omitempty"`
	Host        string   `json:"host,omitempty"`
	Application string   `json:"application,omitempty"`
}

// Content is a body, file or attachment that left. Text is the extracted
// text, capped by the source at its configured size; Truncated says the cap
// was hit.
type Content struct {
	FileName  string `json:"file_name,omitempty"`
	MimeType  string `json:"mime_type,omitempty"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256,omitempty"`
	Text      string `json:"text,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
}

// Outbound is data leaving the company: an email, a USB write or an upload.
type Outbound struct {
	SchemaVersion int         `json:"schema_version"`
	ClassUID      int         `json:"class_uid"`
	ActivityID    int         `json:"activity_id"`
	EventID       string      `json:"event_id"`
	Time          time.Time   `json:"time"`
	Actor         Actor       `json:"actor"`
	Channel       string      `json:"channel"`
	Subject       string      `json:"subject,omitempty"`
	Destination   Destination `json:"destination"`
	Content       Content     `json:"content"`
	Attachments   []Content   `json:"attachments,omitempty"`
	SrcEndpoint   Endpoint    `json:"src_endpoint,omitempty"`
}

// Source locates the raw record an event was normalized from.
type Source struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Quality records what normalization had to repair.
type Quality struct {
	// InvalidUTF8Bytes counts bytes that were not valid UTF-8 and were
	// removed (never replaced by U+FFFD, which would split a value in two
	// and hide it from the detectors).
	InvalidUTF8Bytes int `json:"invalid_utf8_bytes,omitempty"`
}

// Event is the normalized envelope on dlp.events, keyed by Actor.UID.
// Exactly one of CRM and Outbound is set, as Kind says.
type Event struct {
	Kind       Kind       `json:"kind"`
	EventID    string     `json:"event_id"`
	Time       time.Time  `json:"time"`
	Actor      Actor      `json:"actor"`
	CRM        *CRMAccess `json:"crm,omitempty"`
	Outbound   *Outbound  `json:"outbound,omitempty"`
	Source     Source     `json:"source"`
	Quality    Quality    `json:"quality,omitempty"`
	IngestedAt time.Time  `json:"ingested_at"`
}
