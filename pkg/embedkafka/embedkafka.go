// Package embedkafka runs an in-process Kafka-protocol broker built on
// github.com/twmb/franz-go/pkg/kfake. Leakline uses it in tests and in the
// embedded demo; the product talks to it with segmentio/kafka-go exactly as it
// talks to Apache Kafka in production.
//
// The broker is a single kfake node that listens on one TCP address and
// advertises that address in metadata, so clients connect straight to it. A
// TCP proxy in front of it would only see the bootstrap connection.
//
// Verified against kafka-go v0.4.51 (see embedkafka_test.go): Writer with
// RequireAll and the Hash balancer, Reader with GroupID/GroupTopics
// (FetchMessage + CommitMessages, rebalances between two members), Conn and
// Client.CreateTopics, Client.Metadata and Client.ListOffsets.
//
// kfake limitations and quirks met on the way (kfake v0.0.0-20260918054303):
//   - kfake binds its listeners itself to "127.0.0.1:<port>" and ignores the
//     host part of any address; Start therefore binds the listener first and
//     hands it over through kfake.ListenFn, which also closes the race of
//     probing a free port and binding it later.
//   - kfake's default minimum group session timeout is 6 s (as in Kafka);
//     Start lowers it to 100 ms so tests may use short sessions. Production
//     Kafka still rejects JoinGroup below group.min.session.timeout.ms (6 s by
//     default), so client defaults stay at or above 6 s.
//   - Seed topics are only created on a fresh start: when DataDir already
//     holds state, kfake loads it and skips its seeds. Start then creates any
//     missing seed topic with a CreateTopics request.
//   - Produce requests below v3 and Fetch below v4 are not served (kafka-go
//     negotiates newer versions, so it is unaffected).
//   - There is no initial rebalance delay (group.initial.rebalance.delay.ms):
//     a group forms as soon as its first member joins.
//   - Closing the cluster closes every client connection at once; a client
//     sees EOF / connection refused, never a graceful shutdown.
//   - Auto-creation is on (as in a default Kafka), and kafka-go asks for it
//     more often than one might think: Conn.ReadPartitions and the consumer
//     group's partition lookup send Metadata with AllowAutoTopicCreation, so
//     a consumer of a missing topic creates it with Partitions partitions.
//     kafkaio's Writer and EnsureTopics do not.
package embedkafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultPartitions is the partition count of auto-created topics and of
// CreateTopics requests that ask for the broker default.
const DefaultPartitions = 6

// Options configures Start. The zero value is a usable broker on a free port
// of 127.0.0.1, in memory only.
type Options struct {
	// Addr is the TCP address to listen on and to advertise, host:port.
	// Default "127.0.0.1:0", a free port.
	Addr string
	// DataDir, when set, makes the broker persist its state there: a broker
	// restarted on the same DataDir (and the same Addr, so that clients find
	// it again) resumes with its topics, records and committed offsets.
	DataDir string
	// Partitions is the partition count of auto-created topics and of seed
	// topics given a non-positive count. Default DefaultPartitions.
	Partitions int
	// Topics are created at start: name → partition count.
	Topics map[string]int
	// Logger receives the broker's log lines. kfake errors and warnings map
	// to slog Error and Warn, its info lines (one per request) to Debug and
	// its debug lines below Debug. Nil discards them.
	Logger *slog.Logger
}

// Broker is a running in-process Kafka-protocol broker.
type Broker struct {
	cluster *kfake.Cluster
	addr    string

	closeOnce sync.Once
}

// Start starts a broker with the options given. It returns once the broker
// accepts connections and every seed topic exists.
func Start(opt Options) (*Broker, error) {
	if opt.Addr == "" {
		opt.Addr = "127.0.0.1:0"
	}
	if opt.Partitions <= 0 {
		opt.Partitions = DefaultPartitions
	}

	ln, err := net.Listen("tcp", opt.Addr)
	if err != nil {
		return nil, fmt.Errorf("embedkafka: listen on %s: %w", opt.Addr, err)
	}
	var handedOver bool
	defer func() {
		if !handedOver {
			ln.Close()
		}
	}()

	// kfake calls the listen function once per broker: the first call gets
	// the pre-bound listener, later ones (Cluster().AddNode) a fresh one.
	var first sync.Once
	listen := func(network, address string) (net.Listener, error) {
		var l net.Listener
		first.Do(func() { l = ln })
		if l != nil {
			return l, nil
		}
		return net.Listen(network, address)
	}

	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(listen),
		kfake.ClusterID("leakline-embedded"),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(opt.Partitions),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}
	if opt.Logger != nil {
		opts = append(opts, kfake.WithLogger(slogAdapter{opt.Logger}))
	}
	if opt.DataDir != "" {
		opts = append(opts, kfake.DataDir(opt.DataDir))
	}
	for _, name := range sortedKeys(opt.Topics) {
		opts = append(opts, kfake.SeedTopics(int32(opt.Topics[name]), name))
	}

	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedkafka: start broker: %w", err)
	}
	handedOver = true

	b := &Broker{cluster: c, addr: ln.Addr().String()}
	if opt.DataDir != "" && len(opt.Topics) > 0 {
		// A restart on existing state skips the seeds; create what is
		// missing (an existing topic keeps its partitions).
		if err := b.createTopics(opt.Topics, opt.Partitions); err != nil {
			b.Close()
			return nil, err
		}
	}
	return b, nil
}

// createTopics creates the topics that do not exist yet.
func (b *Broker) createTopics(topics map[string]int, def int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := &kafka.CreateTopicsRequest{}
	for _, name := range sortedKeys(topics) {
		n := topics[name]
		if n <= 0 {
			n = def
		}
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: name, NumPartitions: n, ReplicationFactor: 1})
	}
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(b.addr), Timeout: 10 * time.Second, Transport: tr}
	resp, err := cl.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("embedkafka: create seed topics: %w", err)
	}
	for name, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("embedkafka: create seed topic %q: %w", name, err)
		}
	}
	return nil
}

// Addrs returns the bootstrap addresses of the broker (one host:port).
func (b *Broker) Addrs() []string { return []string{b.addr} }

// Cluster returns the underlying kfake cluster, for fault injection in tests
// (Control, ControlKey, SleepControl, ShufflePartitionLeaders, ...).
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Close stops the broker and drops every client connection. With a DataDir
// it first saves the state. Close is idempotent and always returns nil; the
// error result is for io.Closer.
func (b *Broker) Close() error {
	b.closeOnce.Do(b.cluster.Close)
	return nil
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// slogAdapter turns a *slog.Logger into a kfake.Logger.
type slogAdapter struct{ l *slog.Logger }

// Logf implements kfake.Logger.
func (a slogAdapter) Logf(level kfake.LogLevel, format string, args ...any) {
	var lv slog.Level
	switch level {
	case kfake.LogLevelError:
		lv = slog.LevelError
	case kfake.LogLevelWarn:
		lv = slog.LevelWarn
	case kfake.LogLevelInfo:
		lv = slog.LevelDebug
	case kfake.LogLevelDebug:
		lv = slog.LevelDebug - 4
	default:
		return
	}
	ctx := context.Background()
	if !a.l.Enabled(ctx, lv) {
		return
	}
	a.l.Log(ctx, lv, fmt.Sprintf(format, args...), "component", "embedkafka")
}
