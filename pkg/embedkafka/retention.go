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
// whether or not anyone has read them, unless Groups names the consumer
// groups whose progress protects them: then a partition is never cut past
// the lowest offset any of those groups has committed on it (a group that
// has committed on some partition of the topic but not on this one
// protects all of it). Memory is then flat as long as the consumers keep
// up, and grows with their lag otherwise, as a Kafka topic's would if
// its retention waited for its readers. Records older than the bound are
// gone for whoever re-reads them later (the detector rebuilding its
// windows on a rebalance), as on a Kafka topic whose retention is shorter
// than the detector's horizon.
type Retention struct {
	// Bytes is about the most record bytes kept per partition. Zero
	// disables retention (the default: the broker keeps everything).
	Bytes int64
	// Topics are the topics bounded (compacted ones are always skipped).
	Topics []string
	// Groups, when set, are the consumer groups whose committed offsets a
	// cut never passes.
	Groups []string
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
		commits := r.commits(c, topic)
		for _, p := range c.PartitionInfos(topic) {
			records := p.HighWatermark - p.LogStartOffset
			if p.NumBytes <= r.Bytes || records <= 0 {
				continue
			}
			keep := max(records*r.Bytes/p.NumBytes, 1)
			to := p.HighWatermark - keep
			for _, cs := range commits {
				to = min(to, cs[p.Partition]) // a missing partition: 0, keep all
			}
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

// commits returns, for each group of r.Groups that has committed on topic,
// its committed offsets by partition.
func (r Retention) commits(c *kfake.Cluster, topic string) []map[int32]int64 {
	var out []map[int32]int64
	for _, g := range r.Groups {
		gi := c.GroupInfo(g)
		if gi == nil || len(gi.Commits[topic]) == 0 {
			continue
		}
		offs := make(map[int32]int64, len(gi.Commits[topic]))
		for p, gc := range gi.Commits[topic] {
			offs[p] = gc.Offset
		}
		out = append(out, offs)
	}
	return out
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
