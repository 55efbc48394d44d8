package edm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/kafkaio"
)

// Publishing an index to Kafka. The index file is cut into chunks written
// to partition 0 of a compacted topic (DefaultTopic), one message per
// chunk: key "<index id>/<chunk number, 6 digits>", value the chunk, and
// headers
//
//	edm-format  the file format version ("1")
//	edm-index   the index id
//	edm-chunk   the chunk number, from 0
//	edm-chunks  the number of chunks
//	edm-size    the file size in bytes
//
// Compaction keeps the newest message per key, so every published version
// stays complete until a publisher deletes it with tombstones (PublishOptions.Keep).
// A reader replays the partition and takes the newest complete version:
// the one whose last missing chunk arrived last. Republishing an older
// index therefore makes it current again (a rollback).

// Defaults of publishing.
const (
	DefaultTopic     = "dlp.edm"
	DefaultChunkSize = 256 << 10
	// DefaultKeep is how many versions Publish keeps, the new one
	// included; older ones are deleted with tombstones.
	DefaultKeep = 2
	// MaxIndexBytes bounds the index files LoadFromKafka reassembles.
	MaxIndexBytes = 16 << 30
	maxChunkSize  = 900 << 10 // under Kafka's default 1 MB message limit
)

const (
	hdrFormat = "edm-format"
	hdrIndex  = "edm-index"
	hdrChunk  = "edm-chunk"
	hdrChunks = "edm-chunks"
	hdrSize   = "edm-size"
)

// ErrNoIndex is returned by LoadFromKafka when the topic holds no complete
// index.
var ErrNoIndex = errors.New("edm: no complete index on the topic")

// PublishOptions configures Publish. Zero values mean the defaults.
type PublishOptions struct {
	// ChunkSize is the size of one message's value, at most 900 KiB.
	// Default DefaultChunkSize.
	ChunkSize int
	// Keep is how many versions to keep on the topic, the new one
	// included; chunks of older versions get tombstones. Default
	// DefaultKeep; negative keeps everything.
	Keep int
}

// PublishResult says what Publish wrote.
type PublishResult struct {
	ID      string   `json:"id"`
	Chunks  int      `json:"chunks"`
	Bytes   int      `json:"bytes"`
	Deleted []string `json:"deleted,omitempty"` // ids of versions deleted
}

// Publish writes an index file (as WriteTo produced it; it is verified
// first) to topic, creating the topic (one partition, compacted) if it is
// missing, and deletes versions beyond opt.Keep.
func Publish(ctx context.Context, cfg kafkaio.Config, topic string, file []byte, opt PublishOptions) (PublishResult, error) {
	if err := cfg.Validate(); err != nil {
		return PublishResult{}, err
	}
	if topic == "" {
		return PublishResult{}, errors.New("edm: publish: empty topic")
	}
	if opt.ChunkSize == 0 {
		opt.ChunkSize = DefaultChunkSize
	}
	if opt.ChunkSize < 1024 || opt.ChunkSize > maxChunkSize {
		return PublishResult{}, fmt.Errorf("edm: publish: chunk size %d out of range [1 KiB, 900 KiB]", opt.ChunkSize)
	}
	if opt.Keep == 0 {
		opt.Keep = DefaultKeep
	}
	info, n, err := ReadInfo(bytes.NewReader(file))
	if err != nil {
		return PublishResult{}, err
	}
	if n != int64(len(file)) {
		return PublishResult{}, formatErr("%d bytes after the index", int64(len(file))-n)
	}
	if err := ensureTopic(ctx, cfg, topic); err != nil {
		return PublishResult{}, err
	}
	chunks := (len(file) + opt.ChunkSize - 1) / opt.ChunkSize
	res := PublishResult{ID: info.ID, Chunks: chunks, Bytes: len(file)}
	msgs := make([]kafka.Message, 0, chunks)
	for c := 0; c < chunks; c++ {
		part := file[c*opt.ChunkSize : min((c+1)*opt.ChunkSize, len(file))]
		msgs = append(msgs, kafka.Message{
			Key:   chunkKey(info.ID, c),
			Value: part,
			Headers: []kafka.Header{
				{Key: hdrFormat, Value: []byte(strconv.Itoa(FormatVersion))},
				{Key: hdrIndex, Value: []byte(info.ID)},
				{Key: hdrChunk, Value: []byte(strconv.Itoa(c))},
				{Key: hdrChunks, Value: []byte(strconv.Itoa(chunks))},
				{Key: hdrSize, Value: []byte(strconv.Itoa(len(file)))},
			},
		})
	}
	if err := writePartition0(ctx, cfg, topic, opt.ChunkSize, msgs); err != nil {
		return res, err
	}
	if opt.Keep < 0 {
		return res, nil
	}
	// Delete older versions: everything but the newest Keep.
	vs, err := scanVersions(ctx, cfg, topic, 0, nil)
	if err != nil {
		return res, fmt.Errorf("edm: published %s, but listing versions failed: %w", info.ID, err)
	}
	// Complete versions, newest first, beyond Keep go; so do incomplete
	// ones (abandoned publishes) older than this publish — not a
	// concurrent publish still in progress.
	sort.Slice(vs, func(i, j int) bool { return vs[i].last > vs[j].last })
	var mine *version
	for _, v := range vs {
		if v.id == info.ID {
			mine = v
		}
	}
	var tomb []kafka.Message
	kept := 0
	for _, v := range vs {
		if v == mine {
			kept++
			continue
		}
		if len(v.seen) == v.total {
			if kept < opt.Keep {
				kept++
				continue
			}
		} else if mine == nil || v.last > mine.first {
			continue
		}
		for c := range v.seen {
			tomb = append(tomb, kafka.Message{Key: chunkKey(v.id, c)})
		}
		res.Deleted = append(res.Deleted, v.id)
	}
	if len(tomb) > 0 {
		if err := writePartition0(ctx, cfg, topic, opt.ChunkSize, tomb); err != nil {
			return res, fmt.Errorf("edm: published %s, but deleting old versions failed: %w", info.ID, err)
		}
	}
	return res, nil
}

func chunkKey(id string, c int) []byte {
	return []byte(fmt.Sprintf("%s/%06d", id, c))
}

// writePartition0 writes msgs to partition 0 of topic, acknowledged by all
// in-sync replicas.
func writePartition0(ctx context.Context, cfg kafkaio.Config, topic string, chunkSize int, msgs []kafka.Message) error {
	batch := kafkaio.PartitionBatch{Size: 64, Bytes: int64(4*chunkSize + 64<<10), Timeout: 5 * time.Millisecond}
	if err := kafkaio.WritePartition(ctx, cfg, topic, 0, batch, msgs...); err != nil {
		return fmt.Errorf("edm: write %d messages to %s: %w", len(msgs), topic, err)
	}
	return nil
}

// ensureTopic creates topic with one partition and compaction if it does
// not exist, and waits until it has a leader.
func ensureTopic(ctx context.Context, cfg kafkaio.Config, topic string) error {
	if err := kafkaio.EnsureCompactedTopic(ctx, cfg, topic); err != nil {
		return fmt.Errorf("edm: %w", err)
	}
	return nil
}

// version is one index version seen on the topic.
type version struct {
	id     string
	total  int
	size   int64
	seen   map[int]bool // chunk numbers written (tombstoned ones removed)
	chunks [][]byte     // kept only when collecting
	have   int
	first  int64 // offset of the oldest chunk
	last   int64 // offset of the newest chunk
	done   int64 // offset at which it became complete, -1 if not
}

// scanVersions replays partition 0 of topic up to its current high-water
// mark (kafkaio.ReplayPartition) and returns the versions present (not deleted). With collect it
// keeps the chunks of the newest complete version (and of at most
// maxPending newer incomplete ones) and returns it in best.
func scanVersions(ctx context.Context, cfg kafkaio.Config, topic string, maxPending int, best **version) ([]*version, error) {
	collect := best != nil
	byID := map[string]*version{}
	var order []*version
	drop := func(v *version) {
		delete(byID, v.id)
		for i, o := range order {
			if o == v {
				order = append(order[:i], order[i+1:]...)
				break
			}
		}
	}
	_, err := kafkaio.ReplayPartition(ctx, cfg, topic, 0, func(m kafka.Message) error {
		id, c, ok := parseChunkKey(m.Key)
		if !ok {
			return nil // not ours
		}
		v := byID[id]
		if m.Value == nil { // tombstone: the version is being deleted
			if v != nil {
				delete(v.seen, c)
				if len(v.seen) == 0 || collect {
					drop(v)
					if collect && *best == v {
						*best = nil
					}
				}
			}
			return nil
		}
		h := headers(m.Headers)
		total, err1 := strconv.Atoi(h[hdrChunks])
		size, err2 := strconv.ParseInt(h[hdrSize], 10, 64)
		if h[hdrFormat] != strconv.Itoa(FormatVersion) || h[hdrIndex] != id || err1 != nil || err2 != nil ||
			total <= 0 || c >= total || size <= 0 || size > MaxIndexBytes || int64(total) > size {
			return nil // another format version, or damaged headers: skipped
		}
		if v != nil && (v.total != total || v.size != size) {
			drop(v)
			v = nil
		}
		if v == nil {
			v = &version{id: id, total: total, size: size, seen: map[int]bool{}, done: -1, first: m.Offset}
			byID[id] = v
			order = append(order, v)
			if collect {
				v.chunks = make([][]byte, total)
				// Bound memory: the best complete version and at most
				// maxPending incomplete ones.
				pending := 0
				for i := len(order) - 1; i >= 0; i-- {
					if o := order[i]; o.done < 0 {
						if pending++; pending > maxPending+1 {
							drop(o)
							break
						}
					}
				}
			}
		}
		v.seen[c] = true
		v.last = m.Offset
		if collect {
			if v.chunks[c] == nil {
				v.have++
			}
			v.chunks[c] = m.Value
			if v.have == v.total && v.done < 0 {
				var n int64
				for _, ch := range v.chunks {
					n += int64(len(ch))
				}
				if n != v.size {
					drop(v)
					return nil
				}
				v.done = m.Offset
				if *best != nil && *best != v {
					drop(*best)
				}
				*best = v
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("edm: read %s: %w", topic, err)
	}
	return order, nil
}

func parseChunkKey(k []byte) (string, int, bool) {
	id, num, ok := strings.Cut(string(k), "/")
	if !ok || len(id) != 32 || len(num) != 6 {
		return "", 0, false
	}
	c, err := strconv.Atoi(num)
	if err != nil || c < 0 {
		return "", 0, false
	}
	return id, c, true
}

func headers(hs []kafka.Header) map[string]string {
	m := make(map[string]string, len(hs))
	for _, h := range hs {
		m[h.Key] = string(h.Value)
	}
	return m
}

// LoadFromKafka replays partition 0 of topic up to its current high-water
// mark, reassembles the newest complete index version and loads it with
// key (Load verifies it whole). It returns ErrNoIndex when there is none.
// At most the newest complete version and one newer incomplete one are held
// in memory while replaying.
func LoadFromKafka(ctx context.Context, cfg kafkaio.Config, topic string, key []byte) (*Index, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	var best *version
	if _, err := scanVersions(ctx, cfg, topic, 1, &best); err != nil {
		return nil, err
	}
	if best == nil {
		return nil, ErrNoIndex
	}
	buf := make([]byte, 0, best.size)
	for _, c := range best.chunks {
		buf = append(buf, c...)
	}
	best.chunks = nil
	x, err := Load(bytes.NewReader(buf), key)
	if err != nil {
		return nil, fmt.Errorf("edm: index %s from %s: %w", best.id, topic, err)
	}
	if x.ID() != best.id {
		return nil, formatErr("index %s from %s holds index %s", best.id, topic, x.ID())
	}
	return x, nil
}
