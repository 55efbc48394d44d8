package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/leakline/leakline/pkg/scenario"
)

// LatencyMS holds latency percentiles in milliseconds.
type LatencyMS struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// ScenarioResult is one scenario's score.
type ScenarioResult struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Detected: for an attack, one of its expected rules fired (live) for
	// its actor at or after its start; for a benign look-alike, any live
	// rule fired for its actor at or after its start (a false alarm).
	Detected bool `json:"detected"`
	// Paged: the pager's receiver got a page (trigger) for the actor from a
	// finding whose window ends at or after the scenario's start — for an
	// attack from one of its expected rules, for a benign look-alike from
	// any rule (a false page).
	Paged bool `json:"paged"`
	// TimeToDetectS is event time from the scenario's first exfiltration
	// event to the window end of the first revision (as published on
	// dlp.findings) of the earliest matching finding; null when not
	// detected. Negative: the finding came from the collection step,
	// before anything left.
	TimeToDetectS *float64 `json:"time_to_detect_s"`
	// StoredAfterS is wall time from the moment the first exfiltration
	// event was produced to the moment the earliest matching finding was
	// first seen in ClickHouse (polled every PollInterval); PagedAfterS
	// the same to the moment the receiver got its first page. Null when
	// it did not happen.
	StoredAfterS *float64 `json:"stored_after_s"`
	PagedAfterS  *float64 `json:"paged_after_s"`
	// FirstFinding is the rule, window start and first window end of the
	// finding TimeToDetectS is measured to.
	FirstFinding string   `json:"first_finding,omitempty"`
	Actor        string   `json:"actor"`
	RulesFired   []string `json:"rules_fired"`
	RulesPaged   []string `json:"rules_paged"`
	ExpectRules  []string `json:"expect_rules,omitempty"`
	Note         string   `json:"note,omitempty"`
}

// CPU is the CPU time used from the start of production until every
// event summary was in ClickHouse, and per event: unlike events/s, it does
// not depend on what else runs on the machine.
type CPU struct {
	// ProcessSeconds is this process's CPU time: in-process, the stages,
	// the pager, the embedded broker and the generator; with -processes the
	// broker, the generator and the receiver only.
	ProcessSeconds    float64 `json:"process_s"`
	ClickHouseSeconds float64 `json:"clickhouse_s"`
	// ServicesSeconds is the service processes' CPU time (-processes).
	ServicesSeconds      float64 `json:"services_s,omitempty"`
	ProcessUSPerEvent    float64 `json:"process_us_per_event"`
	ClickHouseUSPerEvent float64 `json:"clickhouse_us_per_event"`
	ServicesUSPerEvent   float64 `json:"services_us_per_event,omitempty"`
	// ServiceUSPerEvent is each service process's CPU per event
	// (-processes), by service name: what sizing a deployment needs.
	ServiceUSPerEvent map[string]float64 `json:"service_us_per_event,omitempty"`
}

// Memory is the peak memory of what ran and how it moved during
// production.
type Memory struct {
	// ProcessPeakRSSBytes is VmHWM of the load-test process (every stage
	// in-process, the broker, the generator); GoHeapPeakBytes the largest
	// Go heap sample (runtime/metrics /memory/classes/heap/objects:bytes,
	// every second: heap objects not yet freed, garbage not yet swept
	// included) of it. ClickHousePeakRSSBytes is the server's VmHWM.
	ProcessPeakRSSBytes    int64 `json:"process_peak_rss_bytes"`
	GoHeapPeakBytes        int64 `json:"go_heap_peak_bytes"`
	ClickHousePeakRSSBytes int64 `json:"clickhouse_peak_rss_bytes"`
	// BrokerPeakBytes is the most record bytes the embedded broker held
	// (all topics, sampled every second); BrokerRetentionBytes its bound
	// per partition of the event topics (0: none, it keeps everything).
	BrokerPeakBytes      int64 `json:"broker_peak_bytes"`
	BrokerRetentionBytes int64 `json:"broker_retention_bytes"`
	// BrokerRecordsCut is how many records retention deleted from the
	// bounded topics by the end of the run (each only once every stage's
	// consumer group had committed it).
	BrokerRecordsCut int64 `json:"broker_records_cut"`
	// Services is each service process's peak RSS (VmHWM) in -processes
	// mode, by service name.
	Services map[string]int64 `json:"services_peak_rss_bytes,omitempty"`
	// Trend says whether memory stayed flat during production (see
	// MemoryTrend); nil when production was too short to tell.
	Trend *MemoryTrend `json:"trend,omitempty"`
	Note  string       `json:"note"`
}

// TrendWarmup is the share of production, from its start, that
// MemoryTrend leaves out: buffers, caches and the detector's state grow
// while the run warms up, and that growth says nothing about a leak.
const TrendWarmup = 0.25

// MemoryTrend is memory over production after the warm-up: from FromS
// (TrendWarmup of production) to ToS (the end of production), seconds
// since its start, read from the every-second Series. A flat memory has
// about equal thirds and a slope near 0; a leak shows as growing thirds
// and a steady positive slope. Each series is null when it has fewer
// than minTrendPerThird known samples in one of the thirds.
type MemoryTrend struct {
	FromS float64 `json:"from_s"`
	ToS   float64 `json:"to_s"`
	// LiveHeap is the load-test process's live Go heap as of the last GC
	// (Point.LiveHeapMB); ProcessRSS its resident set (Point.RSSMB);
	// ClickHouseRSS the ClickHouse server's (Point.ClickHouseRSSMB).
	LiveHeap      *SeriesTrend `json:"live_heap_mb"`
	ProcessRSS    *SeriesTrend `json:"process_rss_mb"`
	ClickHouseRSS *SeriesTrend `json:"clickhouse_rss_mb"`
	// Services is each service process's resident set by name
	// (-processes; Point.ServicesRSSMB).
	Services map[string]*SeriesTrend `json:"services_rss_mb,omitempty"`
}

// SeriesTrend is one memory series over [MemoryTrend.FromS,
// MemoryTrend.ToS].
type SeriesTrend struct {
	// Thirds is the mean in MB over each third of the window, in order.
	Thirds [3]float64 `json:"thirds_mb"`
	// SlopeMBPerMin is the least-squares slope of the samples over the
	// whole window, in MB per minute: how fast the series grew (negative:
	// shrank) on average.
	SlopeMBPerMin float64 `json:"slope_mb_per_min"`
	// Samples is how many samples were used.
	Samples int `json:"samples"`
}

// Point is one sample of the run, every SampleInterval.
type Point struct {
	// T is seconds since the start of production.
	T float64 `json:"t"`
	// ProducedEPS and StoredEPS are the rates over the last interval of
	// events acknowledged by the broker and of event summaries inserted
	// into ClickHouse.
	ProducedEPS float64 `json:"produced_eps"`
	StoredEPS   float64 `json:"stored_eps"`
	// Lag is each consumer group's lag (end offset − committed offset,
	// summed over its partitions); -1 when it could not be read.
	Lag map[string]int64 `json:"lag"`
	// Findings and Pages so far.
	Findings uint64 `json:"findings"`
	Pages    int    `json:"pages"`
	// HeapMB is the load-test process's Go heap objects not yet freed,
	// garbage not yet swept included (runtime/metrics
	// /memory/classes/heap/objects:bytes): it saw-tooths with every GC.
	// LiveHeapMB is what the last GC found live (/gc/heap/live:bytes):
	// the part that does not go away.
	HeapMB     float64 `json:"heap_mb"`
	LiveHeapMB float64 `json:"live_heap_mb"`
	// RSSMB is the load-test process's resident set (VmRSS), and
	// ClickHouseRSSMB the ClickHouse server's; -1 when it could not be
	// read.
	RSSMB           float64 `json:"rss_mb"`
	ClickHouseRSSMB float64 `json:"clickhouse_rss_mb"`
	// ServicesRSSMB is each service process's resident set (VmRSS) by
	// name with -processes (a service whose RSS could not be read is left
	// out); null in-process.
	ServicesRSSMB map[string]float64 `json:"services_rss_mb,omitempty"`
	// BrokerMB is the record bytes the embedded broker holds in all topics.
	BrokerMB float64 `json:"broker_mb"`
}

// LatencyPoint is the latency of the events produced in one second.
type LatencyPoint struct {
	T   float64 `json:"t"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	N   int     `json:"n"`
}

// Report is the result of a run; the first four fields are the issue's
// report format, the rest say what was measured.
type Report struct {
	Scenarios                      []ScenarioResult `json:"scenarios"`
	ThroughputEPS                  float64          `json:"throughput_eps"`
	Latency                        LatencyMS        `json:"latency_ms"`
	FalsePositivesPer1kEmployeeDay float64          `json:"false_positives_per_1k_employee_days"`

	CPU CPU `json:"cpu"`

	Mode      string  `json:"mode"`
	TargetEPS float64 `json:"target_eps,omitempty"`
	// ProducedEPS is events acknowledged by the broker ÷ production time.
	ProducedEPS float64 `json:"produced_eps"`
	// ProducerBehindMaxMS is the largest delay of the open-loop producer
	// behind its schedule (rate mode): a large value means the generator
	// or the broker could not keep up.
	ProducerBehindMaxMS float64 `json:"producer_behind_max_ms,omitempty"`
	Employees           int     `json:"employees"`
	Customers           int     `json:"customers"`
	Days                int     `json:"days"`
	Seed                uint64  `json:"seed"`
	// Population is the distinct employees of the run (rate mode: the
	// org's employees × Cohorts); EventTimeDays the event time it covers
	// and AllowedLatenessS the detector's allowed lateness (rate mode
	// scales it with the speed of event time, see ratePlan).
	Population       int64    `json:"population"`
	Cohorts          int64    `json:"cohorts,omitempty"`
	EventTimeDays    float64  `json:"event_time_days"`
	AllowedLatenessS float64  `json:"allowed_lateness_s"`
	Events           int      `json:"events"`
	EmployeeDays     float64  `json:"employee_days"`
	Findings         int      `json:"findings"`
	ShadowFindings   int      `json:"shadow_findings"`
	FalsePositives   int      `json:"false_positives"`
	FalsePosRules    []string `json:"false_positive_rules,omitempty"`
	// Pages counts distinct incidents paged (dedup keys of trigger pages);
	// FalsePositivePages those of actors in no attack scenario.
	Pages                         int              `json:"pages"`
	FalsePositivePages            int              `json:"false_positive_pages"`
	FalsePositivePagesPer1kEmpDay float64          `json:"false_positive_pages_per_1k_employee_days"`
	PagingPolicy                  string           `json:"paging_policy"`
	ProduceSeconds                float64          `json:"produce_s"`
	RunSeconds                    float64          `json:"run_s"`
	LateEvents                    uint64           `json:"late_events"`
	LatencySamples                int              `json:"latency_samples"`
	LatencyMethod                 string           `json:"latency_method"`
	ThroughputMethod              string           `json:"throughput_method"`
	MaxLag                        map[string]int64 `json:"max_lag"`
	FinalLag                      map[string]int64 `json:"final_lag"`
	Memory                        Memory           `json:"memory"`
	Series                        []Point          `json:"series"`
	LatencySeries                 []LatencyPoint   `json:"latency_series"`
}

// WriteJSON writes the report as indented JSON to path.
func WriteJSON(path string, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("loadtest: report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("loadtest: report: %w", err)
	}
	return nil
}

func secs(p *float64) string {
	if p == nil {
		return "-"
	}
	d := time.Duration(*p * float64(time.Second))
	if d > time.Minute || d < -time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/1e6) }

// PrintReport renders a report as a table.
func PrintReport(w io.Writer, r *Report) {
	fmt.Fprintf(w, "\n%d employees, %d customers, %d events produced in %.1f s (%.0f events/s); %.0f employee-days of behaviour over %.0f days of event time\n",
		r.Population, r.Customers, r.Events, r.ProduceSeconds, r.ProducedEPS, r.EmployeeDays, r.EventTimeDays)
	fmt.Fprintf(w, "mode: %s; late events at the detector: %d (allowed lateness %v)\n", r.Mode, r.LateEvents, time.Duration(r.AllowedLatenessS*float64(time.Second)))
	fmt.Fprintf(w, "\n%-30s %-7s %-9s %-7s %-13s %-10s %-10s %s\n", "SCENARIO", "KIND", "DETECTED", "PAGED", "TTD (event)", "STORED", "PAGE SENT", "LIVE RULES FIRED (PAGED)")
	for _, s := range r.Scenarios {
		verdict, paged := "no", "no"
		if s.Detected {
			verdict = "yes"
		}
		if s.Paged {
			paged = "yes"
		}
		if s.Kind == scenario.KindBenign {
			verdict = map[bool]string{true: "FALSE+", false: "quiet"}[s.Detected]
			paged = map[bool]string{true: "FALSE+", false: "quiet"}[s.Paged]
		}
		fmt.Fprintf(w, "%-30s %-7s %-9s %-7s %-13s %-10s %-10s %s (%s)\n", s.Name, s.Kind, verdict, paged,
			secs(s.TimeToDetectS), secs(s.StoredAfterS), secs(s.PagedAfterS), strings.Join(s.RulesFired, ", "), strings.Join(s.RulesPaged, ", "))
	}
	fmt.Fprintf(w, "\nfindings %d (%d shadow); false positives %d = %.2f per 1,000 employee-days (rules: %s)\n",
		r.Findings, r.ShadowFindings, r.FalsePositives, r.FalsePositivesPer1kEmployeeDay, strings.Join(r.FalsePosRules, ", "))
	fmt.Fprintf(w, "pages %d incidents (%s); false-positive pages %d = %.2f per 1,000 employee-days\n",
		r.Pages, r.PagingPolicy, r.FalsePositivePages, r.FalsePositivePagesPer1kEmpDay)
	fmt.Fprintf(w, "throughput %.0f events/s (%s)\n", r.ThroughputEPS, r.ThroughputMethod)
	fmt.Fprintf(w, "latency produced → row in ClickHouse p50 %.1f ms  p95 %.1f ms  p99 %.1f ms (%d sampled events)\n",
		r.Latency.P50, r.Latency.P95, r.Latency.P99, r.LatencySamples)
	var lag []string
	for _, g := range lagGroups {
		lag = append(lag, fmt.Sprintf("%s %d", g.short, r.MaxLag[g.group]))
	}
	fmt.Fprintf(w, "max consumer lag (records): %s\n", strings.Join(lag, ", "))
	c := r.CPU
	fmt.Fprintf(w, "CPU per event: load-test process %.1f µs, ClickHouse %.1f µs", c.ProcessUSPerEvent, c.ClickHouseUSPerEvent)
	if c.ServicesSeconds > 0 {
		fmt.Fprintf(w, ", service processes %.1f µs (", c.ServicesUSPerEvent)
		for i, name := range sortedKeys(c.ServiceUSPerEvent) {
			if i > 0 {
				fmt.Fprint(w, ", ")
			}
			fmt.Fprintf(w, "%s %.1f", name, c.ServiceUSPerEvent[name])
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintf(w, " (%.1f s, %.1f s over the run)\n", c.ProcessSeconds, c.ClickHouseSeconds)
	m := r.Memory
	fmt.Fprintf(w, "peak memory: load-test process %s RSS (Go live heap %s; embedded broker records %s), ClickHouse %s RSS", mb(m.ProcessPeakRSSBytes), mb(m.GoHeapPeakBytes), mb(m.BrokerPeakBytes), mb(m.ClickHousePeakRSSBytes))
	for _, name := range sortedKeys(m.Services) {
		fmt.Fprintf(w, ", %s %s", name, mb(m.Services[name]))
	}
	fmt.Fprintln(w)
	printTrend(w, m.Trend)
	fmt.Fprintln(w)
}

// printTrend prints one line per memory series: its mean over each third
// of production after the warm-up, and its slope.
func printTrend(w io.Writer, t *MemoryTrend) {
	if t == nil {
		fmt.Fprintf(w, "memory trend: production too short to tell\n")
		return
	}
	fmt.Fprintf(w, "memory during production after a %.0f %% warm-up (%.0f–%.0f s): mean per third, least-squares slope\n", TrendWarmup*100, t.FromS, t.ToS)
	row := func(name string, s *SeriesTrend) {
		if s == nil {
			fmt.Fprintf(w, "  %-26s too few known samples\n", name)
			return
		}
		fmt.Fprintf(w, "  %-26s %7.0f → %7.0f → %7.0f MB   %+8.1f MB/min\n", name, s.Thirds[0], s.Thirds[1], s.Thirds[2], s.SlopeMBPerMin)
	}
	row("load-test live Go heap", t.LiveHeap)
	row("load-test process RSS", t.ProcessRSS)
	row("ClickHouse RSS", t.ClickHouseRSS)
	for _, name := range sortedKeys(t.Services) {
		row(name+" RSS", t.Services[name])
	}
}
