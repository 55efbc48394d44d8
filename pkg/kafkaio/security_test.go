package kafkaio_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/embedkafka"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/testcert"
	"github.com/leakline/leakline/pkg/testenv"
)

// Passwords of the secured test brokers; every error and log line is checked
// not to contain them.
const (
	plainPass  = "plain-pass-4c1e"
	scram256PW = "scram256-pass-9d0f"
	scram512PW = "scram512-pass-77ab"
)

var testUsers = []embedkafka.SASLUser{
	{Mechanism: kafkaio.SASLPlain, User: "svc-plain", Password: plainPass},
	{Mechanism: kafkaio.SASLScramSHA256, User: "svc-256", Password: scram256PW},
	{Mechanism: kafkaio.SASLScramSHA512, User: "svc-512", Password: scram512PW},
}

// pki is a test CA with a server and a client certificate.
type pki struct {
	ca             *testcert.CA
	server, client *testcert.Pair
}

func newPKI(t testing.TB, name string) *pki {
	t.Helper()
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("server", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ca.Client("client", "leakline")
	if err != nil {
		t.Fatal(err)
	}
	return &pki{ca: ca, server: srv, client: cl}
}

// clientTLS trusts the CA and, with cert, presents the client certificate.
func (p *pki) clientTLS(cert bool) *tls.Config {
	c := &tls.Config{RootCAs: p.ca.Pool()}
	if cert {
		c.Certificates = []tls.Certificate{p.client.TLS}
	}
	return c
}

// startSecure starts a broker with TLS (when p is not nil; mutual TLS with
// mtls) and SASL (when users are given), seeded with topic.
func startSecure(t testing.TB, p *pki, mtls bool, users []embedkafka.SASLUser, topics map[string]int) *embedkafka.Broker {
	t.Helper()
	opt := embedkafka.Options{Topics: topics, SASL: users}
	if p != nil {
		opt.TLS = p.ca.ServerConfig(p.server, mtls)
	}
	b, err := embedkafka.Start(opt)
	if err != nil {
		testenv.Unavailable(t, "Kafka broker", err)
		return nil
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func secureConfig(t testing.TB, b *embedkafka.Broker, sec kafkaio.Security) kafkaio.Config {
	t.Helper()
	d, err := sec.Dialer("kafkaio-security-test")
	if err != nil {
		t.Fatalf("Dialer: %v", err)
	}
	return kafkaio.Config{Brokers: b.Addrs(), ClientID: "kafkaio-security-test", Dialer: d}
}

// countingWorker counts what a GroupConsumer hands it.
type countingWorker struct {
	t testing.TB
	s *sink
}

func (w countingWorker) Handle(_ context.Context, batch []kafka.Message) error {
	w.s.add(w.t, batch)
	return nil
}
func (countingWorker) Close() error { return nil }

// TestSecurityEveryClient proves that the Dialer built by Security reaches
// every kind of kafka-go client kafkaio builds: against a broker that
// refuses unauthenticated (and, with TLS, plaintext) connections, each of
// EnsureTopics, Ping, Writer, Consumer, GroupConsumer, EndOffset,
// ReplayPartition/ReplayRange, MessageAt, EnsureCompactedTopic and
// WritePartition works, for each SASL mechanism, over TLS, mutual TLS and
// plaintext. A client without the settings is refused by the same broker.
func TestSecurityEveryClient(t *testing.T) {
	p := newPKI(t, "every-client")
	cases := []struct {
		name string
		tls  bool
		mtls bool
		user embedkafka.SASLUser
	}{
		{name: "PLAIN over TLS", tls: true, user: testUsers[0]},
		{name: "SCRAM-SHA-256 over TLS", tls: true, user: testUsers[1]},
		{name: "SCRAM-SHA-512 over TLS", tls: true, user: testUsers[2]},
		{name: "SCRAM-SHA-512 over mutual TLS", tls: true, mtls: true, user: testUsers[2]},
		{name: "SCRAM-SHA-256 without TLS", user: testUsers[1]},
		{name: "mutual TLS without SASL", tls: true, mtls: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var bp *pki
			sec := kafkaio.Security{}
			if tc.tls {
				bp = p
				sec.TLS = p.clientTLS(tc.mtls)
			}
			var users []embedkafka.SASLUser
			if tc.user.Mechanism != "" {
				users = testUsers
				sec.SASLMechanism, sec.Username, sec.Password = tc.user.Mechanism, tc.user.User, tc.user.Password
			}
			b := startSecure(t, bp, tc.mtls, users, nil)
			cfg := secureConfig(t, b, sec)
			ctx := timeout(t, 60*time.Second)

			// The broker enforces the settings: a plain client gets nothing.
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err := kafkaio.Ping(pctx, kafkaio.Config{Brokers: b.Addrs()})
			cancel()
			if err == nil {
				t.Fatal("a client without TLS/SASL settings was served")
			}

			const topic, n = "sec.events", 40
			if err := kafkaio.EnsureTopics(ctx, cfg, 3, topic); err != nil {
				t.Fatalf("EnsureTopics: %v", err)
			}
			if err := kafkaio.Ping(ctx, cfg, topic); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			w := kafkaio.NewWriter(cfg, topic)
			var msgs []kafka.Message
			for i := range n {
				msgs = append(msgs, msg(i, fmt.Sprintf("actor-%d", i%5), i/5, 0))
			}
			if err := w.Write(ctx, msgs...); err != nil {
				t.Fatalf("Writer: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Writer.Close: %v", err)
			}

			cc := consumerConfig(b, "sec-consumer", topic)
			cc.Config = cfg
			s := newSink()
			stop := run(t, newConsumer(t, cc), func(_ context.Context, batch []kafka.Message) error {
				s.add(t, batch)
				return nil
			})
			s.waitDistinct(t, n, 30*time.Second)
			if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("Consumer: %v", err)
			}

			gc := consumerConfig(b, "sec-group", topic)
			gc.Config = cfg
			gs := newSink()
			stopGroup, _ := runGroup(t, newGroupConsumer(t, gc), func(context.Context, kafkaio.Assignment) (kafkaio.PartitionWorker, error) {
				return countingWorker{t, gs}, nil
			})
			gs.waitDistinct(t, n, 30*time.Second)
			if err := stopGroup(); err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("GroupConsumer: %v", err)
			}

			replayed := 0
			for part := range 3 {
				end, err := kafkaio.ReplayPartition(ctx, cfg, topic, part, func(kafka.Message) error { replayed++; return nil })
				if err != nil {
					t.Fatalf("ReplayPartition %d: %v", part, err)
				}
				if end > 0 {
					if _, err := kafkaio.MessageAt(ctx, cfg, topic, part, end-1); err != nil {
						t.Fatalf("MessageAt: %v", err)
					}
				}
			}
			if replayed != n {
				t.Errorf("replayed %d messages, want %d", replayed, n)
			}

			const compacted = "sec.compacted"
			if err := kafkaio.EnsureCompactedTopic(ctx, cfg, compacted); err != nil {
				t.Fatalf("EnsureCompactedTopic: %v", err)
			}
			if err := kafkaio.WritePartition(ctx, cfg, compacted, 0, kafkaio.PartitionBatch{}, kafka.Message{Key: []byte("k"), Value: []byte("v")}); err != nil {
				t.Fatalf("WritePartition: %v", err)
			}
			if end, err := kafkaio.EndOffset(ctx, cfg, compacted, 0); err != nil || end != 1 {
				t.Fatalf("EndOffset = %d, %v; want 1", end, err)
			}
		})
	}
}

// TestSecurityFailsClosed: wrong credentials, an unknown CA, a plaintext
// client to a TLS broker and a missing client certificate are each refused:
// Ping (the readiness probe) fails with an error that says what to check and
// holds no password, a Writer writes nothing, a Consumer never hands a
// message to its handler and a GroupConsumer never gets a partition. The broker is checked to hold the messages a
// correctly configured client then reads.
func TestSecurityFailsClosed(t *testing.T) {
	p := newPKI(t, "fails-closed")
	other := newPKI(t, "other")
	good := kafkaio.Security{TLS: p.clientTLS(false), SASLMechanism: kafkaio.SASLScramSHA512, Username: "svc-512", Password: scram512PW}
	cases := []struct {
		name string
		mtls bool
		sec  kafkaio.Security
		// hint must appear in the error (case-insensitive).
		hint string
	}{
		{name: "wrong SCRAM-SHA-512 password", sec: with(good, func(s *kafkaio.Security) { s.Password = "wrong-" + scram512PW }), hint: `SASL SCRAM-SHA-512 login as user "svc-512" refused`},
		{name: "PLAIN password of another mechanism", sec: with(good, func(s *kafkaio.Security) {
			s.SASLMechanism, s.Username, s.Password = kafkaio.SASLPlain, "svc-512", scram512PW
		}), hint: `SASL PLAIN login as user "svc-512" refused`},
		{name: "unknown user", sec: with(good, func(s *kafkaio.Security) { s.Username = "nobody" }), hint: `user "nobody" refused`},
		{name: "unknown CA", sec: with(good, func(s *kafkaio.Security) { s.TLS = other.clientTLS(false) }), hint: "certificate signed by unknown authority"},
		{name: "plaintext client to TLS broker", sec: with(good, func(s *kafkaio.Security) { s.TLS = nil }), hint: "or the broker expects TLS"},
		{name: "no client certificate for mutual TLS", mtls: true, sec: good, hint: "certificate"},
		{name: "server name mismatch", sec: with(good, func(s *kafkaio.Security) {
			s.TLS = p.clientTLS(false)
			s.TLS.ServerName = "kafka.example"
		}), hint: "kafka.example"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const topic = "sec.closed"
			b := startSecure(t, p, tc.mtls, testUsers, map[string]int{topic: 2})
			var logs logCapture
			cfg := secureConfig(t, b, tc.sec)
			cfg.Logger = slog.New(&logs)
			cfg.WriteTimeout = 2 * time.Second

			ctx := timeout(t, 10*time.Second)
			err := kafkaio.Ping(ctx, cfg, topic)
			if err == nil {
				t.Fatal("Ping succeeded")
			}
			t.Logf("Ping: %v", err)
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.hint)) {
				t.Errorf("Ping error %q does not say %q", err, tc.hint)
			}
			noSecret(t, "Ping error", err.Error())

			wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			w := kafkaio.NewWriter(cfg, topic)
			werr := w.Write(wctx, msg(1, "actor-1", 0, 0))
			cancel()
			w.Close()
			if werr == nil {
				t.Fatal("Writer wrote through a refused connection")
			}
			noSecret(t, "Writer error", werr.Error())

			// A consumer over the refused settings hands nothing to its
			// handler while a message waits on the topic.
			goodSec := good
			if tc.mtls {
				goodSec.TLS = p.clientTLS(true)
			}
			goodCfg := secureConfig(t, b, goodSec)
			if err := kafkaio.WritePartition(ctx, goodCfg, topic, 0, kafkaio.PartitionBatch{}, msg(2, "actor-2", 0, 0)); err != nil {
				t.Fatalf("good client: %v", err)
			}
			cc := consumerConfig(b, "sec-closed", topic)
			cc.Config = cfg
			var mu sync.Mutex
			handled := 0
			stop := run(t, newConsumer(t, cc), func(_ context.Context, batch []kafka.Message) error {
				mu.Lock()
				handled += len(batch)
				mu.Unlock()
				return nil
			})
			// Nor does a GroupConsumer (the detector's) ever assign a
			// partition: it retries, or stops with an error naming no
			// secret.
			gc := consumerConfig(b, "sec-closed-group", topic)
			gc.Config = cfg
			assigned := 0
			stopGroup, _ := runGroup(t, newGroupConsumer(t, gc), func(context.Context, kafkaio.Assignment) (kafkaio.PartitionWorker, error) {
				mu.Lock()
				assigned++
				mu.Unlock()
				return countingWorker{t, newSink()}, nil
			})
			time.Sleep(2 * time.Second)
			_ = stop()
			if err := stopGroup(); err != nil {
				noSecret(t, "GroupConsumer error", err.Error())
			}
			mu.Lock()
			defer mu.Unlock()
			if handled != 0 || assigned != 0 {
				t.Errorf("over refused settings: consumer handled %d messages, group consumer got %d partitions", handled, assigned)
			}
			for _, l := range logs.lines() {
				noSecret(t, "log line", l)
			}
			if end, err := kafkaio.EndOffset(ctx, goodCfg, topic, 0); err != nil || end != 1 {
				t.Errorf("good client: end offset %d, %v; want 1", end, err)
			}
		})
	}
}

func with(s kafkaio.Security, f func(*kafkaio.Security)) kafkaio.Security {
	if s.TLS != nil {
		s.TLS = s.TLS.Clone()
	}
	f(&s)
	return s
}

func noSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, pw := range []string{plainPass, scram256PW, scram512PW} {
		if strings.Contains(s, pw) {
			t.Errorf("%s contains a password: %s", what, s)
		}
	}
}

func TestSecurityValidateAndRedact(t *testing.T) {
	cases := []struct {
		name string
		sec  kafkaio.Security
		want string // substring of the error; empty: valid
	}{
		{name: "zero", sec: kafkaio.Security{}},
		{name: "tls only", sec: kafkaio.Security{TLS: &tls.Config{}}},
		{name: "plain", sec: kafkaio.Security{SASLMechanism: kafkaio.SASLPlain, Username: "u", Password: "p"}},
		{name: "scram-256", sec: kafkaio.Security{SASLMechanism: kafkaio.SASLScramSHA256, Username: "u", Password: "p"}},
		{name: "scram-512", sec: kafkaio.Security{SASLMechanism: kafkaio.SASLScramSHA512, Username: "u", Password: "p"}},
		{name: "unknown mechanism", sec: kafkaio.Security{SASLMechanism: "GSSAPI", Username: "u", Password: "p"}, want: `SASL mechanism "GSSAPI" unknown`},
		{name: "lower-case mechanism", sec: kafkaio.Security{SASLMechanism: "plain", Username: "u", Password: "p"}, want: "unknown"},
		{name: "no user", sec: kafkaio.Security{SASLMechanism: kafkaio.SASLPlain, Password: "p"}, want: "needs a username"},
		{name: "no password", sec: kafkaio.Security{SASLMechanism: kafkaio.SASLScramSHA512, Username: "u"}, want: "needs a password"},
		{name: "credentials without mechanism", sec: kafkaio.Security{Username: "u", Password: "p"}, want: "without a SASL mechanism"},
		{name: "skip verify", sec: kafkaio.Security{TLS: &tls.Config{InsecureSkipVerify: true}}, want: "without certificate verification"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := tc.sec.Dialer("x")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Dialer: %v", err)
				}
				if (d.TLS != nil) != (tc.sec.TLS != nil) || (d.SASLMechanism != nil) != (tc.sec.SASLMechanism != "") {
					t.Errorf("Dialer TLS %v SASL %v for %v", d.TLS != nil, d.SASLMechanism, tc.sec)
				}
				if d.TLS != nil && d.TLS.MinVersion < tls.VersionTLS12 {
					t.Errorf("TLS minimum version %x", d.TLS.MinVersion)
				}
				if d.SASLMechanism != nil && d.SASLMechanism.Name() != tc.sec.SASLMechanism {
					t.Errorf("mechanism %s", d.SASLMechanism.Name())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if tc.sec.Password != "" && strings.Contains(err.Error(), "p\"") {
				t.Errorf("error echoes the password: %v", err)
			}
		})
	}

	const pw = "do-not-print-me"
	sec := kafkaio.Security{TLS: &tls.Config{}, SASLMechanism: kafkaio.SASLPlain, Username: "svc", Password: pw}
	d, err := sec.Dialer("x")
	if err != nil {
		t.Fatal(err)
	}
	cfg := kafkaio.Config{Brokers: []string{"k:9092"}, Dialer: d}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "security", sec, "mechanism", d.SASLMechanism)
	for _, s := range []string{
		fmt.Sprintf("%v %+v %#v %s", sec, sec, sec, sec),
		fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg),
		fmt.Sprintf("%v %+v %#v", *d, *d, d.SASLMechanism),
		logged.String(),
	} {
		if strings.Contains(s, pw) {
			t.Errorf("password printed: %s", s)
		}
	}
}
