// Package detect owns the detection engine: it inspects outbound content,
// keeps per-actor sliding-window state in event time and turns both into
// findings. One Engine serves the partitions assigned to one detector
// instance; all state of one actor lives in one Engine because dlp.events is
// keyed by actor.
package detect

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/leakline/leakline/pkg/finding"
)

// RuleMeta is what every rule carries.
type RuleMeta struct {
	ID       string
	Version  string
	Title    string
	Severity string
	Shadow   bool
}

// BulkReadRule fires when one actor reads at least Threshold distinct
// customer records within a sliding window of Window.
type BulkReadRule struct {
	RuleMeta
	Threshold int
	Window    time.Duration
	// OnlyWithoutTicket counts only reads that no support ticket justifies.
	OnlyWithoutTicket bool
	// CoolDown keeps an incident open this long after the count fell below
	// the threshold, so a pause does not start a second incident.
	CoolDown time.Duration
}

// ContentRule fires when an outbound event carries at least MinItems PII
// detections of at least medium confidence to a destination outside the
// company.
type ContentRule struct {
	RuleMeta
	MinItems int
	// CoolDown groups further qualifying events of the same actor into the
	// open incident until this much event time passed since the last one.
	CoolDown time.Duration
}

// Config configures the Engine.
type Config struct {
	PackVersion string
	// CompanyDomains are the company's own mail domains and hosts:
	// destinations there are internal.
	CompanyDomains []string
	// AllowedLateness is how far behind the newest event time seen an event
	// may arrive and still be applied.
	AllowedLateness time.Duration
	// MaxRecordsPerActor bounds the distinct-record state of one actor.
	MaxRecordsPerActor int
	BulkRead           BulkReadRule
	Content            ContentRule
}

// DefaultConfig is the built-in pack used by the demo and as a baseline.
func DefaultConfig() Config {
	return Config{
		PackVersion:        "builtin-1",
		CompanyDomains:     []string{"corp.example"},
		AllowedLateness:    5 * time.Minute,
		MaxRecordsPerActor: 200_000,
		BulkRead: BulkReadRule{
			RuleMeta: RuleMeta{
				ID: "crm.bulk_read_no_ticket", Version: "1", Severity: finding.SeverityHigh,
				Title: "Bulk read of customer records without a ticket",
			},
			Threshold: 200, Window: time.Hour, OnlyWithoutTicket: true, CoolDown: time.Hour,
		},
		Content: ContentRule{
			RuleMeta: RuleMeta{
				ID: "outbound.pii_external", Version: "1", Severity: finding.SeverityCritical,
				Title: "Customer PII sent outside the company",
			},
			MinItems: 10, CoolDown: time.Hour,
		},
	}
}

// Validate reports every configuration error at once.
func (c Config) Validate() error {
	var errs *multierror.Error
	add := func(format string, a ...any) { errs = multierror.Append(errs, fmt.Errorf(format, a...)) }
	for _, m := range []RuleMeta{c.BulkRead.RuleMeta, c.Content.RuleMeta} {
		if m.ID == "" {
			add("rule without id")
		}
		if m.Version == "" {
			add("rule %q: version is empty", m.ID)
		}
		switch m.Severity {
		case finding.SeverityLow, finding.SeverityMedium, finding.SeverityHigh, finding.SeverityCritical:
		default:
			add("rule %q: severity %q is not low, medium, high or critical", m.ID, m.Severity)
		}
	}
	if c.BulkRead.ID == c.Content.ID && c.BulkRead.ID != "" {
		add("rule id %q used twice", c.BulkRead.ID)
	}
	if c.BulkRead.Threshold < 1 {
		add("rule %q: threshold must be ≥ 1", c.BulkRead.ID)
	}
	if c.BulkRead.Window <= 0 || c.BulkRead.Window > 30*24*time.Hour {
		add("rule %q: window must be in (0, 720h]", c.BulkRead.ID)
	}
	if c.Content.MinItems < 1 {
		add("rule %q: min_items must be ≥ 1", c.Content.ID)
	}
	if c.AllowedLateness < 0 {
		add("allowed lateness must not be negative")
	}
	for _, d := range c.CompanyDomains {
		if d == "" || strings.ContainsAny(d, " @/") {
			add("company domain %q is not a domain", d)
		}
	}
	if c.PackVersion == "" {
		add("pack version is empty")
	}
	if err := errs.ErrorOrNil(); err != nil {
		return fmt.Errorf("detect: invalid config: %w", err)
	}
	return nil
}

// Horizon is how much event time before a point in a partition the engine's
// state at that point depends on: the longest window plus cool-downs plus
// the allowed lateness. Rebuilding state re-reads this much.
func (c Config) Horizon() time.Duration {
	return c.AllowedLateness + max(c.BulkRead.Window+c.BulkRead.CoolDown, c.Content.CoolDown)
}

var errNoScanner = errors.New("detect: a content scanner is required")

// Add sums two snapshots of counters.
func (s Stats) Add(o Stats) Stats {
	return Stats{
		Events: s.Events + o.Events, LateEvents: s.LateEvents + o.LateEvents,
		FutureDated: s.FutureDated + o.FutureDated, Findings: s.Findings + o.Findings,
		Actors: s.Actors + o.Actors,
	}
}
