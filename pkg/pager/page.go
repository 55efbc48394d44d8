package pager

import (
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/leakline/leakline/pkg/finding"
)

// Limits of a page's texts, in bytes.
const (
	// MaxSummary is PagerDuty's limit of payload.summary.
	MaxSummary = 1024
	// MaxDescription bounds the long description.
	MaxDescription = 8 * 1024
	// MaxSamples bounds the masked samples a page shows.
	MaxSamples = 5
	// MaxDedupKey is PagerDuty's limit of dedup_key.
	MaxDedupKey = 255
)

// DashboardUID and DashboardSlug locate Grafana's Investigation dashboard.
const (
	DashboardUID  = "leakline-investigation"
	DashboardSlug = "investigation"
)

// dashboardPad widens the dashboard's time range around the window.
const dashboardPad = 5 * time.Minute

// Page is what every receiver is told about one incident: who, what, where,
// when, how bad, and where to look. It holds only what a finding holds:
// masked evidence and tokens, never a raw PII value.
type Page struct {
	// DedupKey identifies the incident at every receiver: the finding id
	// (or, for a rate-limit summary, the summary's own key).
	DedupKey    string   `json:"dedup_key"`
	FindingID   string   `json:"finding_id,omitempty"`
	Revision    uint64   `json:"revision,omitempty"`
	RuleID      string   `json:"rule_id"`
	RuleVersion string   `json:"rule_version,omitempty"`
	Title       string   `json:"title"`
	Severity    string   `json:"severity"`
	Shadow      bool     `json:"shadow,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	// Who.
	ActorUID   string `json:"actor_uid,omitempty"`
	Department string `json:"department,omitempty"`
	// Where.
	Channel     string `json:"channel,omitempty"`
	Destination string `json:"destination,omitempty"`
	// When (event time).
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	// What and how much.
	Value     float64            `json:"value"`
	Threshold float64            `json:"threshold"`
	PIICounts map[string]uint32  `json:"pii_counts,omitempty"`
	Samples   []finding.Evidence `json:"samples,omitempty"`
	// Customers is how many known customers (exact data match) the content
	// named; ReadByActor how many of them the actor had read in the CRM.
	Customers   uint32 `json:"customers,omitempty"`
	ReadByActor uint32 `json:"customers_read_by_actor,omitempty"`
	EventCount  uint64 `json:"event_count,omitempty"`
	// RiskScore is the actor's risk score when the page was built, rounded
	// to one decimal: Grafana's top_users score (see riskTracker) over the
	// findings this pager saw, with half-life RiskHalfLifeHours. Both are
	// zero on a rate-limit summary page.
	RiskScore         float64 `json:"risk_score"`
	RiskHalfLifeHours float64 `json:"risk_half_life_hours,omitempty"`
	// Summary is one line of at most MaxSummary bytes.
	Summary string `json:"summary"`
	// Description is a few lines of at most MaxDescription bytes.
	Description  string `json:"description"`
	DashboardURL string `json:"dashboard_url,omitempty"`
	RunbookURL   string `json:"runbook_url,omitempty"`
	// Suppressed is set on a rate-limit summary page: how many incidents it
	// stands for.
	Suppressed int `json:"suppressed,omitempty"`
}

// NewPage builds the page of a finding. grafanaURL is Grafana's base URL
// (no link when empty), runbook the route's runbook URL template.
func NewPage(f *finding.Finding, tags []string, grafanaURL, runbook string) Page {
	p := Page{
		DedupKey:    f.FindingID,
		FindingID:   f.FindingID,
		Revision:    f.Revision,
		RuleID:      f.RuleID,
		RuleVersion: f.RuleVersion,
		Title:       f.Title,
		Severity:    f.Severity,
		Shadow:      f.Shadow,
		Tags:        slices.Clone(tags),
		ActorUID:    f.ActorUID,
		Department:  f.Department,
		Channel:     f.Channel,
		Destination: f.Destination,
		WindowStart: f.WindowStart.UTC(),
		WindowEnd:   f.WindowEnd.UTC(),
		Value:       f.Value,
		Threshold:   f.Threshold,
		PIICounts:   maps.Clone(f.PIICounts),
		EventCount:  f.EventCount,
		Customers:   f.EDMCustomers,
		ReadByActor: f.EDMReadByActor,
	}
	if p.Title == "" {
		p.Title = f.RuleID
	}
	for _, e := range f.Evidence {
		if len(p.Samples) == MaxSamples {
			break
		}
		p.Samples = append(p.Samples, finding.Evidence{Type: e.Type, Masked: e.Masked, Token: e.Token})
	}
	p.DashboardURL = DashboardURL(grafanaURL, f.ActorUID, f.WindowStart, f.WindowEnd)
	p.RunbookURL = RunbookURL(runbook, f.RuleID)
	p.Summary = truncate(p.summary(), MaxSummary)
	p.Description = truncate(p.description(), MaxDescription)
	return p
}

// setRisk sets the actor's risk score, computed with the given half-life,
// and renders the texts again.
func (p *Page) setRisk(score float64, halfLife time.Duration) {
	p.RiskScore = math.Round(score*10) / 10
	p.RiskHalfLifeHours = halfLife.Hours()
	p.Summary = truncate(p.summary(), MaxSummary)
	p.Description = truncate(p.description(), MaxDescription)
}

// DashboardURL is the deep link into Grafana's Investigation dashboard for
// one actor and time range: {grafana}/d/leakline-investigation/investigation
// ?var-actor={actor}&from={ms}&to={ms}, the range padded by five minutes on
// each side. It is empty when grafanaURL is.
func DashboardURL(grafanaURL, actor string, from, to time.Time) string {
	if grafanaURL == "" {
		return ""
	}
	if to.Before(from) {
		to = from
	}
	return fmt.Sprintf("%s/d/%s/%s?var-actor=%s&from=%d&to=%d",
		strings.TrimRight(grafanaURL, "/"), DashboardUID, DashboardSlug,
		url.QueryEscape(actor), from.Add(-dashboardPad).UnixMilli(), to.Add(dashboardPad).UnixMilli())
}

// RunbookURL fills the {rule_id} placeholder of a runbook URL template.
func RunbookURL(template, ruleID string) string {
	if template == "" {
		return ""
	}
	return strings.ReplaceAll(template, "{rule_id}", url.PathEscape(ruleID))
}

func (p *Page) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s: actor %s", strings.ToUpper(p.Severity), p.Title, p.ActorUID)
	if p.Department != "" {
		fmt.Fprintf(&b, " (%s)", p.Department)
	}
	if p.RiskHalfLifeHours > 0 {
		fmt.Fprintf(&b, ", risk %s", num(p.RiskScore))
	}
	fmt.Fprintf(&b, ", %s of threshold %s", num(p.Value), num(p.Threshold))
	if s := p.piiText(); s != "" {
		fmt.Fprintf(&b, ", PII %s", s)
	}
	if p.Customers > 0 {
		fmt.Fprintf(&b, ", %d known customers (%d read by the actor)", p.Customers, p.ReadByActor)
	}
	if p.Channel != "" {
		fmt.Fprintf(&b, ", via %s", p.Channel)
		if p.Destination != "" {
			fmt.Fprintf(&b, " to %s", p.Destination)
		}
	}
	fmt.Fprintf(&b, ", %s", p.windowText())
	return b.String()
}

func (p *Page) description() string {
	var b strings.Builder
	fmt.Fprintf(&b, "What: %s (rule %s", p.Title, p.RuleID)
	if p.RuleVersion != "" {
		fmt.Fprintf(&b, " v%s", p.RuleVersion)
	}
	fmt.Fprintf(&b, "), value %s, threshold %s, %d events, revision %d\n", num(p.Value), num(p.Threshold), p.EventCount, p.Revision)
	fmt.Fprintf(&b, "Who: actor %s", p.ActorUID)
	if p.Department != "" {
		fmt.Fprintf(&b, ", department %s", p.Department)
	}
	b.WriteString("\n")
	if p.Channel != "" || p.Destination != "" {
		fmt.Fprintf(&b, "Where: %s %s\n", p.Channel, p.Destination)
	}
	fmt.Fprintf(&b, "When: %s\n", p.windowText())
	if p.RiskHalfLifeHours > 0 {
		fmt.Fprintf(&b, "How bad: %s, actor risk score %s (%s h half-life)\n", p.Severity, num(p.RiskScore), num(p.RiskHalfLifeHours))
	} else {
		fmt.Fprintf(&b, "How bad: %s\n", p.Severity)
	}
	if s := p.piiText(); s != "" {
		fmt.Fprintf(&b, "PII: %s\n", s)
	}
	if p.Customers > 0 {
		fmt.Fprintf(&b, "Customers: %d known customers in the content, %d of them read by this actor in the CRM\n", p.Customers, p.ReadByActor)
	}
	if len(p.Samples) > 0 {
		b.WriteString("Samples (masked):")
		for _, e := range p.Samples {
			fmt.Fprintf(&b, " %s %s;", e.Type, e.Masked)
		}
		b.WriteString("\n")
	}
	if p.DashboardURL != "" {
		fmt.Fprintf(&b, "Investigate: %s\n", p.DashboardURL)
	}
	if p.RunbookURL != "" {
		fmt.Fprintf(&b, "Runbook: %s\n", p.RunbookURL)
	}
	return strings.TrimRight(b.String(), "\n")
}

func (p *Page) piiText() string {
	keys := slices.Sorted(maps.Keys(p.PIICounts))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, p.PIICounts[k]))
	}
	return strings.Join(parts, ", ")
}

func (p *Page) windowText() string {
	const layout = "2006-01-02 15:04:05"
	if p.WindowEnd.IsZero() || p.WindowEnd.Equal(p.WindowStart) {
		return p.WindowStart.Format(layout) + " UTC"
	}
	return p.WindowStart.Format(layout) + " – " + p.WindowEnd.Format(layout) + " UTC"
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// truncate cuts s to at most n bytes at a UTF-8 boundary, marking the cut
// with an ellipsis.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	const ell = "…"
	n -= len(ell)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + ell
}

// summaryPage is the one page that stands for the incidents a receiver's
// rate limit suppressed during one flood.
func summaryPage(receiver string, key string, since time.Time, suppressed int, severity string, grafanaURL, runbook string) Page {
	p := Page{
		DedupKey:    key,
		RuleID:      "leakline.page_flood",
		Title:       "Page flood: rate limit reached",
		Severity:    severity,
		ActorUID:    "",
		WindowStart: since.UTC(),
		WindowEnd:   time.Now().UTC(),
		Suppressed:  suppressed,
		RunbookURL:  RunbookURL(runbook, "leakline.page_flood"),
	}
	if grafanaURL != "" {
		p.DashboardURL = fmt.Sprintf("%s/d/%s/%s?from=%d&to=now", strings.TrimRight(grafanaURL, "/"), DashboardUID, DashboardSlug,
			since.Add(-dashboardPad).UnixMilli())
	}
	p.Summary = truncate(fmt.Sprintf("[%s] Leakline page flood on receiver %s: %d more incidents since %s UTC were not paged one by one; see the Investigation dashboard",
		strings.ToUpper(severity), receiver, suppressed, since.UTC().Format("2006-01-02 15:04:05")), MaxSummary)
	p.Description = truncate(fmt.Sprintf("The rate limit of receiver %s was reached. %d incidents opened since %s UTC are summarised by this page instead of paging one by one. Every incident is still in ClickHouse (leakline.findings) and on the Investigation dashboard.%s",
		receiver, suppressed, since.UTC().Format(time.RFC3339), linkLine(p.DashboardURL)), MaxDescription)
	return p
}

func linkLine(u string) string {
	if u == "" {
		return ""
	}
	return "\nInvestigate: " + u
}
