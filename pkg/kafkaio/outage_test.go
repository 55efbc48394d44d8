package kafkaio

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/metrics"
)

// levelCount counts log records by level.
type levelCount struct {
	mu sync.Mutex
	n  map[slog.Level]int
}

func (c *levelCount) Enabled(context.Context, slog.Level) bool { return true }
func (c *levelCount) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[slog.Level]int{}
	}
	c.n[r.Level]++
	return nil
}
func (c *levelCount) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *levelCount) WithGroup(string) slog.Handler      { return c }
func (c *levelCount) count(l slog.Level) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[l]
}

func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}

// TestOutageRetry drives outage.retry with scripted failures (pure logic:
// the broker's part is played by the script): transient errors are retried
// with backoff and logged once when failing starts and once on recovery,
// every failure is counted by kind, Health reports the outage while it
// lasts, and fatal errors and the end of ctx stop the retries.
func TestOutageRetry(t *testing.T) {
	refused := errors.New("dial tcp 127.0.0.1:9: connect: connection refused")
	tests := []struct {
		name   string
		script []error // fn's results, one per attempt; nil ends the script
		// cancelAfter cancels ctx after this many attempts (0: never).
		cancelAfter  int
		wantErr      error // errors.Is the result
		wantAttempts int
		wantWarn     int
		wantInfo     int
		wantCounted  map[ErrorKind]float64
		// healthAfter: Health reports an outage after retry returned.
		healthAfter bool
	}{
		{
			name:         "recovers after transient failures",
			script:       []error{refused, kafka.BrokerNotAvailable, context.DeadlineExceeded, refused, nil},
			wantAttempts: 5, wantWarn: 1, wantInfo: 1,
			wantCounted: map[ErrorKind]float64{KindConnection: 2, KindUnavailable: 1, KindTimeout: 1},
		},
		{
			name:         "first attempt works",
			script:       []error{nil},
			wantAttempts: 1,
		},
		{
			name:         "fatal at once",
			script:       []error{kafka.TopicAuthorizationFailed},
			wantErr:      kafka.TopicAuthorizationFailed,
			wantAttempts: 1,
			wantCounted:  map[ErrorKind]float64{KindAuth: 1},
		},
		{
			name:         "fatal after transient",
			script:       []error{refused, kafka.UnknownTopicOrPartition},
			wantErr:      kafka.UnknownTopicOrPartition,
			wantAttempts: 2, wantWarn: 1,
			wantCounted: map[ErrorKind]float64{KindConnection: 1, KindUnknownTopic: 1},
			healthAfter: true, // the outage is not over: nothing worked since
		},
		{
			name:         "ctx ends while waiting",
			script:       []error{refused, refused, refused, refused, refused, refused, refused, refused},
			cancelAfter:  3,
			wantErr:      context.Canceled,
			wantAttempts: 3, wantWarn: 1,
			// The third failure comes after ctx ended: the caller
			// stopped, the broker is not to blame.
			wantCounted: map[ErrorKind]float64{KindConnection: 2},
			healthAfter: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs levelCount
			op := "test-" + tt.name
			o := newOutage(op, slog.New(&logs), "topic", "t")
			t.Cleanup(o.abandon)
			before := map[ErrorKind]float64{}
			for k := range tt.wantCounted {
				before[k] = metricValue(t, metrics.KafkaErrors.WithLabelValues(op, string(k)))
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			attempts := 0
			var healthDuring error
			start := time.Now()
			err := o.retry(ctx, func(context.Context) error {
				attempts++
				if attempts > 1 {
					healthDuring = Health()
				}
				if attempts == tt.cancelAfter {
					cancel()
				}
				return tt.script[attempts-1]
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("retry: %v, want %v", err, tt.wantErr)
			}
			if tt.cancelAfter > 0 && !errors.Is(err, refused) {
				t.Errorf("retry after ctx ended: %v does not carry the last failure", err)
			}
			if attempts != tt.wantAttempts {
				t.Errorf("%d attempts, want %d", attempts, tt.wantAttempts)
			}
			if tt.wantWarn > 0 && attempts > 1 {
				if healthDuring == nil {
					t.Error("Health was nil while the operation failed")
				}
				// Backoff from retryMin, doubling, ±50 %.
				if min := time.Duration(float64(retryMin) * 0.5 * float64(attempts-1)); time.Since(start) < min {
					t.Errorf("%d attempts in %v: no backoff", attempts, time.Since(start))
				}
			}
			if w, i := logs.count(slog.LevelWarn), logs.count(slog.LevelInfo); w != tt.wantWarn || i != tt.wantInfo {
				t.Errorf("logged %d warnings and %d infos, want %d and %d", w, i, tt.wantWarn, tt.wantInfo)
			}
			for k, want := range tt.wantCounted {
				if got := metricValue(t, metrics.KafkaErrors.WithLabelValues(op, string(k))) - before[k]; got != want {
					t.Errorf("leakline_kafka_errors_total{op=%q,kind=%q} grew by %g, want %g", op, k, got, want)
				}
			}
			retrying := metricValue(t, metrics.KafkaRetrying.WithLabelValues(op))
			if herr := Health(); (herr != nil) != tt.healthAfter || (retrying == 1) != tt.healthAfter {
				t.Errorf("after retry: Health %v, retrying gauge %g; want an outage reported: %v", herr, retrying, tt.healthAfter)
			}
			o.abandon()
			if herr := Health(); herr != nil {
				t.Errorf("Health after abandon: %v", herr)
			}
			if g := metricValue(t, metrics.KafkaRetrying.WithLabelValues(op)); g != 0 {
				t.Errorf("retrying gauge %g after abandon, want 0", g)
			}
		})
	}
}
