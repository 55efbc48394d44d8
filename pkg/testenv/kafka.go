package testenv

import (
	"testing"

	"github.com/leakline/leakline/pkg/embedkafka"
)

// Kafka starts an in-process Kafka-protocol broker for the test, seeded with
// topics (name → partition count), and closes it when the test ends. If the
// broker cannot start, the test is skipped, or fails under CI (see
// Unavailable).
func Kafka(tb testing.TB, topics map[string]int) *embedkafka.Broker {
	tb.Helper()
	b, err := embedkafka.Start(embedkafka.Options{Topics: topics})
	if err != nil {
		Unavailable(tb, "Kafka broker", err)
		return nil
	}
	tb.Cleanup(func() { b.Close() })
	return b
}
