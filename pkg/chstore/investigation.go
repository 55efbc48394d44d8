package chstore

// Investigation queries: what the Grafana datasource (pkg/grafana) reads.
// Every value that comes from a user (rule ids, actors, channels, prefixes,
// times) travels as external data, as in Findings; only identifiers and
// integers chosen here (bucket steps, limits, severity weights) are part of
// the query text.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
)

// InvestigationSchemaVersion is the schema version (chstore.SchemaVersion)
// the investigation queries need: migration 0004 adds the rollups and the
// evidence-access audit table.
const InvestigationSchemaVersion = 4

// Shadow selects findings by their rule's deployment mode.
type Shadow string

// Shadow filters.
const (
	ShadowAll  Shadow = ""       // live and shadow findings
	ShadowLive Shadow = "live"   // only findings of live rules
	ShadowOnly Shadow = "shadow" // only findings of shadow rules
)

// Search selects findings for investigation. Every list filters by
// membership; an empty list does not filter.
type Search struct {
	Rules, Severities, Channels, Actors []string
	Shadow                              Shadow
	// From (inclusive) and To (exclusive) bound the incident start
	// (window_start); a zero time does not bound.
	From, To time.Time
	// Limit caps the rows returned; 0 means DefaultSearchLimit. At most
	// MaxSearchLimit.
	Limit int
}

// Limits of Search.Limit.
const (
	DefaultSearchLimit = 1000
	MaxSearchLimit     = 10000
)

// limit is s.Limit resolved against the defaults, or an error.
func (s Search) limit() (int, error) {
	switch {
	case s.Limit < 0:
		return 0, fmt.Errorf("negative limit %d", s.Limit)
	case s.Limit == 0:
		return DefaultSearchLimit, nil
	case s.Limit > MaxSearchLimit:
		return MaxSearchLimit, nil
	}
	return s.Limit, nil
}

// query collects the conditions of a query and the external data that
// carries their values: scalars in one row of _p, lists in one table each.
type query struct {
	conds  []string
	pcols  []func(*ext.Table) error
	pvals  []any
	tables []*ext.Table
	err    error
}

// scalar adds a parameter to _p and returns the expression that reads it.
func (q *query) scalar(name, typ string, v any) string {
	q.pcols = append(q.pcols, ext.Column(name, column.Type(typ)))
	q.pvals = append(q.pvals, v)
	return "(SELECT " + name + " FROM _p)"
}

// in adds "expr IN (values)" unless values is empty; the values travel as
// the external table _name.
func (q *query) in(expr, name string, values []string) {
	if len(values) == 0 || q.err != nil {
		return
	}
	t, err := ext.NewTable("_"+name, ext.Column("v", column.Type("String")))
	if err != nil {
		q.err = err
		return
	}
	for _, v := range values {
		if err := t.Append(v); err != nil {
			q.err = err
			return
		}
	}
	q.tables = append(q.tables, t)
	q.conds = append(q.conds, expr+" IN (SELECT v FROM _"+name+")")
}

// timeRange bounds the DateTime column col to [from, to); zero times do not
// bound. With msCol (the exact unix-milliseconds column beside col), col
// only lets the server skip partitions and msCol decides; without it the
// bounds are whole seconds (from rounded down, to rounded up).
func (q *query) timeRange(col, msCol string, from, to time.Time) {
	if !from.IsZero() {
		q.conds = append(q.conds, col+" >= "+q.scalar("from_s", "DateTime('UTC')", floorSecond(from)))
		if msCol != "" {
			q.conds = append(q.conds, msCol+" >= "+q.scalar("from_ms", "Int64", from.UnixMilli()))
		}
	}
	if !to.IsZero() {
		if msCol != "" {
			q.conds = append(q.conds, col+" <= "+q.scalar("to_s", "DateTime('UTC')", floorSecond(to)))
			q.conds = append(q.conds, msCol+" < "+q.scalar("to_ms", "Int64", to.UnixMilli()))
		} else {
			q.conds = append(q.conds, col+" < "+q.scalar("to_s", "DateTime('UTC')", ceilSecond(to)))
		}
	}
}

// floorSecond and ceilSecond clamp t into DateTime's range at whole seconds.
func floorSecond(t time.Time) time.Time { return dateTime(t) }
func ceilSecond(t time.Time) time.Time {
	if t.Truncate(time.Second).Equal(t) {
		return dateTime(t)
	}
	return dateTime(t.Truncate(time.Second).Add(time.Second))
}

// shadow adds the shadow flag condition.
func (q *query) shadow(s Shadow) {
	switch s {
	case ShadowLive:
		q.conds = append(q.conds, "shadow = 0")
	case ShadowOnly:
		q.conds = append(q.conds, "shadow = 1")
	case ShadowAll:
	default:
		if q.err == nil {
			q.err = fmt.Errorf("invalid shadow filter %q (want %q, %q or empty)", s, ShadowLive, ShadowOnly)
		}
	}
}

// where is the WHERE clause, or "".
func (q *query) where() string {
	if len(q.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(q.conds, " AND ")
}

// context attaches the external tables to ctx.
func (q *query) context(ctx context.Context) (context.Context, error) {
	if q.err != nil {
		return nil, q.err
	}
	tables := q.tables
	if len(q.pvals) > 0 {
		p, err := ext.NewTable("_p", q.pcols...)
		if err != nil {
			return nil, err
		}
		if err := p.Append(q.pvals...); err != nil {
			return nil, err
		}
		tables = append(tables, p)
	}
	if len(tables) == 0 {
		return ctx, nil
	}
	return clickhouse.Context(ctx, clickhouse.WithExternalTable(tables...)), nil
}

// run executes the query text with q's external data.
func (s *Store) run(ctx context.Context, q *query, text string) (driver.Rows, error) {
	ctx, err := q.context(ctx)
	if err != nil {
		return nil, err
	}
	return s.conn.Query(ctx, text)
}

// search adds the conditions of a Search (on the findings table).
func (q *query) search(s Search) {
	q.in("rule_id", "rules", s.Rules)
	q.in("actor_uid", "actors", s.Actors)
	q.in("severity", "severities", s.Severities)
	q.in("channel", "channels", s.Channels)
	q.shadow(s.Shadow)
	q.timeRange("window_start", "window_start_ms", s.From, s.To)
}

// SearchFindings returns the latest revision of each finding that matches
// s, newest incident first (window start descending, then finding id).
func (s *Store) SearchFindings(ctx context.Context, f Search) ([]finding.Finding, error) {
	limit, err := f.limit()
	if err != nil {
		return nil, fmt.Errorf("chstore: search findings: %w", err)
	}
	var q query
	q.search(f)
	text := "SELECT " + strings.Join(findingColumns, ", ") + " FROM " + s.table("findings") + " FINAL" +
		q.where() + " ORDER BY window_start_ms DESC, finding_id LIMIT " + strconv.Itoa(limit)
	fs, err := s.scanFindings(ctx, &q, text)
	if err != nil {
		return nil, fmt.Errorf("chstore: search findings: %w", err)
	}
	return fs, nil
}

// FindingByID returns the latest revision of one finding; ok is false if
// there is none.
func (s *Store) FindingByID(ctx context.Context, id string) (f finding.Finding, ok bool, err error) {
	var q query
	q.in("finding_id", "ids", []string{id})
	text := "SELECT " + strings.Join(findingColumns, ", ") + " FROM " + s.table("findings") + " FINAL" + q.where() + " LIMIT 1"
	fs, err := s.scanFindings(ctx, &q, text)
	if err != nil {
		return finding.Finding{}, false, fmt.Errorf("chstore: finding by id: %w", err)
	}
	if len(fs) == 0 {
		return finding.Finding{}, false, nil
	}
	return fs[0], true, nil
}

// scanFindings runs a query that selects findingColumns.
func (s *Store) scanFindings(ctx context.Context, q *query, text string) ([]finding.Finding, error) {
	rows, err := s.run(ctx, q, text)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []finding.Finding
	for rows.Next() {
		var r findingScan
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
		fd, err := r.finding()
		if err != nil {
			return nil, err
		}
		out = append(out, fd)
	}
	return out, rows.Err()
}

// InsertedFinding is one stored row of a finding (one revision) and when
// the server stored it.
type InsertedFinding struct {
	finding.Finding
	InsertedAt time.Time
}

// FindingsInsertedSince returns the rows (revisions) stored at or after
// since, by arrival (inserted_at, whole seconds), oldest first, at most
// limit. Redelivered rows appear again: callers deduplicate by finding id
// and revision. It reads without FINAL, so a new revision of an old finding
// is returned too.
func (s *Store) FindingsInsertedSince(ctx context.Context, since time.Time, limit int) ([]InsertedFinding, error) {
	if limit <= 0 || limit > MaxSearchLimit {
		limit = MaxSearchLimit
	}
	var q query
	q.conds = append(q.conds, "inserted_at >= "+q.scalar("since", "DateTime('UTC')", floorSecond(since)))
	text := "SELECT " + strings.Join(findingColumns, ", ") + ", inserted_at FROM " + s.table("findings") +
		q.where() + " ORDER BY inserted_at, finding_id, revision LIMIT " + strconv.Itoa(limit)
	rows, err := s.run(ctx, &q, text)
	if err != nil {
		return nil, fmt.Errorf("chstore: findings inserted since: %w", err)
	}
	defer rows.Close()
	var out []InsertedFinding
	for rows.Next() {
		var r findingScan
		var at time.Time
		if err := rows.Scan(append(r.dest(), &at)...); err != nil {
			return nil, fmt.Errorf("chstore: findings inserted since: scan: %w", err)
		}
		fd, err := r.finding()
		if err != nil {
			return nil, fmt.Errorf("chstore: findings inserted since: %w", err)
		}
		out = append(out, InsertedFinding{Finding: fd, InsertedAt: at.UTC()})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chstore: findings inserted since: %w", err)
	}
	return out, nil
}

// Dimensions a count can be grouped by.
const (
	ByNone        = ""             // one series, "all"
	ByRule        = "rule"         // rule id
	BySeverity    = "severity"     // severity
	ByChannel     = "channel"      // outbound channel ("none" for findings without one)
	ByMode        = "mode"         // "live" or "shadow"
	ByPackVersion = "pack_version" // rule pack version
	ByRuleVersion = "rule_version" // "rule@version"
)

// dimension is the SQL expression of a grouping dimension.
func dimension(by string) (string, error) {
	switch by {
	case ByNone:
		return "'all'", nil
	case ByRule:
		return "rule_id", nil
	case BySeverity:
		return "severity", nil
	case ByChannel:
		return "if(channel = '', 'none', channel)", nil
	case ByMode:
		return "if(shadow = 1, 'shadow', 'live')", nil
	case ByPackVersion:
		return "if(pack_version = '', 'none', pack_version)", nil
	case ByRuleVersion:
		return "concat(rule_id, '@', rule_version)", nil
	}
	return "", fmt.Errorf("invalid group by %q (want one of rule, severity, channel, mode, pack_version, rule_version)", by)
}

// CountQuery counts findings per time bucket and group.
type CountQuery struct {
	// Filters. Actors make the count read the findings table (FINAL)
	// instead of the per-minute rollup, which has no actor.
	Search
	// Step is the bucket width, a whole number of minutes (rounded up; at
	// least one minute).
	Step time.Duration
	// By is the grouping dimension (ByRule, BySeverity, ...).
	By string
}

// CountBucket is the number of distinct findings whose incident started in
// the bucket [Time, Time+Step) of one group.
type CountBucket struct {
	Time     time.Time
	Group    string
	Findings uint64
}

// StepSeconds is the bucket width of step in seconds: whole minutes, at
// least one.
func StepSeconds(step time.Duration) int64 {
	m := int64(math.Ceil(step.Minutes()))
	if m < 1 {
		m = 1
	}
	return m * 60
}

// CountFindingsOverTime counts distinct findings per bucket of incident
// start and group, from the per-minute rollup (findings_minute). Buckets
// without findings are absent.
func (s *Store) CountFindingsOverTime(ctx context.Context, c CountQuery) ([]CountBucket, error) {
	dim, err := dimension(c.By)
	if err != nil {
		return nil, fmt.Errorf("chstore: count findings: %w", err)
	}
	step := strconv.FormatInt(StepSeconds(c.Step), 10)
	var q query
	q.in("rule_id", "rules", c.Rules)
	q.in("severity", "severities", c.Severities)
	q.in("channel", "channels", c.Channels)
	q.shadow(c.Shadow)
	var text string
	if len(c.Actors) == 0 {
		q.timeRange("minute", "", c.From, c.To)
		text = "SELECT toUInt64(intDiv(toUInt32(minute), " + step + ") * " + step + ") AS t, " + dim + " AS g, " +
			"uniqExactMerge(findings) AS n FROM " + s.table("findings_minute") + q.where() +
			" GROUP BY t, g ORDER BY t, g"
	} else {
		q.in("actor_uid", "actors", c.Actors)
		q.timeRange("window_start", "window_start_ms", c.From, c.To)
		text = "SELECT toUInt64(intDiv(toUInt32(window_start), " + step + ") * " + step + ") AS t, " + dim + " AS g, " +
			"toUInt64(count()) AS n FROM " + s.table("findings") + " FINAL" + q.where() +
			" GROUP BY t, g ORDER BY t, g"
	}
	rows, err := s.run(ctx, &q, text)
	if err != nil {
		return nil, fmt.Errorf("chstore: count findings: %w", err)
	}
	defer rows.Close()
	var out []CountBucket
	for rows.Next() {
		var b CountBucket
		var t uint64
		if err := rows.Scan(&t, &b.Group, &b.Findings); err != nil {
			return nil, fmt.Errorf("chstore: count findings: scan: %w", err)
		}
		b.Time = time.Unix(int64(t), 0).UTC()
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chstore: count findings: %w", err)
	}
	return out, nil
}

// SeverityWeights are the risk weights of the severities (one table:
// finding.SeverityWeight, which the pager uses too); other severities
// weigh 0. They are constants of the query text, not parameters.
var SeverityWeights = []struct {
	Severity string
	Weight   float64
}{
	{finding.SeverityLow, finding.SeverityWeight(finding.SeverityLow)},
	{finding.SeverityMedium, finding.SeverityWeight(finding.SeverityMedium)},
	{finding.SeverityHigh, finding.SeverityWeight(finding.SeverityHigh)},
	{finding.SeverityCritical, finding.SeverityWeight(finding.SeverityCritical)},
}

// DefaultHalfLife is the risk score's default half-life.
const DefaultHalfLife = 7 * 24 * time.Hour

// RiskQuery ranks actors by risk score.
type RiskQuery struct {
	// Filters. Search.Shadow is ignored: findings of shadow rules (rules
	// on trial) count only with IncludeShadow.
	Search
	// IncludeShadow counts findings of shadow rules too.
	IncludeShadow bool
	// At is the moment ages are measured from (default: To, or now).
	At time.Time
	// HalfLife is the decay half-life (default DefaultHalfLife).
	HalfLife time.Duration
}

// RiskScore is one actor's decayed risk: the sum over the actor's findings
// of weight(severity) × 2^(−age/half-life), age = At − window end (never
// negative).
type RiskScore struct {
	ActorUID   string
	Department string
	Score      float64
	Findings   uint64
	Critical   uint64
	High       uint64
	// LastFinding is the newest window end.
	LastFinding time.Time
	Rules       []string
}

// RiskScores returns the actors with findings that match r, highest score
// first, at most r.Limit (see Search.Limit). The score is computed in the
// query over the latest revision of each finding (FINAL).
func (s *Store) RiskScores(ctx context.Context, r RiskQuery) ([]RiskScore, error) {
	limit, err := r.limit()
	if err != nil {
		return nil, fmt.Errorf("chstore: risk scores: %w", err)
	}
	if r.HalfLife <= 0 {
		r.HalfLife = DefaultHalfLife
	}
	at := r.At
	if at.IsZero() {
		at = r.To
	}
	if at.IsZero() {
		at = time.Now()
	}
	r.Shadow = ShadowLive
	if r.IncludeShadow {
		r.Shadow = ShadowAll
	}
	var q query
	q.search(r.Search)
	atMs := q.scalar("at_ms", "Int64", at.UnixMilli())
	half := q.scalar("half_ms", "Float64", float64(r.HalfLife.Milliseconds()))
	var sev, wt []string
	for _, w := range SeverityWeights {
		sev = append(sev, "'"+w.Severity+"'")
		wt = append(wt, strconv.FormatFloat(w.Weight, 'f', 6, 64))
	}
	weight := "transform(severity, [" + strings.Join(sev, ", ") + "], [" + strings.Join(wt, ", ") + "], 0.)"
	decay := "exp(-0.6931471805599453 * greatest(0, " + atMs + " - window_end_ms) / " + half + ")"
	text := "SELECT actor_uid, anyLast(department), sum(" + weight + " * " + decay + ") AS score, " +
		"toUInt64(count()), toUInt64(countIf(severity = 'critical')), toUInt64(countIf(severity = 'high')), " +
		"max(window_end_ms), groupUniqArray(rule_id) FROM " + s.table("findings") + " FINAL" + q.where() +
		" GROUP BY actor_uid ORDER BY score DESC, actor_uid LIMIT " + strconv.Itoa(limit)
	rows, err := s.run(ctx, &q, text)
	if err != nil {
		return nil, fmt.Errorf("chstore: risk scores: %w", err)
	}
	defer rows.Close()
	var out []RiskScore
	for rows.Next() {
		var rs RiskScore
		var last int64
		if err := rows.Scan(&rs.ActorUID, &rs.Department, &rs.Score, &rs.Findings, &rs.Critical, &rs.High, &last, &rs.Rules); err != nil {
			return nil, fmt.Errorf("chstore: risk scores: scan: %w", err)
		}
		rs.LastFinding = fromUnixMilli(last)
		out = append(out, rs)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chstore: risk scores: %w", err)
	}
	return out, nil
}

// RuleStats is how often one rule version of one pack fired, in one mode.
type RuleStats struct {
	RuleID, RuleVersion, PackVersion string
	Shadow                           bool
	Findings, Actors                 uint64
	// First and Last are the minutes of the first and last incident start.
	First, Last time.Time
	MaxValue    float64
}

// RulePerformance returns the fires of each rule, rule version, pack
// version and mode in [From, To) (incident start), from the per-minute
// rollup, most fires first. Actors are ignored (the rollup has none).
func (s *Store) RulePerformance(ctx context.Context, f Search) ([]RuleStats, error) {
	limit, err := f.limit()
	if err != nil {
		return nil, fmt.Errorf("chstore: rule performance: %w", err)
	}
	var q query
	q.in("rule_id", "rules", f.Rules)
	q.in("severity", "severities", f.Severities)
	q.in("channel", "channels", f.Channels)
	q.shadow(f.Shadow)
	q.timeRange("minute", "", f.From, f.To)
	text := "SELECT rule_id, rule_version, pack_version, shadow, uniqExactMerge(findings) AS n, uniqExactMerge(actors), " +
		"min(minute), max(minute), maxMerge(max_value) FROM " + s.table("findings_minute") + q.where() +
		" GROUP BY rule_id, rule_version, pack_version, shadow ORDER BY n DESC, rule_id, rule_version, pack_version, shadow" +
		" LIMIT " + strconv.Itoa(limit)
	rows, err := s.run(ctx, &q, text)
	if err != nil {
		return nil, fmt.Errorf("chstore: rule performance: %w", err)
	}
	defer rows.Close()
	var out []RuleStats
	for rows.Next() {
		var r RuleStats
		var shadow uint8
		if err := rows.Scan(&r.RuleID, &r.RuleVersion, &r.PackVersion, &shadow, &r.Findings, &r.Actors, &r.First, &r.Last, &r.MaxValue); err != nil {
			return nil, fmt.Errorf("chstore: rule performance: scan: %w", err)
		}
		r.Shadow = shadow != 0
		r.First, r.Last = r.First.UTC(), r.Last.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chstore: rule performance: %w", err)
	}
	return out, nil
}

// IngestBucket is what the sink wrote in one bucket of arrival time.
type IngestBucket struct {
	Time time.Time
	// Rows counts every stored row (revisions and redeliveries included);
	// FirstRevisions counts rows of revision 1 (new incidents).
	Rows, FirstRevisions uint64
}

// IngestRate returns the rows written to findings per bucket of arrival
// time (inserted_at) in [from, to), from the rollup findings_ingest_minute
// (which counts from migration 0004 on). Buckets without rows are absent.
func (s *Store) IngestRate(ctx context.Context, from, to time.Time, step time.Duration) ([]IngestBucket, error) {
	st := strconv.FormatInt(StepSeconds(step), 10)
	var q query
	q.timeRange("minute", "", from, to)
	text := "SELECT toUInt64(intDiv(toUInt32(minute), " + st + ") * " + st + ") AS t, toUInt64(sum(rows)), toUInt64(sum(first_revisions)) FROM " +
		s.table("findings_ingest_minute") + q.where() + " GROUP BY t ORDER BY t"
	rows, err := s.run(ctx, &q, text)
	if err != nil {
		return nil, fmt.Errorf("chstore: ingest rate: %w", err)
	}
	defer rows.Close()
	var out []IngestBucket
	for rows.Next() {
		var b IngestBucket
		var t uint64
		if err := rows.Scan(&t, &b.Rows, &b.FirstRevisions); err != nil {
			return nil, fmt.Errorf("chstore: ingest rate: scan: %w", err)
		}
		b.Time = time.Unix(int64(t), 0).UTC()
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chstore: ingest rate: %w", err)
	}
	return out, nil
}

// Freshness is when the newest finding row arrived.
type Freshness struct {
	// LastInserted is the newest inserted_at (zero if there are no rows);
	// LastDetected the newest detection time.
	LastInserted, LastDetected time.Time
	// Rows counts the stored rows (revisions included, before merges).
	Rows uint64
}

// FindingsFreshness reports the newest stored finding row.
func (s *Store) FindingsFreshness(ctx context.Context) (Freshness, error) {
	var f Freshness
	var rows uint64
	var ins time.Time
	var det int64
	err := s.conn.QueryRow(ctx, "SELECT toUInt64(count()), max(inserted_at), max(detected_at_ms) FROM "+s.table("findings")).Scan(&rows, &ins, &det)
	if err != nil {
		return f, fmt.Errorf("chstore: findings freshness: %w", err)
	}
	f.Rows = rows
	if rows > 0 {
		f.LastInserted = ins.UTC()
		f.LastDetected = fromUnixMilli(det)
	}
	return f, nil
}

// Lookup columns: what DistinctValues lists.
const (
	LookupRules      = "rules"
	LookupActors     = "actors"
	LookupChannels   = "channels"
	LookupSeverities = "severities"
)

// DistinctValues lists the distinct values of one findings column (what:
// LookupRules, LookupActors, LookupChannels or LookupSeverities) starting
// with prefix, sorted, at most limit (default and cap 1000). Rules,
// channels and severities come from the per-minute rollup, actors from
// the findings table.
func (s *Store) DistinctValues(ctx context.Context, what, prefix string, limit int) ([]string, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var col, table string
	switch what {
	case LookupRules:
		col, table = "rule_id", "findings_minute"
	case LookupActors:
		col, table = "actor_uid", "findings"
	case LookupChannels:
		col, table = "channel", "findings_minute"
	case LookupSeverities:
		col, table = "severity", "findings_minute"
	default:
		return nil, fmt.Errorf("chstore: distinct values: unknown lookup %q", what)
	}
	var q query
	q.conds = append(q.conds, col+" != ''")
	if prefix != "" {
		q.conds = append(q.conds, "startsWith("+col+", "+q.scalar("prefix", "String", prefix)+")")
	}
	text := "SELECT DISTINCT " + col + " FROM " + s.table(table) + q.where() + " ORDER BY " + col + " LIMIT " + strconv.Itoa(limit)
	rows, err := s.run(ctx, &q, text)
	if err != nil {
		return nil, fmt.Errorf("chstore: distinct values: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("chstore: distinct values: scan: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chstore: distinct values: %w", err)
	}
	return out, nil
}

// EventMeta is one row of the events table: metadata of a normalized
// event, never its content.
type EventMeta = event.Summary

// ActorEvents returns the events of one actor in [from, to), oldest first,
// at most limit (default and cap MaxSearchLimit).
func (s *Store) ActorEvents(ctx context.Context, actor string, from, to time.Time, limit int) ([]EventMeta, error) {
	if actor == "" {
		return nil, errors.New("chstore: actor events: no actor")
	}
	if limit <= 0 || limit > MaxSearchLimit {
		limit = MaxSearchLimit
	}
	var q query
	q.in("actor_uid", "actors", []string{actor})
	q.timeRange("time", "time_ms", from, to)
	text := "SELECT event_id, kind, time_ms, actor_uid, department, channel, destination, size, pii_types, pii_counts, record_count FROM " +
		s.table("events") + " FINAL" + q.where() + " ORDER BY time_ms, event_id LIMIT " + strconv.Itoa(limit)
	rows, err := s.run(ctx, &q, text)
	if err != nil {
		return nil, fmt.Errorf("chstore: actor events: %w", err)
	}
	defer rows.Close()
	var out []EventMeta
	for rows.Next() {
		var e EventMeta
		var ms int64
		var types []string
		var counts []uint32
		if err := rows.Scan(&e.EventID, &e.Kind, &ms, &e.ActorUID, &e.Department, &e.Channel, &e.Destination, &e.Size, &types, &counts, &e.RecordCount); err != nil {
			return nil, fmt.Errorf("chstore: actor events: scan: %w", err)
		}
		e.Time = fromUnixMilli(ms)
		if len(types) == len(counts) && len(types) > 0 {
			e.PIICounts = make(map[string]uint32, len(types))
			for i, t := range types {
				e.PIICounts[t] = counts[i]
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chstore: actor events: %w", err)
	}
	return out, nil
}

// EvidenceAccess is one row of the evidence-access audit log.
type EvidenceAccess struct {
	AuditID       string
	At            time.Time
	UserLogin     string
	UserEmail     string
	UserRole      string
	OrgID         int64
	DatasourceUID string
	FindingID     string
	ActorUID      string
	// Outcome is "granted" or "denied".
	Outcome string
	Reason  string
}

// Evidence access outcomes.
const (
	AccessGranted = "granted"
	AccessDenied  = "denied"
)

var auditColumns = []string{
	"audit_id", "accessed_at", "accessed_at_ms", "user_login", "user_email", "user_role",
	"org_id", "datasource_uid", "finding_id", "actor_uid", "outcome", "reason",
}

// InsertEvidenceAccess appends one row to evidence_access_audit.
func (s *Store) InsertEvidenceAccess(ctx context.Context, a EvidenceAccess) error {
	if a.AuditID == "" || a.FindingID == "" || a.Outcome == "" {
		return errors.New("chstore: insert evidence access: audit id, finding id and outcome are required")
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table("evidence_access_audit")+" ("+strings.Join(auditColumns, ", ")+")")
	if err != nil {
		return fmt.Errorf("chstore: insert evidence access: %w", err)
	}
	defer batch.Close()
	if err := batch.Append(a.AuditID, dateTime(a.At), a.At.UnixMilli(), a.UserLogin, a.UserEmail, a.UserRole,
		a.OrgID, a.DatasourceUID, a.FindingID, a.ActorUID, a.Outcome, a.Reason); err != nil {
		return fmt.Errorf("chstore: insert evidence access: %w", err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("chstore: insert evidence access: %w", err)
	}
	return nil
}

// EvidenceAccesses returns the audit rows of one finding, oldest first.
func (s *Store) EvidenceAccesses(ctx context.Context, findingID string) ([]EvidenceAccess, error) {
	var q query
	q.in("finding_id", "ids", []string{findingID})
	text := "SELECT audit_id, accessed_at_ms, user_login, user_email, user_role, org_id, datasource_uid, finding_id, actor_uid, outcome, reason FROM " +
		s.table("evidence_access_audit") + q.where() + " ORDER BY accessed_at_ms, audit_id"
	rows, err := s.run(ctx, &q, text)
	if err != nil {
		return nil, fmt.Errorf("chstore: evidence accesses: %w", err)
	}
	defer rows.Close()
	var out []EvidenceAccess
	for rows.Next() {
		var a EvidenceAccess
		var ms int64
		if err := rows.Scan(&a.AuditID, &ms, &a.UserLogin, &a.UserEmail, &a.UserRole, &a.OrgID, &a.DatasourceUID, &a.FindingID, &a.ActorUID, &a.Outcome, &a.Reason); err != nil {
			return nil, fmt.Errorf("chstore: evidence accesses: scan: %w", err)
		}
		a.At = fromUnixMilli(ms)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chstore: evidence accesses: %w", err)
	}
	return out, nil
}
