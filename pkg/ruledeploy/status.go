package ruledeploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/kafkaio"
)

// DefaultStatusTopic is the compacted topic detectors publish their
// heartbeats to (key: instance).
const DefaultStatusTopic = "dlp.status"

// DefaultStatusWindow is how far back ReadStatus looks by default: an
// instance silent for longer is gone.
const DefaultStatusWindow = 5 * time.Minute

// Status is one detector instance's heartbeat: the rule pack it runs and
// the last pack it rejected.
type Status struct {
	Instance string    `json:"instance"`
	Group    string    `json:"group"`
	Time     time.Time `json:"time"`
	// HotReload is false when the detector has no public key and runs its
	// built-in or -rules pack for good.
	HotReload   bool   `json:"hot_reload"`
	PackVersion string `json:"pack_version"`
	PackSeq     uint64 `json:"pack_seq"` // 0: not a deployed pack
	Checksum    string `json:"checksum"`
	Partitions  []int  `json:"partitions"`
	// LastRejection is the newest deployed pack the instance refused.
	LastRejection *Rejection `json:"last_rejection,omitempty"`
}

// Rejection is a deployed pack a detector refused.
type Rejection struct {
	Offset int64     `json:"offset"`
	Seq    uint64    `json:"seq"`
	Reason string    `json:"reason"` // as leakline_rule_pack_rejected_total's label
	Error  string    `json:"error"`
	Time   time.Time `json:"time"`
}

// StatusWriter publishes heartbeats; it creates the status topic
// (compacted, one partition) on first use. Safe for concurrent use.
type StatusWriter struct {
	cfg   kafkaio.Config
	topic string
	mu    sync.Mutex
	ready bool
	w     *kafkaio.Writer
}

// NewStatusWriter returns a StatusWriter for topic.
func NewStatusWriter(cfg kafkaio.Config, topic string) *StatusWriter {
	return &StatusWriter{cfg: cfg, topic: topic, w: kafkaio.NewWriter(cfg, topic)}
}

// Write publishes s with key s.Instance.
func (w *StatusWriter) Write(ctx context.Context, s Status) error {
	w.mu.Lock()
	if !w.ready {
		if err := ensureCompacted(ctx, w.cfg, w.topic, kafka.ConfigEntry{ConfigName: "segment.ms", ConfigValue: fmt.Sprint(time.Hour.Milliseconds())}); err != nil {
			w.mu.Unlock()
			return err
		}
		w.ready = true
	}
	w.mu.Unlock()
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return w.w.Write(ctx, kafka.Message{Key: []byte(s.Instance), Value: b, Time: s.Time})
}

// Close releases the writer.
func (w *StatusWriter) Close() error { return w.w.Close() }

// ReadStatus returns the newest heartbeat of every instance that sent one
// since since (zero: DefaultStatusWindow ago), sorted by instance. A
// missing topic has none.
func ReadStatus(ctx context.Context, cfg kafkaio.Config, topic string, since time.Time) ([]Status, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if since.IsZero() {
		since = time.Now().Add(-DefaultStatusWindow)
	}
	hwm, err := highWater(ctx, cfg, topic)
	if errors.Is(err, kafka.UnknownTopicOrPartition) {
		return nil, nil
	}
	if err != nil || hwm == 0 {
		return nil, err
	}
	latest := map[string]Status{}
	err = kafkaio.ReplayRange(ctx, cfg, topic, 0, since, hwm, func(m kafka.Message) error {
		var s Status
		if json.Unmarshal(m.Value, &s) != nil || s.Instance == "" || s.Time.Before(since) {
			return nil
		}
		if old, ok := latest[s.Instance]; !ok || !s.Time.Before(old.Time) {
			latest[s.Instance] = s
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ruledeploy: read %s: %w", topic, err)
	}
	out := make([]Status, 0, len(latest))
	for _, s := range latest {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Instance, b.Instance) })
	return out, nil
}
