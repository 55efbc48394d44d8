package kafkaio

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
)

// Dead-letter header names.
const (
	HeaderDLQReason          = "dlq.reason"
	HeaderDLQDetail          = "dlq.detail"
	HeaderDLQSourceTopic     = "dlq.source.topic"
	HeaderDLQSourcePartition = "dlq.source.partition"
	HeaderDLQSourceOffset    = "dlq.source.offset"
	HeaderDLQTime            = "dlq.time"
)

// Limits of the dead-letter texts, in bytes.
const (
	MaxDLQReason = 128
	MaxDLQDetail = 1024
)

// DLQInfo is what a dead letter says about itself.
type DLQInfo struct {
	// Reason is a short machine-readable reason, e.g. "decode_error".
	Reason string
	// Detail is a human-readable explanation.
	Detail string
	// SourceTopic, SourcePartition and SourceOffset locate the original
	// message; the numbers are -1 when unknown.
	SourceTopic     string
	SourcePartition int
	SourceOffset    int64
	// Time is when the message was dead-lettered (zero when unknown).
	Time time.Time
}

// DeadLetter returns the message to produce to the dead-letter topic for orig:
// the same key and value bytes, orig's headers (less any earlier dlq.*
// headers) and the dlq.* headers: reason (cut to MaxDLQReason bytes), detail
// (cut to MaxDLQDetail bytes, at a UTF-8 boundary), source topic, partition
// and offset, and the time in RFC 3339. The returned message has no topic:
// produce it with a Writer for the dead-letter topic.
func DeadLetter(orig kafka.Message, reason string, detail string) kafka.Message {
	now := time.Now().UTC()
	headers := make([]kafka.Header, 0, len(orig.Headers)+6)
	for _, h := range orig.Headers {
		if !strings.HasPrefix(h.Key, "dlq.") {
			headers = append(headers, h)
		}
	}
	headers = append(headers,
		kafka.Header{Key: HeaderDLQReason, Value: []byte(truncateUTF8(reason, MaxDLQReason))},
		kafka.Header{Key: HeaderDLQDetail, Value: []byte(truncateUTF8(detail, MaxDLQDetail))},
		kafka.Header{Key: HeaderDLQSourceTopic, Value: []byte(orig.Topic)},
		kafka.Header{Key: HeaderDLQSourcePartition, Value: []byte(strconv.Itoa(orig.Partition))},
		kafka.Header{Key: HeaderDLQSourceOffset, Value: []byte(strconv.FormatInt(orig.Offset, 10))},
		kafka.Header{Key: HeaderDLQTime, Value: []byte(now.Format(time.RFC3339Nano))},
	)
	return kafka.Message{
		Key:     orig.Key,
		Value:   orig.Value,
		Headers: headers,
		Time:    now,
	}
}

// DeadLetterInfo reads the dlq.* headers of m; ok is false when m carries no
// dlq.reason header. Fields whose header is missing or malformed are zero
// (-1 for the partition and offset).
func DeadLetterInfo(m kafka.Message) (info DLQInfo, ok bool) {
	reason, ok := HeaderString(m, HeaderDLQReason)
	if !ok {
		return DLQInfo{}, false
	}
	info = DLQInfo{Reason: reason, SourcePartition: -1, SourceOffset: -1}
	info.Detail, _ = HeaderString(m, HeaderDLQDetail)
	info.SourceTopic, _ = HeaderString(m, HeaderDLQSourceTopic)
	if s, ok := HeaderString(m, HeaderDLQSourcePartition); ok {
		if p, err := strconv.Atoi(s); err == nil {
			info.SourcePartition = p
		}
	}
	if s, ok := HeaderString(m, HeaderDLQSourceOffset); ok {
		if o, err := strconv.ParseInt(s, 10, 64); err == nil {
			info.SourceOffset = o
		}
	}
	if s, ok := HeaderString(m, HeaderDLQTime); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			info.Time = t
		}
	}
	return info, true
}

// Header returns the value of the last header of m named key.
func Header(m kafka.Message, key string) ([]byte, bool) {
	for i := len(m.Headers) - 1; i >= 0; i-- {
		if m.Headers[i].Key == key {
			return m.Headers[i].Value, true
		}
	}
	return nil, false
}

// HeaderString is Header with the value as a string.
func HeaderString(m kafka.Message, key string) (string, bool) {
	v, ok := Header(m, key)
	return string(v), ok
}

// SetHeader returns headers with every header named key replaced by one
// with value (appended if there was none). It may modify headers in place.
func SetHeader(headers []kafka.Header, key string, value []byte) []kafka.Header {
	out := headers[:0]
	for _, h := range headers {
		if h.Key != key {
			out = append(out, h)
		}
	}
	return append(out, kafka.Header{Key: key, Value: value})
}

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence,
// and replaces invalid bytes by U+FFFD first.
func truncateUTF8(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
