// Package metrics owns Leakline's Prometheus metrics. Labels carry only
// low-cardinality, non-personal values: stage, topic, partition number,
// dead-letter reason, rule id, receiver, outcome — never a user id, an
// address or any other value taken from an event.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Registry holds every Leakline metric plus the Go and process collectors.
var Registry = prometheus.NewRegistry()

var (
	// Consumed counts messages fetched, by consumer group and topic.
	Consumed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "leakline_messages_consumed_total", Help: "Messages fetched from Kafka.",
	}, []string{"group", "topic"})
	// Produced counts messages acknowledged by the broker, by topic.
	Produced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "leakline_messages_produced_total", Help: "Messages written to Kafka and acknowledged.",
	}, []string{"topic"})
	// Lag is the consumer lag in records per partition, as of the last fetch.
	Lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "leakline_consumer_lag_records", Help: "High-water mark minus the next offset to fetch, as of the last fetch.",
	}, []string{"group", "topic", "partition"})
	// LagSeconds is how far behind wall-clock time the last fetched
	// message's timestamp was.
	LagSeconds = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "leakline_consumer_lag_seconds", Help: "Age of the last fetched message's timestamp.",
	}, []string{"group", "topic"})
	// DeadLetters counts messages sent to the dead-letter topic by reason.
	DeadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "leakline_deadletters_total", Help: "Messages dead-lettered, by stage and reason.",
	}, []string{"stage", "reason"})
	// Duplicates counts events dropped as repeats of a recent event id.
	Duplicates = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "leakline_duplicate_events_total", Help: "Raw events dropped as duplicates of a recent event id.",
	})
	// LateEvents counts events behind their partition's watermark by more
	// than the allowed lateness (applied to content rules, not to windows).
	LateEvents = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "leakline_late_events_total", Help: "Events older than the watermark minus the allowed lateness.",
	})
	// FutureEvents counts events dated ahead of processing time.
	FutureEvents = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "leakline_future_dated_events_total", Help: "Events whose time is ahead of the processing time by more than the allowed lateness.",
	})
	// Findings counts finding revisions emitted, by rule and severity.
	Findings = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "leakline_findings_total", Help: "Finding revisions emitted, by rule and severity.",
	}, []string{"rule", "severity"})
	// SinkBatchRows observes the rows per ClickHouse insert.
	SinkBatchRows = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "leakline_sink_batch_rows", Help: "Rows per ClickHouse insert.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 9),
	})
	// SinkInsertSeconds observes the latency of successful inserts,
	// retries included.
	SinkInsertSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "leakline_sink_insert_seconds", Help: "Time to store one batch in ClickHouse, retries included.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
	})
	// SinkBufferedRows is the number of fetched records the sink holds in
	// batches ClickHouse has not acknowledged yet: at most one batch per
	// loop, however long ClickHouse is away (the sink stops fetching).
	SinkBufferedRows = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "leakline_sink_buffered_rows", Help: "Fetched records held in batches not yet acknowledged by ClickHouse.",
	})
	// SinkRetries counts failed insert attempts that were retried.
	SinkRetries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "leakline_sink_retries_total", Help: "ClickHouse insert attempts that failed and were retried.",
	})
	// Pages counts what the pager did with incidents, by receiver (the
	// receiver's name in the routing policy) and outcome: triggered,
	// updated, resent, resolved, suppressed, summary, recorded, rejected,
	// retried, stale, duplicate.
	Pages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "leakline_pages_total", Help: "Pager events by receiver and outcome (triggered, updated, resent, resolved, suppressed, summary, recorded, rejected, retried, stale, duplicate).",
	}, []string{"receiver", "outcome"})
	// PagerOpenIncidents is the number of incidents open at each receiver:
	// paged and not yet resolved, or folded into a flood summary.
	PagerOpenIncidents = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "leakline_pager_open_incidents", Help: "Incidents open at a receiver (paged or folded into a flood summary), not yet resolved.",
	}, []string{"receiver"})
	// PagerUnrouted counts live findings that no route of the policy
	// matched: they page nobody.
	PagerUnrouted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "leakline_pager_unrouted_findings_total", Help: "Live (non-shadow) findings no route of the paging policy matched.",
	})
	// PagerRestoreFailures counts starts (and rebalances) after which a
	// receiver's open incidents could not be rebuilt from the findings
	// topic.
	PagerRestoreFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "leakline_pager_restore_failures_total", Help: "Failed rebuilds of a receiver's open incidents from the findings topic.",
	}, []string{"receiver"})
)

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		Consumed, Produced, Lag, LagSeconds, DeadLetters, Duplicates, LateEvents, FutureEvents,
		Findings, SinkBatchRows, SinkInsertSeconds, SinkRetries, SinkBufferedRows,
		Pages, PagerOpenIncidents, PagerUnrouted, PagerRestoreFailures,
	)
}
