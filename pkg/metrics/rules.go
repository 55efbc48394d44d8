package metrics

import "github.com/prometheus/client_golang/prometheus"

var (
	// RulePackRejected counts deployed rule packs a detector refused, by
	// reason: undecodable, unsigned, wrong_key, tampered, invalid,
	// checksum, stale.
	RulePackRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "leakline_rule_pack_rejected_total", Help: "Deployed rule packs refused by the detector, by reason (undecodable, unsigned, wrong_key, tampered, invalid, checksum, stale).",
	}, []string{"reason"})
	// RulePackSeq is the deploy number (seq) of the rule pack the detector
	// runs; 0 for the built-in or -rules pack.
	RulePackSeq = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "leakline_rule_pack_seq", Help: "Deploy number of the rule pack the detector runs (0: the built-in or -rules pack).",
	})
)

func init() {
	Registry.MustRegister(RulePackRejected, RulePackSeq)
}
