package grafana

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/leakline/leakline/pkg/chstore"
)

// Query types (the query's "queryType").
const (
	// QueryFindings is a table of findings (latest revision of each),
	// newest first, with masked evidence.
	QueryFindings = "findings"
	// QueryEvidence is one row per masked evidence item of the findings
	// that match.
	QueryEvidence = "evidence"
	// QueryFindingsOverTime counts distinct findings per time bucket,
	// grouped by GroupBy: a numeric wide frame, usable by alert rules.
	QueryFindingsOverTime = "findings_over_time"
	// QueryTopUsers ranks actors by decayed risk score.
	QueryTopUsers = "top_users"
	// QueryUserTimeline is one actor's findings and event metadata in time
	// order.
	QueryUserTimeline = "user_timeline"
	// QueryRulePerformance counts fires per rule, rule version, pack
	// version and mode (shadow or live).
	QueryRulePerformance = "rule_performance"
	// QueryPipelineHealth reports the findings ingest rate and freshness.
	QueryPipelineHealth = "pipeline_health"
	// QueryLookup lists distinct values (for dashboard variables).
	QueryLookup = "lookup"
)

// QueryTypes lists every query type.
var QueryTypes = []string{
	QueryFindings, QueryEvidence, QueryFindingsOverTime, QueryTopUsers,
	QueryUserTimeline, QueryRulePerformance, QueryPipelineHealth, QueryLookup,
}

// Pipeline health views.
const (
	HealthIngest    = "ingest"    // rows stored per bucket (time series)
	HealthFreshness = "freshness" // last stored finding (one row)
)

// Query is a query's model: the JSON of a panel target. Fields a query type
// does not use are ignored, as are the fields Grafana adds (refId,
// datasource, intervalMs, ...).
type Query struct {
	// QueryType selects what to run (one of QueryTypes). Grafana also sends
	// it outside the JSON, as DataQuery.QueryType; either may be set.
	QueryType string `json:"queryType"`

	// Filters: a finding matches a list if its value is in the list; an
	// empty list does not filter.
	Rules      []string `json:"rules,omitempty"`
	Severities []string `json:"severities,omitempty"`
	Channels   []string `json:"channels,omitempty"`
	Actors     []string `json:"actors,omitempty"`
	// Actor is one actor (the Investigation dashboard's $actor); it adds
	// to Actors. user_timeline needs exactly one actor.
	Actor string `json:"actor,omitempty"`
	// Shadow is "" (live and shadow rules), "live" or "shadow".
	Shadow string `json:"shadow,omitempty"`

	// GroupBy (findings_over_time): rule, severity, channel, mode,
	// pack_version, rule_version, or "" for one series.
	GroupBy string `json:"groupBy,omitempty"`
	// Limit caps the rows of findings, top_users (default 10),
	// rule_performance and lookup, the findings of user_timeline (and,
	// separately, its events), and the findings whose evidence the
	// evidence type lists.
	Limit int `json:"limit,omitempty"`
	// HalfLifeHours (top_users) is the risk decay half-life (default 168).
	HalfLifeHours float64 `json:"halfLifeHours,omitempty"`
	// IncludeShadow (top_users) counts shadow rules' findings towards risk.
	IncludeShadow bool `json:"includeShadow,omitempty"`
	// View (pipeline_health): "ingest", "freshness", or "" for both frames.
	View string `json:"view,omitempty"`
	// Lookup (lookup): rules, actors, channels or severities.
	Lookup string `json:"lookup,omitempty"`
	// Stream (findings): also subscribe the panel to new findings (the
	// frame names the live channel ds/<uid>/findings).
	Stream bool `json:"stream,omitempty"`
}

// maxTimeSeriesPoints bounds the buckets of one time series.
const maxTimeSeriesPoints = 11000

// ParseQuery decodes and validates a query.
func ParseQuery(q backend.DataQuery) (Query, error) {
	var m Query
	if len(q.JSON) > 0 {
		if err := json.Unmarshal(q.JSON, &m); err != nil {
			return m, fmt.Errorf("invalid query JSON: %w", err)
		}
	}
	if m.QueryType == "" {
		m.QueryType = q.QueryType
	}
	if !slices.Contains(QueryTypes, m.QueryType) {
		return m, fmt.Errorf("unknown queryType %q (want one of %s)", m.QueryType, strings.Join(QueryTypes, ", "))
	}
	m.Rules = cleanList(m.Rules)
	m.Severities = cleanList(m.Severities)
	m.Channels = cleanList(m.Channels)
	if a := strings.TrimSpace(m.Actor); a != "" {
		m.Actors = append(m.Actors, a)
	}
	m.Actors = cleanList(m.Actors)
	if !slices.Contains([]string{"", string(chstore.ShadowLive), string(chstore.ShadowOnly)}, m.Shadow) {
		return m, fmt.Errorf("invalid shadow %q (want \"\", \"live\" or \"shadow\")", m.Shadow)
	}
	if m.Limit < 0 || m.Limit > chstore.MaxSearchLimit {
		return m, fmt.Errorf("limit %d out of range 0..%d", m.Limit, chstore.MaxSearchLimit)
	}
	if m.HalfLifeHours < 0 || math.IsNaN(m.HalfLifeHours) || math.IsInf(m.HalfLifeHours, 0) {
		return m, fmt.Errorf("invalid halfLifeHours %v", m.HalfLifeHours)
	}
	switch m.QueryType {
	case QueryFindingsOverTime:
		if !slices.Contains([]string{chstore.ByNone, chstore.ByRule, chstore.BySeverity, chstore.ByChannel,
			chstore.ByMode, chstore.ByPackVersion, chstore.ByRuleVersion}, m.GroupBy) {
			return m, fmt.Errorf("invalid groupBy %q (want rule, severity, channel, mode, pack_version, rule_version or empty)", m.GroupBy)
		}
	case QueryUserTimeline:
		if len(m.Actors) != 1 {
			return m, fmt.Errorf("user_timeline needs exactly one actor, got %d", len(m.Actors))
		}
	case QueryPipelineHealth:
		if m.View != "" && m.View != HealthIngest && m.View != HealthFreshness {
			return m, fmt.Errorf("invalid view %q (want ingest, freshness or empty)", m.View)
		}
	case QueryLookup:
		if !slices.Contains([]string{chstore.LookupRules, chstore.LookupActors, chstore.LookupChannels, chstore.LookupSeverities}, m.Lookup) {
			return m, fmt.Errorf("invalid lookup %q (want rules, actors, channels or severities)", m.Lookup)
		}
	}
	return m, nil
}

// cleanList trims the values, drops empty ones and duplicates, and treats
// Grafana's "All" value ($__all) as no filter.
func cleanList(vs []string) []string {
	var out []string
	for _, v := range vs {
		v = strings.TrimSpace(v)
		if v == "$__all" {
			return nil
		}
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// search is the chstore filter of the query over tr.
func (m Query) search(tr backend.TimeRange) chstore.Search {
	return chstore.Search{
		Rules: m.Rules, Severities: m.Severities, Channels: m.Channels, Actors: m.Actors,
		Shadow: chstore.Shadow(m.Shadow),
		From:   tr.From, To: tr.To,
		Limit: m.Limit,
	}
}

// step is the bucket width of a time series over tr: the panel's interval,
// at least one minute, wide enough to stay under maxTimeSeriesPoints (or
// the query's MaxDataPoints), in whole minutes.
func step(q backend.DataQuery) time.Duration {
	s := q.Interval
	span := q.TimeRange.To.Sub(q.TimeRange.From)
	maxPoints := int64(maxTimeSeriesPoints)
	if q.MaxDataPoints > 0 && q.MaxDataPoints < maxPoints {
		maxPoints = q.MaxDataPoints
	}
	if span > 0 {
		if min := time.Duration(int64(span) / maxPoints); s < min {
			s = min
		}
	}
	return time.Duration(chstore.StepSeconds(s)) * time.Second
}

// QueryData runs each query of the request. Queries run concurrently (at
// most the pool size at once); a failing query fails only its own
// response.
func (d *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	resp := backend.NewQueryDataResponse()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, max(1, d.settings.MaxOpenConns))
	)
	for _, q := range req.Queries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := d.query(ctx, req.PluginContext, q)
			mu.Lock()
			resp.Responses[q.RefID] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	return resp, nil
}

// query runs one query.
func (d *Datasource) query(ctx context.Context, pc backend.PluginContext, q backend.DataQuery) backend.DataResponse {
	m, err := ParseQuery(q)
	if err != nil {
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, err.Error())
	}
	st, err := d.storeFor(ctx)
	if err != nil {
		return backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream, err.Error())
	}
	frames, err := d.run(ctx, st, m, q)
	if err != nil {
		status := backend.StatusInternal
		if errors.Is(err, context.DeadlineExceeded) {
			status = backend.StatusTimeout
		}
		// The error texts of chstore name tables and causes, never values.
		d.log.Warn("query failed", "queryType", m.QueryType, "error", err)
		return backend.ErrDataResponseWithSource(status, backend.ErrorSourceDownstream, m.QueryType+": "+err.Error())
	}
	for _, f := range frames {
		if f.Meta == nil {
			f.Meta = &data.FrameMeta{}
		}
		f.RefID = q.RefID
	}
	if m.QueryType == QueryFindings && m.Stream && d.uid != "" {
		frames[0].Meta.Channel = "ds/" + d.uid + "/" + StreamPathFindings
	}
	return backend.DataResponse{Frames: frames}
}

// run executes a validated query and builds its frames.
func (d *Datasource) run(ctx context.Context, st *chstore.Store, m Query, q backend.DataQuery) (data.Frames, error) {
	tr := q.TimeRange
	switch m.QueryType {
	case QueryFindings:
		fs, err := st.SearchFindings(ctx, m.search(tr))
		if err != nil {
			return nil, err
		}
		return data.Frames{findingsFrame(fs)}, nil
	case QueryEvidence:
		fs, err := st.SearchFindings(ctx, m.search(tr))
		if err != nil {
			return nil, err
		}
		return data.Frames{evidenceFrame(fs)}, nil
	case QueryFindingsOverTime:
		c := chstore.CountQuery{Search: m.search(tr), Step: step(q), By: m.GroupBy}
		bs, err := st.CountFindingsOverTime(ctx, c)
		if err != nil {
			return nil, err
		}
		return data.Frames{countsFrame(bs, m, tr, c.Step)}, nil
	case QueryTopUsers:
		r := chstore.RiskQuery{Search: m.search(tr), IncludeShadow: m.IncludeShadow, At: tr.To}
		if r.Limit == 0 {
			r.Limit = 10
		}
		if m.HalfLifeHours > 0 {
			r.HalfLife = time.Duration(m.HalfLifeHours * float64(time.Hour))
		}
		rs, err := st.RiskScores(ctx, r)
		if err != nil {
			return nil, err
		}
		return data.Frames{riskFrame(rs, r.HalfLife)}, nil
	case QueryUserTimeline:
		s := m.search(tr)
		fs, err := st.SearchFindings(ctx, s)
		if err != nil {
			return nil, err
		}
		evs, err := st.ActorEvents(ctx, m.Actors[0], tr.From, tr.To, m.Limit)
		if err != nil {
			return nil, err
		}
		return data.Frames{timelineFrame(fs, evs)}, nil
	case QueryRulePerformance:
		rs, err := st.RulePerformance(ctx, m.search(tr))
		if err != nil {
			return nil, err
		}
		return data.Frames{rulePerformanceFrame(rs)}, nil
	case QueryPipelineHealth:
		var frames data.Frames
		if m.View == "" || m.View == HealthIngest {
			s := step(q)
			bs, err := st.IngestRate(ctx, tr.From, tr.To, s)
			if err != nil {
				return nil, err
			}
			frames = append(frames, ingestFrame(bs, tr, s))
		}
		if m.View == "" || m.View == HealthFreshness {
			f, err := st.FindingsFreshness(ctx)
			if err != nil {
				return nil, err
			}
			frames = append(frames, freshnessFrame(f, d.now()))
		}
		return frames, nil
	case QueryLookup:
		vs, err := st.DistinctValues(ctx, m.Lookup, "", m.Limit)
		if err != nil {
			return nil, err
		}
		return data.Frames{lookupFrame(m.Lookup, vs)}, nil
	}
	return nil, fmt.Errorf("unknown queryType %q", m.QueryType)
}
