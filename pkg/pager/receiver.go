package pager

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cenkalti/backoff/v5"
)

// Action is what an event asks of a receiver.
type Action string

// Actions.
const (
	// ActionTrigger opens an incident or updates an open one (same dedup
	// key): never a second page.
	ActionTrigger Action = "trigger"
	// ActionResolve closes the incident.
	ActionResolve Action = "resolve"
)

// Event is one delivery to one receiver.
type Event struct {
	Action Action
	Page   Page
	// Kind says why the event is sent: "new", "update", "resend",
	// "resolve", "summary" or "shadow".
	Kind string
	// Time is when the event was made.
	Time time.Time
	// StartsAt (Alertmanager) is when the incident was first paged: an
	// older start would make Alertmanager skip the route's group_wait.
	StartsAt time.Time
	// EndsAt (Alertmanager) is when the alert ends unless re-sent.
	EndsAt time.Time
}

// Receiver delivers events to one destination. Send makes one attempt and
// classifies its failure: an error wrapping *RejectedError (via
// backoff.Permanent) must not be retried; one wrapping
// *backoff.RetryAfterError asks for a given pause; any other error is
// retried with backoff.
type Receiver interface {
	Name() string
	Type() ReceiverType
	Send(ctx context.Context, ev Event) error
	// Forgets reports whether the receiver drops an alert that is not
	// re-sent periodically (Alertmanager does).
	Forgets() bool
}

// RejectedError is a receiver's refusal of an event (an HTTP 4xx other
// than 408 and 429): retrying cannot help, the event is dead-lettered.
type RejectedError struct {
	Receiver string
	Status   int
	// Body is the start of the response, sanitised.
	Body string
}

func (e *RejectedError) Error() string {
	s := fmt.Sprintf("receiver %s rejected the event: HTTP %d", e.Receiver, e.Status)
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// StatusError is a retryable HTTP failure (5xx, 408 or 429).
type StatusError struct {
	Receiver string
	Status   int
	Body     string
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("receiver %s: HTTP %d", e.Receiver, e.Status)
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// maxRetryAfter caps a Retry-After a receiver asks for.
const maxRetryAfter = 10 * time.Minute

// maxErrorBody bounds the response text kept in errors.
const maxErrorBody = 256

// httpTarget posts JSON to one URL and classifies the outcome.
type httpTarget struct {
	name   string
	url    string
	client *http.Client
}

func (t *httpTarget) post(ctx context.Context, body []byte, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return backoff.Permanent(&RejectedError{Receiver: t.name, Body: err.Error()})
	}
	maps.Copy(req.Header, header)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "leakline-pager/1")
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("receiver %s: %w", t.name, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // keep the connection reusable
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusTooManyRequests:
		se := &StatusError{Receiver: t.name, Status: code, Body: sanitize(snippet)}
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			secs := int((d + time.Second - 1) / time.Second)
			return errors.Join(se, backoff.RetryAfter(secs))
		}
		return se
	case code >= 500, code == http.StatusRequestTimeout:
		return &StatusError{Receiver: t.name, Status: code, Body: sanitize(snippet)}
	default:
		return backoff.Permanent(&RejectedError{Receiver: t.name, Status: code, Body: sanitize(snippet)})
	}
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	var d time.Duration
	if n, err := strconv.Atoi(h); err == nil {
		if n < 0 {
			return 0, false
		}
		d = time.Duration(min(n, int(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = max(t.Sub(now), 0)
	} else {
		return 0, false
	}
	return min(d, maxRetryAfter), true
}

// sanitize keeps printable text of a response for an error message.
func sanitize(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if r == utf8RuneError || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(string(b), " "))
	return truncate(strings.Join(strings.Fields(s), " "), maxErrorBody)
}

const utf8RuneError = '\uFFFD'

// ---- Alertmanager ----------------------------------------------------------

// amAlert is one alert of Alertmanager's v2 API (postableAlert).
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// alertmanagerReceiver posts alerts to Alertmanager's /api/v2/alerts. The
// labels identify the incident and never change between revisions, so
// Alertmanager sees one alert per incident; the annotations carry the
// latest revision.
type alertmanagerReceiver struct {
	httpTarget
}

func newAlertmanager(name, baseURL string, client *http.Client) *alertmanagerReceiver {
	return &alertmanagerReceiver{httpTarget{name: name, url: strings.TrimRight(baseURL, "/") + "/api/v2/alerts", client: client}}
}

func (r *alertmanagerReceiver) Name() string       { return r.name }
func (r *alertmanagerReceiver) Type() ReceiverType { return TypeAlertmanager }
func (r *alertmanagerReceiver) Forgets() bool      { return true }

// AlertLabels are the labels of a page's alert: alertname (the rule id),
// severity, actor_uid, rule_id and finding_id. They are the incident's
// identity at Alertmanager and never change between revisions.
func AlertLabels(p *Page) map[string]string {
	l := map[string]string{
		"alertname":  p.RuleID,
		"severity":   p.Severity,
		"rule_id":    p.RuleID,
		"finding_id": p.DedupKey,
	}
	if p.ActorUID != "" {
		l["actor_uid"] = p.ActorUID
	}
	return l
}

func (r *alertmanagerReceiver) Send(ctx context.Context, ev Event) error {
	p := &ev.Page
	a := amAlert{
		Labels: AlertLabels(p),
		Annotations: map[string]string{
			"summary":     p.Summary,
			"description": p.Description,
		},
		StartsAt:     ev.StartsAt,
		GeneratorURL: p.DashboardURL,
	}
	if p.RunbookURL != "" {
		a.Annotations["runbook_url"] = p.RunbookURL
	}
	if p.DashboardURL != "" {
		a.Annotations["dashboard_url"] = p.DashboardURL
	}
	if p.RiskHalfLifeHours > 0 {
		a.Annotations["risk_score"] = num(p.RiskScore)
	}
	if a.StartsAt.IsZero() || a.StartsAt.After(ev.Time) {
		a.StartsAt = ev.Time
	}
	if ev.Action == ActionResolve {
		a.EndsAt = ev.Time
	} else {
		a.EndsAt = ev.EndsAt
	}
	body, err := json.Marshal([]amAlert{a})
	if err != nil {
		return backoff.Permanent(err)
	}
	return r.post(ctx, body, nil)
}

// ---- PagerDuty -------------------------------------------------------------

// PDEvent is a PagerDuty Events API v2 event.
type PDEvent struct {
	RoutingKey  string     `json:"routing_key"`
	EventAction string     `json:"event_action"`
	DedupKey    string     `json:"dedup_key,omitempty"`
	Payload     *PDPayload `json:"payload,omitempty"`
	Client      string     `json:"client,omitempty"`
	ClientURL   string     `json:"client_url,omitempty"`
	Links       []PDLink   `json:"links,omitempty"`
}

// PDPayload is the payload of a trigger event.
type PDPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// PDLink is a link shown on the incident.
type PDLink struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// DefaultPDSeverity maps Leakline severities to PagerDuty's.
var DefaultPDSeverity = map[string]string{
	"critical": "critical",
	"high":     "error",
	"medium":   "warning",
	"low":      "info",
}

// PDRoutingKeyLen is the length of a PagerDuty integration key.
const PDRoutingKeyLen = 32

type pagerDutyReceiver struct {
	httpTarget
	routingKey string
	severity   map[string]string
}

func newPagerDuty(name, url, routingKey string, sevMap map[string]string, client *http.Client) *pagerDutyReceiver {
	m := maps.Clone(DefaultPDSeverity)
	maps.Copy(m, sevMap)
	return &pagerDutyReceiver{httpTarget: httpTarget{name: name, url: url, client: client}, routingKey: routingKey, severity: m}
}

func (r *pagerDutyReceiver) Name() string       { return r.name }
func (r *pagerDutyReceiver) Type() ReceiverType { return TypePagerDuty }
func (r *pagerDutyReceiver) Forgets() bool      { return false }

// PagerDutyEvent builds the Events v2 event of ev.
func PagerDutyEvent(routingKey string, sevMap map[string]string, ev Event) PDEvent {
	p := &ev.Page
	e := PDEvent{RoutingKey: routingKey, EventAction: string(ev.Action), DedupKey: truncate(p.DedupKey, MaxDedupKey)}
	if ev.Action == ActionResolve {
		return e
	}
	sev := sevMap[p.Severity]
	if sev == "" {
		sev = DefaultPDSeverity[p.Severity]
	}
	if sev == "" {
		sev = "error"
	}
	details := map[string]any{
		"rule_id":      p.RuleID,
		"window_start": p.WindowStart.Format(time.RFC3339),
		"window_end":   p.WindowEnd.Format(time.RFC3339),
		"severity":     p.Severity,
	}
	put := func(k string, v any, ok bool) {
		if ok {
			details[k] = v
		}
	}
	put("finding_id", p.FindingID, p.FindingID != "")
	put("revision", p.Revision, p.Revision > 0)
	put("rule_version", p.RuleVersion, p.RuleVersion != "")
	put("actor_uid", p.ActorUID, p.ActorUID != "")
	put("department", p.Department, p.Department != "")
	put("channel", p.Channel, p.Channel != "")
	put("destination", p.Destination, p.Destination != "")
	put("value", p.Value, p.Suppressed == 0)
	put("threshold", p.Threshold, p.Suppressed == 0)
	put("event_count", p.EventCount, p.EventCount > 0)
	put("risk_score", p.RiskScore, p.RiskHalfLifeHours > 0)
	put("risk_half_life_hours", p.RiskHalfLifeHours, p.RiskHalfLifeHours > 0)
	put("pii_counts", p.PIICounts, len(p.PIICounts) > 0)
	put("suppressed_incidents", p.Suppressed, p.Suppressed > 0)
	put("tags", p.Tags, len(p.Tags) > 0)
	if len(p.Samples) > 0 {
		samples := make([]string, len(p.Samples))
		for i, s := range p.Samples {
			samples[i] = s.Type + " " + s.Masked
		}
		details["masked_samples"] = samples
	}
	e.Payload = &PDPayload{
		Summary:       truncate(p.Summary, MaxSummary),
		Source:        "leakline",
		Severity:      sev,
		Timestamp:     ev.Time.UTC().Format(time.RFC3339),
		Component:     p.RuleID,
		Group:         p.Department,
		Class:         "data-exfiltration",
		CustomDetails: details,
	}
	e.Client = "Leakline"
	if p.DashboardURL != "" {
		e.ClientURL = p.DashboardURL
		e.Links = append(e.Links, PDLink{Href: p.DashboardURL, Text: "Investigation dashboard"})
	}
	if p.RunbookURL != "" {
		e.Links = append(e.Links, PDLink{Href: p.RunbookURL, Text: "Runbook"})
	}
	return e
}

func (r *pagerDutyReceiver) Send(ctx context.Context, ev Event) error {
	body, err := json.Marshal(PagerDutyEvent(r.routingKey, r.severity, ev))
	if err != nil {
		return backoff.Permanent(err)
	}
	return r.post(ctx, body, nil)
}

// ---- Webhook ---------------------------------------------------------------

// Webhook headers.
const (
	HeaderSignature = "X-Leakline-Signature"
	HeaderDedupKey  = "X-Leakline-Dedup-Key"
	HeaderEvent     = "X-Leakline-Event"
)

// WebhookBody is the JSON body a webhook receives. A receiver must treat
// repeated bodies with the same dedup_key as the same incident: delivery is
// at least once.
type WebhookBody struct {
	Version  int    `json:"version"`
	Receiver string `json:"receiver"`
	// Action is trigger or resolve; Status firing or resolved.
	Action string `json:"action"`
	Status string `json:"status"`
	// Kind: new, update, resend, resolve, summary or shadow (a shadow
	// finding recorded, not a page).
	Kind     string    `json:"kind"`
	DedupKey string    `json:"dedup_key"`
	SentAt   time.Time `json:"sent_at"`
	Page     Page      `json:"page"`
}

// Sign returns the X-Leakline-Signature value of body: "sha256=" and the
// hex HMAC-SHA256 of the body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks an X-Leakline-Signature value in constant time.
func VerifySignature(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

type webhookReceiver struct {
	httpTarget
	secret []byte
}

func newWebhook(name, url string, secret []byte, client *http.Client) *webhookReceiver {
	return &webhookReceiver{httpTarget: httpTarget{name: name, url: url, client: client}, secret: slices.Clone(secret)}
}

func (r *webhookReceiver) Name() string       { return r.name }
func (r *webhookReceiver) Type() ReceiverType { return TypeWebhook }
func (r *webhookReceiver) Forgets() bool      { return false }

func (r *webhookReceiver) Send(ctx context.Context, ev Event) error {
	status := "firing"
	if ev.Action == ActionResolve {
		status = "resolved"
	}
	body, err := json.Marshal(WebhookBody{
		Version: 1, Receiver: r.name, Action: string(ev.Action), Status: status, Kind: ev.Kind,
		DedupKey: ev.Page.DedupKey, SentAt: ev.Time.UTC(), Page: ev.Page,
	})
	if err != nil {
		return backoff.Permanent(err)
	}
	h := http.Header{}
	h.Set(HeaderSignature, Sign(r.secret, body))
	h.Set(HeaderDedupKey, ev.Page.DedupKey)
	h.Set(HeaderEvent, string(ev.Action))
	return r.post(ctx, body, h)
}
