package kafkaio

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// Ping asks the cluster for the metadata of topics; it fails when no broker
// answers, or when a topic is missing or has an error. Readiness probes use it.
// A connection the broker closes (a refused SASL login, plaintext at a TLS
// listener) is reported with what to check, never with the password.
func Ping(ctx context.Context, cfg Config, topics ...string) error {
	cfg = cfg.withDefaults()
	tr := cfg.transport()
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: tr}
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("kafkaio: ping %v: %w", cfg.Brokers, cfg.explainConnError(err))
	}
	for _, t := range md.Topics {
		if t.Error != nil {
			return fmt.Errorf("kafkaio: topic %s: %w", t.Name, t.Error)
		}
	}
	return nil
}
