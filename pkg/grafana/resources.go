package grafana

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/finding"
)

// Grafana organization roles (PluginContext.User.Role).
const (
	RoleAdmin  = "Admin"
	RoleEditor = "Editor"
	RoleViewer = "Viewer"
)

// CanReveal reports whether a user may reveal evidence: Editors and
// Admins. A request without a user (Grafana's own backend, e.g. alerting)
// may not.
func CanReveal(u *backend.User) bool {
	if u == nil {
		return false
	}
	return strings.EqualFold(u.Role, RoleAdmin) || strings.EqualFold(u.Role, RoleEditor)
}

// Option is one entry of a lookup resource: a query editor's select option.
type Option struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// handleLookup serves GET /rules, /actors, /channels and /severities:
// the distinct values (optionally ?prefix=…, ?limit=…) as []Option.
func (d *Datasource) handleLookup(what string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit := 0
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				writeError(w, http.StatusBadRequest, "limit must be a non-negative integer")
				return
			}
			limit = n
		}
		prefix := r.URL.Query().Get("prefix")
		if len(prefix) > 256 {
			writeError(w, http.StatusBadRequest, "prefix longer than 256 bytes")
			return
		}
		st, err := d.storeFor(r.Context())
		if err != nil {
			writeError(w, http.StatusBadGateway, err.Error())
			return
		}
		vs, err := st.DistinctValues(r.Context(), what, prefix, limit)
		if err != nil {
			writeError(w, http.StatusBadGateway, err.Error())
			return
		}
		opts := make([]Option, len(vs))
		for i, v := range vs {
			opts[i] = Option{Label: v, Value: v}
		}
		writeJSON(w, http.StatusOK, opts)
	}
}

// RevealRequest is the body of POST /reveal; GET /reveal takes the same
// fields as query parameters (finding_id, reason).
type RevealRequest struct {
	FindingID string `json:"finding_id"`
	// Reason is why the evidence is needed (a case or ticket number);
	// required, recorded in the audit log.
	Reason string `json:"reason"`
}

// RevealResponse is what /reveal returns to an Editor or Admin: all the
// evidence Leakline has. The pipeline never stores raw matched values, so
// there are none to reveal: Evidence holds each match's masked value and
// its keyed HMAC token, which confirms a candidate value (tokenize it with
// the pipeline's key and compare) and links the same value across
// findings.
type RevealResponse struct {
	FindingID   string             `json:"finding_id"`
	Revision    uint64             `json:"revision"`
	RuleID      string             `json:"rule_id"`
	RuleVersion string             `json:"rule_version"`
	PackVersion string             `json:"pack_version"`
	Title       string             `json:"title"`
	Severity    string             `json:"severity"`
	ActorUID    string             `json:"actor_uid"`
	WindowStart time.Time          `json:"window_start"`
	WindowEnd   time.Time          `json:"window_end"`
	Channel     string             `json:"channel,omitempty"`
	Destination string             `json:"destination,omitempty"`
	PIICounts   map[string]uint32  `json:"pii_counts,omitempty"`
	Evidence    []finding.Evidence `json:"evidence"`
	// EventIDs are the contributing events: the source systems (CRM audit
	// log, mail archive) hold their content.
	EventIDs []string `json:"event_ids,omitempty"`
	// RawValuesStored is always false; Note says what that means.
	RawValuesStored bool   `json:"raw_values_stored"`
	Note            string `json:"note"`
	// AuditID is the id of the evidence_access_audit row of this reveal.
	AuditID   string    `json:"audit_id"`
	AuditedAt time.Time `json:"audited_at"`
}

// RevealNote is RevealResponse.Note.
const RevealNote = "Leakline never stores raw matched values: this is all the evidence there is, masked values and keyed HMAC tokens " +
	"(first 16 bytes of HMAC-SHA256 of the normalized value). To confirm a candidate value, tokenize it with the pipeline's key and compare; " +
	"the raw content is in the source systems under the listed event ids."

var findingIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// maxReasonLen bounds the recorded reason, in bytes.
const maxReasonLen = 1000

// handleReveal serves /reveal. Every request with a well-formed finding id
// writes exactly one evidence_access_audit row before it is answered:
// "denied" for a Viewer (403), "granted" for an Editor or Admin (200 with
// the evidence). If the audit row cannot be written, no evidence is
// returned.
func (d *Datasource) handleReveal(w http.ResponseWriter, r *http.Request) {
	req, err := readRevealRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	pc := backend.PluginConfigFromContext(r.Context())
	user := backend.UserFromContext(r.Context())
	if user == nil {
		user = pc.User
	}
	st, err := d.storeFor(r.Context())
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	access := chstore.EvidenceAccess{
		AuditID:       newAuditID(),
		At:            d.now().UTC(),
		OrgID:         pc.OrgID,
		DatasourceUID: d.uid,
		FindingID:     req.FindingID,
		Reason:        req.Reason,
	}
	if user != nil {
		access.UserLogin, access.UserEmail, access.UserRole = user.Login, user.Email, user.Role
	}
	if !CanReveal(user) {
		access.Outcome = chstore.AccessDenied
		if err := d.audit(r.Context(), st, access); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeError(w, http.StatusForbidden, "revealing evidence needs the Editor or Admin role; this attempt was recorded in the evidence access audit log")
		return
	}
	if strings.TrimSpace(req.Reason) == "" {
		writeError(w, http.StatusBadRequest, "reason is required (why the evidence is needed, e.g. a case number); it is recorded in the audit log")
		return
	}
	f, ok, err := st.FindingByID(r.Context(), req.FindingID)
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, "no such finding")
		return
	}
	access.ActorUID = f.ActorUID
	access.Outcome = chstore.AccessGranted
	if err := d.audit(r.Context(), st, access); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	ev := f.Evidence
	if ev == nil {
		ev = []finding.Evidence{}
	}
	writeJSON(w, http.StatusOK, RevealResponse{
		FindingID: f.FindingID, Revision: f.Revision, RuleID: f.RuleID, RuleVersion: f.RuleVersion, PackVersion: f.PackVersion,
		Title: f.Title, Severity: f.Severity, ActorUID: f.ActorUID, WindowStart: f.WindowStart, WindowEnd: f.WindowEnd,
		Channel: f.Channel, Destination: f.Destination, PIICounts: f.PIICounts, Evidence: ev, EventIDs: f.EventIDs,
		RawValuesStored: false, Note: RevealNote,
		AuditID: access.AuditID, AuditedAt: access.At,
	})
}

// audit writes the audit row, bounded in time even if the request is not.
func (d *Datasource) audit(ctx context.Context, st *chstore.Store, a chstore.EvidenceAccess) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(d.settings.QueryTimeout))
	defer cancel()
	if err := st.InsertEvidenceAccess(ctx, a); err != nil {
		d.log.Error("evidence access audit failed; access refused", "error", err)
		return fmt.Errorf("the evidence access could not be recorded in the audit log, so it is refused: %w", err)
	}
	d.log.Info("evidence access", "audit_id", a.AuditID, "outcome", a.Outcome, "user", a.UserLogin, "role", a.UserRole, "finding_id", a.FindingID)
	return nil
}

// readRevealRequest reads the finding id and reason from the query string
// and, for POST, a JSON body.
func readRevealRequest(r *http.Request) (RevealRequest, error) {
	q := r.URL.Query()
	req := RevealRequest{FindingID: q.Get("finding_id"), Reason: q.Get("reason")}
	if r.Method == http.MethodPost && r.Body != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			return req, fmt.Errorf("read body: %w", err)
		}
		if len(strings.TrimSpace(string(body))) > 0 {
			var b RevealRequest
			if err := json.Unmarshal(body, &b); err != nil {
				return req, errors.New("body must be JSON {\"finding_id\": ..., \"reason\": ...}")
			}
			if b.FindingID != "" {
				req.FindingID = b.FindingID
			}
			if b.Reason != "" {
				req.Reason = b.Reason
			}
		}
	}
	if !findingIDRE.MatchString(req.FindingID) {
		return req, errors.New("finding_id is required (letters, digits, . _ : -; at most 128)")
	}
	if len(req.Reason) > maxReasonLen || !utf8.ValidString(req.Reason) {
		return req, fmt.Errorf("reason must be valid UTF-8 of at most %d bytes", maxReasonLen)
	}
	return req, nil
}

// newAuditID is 16 random bytes, hex.
func newAuditID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// ErrorBody is the JSON body of a failed resource call.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorBody{Error: msg})
}
