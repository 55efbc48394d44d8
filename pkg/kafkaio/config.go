// Package kafkaio wraps segmentio/kafka-go with the defaults Leakline needs
// and the pitfalls of kafka-go fixed once:
//
//   - Writer: acks from all in-sync replicas (kafka-go defaults to none),
//     key-hash partitioning (it defaults to round robin), a batch timeout of a
//     few milliseconds (it defaults to 1 s per synchronous write), no topic
//     auto-creation and a Close that cannot hang.
//   - Consumer: group consumption with FetchMessage + CommitMessages, commits
//     only after the handler succeeded (at-least-once; ReadMessage would
//     commit before processing), lag computed from Message.HighWaterMark
//     (Reader.Lag is -1 in group mode) and a Close that cannot hang.
//   - OffsetTracker: the highest contiguous finished offset, for services
//     that process one partition's messages in parallel.
//   - DeadLetter: a dead-letter message carrying its provenance in headers.
//   - Security: TLS (verified, optionally mutual) and SASL PLAIN,
//     SCRAM-SHA-256 or SCRAM-SHA-512, built into one kafka.Dialer
//     (Security.Dialer → Config.Dialer) from which every client of this
//     package takes its connections; printing it never shows the password.
//
// kafka-go quirks met while building this package (v0.4.51):
//   - A Transport answers Metadata from a cache refreshed every MetadataTTL
//     (6 s) or after its own CreateTopics; a topic created by someone else
//     stays unknown to it until then. Each Writer gets a private Transport
//     (kafka.DefaultTransport is shared process-wide, and closing a Writer
//     would not release its connections), and EnsureTopics polls with a
//     short TTL.
//   - Conn.ReadPartitions and the group's partition lookup ask the broker to
//     auto-create missing topics; Client.Metadata does not.
//   - Writer.WriteMessages returning ctx.Err() does not cancel the write:
//     the batch may still be written afterwards. Writer.Close waits for
//     batches still retrying (up to 10 attempts), hence the bound.
//   - A synchronous commit issued while the group rebalances is queued and
//     executed by the next generation, possibly for a partition that moved
//     to another member; a commit refused with RebalanceInProgress or
//     IllegalGeneration only causes redelivery.
//   - Reader.Close waits for in-flight fetches (bounded here by a 500 ms
//     fetch wait) and for the group's LeaveGroup.
//
// Delivery is at-least-once: after a rebalance or a restart, messages whose
// offsets were not committed yet are delivered again, and kafka-go may
// redeliver already-committed messages after a rebalance (kafka-go #1398).
// Every consumer's output must therefore be idempotent.
package kafkaio

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
)

// Defaults of Config.
const (
	DefaultClientID     = "leakline"
	DefaultBatchTimeout = 5 * time.Millisecond
	DefaultWriteTimeout = 10 * time.Second
	DefaultCloseTimeout = 5 * time.Second
)

// ErrCloseTimeout is wrapped by the error of a Close that gave up waiting for
// kafka-go after Config.CloseTimeout; the kafka-go goroutines still running
// then are abandoned.
var ErrCloseTimeout = errors.New("kafkaio: close timed out")

// Config holds what every kafkaio client needs.
type Config struct {
	// Brokers are the bootstrap addresses, host:port. Required.
	Brokers []string
	// ClientID names this client to the brokers. Default DefaultClientID.
	ClientID string
	// Dialer optionally configures connections: TLS, SASL, timeouts, a
	// custom dial function. Nil means plain TCP.
	Dialer *kafka.Dialer
	// BatchTimeout is how long a Writer waits to fill a batch before sending
	// it; a synchronous Write of a partial batch waits this long.
	// Default DefaultBatchTimeout (kafka-go's own default is 1 s).
	BatchTimeout time.Duration
	// WriteTimeout bounds one produce request, one metadata request and one
	// offset commit. Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// CloseTimeout bounds Close of a Writer or Consumer, which can hang in
	// kafka-go when the broker is gone. Default DefaultCloseTimeout.
	CloseTimeout time.Duration
	// ReplicationFactor of the topics EnsureTopics creates. Default 1.
	ReplicationFactor int
	// Logger receives kafka-go's log lines: its errors at Warn, the rest at
	// Debug. Nil discards them.
	Logger *slog.Logger
}

// Validate reports what is wrong with the configuration, if anything. Zero
// durations and counts stand for their defaults and are valid.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	for _, b := range c.Brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("broker %q is not host:port", b))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"BatchTimeout", c.BatchTimeout}, {"WriteTimeout", c.WriteTimeout}, {"CloseTimeout", c.CloseTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s is negative (%v)", d.name, d.v))
		}
	}
	if c.ReplicationFactor < 0 || c.ReplicationFactor > 32767 {
		errs = append(errs, fmt.Errorf("ReplicationFactor %d out of range", c.ReplicationFactor))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafkaio: invalid config: %w", err)
	}
	return nil
}

// withDefaults returns c with every zero value replaced by its default.
func (c Config) withDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = DefaultBatchTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// transport builds a private kafka-go Transport (for Writer and Client) from
// the config, so that closing a client closes its own connections and not
// those of kafka.DefaultTransport, which every other client shares.
func (c Config) transport() *kafka.Transport {
	t := &kafka.Transport{
		ClientID:    c.ClientID,
		DialTimeout: 5 * time.Second,
	}
	if d := c.Dialer; d != nil {
		t.TLS = d.TLS
		t.SASL = d.SASLMechanism
		if d.ClientID != "" {
			t.ClientID = d.ClientID
		}
		if d.Timeout > 0 {
			t.DialTimeout = d.Timeout
		}
		if d.DialFunc != nil {
			t.Dial = d.DialFunc
		} else {
			nd := &net.Dialer{
				LocalAddr:     d.LocalAddr,
				FallbackDelay: d.FallbackDelay,
				KeepAlive:     d.KeepAlive,
			}
			t.Dial = nd.DialContext
		}
	}
	return t
}

// dialer returns the kafka-go Dialer a Reader uses.
func (c Config) dialer() *kafka.Dialer {
	if c.Dialer == nil {
		return &kafka.Dialer{
			ClientID:  c.ClientID,
			Timeout:   5 * time.Second,
			DualStack: true,
		}
	}
	d := *c.Dialer
	if d.ClientID == "" {
		d.ClientID = c.ClientID
	}
	return &d
}

// Topics names Leakline's topics.
type Topics struct {
	// CRMAccess carries raw CRM-access audit events.
	CRMAccess string
	// Outbound carries raw outbound-traffic audit events.
	Outbound string
	// Events carries normalized events.
	Events string
	// Findings carries detector findings.
	Findings string
	// EventMeta carries per-event metadata (no content) from the detector
	// to the events table, keyed by actor uid.
	EventMeta string
	// DeadLetter carries messages no stage could process.
	DeadLetter string
}

// DefaultTopics returns the standard topic names.
func DefaultTopics() Topics {
	return Topics{
		CRMAccess:  "audit.crm.access",
		Outbound:   "audit.outbound",
		Events:     "dlp.events",
		Findings:   "dlp.findings",
		EventMeta:  "dlp.eventmeta",
		DeadLetter: "dlp.deadletter",
	}
}

// All returns the non-empty topic names in field order.
func (t Topics) All() []string {
	all := make([]string, 0, 6)
	for _, n := range []string{t.CRMAccess, t.Outbound, t.Events, t.Findings, t.EventMeta, t.DeadLetter} {
		if n != "" {
			all = append(all, n)
		}
	}
	return all
}

// closeBounded runs closeFn and waits for it at most d.
func closeBounded(what string, d time.Duration, closeFn func() error) error {
	done := make(chan error, 1)
	go func() { done <- closeFn() }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("kafkaio: close %s: %w", what, err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("kafkaio: close %s after %v: %w", what, d, ErrCloseTimeout)
	}
}
