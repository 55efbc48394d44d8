package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// ensureTopicsTimeout bounds EnsureTopics when its context has no deadline.
const ensureTopicsTimeout = 30 * time.Second

// EnsureTopics creates those of topics that do not exist yet, with partitions
// partitions each (a non-positive count asks for the broker's default, which
// needs Kafka 2.4+) and cfg.ReplicationFactor replicas, then waits until
// metadata shows every topic with a leader for each of its partitions.
// Existing topics are left as they are, whatever their partition count; a
// topic created concurrently by someone else is fine. Without a deadline on
// ctx it gives up after 30 s.
func EnsureTopics(ctx context.Context, cfg Config, partitions int, topics ...string) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	topics = slices.Compact(slices.Sorted(slices.Values(topics)))
	for _, t := range topics {
		if t == "" {
			return errors.New("kafkaio: EnsureTopics: empty topic name")
		}
	}
	if len(topics) == 0 {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ensureTopicsTimeout)
		defer cancel()
	}

	// kafka-go's Transport answers Metadata requests from its cache, which
	// it refreshes every MetadataTTL (6 s by default) or after its own
	// CreateTopics: a short TTL makes the wait below see other creators.
	tr := cfg.transport()
	tr.MetadataTTL = 100 * time.Millisecond
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.WriteTimeout, Transport: tr}

	missing, err := topicsNotReady(ctx, cl, topics)
	if err != nil {
		return fmt.Errorf("kafkaio: EnsureTopics: metadata: %w", cfg.explainConnError(err))
	}
	var create []string
	for _, t := range topics {
		if missing[t] == errUnknownTopic {
			create = append(create, t)
		}
	}
	if len(create) > 0 {
		if partitions <= 0 {
			partitions = -1
		}
		req := &kafka.CreateTopicsRequest{}
		for _, t := range create {
			req.Topics = append(req.Topics, kafka.TopicConfig{
				Topic:             t,
				NumPartitions:     partitions,
				ReplicationFactor: cfg.ReplicationFactor,
			})
		}
		resp, err := cl.CreateTopics(ctx, req)
		if err != nil {
			return fmt.Errorf("kafkaio: EnsureTopics: create %s: %w", strings.Join(create, ", "), err)
		}
		var errs []error
		for _, t := range create {
			if err := resp.Errors[t]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
				errs = append(errs, fmt.Errorf("create topic %q: %w", t, err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("kafkaio: EnsureTopics: %w", err)
		}
	}

	// Wait for metadata to show every topic with leaders.
	delay := 20 * time.Millisecond
	for len(missing) > 0 {
		missing, err = topicsNotReady(ctx, cl, topics)
		if err == nil && len(missing) == 0 {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				err = describeNotReady(missing)
			}
			return fmt.Errorf("kafkaio: EnsureTopics: topics not ready: %w (%w)", err, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
	return nil
}

var errUnknownTopic = errors.New("unknown topic")

// topicsNotReady returns the topics that metadata does not show with a leader
// for every partition, each with the reason (errUnknownTopic when the broker
// does not know it).
func topicsNotReady(ctx context.Context, cl *kafka.Client, topics []string) (map[string]error, error) {
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, err
	}
	byName := make(map[string]kafka.Topic, len(md.Topics))
	for _, t := range md.Topics {
		byName[t.Name] = t
	}
	notReady := map[string]error{}
	for _, name := range topics {
		t, ok := byName[name]
		switch {
		case !ok, errors.Is(t.Error, kafka.UnknownTopicOrPartition):
			notReady[name] = errUnknownTopic
			continue
		case t.Error != nil:
			notReady[name] = t.Error
			continue
		case len(t.Partitions) == 0:
			notReady[name] = errors.New("no partitions")
			continue
		}
		for _, p := range t.Partitions {
			if p.Error != nil {
				notReady[name] = fmt.Errorf("partition %d: %w", p.ID, p.Error)
				break
			}
			if p.Leader.Host == "" {
				notReady[name] = fmt.Errorf("partition %d has no leader", p.ID)
				break
			}
		}
	}
	return notReady, nil
}

func describeNotReady(m map[string]error) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(m)) {
		errs = append(errs, fmt.Errorf("%s: %w", name, m[name]))
	}
	return errors.Join(errs...)
}
