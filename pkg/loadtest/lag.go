package loadtest

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/kafkaio"
)

// lagGroup is a consumer group of the pipeline and the topics it reads.
type lagGroup struct {
	group  string
	short  string // for progress lines
	topics func(kafkaio.Topics) []string
}

// Consumer groups of the stages (their defaults) and of the pager's lane
// for the load test's webhook receiver (pager.DefaultGroupID + "." +
// receiver name).
var lagGroups = []lagGroup{
	{"leakline-normalizer", "normalizer", func(t kafkaio.Topics) []string { return []string{t.CRMAccess, t.Outbound} }},
	{"leakline-detector", "detector", func(t kafkaio.Topics) []string { return []string{t.Events} }},
	{"leakline-chsink-events", "chsink-events", func(t kafkaio.Topics) []string { return []string{t.EventMeta} }},
	{"leakline-chsink", "chsink-findings", func(t kafkaio.Topics) []string { return []string{t.Findings} }},
	{"leakline-pager.webhook", "pager", func(t kafkaio.Topics) []string { return []string{t.Findings} }},
}

// lagReader reads consumer-group lag from the broker: per group, the sum
// over its topics' partitions of end offset − committed offset (a
// partition without a commit counts from its first offset).
type lagReader struct {
	client     *kafka.Client
	topics     kafkaio.Topics
	partitions int
}

func newLagReader(kc kafkaio.Config, t kafkaio.Topics, partitions int) *lagReader {
	return &lagReader{
		client:     &kafka.Client{Addr: kafka.TCP(kc.Brokers...), Transport: kc.Transport(), Timeout: 5 * time.Second},
		topics:     t,
		partitions: partitions,
	}
}

// partitionRange is the first and end offset of one partition.
type partitionRange struct{ first, end int64 }

// Lag returns each group's lag in records.
func (l *lagReader) Lag(ctx context.Context) (map[string]int64, error) {
	all := map[string]bool{}
	for _, g := range lagGroups {
		for _, t := range g.topics(l.topics) {
			all[t] = true
		}
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for t := range all {
		for p := 0; p < l.partitions; p++ {
			req.Topics[t] = append(req.Topics[t], kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
		}
	}
	resp, err := l.client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("loadtest: list offsets: %w", err)
	}
	ends := map[string]map[int]partitionRange{}
	for t, ps := range resp.Topics {
		ends[t] = map[int]partitionRange{}
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("loadtest: list offsets of %s/%d: %w", t, p.Partition, p.Error)
			}
			ends[t][p.Partition] = partitionRange{first: p.FirstOffset, end: p.LastOffset}
		}
	}
	out := make(map[string]int64, len(lagGroups))
	for _, g := range lagGroups {
		topics := g.topics(l.topics)
		fr := &kafka.OffsetFetchRequest{GroupID: g.group, Topics: map[string][]int{}}
		for _, t := range topics {
			for p := 0; p < l.partitions; p++ {
				fr.Topics[t] = append(fr.Topics[t], p)
			}
		}
		fresp, err := l.client.OffsetFetch(ctx, fr)
		if err == nil {
			err = fresp.Error
		}
		if err != nil {
			return nil, fmt.Errorf("loadtest: committed offsets of %s: %w", g.group, err)
		}
		lag := committedLag(ends, fresp.Topics)
		out[g.group] = lag
	}
	return out, nil
}

// committedLag sums end − committed over the partitions of ends that
// committed lists; a partition with no commit (offset < 0) lags by its
// whole retained log.
func committedLag(ends map[string]map[int]partitionRange, committed map[string][]kafka.OffsetFetchPartition) int64 {
	var lag int64
	for t, ps := range committed {
		for _, p := range ps {
			r, ok := ends[t][p.Partition]
			if !ok {
				continue
			}
			c := p.CommittedOffset
			if c < r.first {
				c = r.first
			}
			lag += max(0, r.end-c)
		}
	}
	return lag
}

// firstOffsets sums the first offset of every partition of topics: the
// records retention deleted from them.
func (l *lagReader) firstOffsets(ctx context.Context, topics ...string) (int64, error) {
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range topics {
		for p := 0; p < l.partitions; p++ {
			req.Topics[t] = append(req.Topics[t], kafka.FirstOffsetOf(p))
		}
	}
	resp, err := l.client.ListOffsets(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("loadtest: list first offsets: %w", err)
	}
	var n int64
	for t, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return 0, fmt.Errorf("loadtest: first offset of %s/%d: %w", t, p.Partition, p.Error)
			}
			n += max(p.FirstOffset, 0)
		}
	}
	return n, nil
}
