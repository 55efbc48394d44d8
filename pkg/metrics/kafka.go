package metrics

import "github.com/prometheus/client_golang/prometheus"

var (
	// KafkaErrors counts failed Kafka client operations by operation
	// (fetch, commit, write, join, assign) and error kind (connection, timeout,
	// unavailable, coordinator, rebalance, auth, unknown_topic, config,
	// closed, other); see kafkaio.Classify.
	KafkaErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "leakline_kafka_errors_total", Help: "Failed Kafka client operations, by operation (fetch, commit, write, join, assign) and error kind.",
	}, []string{"op", "kind"})
	// KafkaRetrying is the number of Kafka client operations riding out a
	// transient failure (the broker is away) right now, by operation.
	KafkaRetrying = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "leakline_kafka_retrying", Help: "Kafka client operations waiting out a transient failure (retrying with backoff), by operation.",
	}, []string{"op"})
)

func init() {
	Registry.MustRegister(KafkaErrors, KafkaRetrying)
}
