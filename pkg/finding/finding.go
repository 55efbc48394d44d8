// Package finding owns the Finding: what a detection rule concluded about
// one actor over one window. A Finding never carries a raw PII value: only
// masked evidence and keyed HMAC tokens.
package finding

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Severity levels, lowest first.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// Evidence is one matched PII value, masked, with its keyed token.
type Evidence struct {
	Type   string `json:"type"`
	Masked string `json:"masked"`
	Token  string `json:"token"`
}

// Finding is one incident of one rule for one group (by default the actor).
// The same incident is re-emitted with a higher Revision as it grows; the
// store keeps the highest revision per FindingID.
type Finding struct {
	FindingID   string    `json:"finding_id"`
	Revision    uint64    `json:"revision"`
	RuleID      string    `json:"rule_id"`
	RuleVersion string    `json:"rule_version"`
	PackVersion string    `json:"pack_version"`
	Title       string    `json:"title"`
	Severity    string    `json:"severity"`
	Shadow      bool      `json:"shadow,omitempty"`
	ActorUID    string    `json:"actor_uid"`
	ActorEmail  string    `json:"actor_email,omitempty"`
	Department  string    `json:"department,omitempty"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	// Channel and Destination describe the outbound event, if any. Email
	// recipients are masked; domains and hosts are kept.
	Channel     string `json:"channel,omitempty"`
	Destination string `json:"destination,omitempty"`
	// Value is the measured quantity (e.g. distinct records read) and
	// Threshold the rule's limit it crossed.
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// EDMCustomers is the most known customers (exact data match) recognised
	// in one outbound event of the incident; EDMReadByActor how many of them
	// the actor had read from the CRM within the look-back.
	EDMCustomers   uint32 `json:"edm_customers,omitempty"`
	EDMReadByActor uint32 `json:"edm_read_by_actor,omitempty"`
	// PIICounts counts detections by PII type.
	PIICounts map[string]uint32 `json:"pii_counts,omitempty"`
	Evidence  []Evidence        `json:"evidence,omitempty"`
	// EventIDs lists contributing events (bounded; EventCount is the total).
	EventIDs   []string  `json:"event_ids,omitempty"`
	EventCount uint64    `json:"event_count"`
	DetectedAt time.Time `json:"detected_at"`
}

// MaxEventIDs bounds the contributing event ids a finding lists.
const MaxEventIDs = 50

// MaxEvidence bounds the evidence items a finding carries.
const MaxEvidence = 20

// ID derives the deterministic id of an incident from what identifies it, so
// a replay of the same input produces the same id.
func ID(ruleID, ruleVersion, group string, incidentStart time.Time) string {
	h := sha256.New()
	for _, s := range []string{ruleID, ruleVersion, group, strconv.FormatInt(incidentStart.UnixNano(), 10)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// SeverityWeight is the risk weight of a severity: low 1, medium 3, high 10,
// critical 25, anything else 0. It is the table of the risk score that
// Grafana's top_users query computes (chstore.SeverityWeights) and that the
// pager puts on every page; both must stay equal.
func SeverityWeight(severity string) float64 {
	switch severity {
	case SeverityLow:
		return 1
	case SeverityMedium:
		return 3
	case SeverityHigh:
		return 10
	case SeverityCritical:
		return 25
	}
	return 0
}
