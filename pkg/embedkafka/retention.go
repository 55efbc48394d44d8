package embedkafka

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Retention bounds what the broker holds. kfake keeps every record of every
// topic (in memory, or in DataDir) until something deletes it, so a long
// run at a high rate grows without bound: 10 minutes at 50 k events/s are
// 30 M events on each of several topics. kfake does implement Kafka's
// retention.bytes / retention.ms (and DeleteRecords), but
//
//   - only when a topic has its own retention config, checked every
//     log.cleaner.backoff.ms (1 h by default), and Leakline's topics are
//     created without one;
//   - it frees memory one segment at a time, and a segment holds
//     log.segment.bytes (100 MiB by default) per partition;
//   - its retention.ms (7 days by default) compares record timestamps with
//     the wall clock, and Leakline's message timestamps are event times (a
//     replayed month would be deleted before it is read);
//   - it applies retention to compacted topics too (dlp.rules, dlp.edm),
//     which Kafka does not.
//
// So the broker enforces a size bound itself, in-process (no client
// connection, so it works on a TLS/SASL broker too): every Interval, each
// partition of the Topics that is not compacted is cut to about its newest
// Bytes (Cluster.DeleteRecords at an offset computed from the partition's
// average record size), and segments are SegmentBytes long so that memory
// is freed promptly. Like Kafka's retention.bytes it deletes records
// whether or not anyone has read them: Bytes must exceed what a consumer
// may lag behind, and what the detector re-reads on a rebalance (records
// older than the bound are gone, as on a Kafka topic whose retention is
// shorter than the detector's horizon).
type Retention struct {
	// Bytes is about the most record bytes kept per partition. Zero
	// disables retention (the default: the broker keeps everything).
	Bytes int64
	// Topics are the topics bounded (compacted ones are always skipped).
	Topics []string
	// SegmentBytes is the unit in which memory is freed. Default Bytes/8,
	// at least 1 MiB.
	SegmentBytes int64
	// Interval is how often partitions are cut. Default 1 s.
	Interval time.Duration
}

func (r Retention) enabled() bool { return r.Bytes > 0 }

func (r Retention) withDefaults() Retention {
	if r.SegmentBytes <= 0 {
		r.SegmentBytes = max(r.Bytes/8, 1<<20)
	}
	if r.Interval <= 0 {
		r.Interval = time.Second
	}
	return r
}

// kfakeOpts are the broker configs retention needs: small segments, and no
// time- or size-based retention of kfake's own.
func (r Retention) kfakeOpts() []kfake.Opt {
	if !r.enabled() {
		return nil
	}
	r = r.withDefaults()
	return []kfake.Opt{kfake.BrokerConfigs(map[string]string{
		"log.segment.bytes":   strconv.FormatInt(r.SegmentBytes, 10),
		"log.retention.ms":    "-1",
		"log.retention.bytes": "-1",
	})}
}

// start runs the retention loop until the returned stop is called.
func (r Retention) start(c *kfake.Cluster, log *slog.Logger) (stop func()) {
	if !r.enabled() {
		return func() {}
	}
	r = r.withDefaults()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.Interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			if _, err := r.apply(c); err != nil && log != nil {
				log.Warn("embedkafka: retention", "error", err)
			}
		}
	}()
	return func() { close(quit); <-done }
}

// apply cuts every partition of r.Topics that is not compacted to about
// r.Bytes and returns how many records it deleted. A topic that does not
// exist (yet) is skipped.
func (r Retention) apply(c *kfake.Cluster) (int64, error) {
	var deleted int64
	for _, topic := range r.Topics {
		ti := c.TopicInfo(topic)
		if ti == nil || isCompacted(ti) {
			continue
		}
		for _, p := range c.PartitionInfos(topic) {
			records := p.HighWatermark - p.LogStartOffset
			if p.NumBytes <= r.Bytes || records <= 0 {
				continue
			}
			keep := max(records*r.Bytes/p.NumBytes, 1)
			to := p.HighWatermark - keep
			if to <= p.LogStartOffset {
				continue
			}
			if err := c.DeleteRecords(topic, p.Partition, to); err != nil {
				return deleted, fmt.Errorf("delete records of %s/%d below %d: %w", topic, p.Partition, to, err)
			}
			deleted += to - p.LogStartOffset
		}
	}
	return deleted, nil
}

func isCompacted(ti *kfake.TopicInfo) bool {
	v := ti.Configs["cleanup.policy"]
	return v != nil && strings.Contains(*v, "compact")
}

// StoredBytes is the size of the records the broker holds in the given
// topics, over all their partitions (as kfake counts them).
func (b *Broker) StoredBytes(topics ...string) int64 {
	var n int64
	for _, t := range topics {
		for _, p := range b.cluster.PartitionInfos(t) {
			n += p.NumBytes
		}
	}
	return n
}
