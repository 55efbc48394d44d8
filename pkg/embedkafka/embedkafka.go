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
//
// Security (Options.TLS, Options.SASL), checked against kafkaio's clients in
// pkg/kafkaio/security_test.go:
//   - kfake.TLS wraps the listener in tls.NewListener: every connection must
//     be TLS (there is no second, plaintext listener). A plaintext client's
//     request bytes fail the server's handshake and the broker closes the
//     connection: the client sees EOF or a reset, not a Kafka error.
//     Mutual TLS is the server tls.Config's ClientAuth/ClientCAs.
//   - kfake.EnableSASL without any user seeds the superuser admin/admin
//     with SCRAM-SHA-256; Start never relies on that default: SASL is
//     enabled only together with the users of Options.SASL.
//   - Users are registered with kfake.Superuser (kfake.User would subject
//     them to ACLs, and ACLs are off unless kfake.EnableACLs; with ACLs on
//     and no ACL seeded, a User may do nothing). The same name may be
//     registered for several mechanisms, each with its own password.
//   - SCRAM credentials are salted once at start with 4096 iterations of
//     PBKDF2; each SCRAM login costs the broker that much work too.
//   - A failed SASL login (unknown user, wrong password, mechanism without
//     users) is not answered with an error code: kfake's handler returns an
//     error and the broker closes the connection, so kafka-go reports EOF
//     or "connection reset", not SASLAuthenticationFailed. Before the login
//     completes, every request other than ApiVersions, SaslHandshake and
//     SaslAuthenticate is refused the same way.
//   - Seed topics missing after a restart on DataDir are created in-process
//     (Cluster.CreateTopic), so a secured broker needs no client credentials
//     of its own.
package embedkafka

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

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
	// TLS, when set, makes the broker accept TLS connections only, with
	// this server configuration (certificate; ClientAuth and ClientCAs for
	// mutual TLS). pkg/testcert makes one at test time.
	TLS *tls.Config
	// SASL, when not empty, makes the broker require SASL authentication
	// by one of these users before any other request.
	SASL []SASLUser
	// Retention bounds the records kept per partition (see retention.go).
	Retention Retention
}

// SASLUser is an account of a broker started with Options.SASL.
type SASLUser struct {
	// Mechanism is "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512".
	Mechanism string
	// User and Password are the credentials.
	User, Password string
}

// Broker is a running in-process Kafka-protocol broker.
type Broker struct {
	cluster *kfake.Cluster
	addr    string

	stopRetention func()

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
	if opt.TLS != nil {
		opts = append(opts, kfake.TLS(opt.TLS))
	}
	if len(opt.SASL) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for _, u := range opt.SASL {
			switch u.Mechanism {
			case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
			default:
				return nil, fmt.Errorf("embedkafka: SASL user %q: unknown mechanism %q", u.User, u.Mechanism)
			}
			if u.User == "" || u.Password == "" {
				return nil, fmt.Errorf("embedkafka: SASL %s user without a name or a password", u.Mechanism)
			}
			opts = append(opts, kfake.Superuser(u.Mechanism, u.User, u.Password))
		}
	}
	opts = append(opts, opt.Retention.kfakeOpts()...)
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
	b.stopRetention = opt.Retention.start(b.cluster, opt.Logger)
	return b, nil
}

// createTopics creates the topics that do not exist yet, in-process (no
// client connection, so no credentials are needed on a secured broker).
func (b *Broker) createTopics(topics map[string]int, def int) error {
	for _, name := range sortedKeys(topics) {
		n := topics[name]
		if n <= 0 {
			n = def
		}
		if b.cluster.TopicInfo(name) != nil {
			continue // an existing topic keeps its partitions
		}
		if err := b.cluster.CreateTopic(name, int32(n), nil); err != nil {
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
	b.closeOnce.Do(func() {
		if b.stopRetention != nil {
			b.stopRetention()
		}
		b.cluster.Close()
	})
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
