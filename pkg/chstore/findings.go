package chstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/leakline/leakline/pkg/finding"
)

// findingColumns are the findings columns written and read, in the order of
// findingRow and scanFinding. inserted_at is left to its default.
var findingColumns = []string{
	"finding_id", "revision", "rule_id", "rule_version", "pack_version",
	"title", "severity", "shadow", "actor_uid", "actor_email", "department",
	"window_start", "window_end", "window_start_ms", "window_end_ms",
	"channel", "destination", "value", "threshold",
	"pii_types", "pii_counts",
	"evidence_types", "evidence_masked", "evidence_tokens",
	"event_ids", "event_count", "detected_at", "detected_at_ms",
	"edm_customers", "edm_read_by_actor",
}

// InsertFindings writes the findings in one batch (one INSERT). Writing a
// finding again, or a higher revision of it, is safe: reads see one row per
// finding, its highest revision.
func (s *Store) InsertFindings(ctx context.Context, fs []finding.Finding) error {
	if len(fs) == 0 {
		return nil
	}
	for i := range fs {
		if fs[i].FindingID == "" {
			return fmt.Errorf("chstore: insert findings: finding %d has no FindingID", i)
		}
	}
	batch, err := s.conn.PrepareBatch(ctx,
		"INSERT INTO "+s.table("findings")+" ("+strings.Join(findingColumns, ", ")+")")
	if err != nil {
		return fmt.Errorf("chstore: insert findings: %w", err)
	}
	defer batch.Close()
	for i := range fs {
		if err := batch.Append(findingRow(&fs[i])...); err != nil {
			return fmt.Errorf("chstore: insert findings: row %d (finding %s): %w", i, fs[i].FindingID, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("chstore: insert findings: %w", err)
	}
	return nil
}

// findingRow is the row of a finding, in findingColumns order. The PII
// counts are written sorted by type, so equal findings give equal rows.
func findingRow(f *finding.Finding) []any {
	piiTypes := make([]string, 0, len(f.PIICounts))
	for t := range f.PIICounts {
		piiTypes = append(piiTypes, t)
	}
	slices.Sort(piiTypes)
	piiCounts := make([]uint32, len(piiTypes))
	for i, t := range piiTypes {
		piiCounts[i] = f.PIICounts[t]
	}
	evTypes := make([]string, len(f.Evidence))
	evMasked := make([]string, len(f.Evidence))
	evTokens := make([]string, len(f.Evidence))
	for i, e := range f.Evidence {
		evTypes[i], evMasked[i], evTokens[i] = e.Type, e.Masked, e.Token
	}
	eventIDs := f.EventIDs
	if eventIDs == nil {
		eventIDs = []string{}
	}
	var shadow uint8
	if f.Shadow {
		shadow = 1
	}
	return []any{
		f.FindingID, f.Revision, f.RuleID, f.RuleVersion, f.PackVersion,
		f.Title, f.Severity, shadow, f.ActorUID, f.ActorEmail, f.Department,
		dateTime(f.WindowStart), dateTime(f.WindowEnd), unixMilli(f.WindowStart), unixMilli(f.WindowEnd),
		f.Channel, f.Destination, f.Value, f.Threshold,
		piiTypes, piiCounts,
		evTypes, evMasked, evTokens,
		eventIDs, f.EventCount, dateTime(f.DetectedAt), unixMilli(f.DetectedAt),
		f.EDMCustomers, f.EDMReadByActor,
	}
}

// dateTime clamps t into the range of DateTime (1970 to 2106, seconds).
// The *_ms columns keep the exact instant.
func dateTime(t time.Time) time.Time {
	switch sec := t.Unix(); {
	case sec < 0:
		return time.Unix(0, 0).UTC()
	case sec > math.MaxUint32:
		return time.Unix(math.MaxUint32, 0).UTC()
	default:
		return time.Unix(sec, 0).UTC()
	}
}

// unixMilli is t in unix milliseconds; the zero time maps to its own
// (negative) value, so it reads back as the zero time.
func unixMilli(t time.Time) int64 { return t.UnixMilli() }

// fromUnixMilli is the inverse of unixMilli, in UTC.
func fromUnixMilli(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// FindingFilter selects findings. Zero fields do not filter.
type FindingFilter struct {
	RuleID, ActorUID, Severity string
	// From (inclusive) and To (exclusive) bound the window start.
	From, To time.Time
	// Limit caps the number of findings returned; 0 means no cap.
	Limit int
}

// Findings returns the latest revision of each finding that matches f,
// ordered by window start, then finding id.
//
// The filter values are sent as external data, never as part of the query
// text (see the package documentation).
func (s *Store) Findings(ctx context.Context, f FindingFilter) ([]finding.Finding, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("chstore: findings: negative limit %d", f.Limit)
	}
	var (
		conds   []string
		cols    []func(*ext.Table) error
		vals    []any
		addCond = func(cond, col, typ string, v any) {
			conds = append(conds, cond)
			cols = append(cols, ext.Column(col, column.Type(typ)))
			vals = append(vals, v)
		}
	)
	// Conditions on non-key columns are applied after FINAL has picked the
	// latest revision (checked against 18.16: a finding whose older revision
	// matched but whose latest does not is not returned).
	if f.RuleID != "" {
		addCond("rule_id IN (SELECT rule_id FROM _filter)", "rule_id", "String", f.RuleID)
	}
	if f.ActorUID != "" {
		addCond("actor_uid IN (SELECT actor_uid FROM _filter)", "actor_uid", "String", f.ActorUID)
	}
	if f.Severity != "" {
		addCond("severity IN (SELECT severity FROM _filter)", "severity", "String", f.Severity)
	}
	// The window_start conditions let the server skip partitions; the
	// window_start_ms ones are exact.
	if !f.From.IsZero() {
		addCond("window_start >= (SELECT from_s FROM _filter)", "from_s", "DateTime('UTC')", dateTime(f.From))
		addCond("window_start_ms >= (SELECT from_ms FROM _filter)", "from_ms", "Int64", f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		addCond("window_start <= (SELECT to_s FROM _filter)", "to_s", "DateTime('UTC')", dateTime(f.To))
		addCond("window_start_ms < (SELECT to_ms FROM _filter)", "to_ms", "Int64", f.To.UnixMilli())
	}

	var q strings.Builder
	q.WriteString("SELECT ")
	q.WriteString(strings.Join(findingColumns, ", "))
	q.WriteString(" FROM ")
	q.WriteString(s.table("findings"))
	q.WriteString(" FINAL")
	if len(conds) > 0 {
		q.WriteString(" WHERE ")
		q.WriteString(strings.Join(conds, " AND "))
	}
	q.WriteString(" ORDER BY window_start_ms, finding_id")
	if f.Limit > 0 {
		q.WriteString(" LIMIT ")
		q.WriteString(strconv.Itoa(f.Limit))
	}

	if len(vals) > 0 {
		filter, err := ext.NewTable("_filter", cols...)
		if err != nil {
			return nil, fmt.Errorf("chstore: findings: filter table: %w", err)
		}
		if err := filter.Append(vals...); err != nil {
			return nil, fmt.Errorf("chstore: findings: filter table: %w", err)
		}
		ctx = clickhouse.Context(ctx, clickhouse.WithExternalTable(filter))
	}
	rows, err := s.conn.Query(ctx, q.String())
	if err != nil {
		return nil, fmt.Errorf("chstore: findings: %w", err)
	}
	defer rows.Close()
	var out []finding.Finding
	for rows.Next() {
		var r findingScan
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, fmt.Errorf("chstore: findings: scan: %w", err)
		}
		fd, err := r.finding()
		if err != nil {
			return nil, fmt.Errorf("chstore: findings: %w", err)
		}
		out = append(out, fd)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chstore: findings: %w", err)
	}
	return out, nil
}

// findingScan receives one findings row.
type findingScan struct {
	f                                        finding.Finding
	shadow                                   uint8
	windowStart, windowEnd, detectedAt       time.Time
	windowStartMs, windowEndMs, detectedAtMs int64
	piiTypes                                 []string
	piiCounts                                []uint32
	evTypes, evMasked, evTokens              []string
}

func (r *findingScan) dest() []any {
	f := &r.f
	return []any{
		&f.FindingID, &f.Revision, &f.RuleID, &f.RuleVersion, &f.PackVersion,
		&f.Title, &f.Severity, &r.shadow, &f.ActorUID, &f.ActorEmail, &f.Department,
		&r.windowStart, &r.windowEnd, &r.windowStartMs, &r.windowEndMs,
		&f.Channel, &f.Destination, &f.Value, &f.Threshold,
		&r.piiTypes, &r.piiCounts,
		&r.evTypes, &r.evMasked, &r.evTokens,
		&f.EventIDs, &f.EventCount, &r.detectedAt, &r.detectedAtMs,
		&f.EDMCustomers, &f.EDMReadByActor,
	}
}

// finding rebuilds the Finding: maps from parallel arrays, exact times from
// the *_ms columns. Empty maps and slices come back nil.
func (r *findingScan) finding() (finding.Finding, error) {
	f := r.f
	f.Shadow = r.shadow != 0
	f.WindowStart = fromUnixMilli(r.windowStartMs)
	f.WindowEnd = fromUnixMilli(r.windowEndMs)
	f.DetectedAt = fromUnixMilli(r.detectedAtMs)
	if len(r.piiTypes) != len(r.piiCounts) {
		return f, errors.New("finding " + f.FindingID + ": pii_types and pii_counts differ in length")
	}
	if len(r.piiTypes) > 0 {
		f.PIICounts = make(map[string]uint32, len(r.piiTypes))
		for i, t := range r.piiTypes {
			f.PIICounts[t] = r.piiCounts[i]
		}
	}
	if len(r.evTypes) != len(r.evMasked) || len(r.evTypes) != len(r.evTokens) {
		return f, errors.New("finding " + f.FindingID + ": evidence arrays differ in length")
	}
	if len(r.evTypes) > 0 {
		f.Evidence = make([]finding.Evidence, len(r.evTypes))
		for i := range r.evTypes {
			f.Evidence[i] = finding.Evidence{Type: r.evTypes[i], Masked: r.evMasked[i], Token: r.evTokens[i]}
		}
	}
	if len(f.EventIDs) == 0 {
		f.EventIDs = nil
	}
	return f, nil
}

// CountFindings counts findings, one per finding id (FINAL).
func (s *Store) CountFindings(ctx context.Context) (uint64, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.table("findings")+" FINAL").Scan(&n); err != nil {
		return 0, fmt.Errorf("chstore: count findings: %w", err)
	}
	return n, nil
}
