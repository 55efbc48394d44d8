package grafana

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/finding"
)

// actorLink is the data link from an actor cell to the Investigation
// dashboard over the panel's time range (Grafana interpolates it).
var actorLink = data.DataLink{
	Title: "Investigate ${__value.raw}",
	URL:   "/d/" + InvestigationUID + "/" + InvestigationSlug + "?var-actor=${__value.raw:percentencode}&from=${__from}&to=${__to}",
}

// withActorLink gives a field the Investigation data link.
func withActorLink(f *data.Field) *data.Field {
	return f.SetConfig(&data.FieldConfig{Links: []data.DataLink{actorLink}})
}

func mode(shadow bool) string {
	if shadow {
		return "shadow"
	}
	return "live"
}

// piiSummary is "TYPE=n, TYPE=n" sorted by type.
func piiSummary(m map[string]uint32) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// maskedEvidence is the masked values, never the tokens.
func maskedEvidence(ev []finding.Evidence) string {
	parts := make([]string, len(ev))
	for i, e := range ev {
		parts[i] = e.Type + " " + e.Masked
	}
	return strings.Join(parts, ", ")
}

// findingsFrame is the table of findings: masked evidence, no tokens.
func findingsFrame(fs []finding.Finding) *data.Frame {
	n := len(fs)
	var (
		start, end, detected                          = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		sev, rule, rver, pack, md, title, actor, dept = mk(n), mk(n), mk(n), mk(n), mk(n), mk(n), mk(n), mk(n)
		channel, dest, pii, evidence, id              = mk(n), mk(n), mk(n), mk(n), mk(n)
		value, threshold                              = make([]float64, n), make([]float64, n)
		events, revision                              = make([]int64, n), make([]int64, n)
	)
	for i, f := range fs {
		start[i], end[i], detected[i] = f.WindowStart, f.WindowEnd, f.DetectedAt
		sev[i], rule[i], rver[i], pack[i], md[i] = f.Severity, f.RuleID, f.RuleVersion, f.PackVersion, mode(f.Shadow)
		title[i], actor[i], dept[i] = f.Title, f.ActorUID, f.Department
		channel[i], dest[i], pii[i], evidence[i], id[i] = f.Channel, f.Destination, piiSummary(f.PIICounts), maskedEvidence(f.Evidence), f.FindingID
		value[i], threshold[i] = f.Value, f.Threshold
		events[i], revision[i] = int64(f.EventCount), int64(f.Revision)
	}
	frame := data.NewFrame("findings",
		data.NewField("time", nil, start),
		data.NewField("severity", nil, sev),
		data.NewField("rule_id", nil, rule),
		data.NewField("title", nil, title),
		withActorLink(data.NewField("actor_uid", nil, actor)),
		data.NewField("department", nil, dept),
		data.NewField("channel", nil, channel),
		data.NewField("destination", nil, dest),
		data.NewField("value", nil, value),
		data.NewField("threshold", nil, threshold),
		data.NewField("pii_counts", nil, pii),
		data.NewField("evidence_masked", nil, evidence),
		data.NewField("window_end", nil, end),
		data.NewField("detected_at", nil, detected),
		data.NewField("mode", nil, md),
		data.NewField("rule_version", nil, rver),
		data.NewField("pack_version", nil, pack),
		data.NewField("event_count", nil, events),
		data.NewField("revision", nil, revision),
		data.NewField("finding_id", nil, id),
	)
	return frame.SetMeta(&data.FrameMeta{PreferredVisualization: data.VisTypeTable})
}

func mk(n int) []string { return make([]string, n) }

// evidenceFrame has one row per masked evidence item.
func evidenceFrame(fs []finding.Finding) *data.Frame {
	var (
		at                               []time.Time
		id, rule, actor, typ, masked, ch []string
	)
	for _, f := range fs {
		for _, e := range f.Evidence {
			at = append(at, f.WindowStart)
			id = append(id, f.FindingID)
			rule = append(rule, f.RuleID)
			actor = append(actor, f.ActorUID)
			typ = append(typ, e.Type)
			masked = append(masked, e.Masked)
			ch = append(ch, f.Channel)
		}
	}
	if at == nil {
		at = []time.Time{}
		id, rule, actor, typ, masked, ch = []string{}, []string{}, []string{}, []string{}, []string{}, []string{}
	}
	frame := data.NewFrame("evidence",
		data.NewField("time", nil, at),
		data.NewField("finding_id", nil, id),
		data.NewField("rule_id", nil, rule),
		withActorLink(data.NewField("actor_uid", nil, actor)),
		data.NewField("channel", nil, ch),
		data.NewField("type", nil, typ),
		data.NewField("masked", nil, masked),
	)
	return frame.SetMeta(&data.FrameMeta{PreferredVisualization: data.VisTypeTable})
}

// buckets are the bucket starts covering [from, to) at step, aligned to
// multiples of step since the epoch (as the store aligns them).
func buckets(tr backend.TimeRange, step time.Duration) []time.Time {
	sec := int64(step / time.Second)
	if sec <= 0 || !tr.From.Before(tr.To) {
		return []time.Time{}
	}
	first := tr.From.Unix() / sec * sec
	var out []time.Time
	for t := first; t < tr.To.Unix() && len(out) <= maxTimeSeriesPoints; t += sec {
		out = append(out, time.Unix(t, 0).UTC())
	}
	return out
}

// countsFrame is a numeric wide frame: a time field and one float64 field
// "findings" per group, labelled with the dimension, zero where a bucket
// has no findings. Groups named by the query's own filter on the dimension
// appear even without findings, and an empty result is one unlabelled
// series of zeros: an alert rule sees 0, not "no data".
func countsFrame(bs []chstore.CountBucket, m Query, tr backend.TimeRange, step time.Duration) *data.Frame {
	times := buckets(tr, step)
	index := make(map[int64]int, len(times))
	for i, t := range times {
		index[t.Unix()] = i
	}
	var groups []string
	switch m.GroupBy {
	case chstore.ByRule:
		groups = slices.Clone(m.Rules)
	case chstore.BySeverity:
		groups = slices.Clone(m.Severities)
	case chstore.ByChannel:
		groups = slices.Clone(m.Channels)
	case chstore.ByMode:
		if m.Shadow != "" {
			groups = []string{m.Shadow}
		}
	}
	for _, b := range bs {
		if !slices.Contains(groups, b.Group) {
			groups = append(groups, b.Group)
		}
	}
	sort.Strings(groups)
	values := make(map[string][]float64, len(groups))
	for _, g := range groups {
		values[g] = make([]float64, len(times))
	}
	for _, b := range bs {
		if i, ok := index[b.Time.Unix()]; ok {
			values[b.Group][i] += float64(b.Findings)
		}
	}
	frame := data.NewFrame("findings_over_time", data.NewField("time", nil, times))
	label := m.GroupBy
	if len(groups) == 0 || m.GroupBy == chstore.ByNone {
		total := make([]float64, len(times))
		for _, g := range groups {
			for i, v := range values[g] {
				total[i] += v
			}
		}
		frame.Fields = append(frame.Fields, data.NewField("findings", nil, total).
			SetConfig(&data.FieldConfig{DisplayNameFromDS: "findings"}))
	} else {
		for _, g := range groups {
			frame.Fields = append(frame.Fields, data.NewField("findings", data.Labels{label: g}, values[g]).
				SetConfig(&data.FieldConfig{DisplayNameFromDS: g}))
		}
	}
	return frame.SetMeta(&data.FrameMeta{
		Type:        data.FrameTypeTimeSeriesWide,
		TypeVersion: data.FrameTypeVersion{0, 1},
	})
}

// riskFrame is the risk ranking.
func riskFrame(rs []chstore.RiskScore, halfLife time.Duration) *data.Frame {
	n := len(rs)
	actor, dept, rules := mk(n), mk(n), mk(n)
	score := make([]float64, n)
	total, crit, high := make([]int64, n), make([]int64, n), make([]int64, n)
	last := make([]time.Time, n)
	for i, r := range rs {
		actor[i], dept[i], rules[i] = r.ActorUID, r.Department, strings.Join(sorted(r.Rules), ", ")
		score[i] = r.Score
		total[i], crit[i], high[i] = int64(r.Findings), int64(r.Critical), int64(r.High)
		last[i] = r.LastFinding
	}
	if halfLife <= 0 {
		halfLife = chstore.DefaultHalfLife
	}
	frame := data.NewFrame("top_users",
		withActorLink(data.NewField("actor_uid", nil, actor)),
		data.NewField("department", nil, dept),
		data.NewField("risk_score", nil, score).SetConfig(&data.FieldConfig{
			Description: fmt.Sprintf("sum of severity weight × 2^(−age/%v) over the actor's findings (live rules unless includeShadow)", halfLife),
			Decimals:    ptr(uint16(2)),
		}),
		data.NewField("findings", nil, total),
		data.NewField("critical", nil, crit),
		data.NewField("high", nil, high),
		data.NewField("last_finding", nil, last),
		data.NewField("rules", nil, rules),
	)
	return frame.SetMeta(&data.FrameMeta{PreferredVisualization: data.VisTypeTable})
}

func ptr[T any](v T) *T { return &v }

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// Timeline kinds besides the event kinds of the events table.
const timelineFinding = "finding"

// timelineFrame merges an actor's findings (at their incident start) and
// events in time order.
func timelineFrame(fs []finding.Finding, evs []chstore.EventMeta) *data.Frame {
	type row struct {
		at                                             time.Time
		kind, title, severity, rule, channel, dest, id string
		pii                                            string
		value                                          float64
	}
	rows := make([]row, 0, len(fs)+len(evs))
	for _, f := range fs {
		rows = append(rows, row{at: f.WindowStart, kind: timelineFinding, title: f.Title, severity: f.Severity, rule: f.RuleID,
			channel: f.Channel, dest: f.Destination, id: f.FindingID, pii: piiSummary(f.PIICounts), value: f.Value})
	}
	for _, e := range evs {
		title := e.Kind
		switch e.Kind {
		case "crm_access":
			title = fmt.Sprintf("CRM read of %d records", e.RecordCount)
		case "outbound":
			title = "outbound " + e.Channel
		}
		value := float64(e.RecordCount)
		if e.Kind != "crm_access" {
			value = float64(e.Size)
		}
		rows = append(rows, row{at: e.Time, kind: e.Kind, title: title, channel: e.Channel, dest: e.Destination,
			id: e.EventID, pii: piiSummary(e.PIICounts), value: value})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].at.Before(rows[j].at) })
	n := len(rows)
	at := make([]time.Time, n)
	kind, title, sev, rule, ch, dest, pii, id := mk(n), mk(n), mk(n), mk(n), mk(n), mk(n), mk(n), mk(n)
	value := make([]float64, n)
	for i, r := range rows {
		at[i], kind[i], title[i], sev[i], rule[i], ch[i], dest[i], pii[i], id[i], value[i] =
			r.at, r.kind, r.title, r.severity, r.rule, r.channel, r.dest, r.pii, r.id, r.value
	}
	frame := data.NewFrame("timeline",
		data.NewField("time", nil, at),
		data.NewField("kind", nil, kind),
		data.NewField("title", nil, title),
		data.NewField("severity", nil, sev),
		data.NewField("rule_id", nil, rule),
		data.NewField("channel", nil, ch),
		data.NewField("destination", nil, dest),
		data.NewField("value", nil, value).SetConfig(&data.FieldConfig{
			Description: "finding: measured value; crm_access: records read; outbound: bytes",
		}),
		data.NewField("pii_counts", nil, pii),
		data.NewField("id", nil, id),
	)
	return frame.SetMeta(&data.FrameMeta{PreferredVisualization: data.VisTypeTable})
}

// rulePerformanceFrame is the fires per rule, version, pack and mode.
func rulePerformanceFrame(rs []chstore.RuleStats) *data.Frame {
	n := len(rs)
	rule, rver, pack, md := mk(n), mk(n), mk(n), mk(n)
	fires, actors, maxv := make([]float64, n), make([]float64, n), make([]float64, n)
	first, last := make([]time.Time, n), make([]time.Time, n)
	for i, r := range rs {
		rule[i], rver[i], pack[i], md[i] = r.RuleID, r.RuleVersion, r.PackVersion, mode(r.Shadow)
		fires[i], actors[i], maxv[i] = float64(r.Findings), float64(r.Actors), r.MaxValue
		first[i], last[i] = r.First, r.Last
	}
	frame := data.NewFrame("rule_performance",
		data.NewField("rule_id", nil, rule),
		data.NewField("rule_version", nil, rver),
		data.NewField("pack_version", nil, pack),
		data.NewField("mode", nil, md),
		data.NewField("fires", nil, fires),
		data.NewField("actors", nil, actors),
		data.NewField("max_value", nil, maxv),
		data.NewField("first_incident", nil, first),
		data.NewField("last_incident", nil, last),
	)
	return frame.SetMeta(&data.FrameMeta{PreferredVisualization: data.VisTypeTable})
}

// ingestFrame is the numeric wide frame of rows stored per bucket, zero
// where nothing arrived.
func ingestFrame(bs []chstore.IngestBucket, tr backend.TimeRange, step time.Duration) *data.Frame {
	times := buckets(tr, step)
	rows, firsts := make([]float64, len(times)), make([]float64, len(times))
	index := make(map[int64]int, len(times))
	for i, t := range times {
		index[t.Unix()] = i
	}
	for _, b := range bs {
		if i, ok := index[b.Time.Unix()]; ok {
			rows[i] += float64(b.Rows)
			firsts[i] += float64(b.FirstRevisions)
		}
	}
	frame := data.NewFrame("findings_ingested",
		data.NewField("time", nil, times),
		data.NewField("rows_stored", nil, rows).SetConfig(&data.FieldConfig{DisplayNameFromDS: "rows stored (revisions included)"}),
		data.NewField("new_findings", nil, firsts).SetConfig(&data.FieldConfig{DisplayNameFromDS: "new findings (revision 1)"}),
	)
	return frame.SetMeta(&data.FrameMeta{Type: data.FrameTypeTimeSeriesWide, TypeVersion: data.FrameTypeVersion{0, 1}})
}

// freshnessFrame is one row: when the newest finding row arrived and how
// long ago. With no findings at all, the times are null and the age is
// null too.
func freshnessFrame(f chstore.Freshness, now time.Time) *data.Frame {
	var ins, det *time.Time
	var age *float64
	if f.Rows > 0 {
		ins, det = ptr(f.LastInserted), ptr(f.LastDetected)
		age = ptr(max(0, now.Sub(f.LastInserted).Seconds()))
	}
	frame := data.NewFrame("findings_freshness",
		data.NewField("last_stored", nil, []*time.Time{ins}),
		data.NewField("last_detected", nil, []*time.Time{det}),
		data.NewField("seconds_since_last_stored", nil, []*float64{age}).SetConfig(&data.FieldConfig{Unit: "s"}),
		data.NewField("rows_stored", nil, []float64{float64(f.Rows)}),
	)
	return frame.SetMeta(&data.FrameMeta{PreferredVisualization: data.VisTypeTable})
}

// lookupFrame is the text/value frame Grafana turns into variable options.
func lookupFrame(what string, vs []string) *data.Frame {
	if vs == nil {
		vs = []string{}
	}
	return data.NewFrame(what,
		data.NewField("text", nil, vs),
		data.NewField("value", nil, slices.Clone(vs)),
	)
}
