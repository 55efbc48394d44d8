package kafkaio

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/metrics"
)

// ErrorKind says what kind of failure a Kafka client error is: the label of
// leakline_kafka_errors_total, and whether retrying can help (Transient).
type ErrorKind string

// Error kinds. The first five are transient: the broker (or the group
// coordinator) is away or busy, and the same operation succeeds once it is
// back. The others are fatal: retrying cannot fix them, and the client
// fails closed.
const (
	// KindConnection: connection refused, reset or closed, EOF, broken pipe.
	KindConnection ErrorKind = "connection"
	// KindTimeout: a request timed out (at the broker or client side).
	KindTimeout ErrorKind = "timeout"
	// KindUnavailable: the broker or the partition leader is not
	// available, or the broker answered with another retriable code.
	KindUnavailable ErrorKind = "unavailable"
	// KindCoordinator: the group coordinator moved, is loading or is not
	// available.
	KindCoordinator ErrorKind = "coordinator"
	// KindRebalance: the group is rebalancing, or this member's generation
	// ended. Consumers do not retry such a commit: the batch is delivered
	// again to the partition's next owner.
	KindRebalance ErrorKind = "rebalance"

	// KindAuth: authentication or authorization failed (SASL, ACLs, TLS
	// certificate verification).
	KindAuth ErrorKind = "auth"
	// KindUnknownTopic: a topic that must exist does not.
	KindUnknownTopic ErrorKind = "unknown_topic"
	// KindConfig: the broker refused the client's configuration (session
	// timeout, group id, message too large, ...).
	KindConfig ErrorKind = "config"
	// KindClosed: the client was closed.
	KindClosed ErrorKind = "closed"
	// KindCanceled: the caller's context ended.
	KindCanceled ErrorKind = "canceled"
	// KindOther: anything else; treated as fatal.
	KindOther ErrorKind = "other"
)

// Transient reports whether an operation that failed with this kind of
// error may succeed if retried later.
func (k ErrorKind) Transient() bool {
	switch k {
	case KindConnection, KindTimeout, KindUnavailable, KindCoordinator, KindRebalance:
		return true
	}
	return false
}

// Classify tells what kind of failure err is. A broker that drops the
// connection on a refused SASL login looks like any other lost connection
// (EOF or reset, see Config.explainConnError) and is classified
// KindConnection: clients retry it with backoff, hand nothing to their
// handlers meanwhile and report not ready, so they still fail closed.
func Classify(err error) ErrorKind {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrClosed), errors.Is(err, io.ErrClosedPipe), errors.Is(err, kafka.ErrGroupClosed):
		return KindClosed
	case errors.Is(err, context.Canceled):
		return KindCanceled
	}
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		// The worst kind among the failed messages: one fatal error makes
		// the write fatal.
		kind := ErrorKind("")
		for _, e := range werrs {
			if e == nil {
				continue
			}
			k := Classify(e)
			if kind == "" || (kind.Transient() && !k.Transient()) {
				kind = k
			}
		}
		if kind != "" {
			return kind
		}
		return KindOther
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		return classifyKafkaError(ke)
	}
	// TLS verification and handshake failures (checked before the network
	// errors that may wrap them).
	var (
		unknownCA  x509.UnknownAuthorityError
		hostname   x509.HostnameError
		invalid    x509.CertificateInvalidError
		verify     *tls.CertificateVerificationError
		alert      tls.AlertError
		recordHdr  tls.RecordHeaderError
		echReject  *tls.ECHRejectionError
		unverified = errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
			errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &recordHdr) || errors.As(err, &echReject)
	)
	if unverified {
		return KindAuth
	}
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT),
		errors.As(err, &netErr) && netErr.Timeout():
		return KindTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return KindConnection
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return KindConnection // a dial or read that failed otherwise (DNS, routing)
	}
	// kafka-go formats some connection errors with %v, losing the chain.
	msg := err.Error()
	for _, s := range []string{"use of closed network connection", "connection refused", "connection reset", "broken pipe"} {
		if strings.Contains(msg, s) {
			return KindConnection
		}
	}
	return KindOther
}

func classifyKafkaError(e kafka.Error) ErrorKind {
	switch e {
	case kafka.SASLAuthenticationFailed, kafka.UnsupportedSASLMechanism, kafka.IllegalSASLState,
		kafka.TopicAuthorizationFailed, kafka.GroupAuthorizationFailed, kafka.ClusterAuthorizationFailed,
		kafka.TransactionalIDAuthorizationFailed, kafka.BrokerAuthorizationFailed, kafka.DelegationTokenAuthorizationFailed:
		return KindAuth
	case kafka.UnknownTopicOrPartition, kafka.UnknownTopicID:
		// Retriable for Kafka (metadata may lag), but Leakline's topics are
		// created before the services start: a missing one is a
		// deployment error.
		return KindUnknownTopic
	case kafka.InvalidSessionTimeout, kafka.InvalidGroupId, kafka.InconsistentGroupProtocol, kafka.InvalidTopic,
		kafka.MessageSizeTooLarge, kafka.RecordListTooLarge, kafka.InvalidRequiredAcks, kafka.UnsupportedVersion,
		kafka.InvalidCommitOffsetSize, kafka.UnsupportedForMessageFormat, kafka.InvalidRecord:
		return KindConfig
	case kafka.RebalanceInProgress, kafka.IllegalGeneration, kafka.UnknownMemberId, kafka.FencedInstanceID:
		return KindRebalance
	case kafka.NotCoordinatorForGroup, kafka.GroupCoordinatorNotAvailable, kafka.GroupLoadInProgress:
		return KindCoordinator
	case kafka.RequestTimedOut:
		return KindTimeout
	case kafka.BrokerNotAvailable, kafka.LeaderNotAvailable, kafka.NotLeaderForPartition, kafka.NetworkException,
		kafka.ReplicaNotAvailable:
		return KindUnavailable
	}
	if e.Temporary() {
		return KindUnavailable
	}
	return KindOther
}

// Retry bounds: the first retry comes after retryMin, each later one after
// about twice the previous delay, at most retryMax, each randomized by ±50 %.
const (
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
)

// newBackOff returns the exponential backoff with jitter of every kafkaio
// retry loop.
func newBackOff() *backoff.ExponentialBackOff {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = retryMin
	bo.MaxInterval = retryMax
	bo.RandomizationFactor = 0.5
	bo.Multiplier = 2
	return bo
}

// outage follows one client operation (fetch, commit, write, join, assign)
// through transient failures: it counts every failure in
// leakline_kafka_errors_total, logs one warning when the operation starts
// failing and one line when it works again or is given up (not one per
// attempt), and while it fails it counts in leakline_kafka_retrying and makes
// Health report an error. An outage is safe for concurrent use.
type outage struct {
	op    string // fetch, commit, write, join, assign
	log   *slog.Logger
	attrs []any // what the operation is on: group, topic (never an id of a person)

	active atomic.Bool // failing, read without the lock by ok

	mu       sync.Mutex
	failing  bool
	since    time.Time
	failures int
	last     ErrorKind
}

func newOutage(op string, log *slog.Logger, attrs ...any) *outage {
	if log == nil {
		log = slog.Default()
	}
	return &outage{op: op, log: log, attrs: attrs}
}

// failed records a failure of the operation and tells whether it is
// transient (worth retrying).
func (o *outage) failed(err error) (ErrorKind, bool) {
	kind := Classify(err)
	if kind == KindCanceled || kind == KindClosed {
		return kind, false // the client is stopping: not a broker failure
	}
	metrics.KafkaErrors.WithLabelValues(o.op, string(kind)).Inc()
	if !kind.Transient() {
		return kind, false
	}
	if kind == KindRebalance {
		return kind, true // the caller gives the work up: nothing to wait for
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failures++
	o.last = kind
	if o.failing {
		return kind, true
	}
	o.failing, o.since = true, time.Now()
	o.active.Store(true)
	metrics.KafkaRetrying.WithLabelValues(o.op).Inc()
	health.add(o)
	o.log.Warn("kafkaio: "+o.op+" failing; waiting for the broker and retrying with backoff",
		append(slices.Clip(o.attrs), "kind", string(kind), "error", err)...)
	return kind, true
}

// ok records that the operation succeeded; it ends an outage.
func (o *outage) ok() {
	if !o.active.Load() {
		return // the common case: nothing was failing
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.failing {
		return
	}
	o.log.Info("kafkaio: "+o.op+" works again",
		append(slices.Clip(o.attrs), "after", time.Since(o.since).Round(time.Millisecond), "failures", o.failures)...)
	o.end()
}

// abandon ends an outage without a success: the operation is given up
// (revocation, shutdown) and the next one starts afresh.
func (o *outage) abandon() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.failing {
		return
	}
	o.log.Info("kafkaio: "+o.op+" given up while failing (revoked or stopping)",
		append(slices.Clip(o.attrs), "after", time.Since(o.since).Round(time.Millisecond), "failures", o.failures)...)
	o.end()
}

func (o *outage) end() {
	o.failing, o.failures, o.last = false, 0, ""
	o.active.Store(false)
	metrics.KafkaRetrying.WithLabelValues(o.op).Dec()
	health.remove(o)
}

// retry runs fn until it succeeds, fails with a non-transient error (returned
// as is) or ctx ends (ctx's error joined with fn's last error), waiting with
// exponential backoff and jitter between attempts. Each attempt gets ctx.
func (o *outage) retry(ctx context.Context, fn func(context.Context) error) error {
	var last error
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		last = fn(ctx)
		switch {
		case last == nil:
			o.ok()
			return struct{}{}, nil
		case ctx.Err() != nil:
			return struct{}{}, backoff.Permanent(last)
		}
		if _, transient := o.failed(last); !transient {
			return struct{}{}, backoff.Permanent(last)
		}
		return struct{}{}, last
	}, backoff.WithBackOff(newBackOff()), backoff.WithMaxElapsedTime(0))
	if err != nil && ctx.Err() != nil {
		if last != nil && !errors.Is(last, ctx.Err()) {
			return errors.Join(ctx.Err(), last)
		}
		return ctx.Err()
	}
	return err
}

// wait sleeps the backoff after the attempt-th consecutive failure (from 1),
// or until ctx ends; it reports whether ctx is still live.
func wait(ctx context.Context, attempt int) bool {
	bo := newBackOff()
	d := bo.NextBackOff()
	for i := 1; i < attempt && d < retryMax; i++ {
		d = bo.NextBackOff()
	}
	return sleepCtx(ctx, d)
}

// quietKafkaLoggers adapts a slog.Logger to kafka-go's two loggers for the
// clients that follow their failures with an outage: kafka-go logs every
// failed attempt (each dial, each retry of a produce), so its lines go to
// Debug, and the outage logs the state changes at Warn and Info.
func quietKafkaLoggers(l *slog.Logger, attrs ...any) (info, errLog kafka.Logger) {
	l = l.With(attrs...)
	debug := kafka.LoggerFunc(func(format string, args ...any) {
		l.Debug(strings.TrimSpace(fmt.Sprintf(format, args...)))
	})
	return debug, debug
}

// health is the set of client operations of this process that are riding
// out a transient failure.
var health = healthSet{m: map[*outage]struct{}{}}

type healthSet struct {
	mu sync.Mutex
	m  map[*outage]struct{}
}

func (h *healthSet) add(o *outage) {
	h.mu.Lock()
	h.m[o] = struct{}{}
	h.mu.Unlock()
}

func (h *healthSet) remove(o *outage) {
	h.mu.Lock()
	delete(h.m, o)
	h.mu.Unlock()
}

// Health returns nil unless a Kafka client of this process (Consumer,
// GroupConsumer, Writer) is waiting out a transient failure: then an error
// naming the failing operations and since when. Readiness probes use it
// next to Ping: a service whose broker connection broke is not ready until
// its own clients work again.
func Health() error {
	health.mu.Lock()
	failing := slices.Collect(maps.Keys(health.m))
	health.mu.Unlock()
	if len(failing) == 0 {
		return nil
	}
	var parts []string
	for _, o := range failing {
		o.mu.Lock()
		if !o.failing { // recovered meanwhile
			o.mu.Unlock()
			continue
		}
		parts = append(parts, fmt.Sprintf("%s (%s since %s)", o.op, o.last, o.since.UTC().Format(time.RFC3339)))
		o.mu.Unlock()
	}
	if len(parts) == 0 {
		return nil
	}
	slices.Sort(parts)
	return fmt.Errorf("kafkaio: retrying: %s", strings.Join(slices.Compact(parts), ", "))
}
