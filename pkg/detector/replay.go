package detector

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/kafkaio"
)

// Replay runs eng over partition of topic (normalized events) from the first
// message with a timestamp ≥ from up to, not including, offset end, in
// offset order, exactly as the live detector applies them: a message that
// does not decode is skipped (Handle dead-letters it; the engine never sees
// it) and every other event goes through eng.Process with processing time
// now. It is the one code path of the state rebuild on assignment and of
// `leakline rules backtest` (pkg/backtest).
//
// found, when not nil, receives each processed message with the findings
// Process returned for it (nil on a rebuild: those were published before the
// commit); its error stops the replay and is returned wrapped. Replay
// returns how many events it processed. Nothing is committed or written:
// the partition is read directly (kafkaio.ReplayRange).
func Replay(ctx context.Context, kc kafkaio.Config, topic string, partition int, from time.Time, end int64,
	eng *detect.Engine, now time.Time, found func(kafka.Message, []finding.Finding) error) (int, error) {
	n := 0
	err := kafkaio.ReplayRange(ctx, kc, topic, partition, from, end, func(m kafka.Message) error {
		ev, err := event.UnmarshalEvent(m.Value)
		if err != nil {
			return nil
		}
		fs := eng.Process(ev, now)
		n++
		if found != nil {
			return found(m, fs)
		}
		return nil
	})
	return n, err
}
