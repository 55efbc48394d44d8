package pager

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/embedkafka"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/testenv"
)

// One in-process Kafka broker serves the whole package; every test uses
// its own topics and groups.
var (
	broker    *embedkafka.Broker
	brokerErr error
)

func TestMain(m *testing.M) {
	broker, brokerErr = embedkafka.Start(embedkafka.Options{})
	if brokerErr != nil {
		fmt.Fprintln(os.Stderr, "embedded Kafka:", brokerErr)
	}
	code := m.Run()
	if broker != nil {
		broker.Close()
	}
	os.Exit(code)
}

// testRoutingKey is a well-formed PagerDuty routing key (32 characters).
const testRoutingKey = "R0123456789abcdef0123456789abcde"

var testSecret = []byte("0123456789abcdef0123456789abcdef")

type kenv struct {
	cfg   kafkaio.Config
	topic kafkaio.Topics
	w     *kafkaio.Writer
}

var topicSeq atomic.Int64

// kafkaEnv creates fresh topics for the test.
func kafkaEnv(t *testing.T) *kenv {
	t.Helper()
	if broker == nil {
		testenv.Unavailable(t, "Kafka broker", brokerErr)
	}
	n := topicSeq.Add(1)
	e := &kenv{
		cfg:   kafkaio.Config{Brokers: broker.Addrs()},
		topic: kafkaio.Topics{Findings: fmt.Sprintf("findings-%d", n), DeadLetter: fmt.Sprintf("dead-%d", n)},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := kafkaio.EnsureTopics(ctx, e.cfg, 2, e.topic.Findings, e.topic.DeadLetter); err != nil {
		t.Fatal(err)
	}
	e.w = kafkaio.NewWriter(e.cfg, e.topic.Findings)
	t.Cleanup(func() { e.w.Close() })
	return e
}

func (e *kenv) produce(t *testing.T, fs ...finding.Finding) {
	t.Helper()
	msgs := make([]kafka.Message, len(fs))
	for i, f := range fs {
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = kafka.Message{Key: []byte(f.FindingID), Value: b}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.w.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

// produceKeyed produces fs under one key, so they share a partition and
// arrive in one batch, in order.
func (e *kenv) produceKeyed(t *testing.T, key string, fs ...finding.Finding) {
	t.Helper()
	msgs := make([]kafka.Message, len(fs))
	for i, f := range fs {
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = kafka.Message{Key: []byte(key), Value: b}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.w.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

func (e *kenv) produceRaw(t *testing.T, key string, value []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.w.Write(ctx, kafka.Message{Key: []byte(key), Value: value}); err != nil {
		t.Fatal(err)
	}
}

// deadLetters reads the dead-letter topic until it holds n messages.
func (e *kenv) deadLetters(t *testing.T, n int, timeout time.Duration) []kafka.Message {
	t.Helper()
	c, err := kafkaio.NewConsumer(kafkaio.ConsumerConfig{Config: e.cfg, GroupID: "dlq-reader-" + e.topic.DeadLetter, Topics: []string{e.topic.DeadLetter}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var got []kafka.Message
	_ = c.Run(ctx, func(_ context.Context, batch []kafka.Message) error {
		got = append(got, batch...)
		if len(got) >= n {
			cancel()
		}
		return nil
	})
	return got
}

func (e *kenv) config(p *Policy) Config {
	return Config{
		Kafka:               e.cfg,
		Topics:              e.topic,
		GroupID:             "pager-" + e.topic.Findings,
		Policy:              p,
		PagerDutyRoutingKey: testRoutingKey,
		WebhookSecret:       testSecret,
		GrafanaURL:          "https://grafana.test",
		MinRetryInterval:    50 * time.Millisecond,
		MaxRetryInterval:    400 * time.Millisecond,
	}
}

type running struct {
	p      *Pager
	cancel context.CancelFunc
	done   chan error
}

// start runs a pager until the test ends (or stop is called).
func start(t *testing.T, cfg Config) *running {
	t.Helper()
	if testing.Verbose() && cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("pager did not stop within 20s")
		return nil
	}
}

func mustPolicy(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := ParsePolicy([]byte(src))
	if err != nil {
		t.Fatalf("policy: %v\n%s", err, src)
	}
	return p
}

var findingSeq atomic.Int64

// newFinding returns revision 1 of a new incident.
func newFinding(rule, actor, severity string) finding.Finding {
	now := time.Now().UTC()
	id := finding.ID(rule, "1", actor, now.Add(time.Duration(findingSeq.Add(1))))
	return finding.Finding{
		FindingID: id, Revision: 1, RuleID: rule, RuleVersion: "1", Title: "Bulk CRM read without a ticket",
		Severity: severity, ActorUID: actor, Department: "Support",
		WindowStart: now.Add(-30 * time.Minute), WindowEnd: now,
		Channel: "email", Destination: "j***@gmail.com",
		Value: 450, Threshold: 200,
		PIICounts: map[string]uint32{"email": 12, "card": 3},
		Evidence: []finding.Evidence{
			{Type: "email", Masked: "a***@example.com", Token: "0011"},
			{Type: "card", Masked: "************1111", Token: "2233"},
		},
		EventCount: 3, DetectedAt: now,
	}
}

// next returns the incident's next revision, grown.
func next(f finding.Finding) finding.Finding {
	f.Revision++
	f.Value *= 2
	f.EventCount++
	f.WindowEnd = f.WindowEnd.Add(time.Minute)
	f.PIICounts = map[string]uint32{"email": f.PIICounts["email"] * 2, "card": f.PIICounts["card"]}
	return f
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// ---- PagerDuty stand-in --------------------------------------------------

// pdRecord is one request the stand-in accepted or refused.
type pdRecord struct {
	At     time.Time
	Event  PDEvent
	Status int
}

// pdServer stands in for PagerDuty's Events API v2: it checks every request
// against the documented fields and limits and records it. behave, when
// set, decides the response of request n (0-based) before validation.
type pdServer struct {
	t   *testing.T
	srv *http.Server
	ln  net.Listener
	URL string

	mu       sync.Mutex
	records  []pdRecord
	requests int
	behave   func(n int, ev PDEvent) (status int, header http.Header, delay time.Duration)
}

func newPDServer(t *testing.T) *pdServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &pdServer{t: t, URL: "http://" + ln.Addr().String() + "/v2/enqueue"}
	s.serve(ln)
	return s
}

func (s *pdServer) serve(ln net.Listener) {
	s.ln = ln
	s.srv = &http.Server{Handler: http.HandlerFunc(s.handle), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	s.t.Cleanup(func() { s.srv.Close() })
}

func (s *pdServer) setBehaviour(f func(n int, ev PDEvent) (int, http.Header, time.Duration)) {
	s.mu.Lock()
	s.behave = f
	s.mu.Unlock()
}

var pdActions = map[string]bool{"trigger": true, "acknowledge": true, "resolve": true}
var pdSeverity = map[string]bool{"critical": true, "error": true, "warning": true, "info": true}

// validatePD checks a request body against the Events API v2 documentation.
func validatePD(body []byte) (PDEvent, []string) {
	var bad []string
	if len(body) > 512*1024 {
		bad = append(bad, "body over 512 KB")
	}
	var raw struct {
		RoutingKey  *string `json:"routing_key"`
		EventAction *string `json:"event_action"`
		DedupKey    *string `json:"dedup_key"`
		Payload     *struct {
			Summary       *string         `json:"summary"`
			Source        *string         `json:"source"`
			Severity      *string         `json:"severity"`
			Timestamp     string          `json:"timestamp"`
			Component     string          `json:"component"`
			Group         string          `json:"group"`
			Class         string          `json:"class"`
			CustomDetails json.RawMessage `json:"custom_details"`
		} `json:"payload"`
		Images    json.RawMessage     `json:"images"`
		Links     []map[string]string `json:"links"`
		Client    string              `json:"client"`
		ClientURL string              `json:"client_url"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return PDEvent{}, append(bad, "invalid JSON or unknown field: "+err.Error())
	}
	var ev PDEvent
	_ = json.Unmarshal(body, &ev)
	if raw.RoutingKey == nil || len(*raw.RoutingKey) != 32 {
		bad = append(bad, "routing_key must have 32 characters")
	}
	if raw.EventAction == nil || !pdActions[*raw.EventAction] {
		bad = append(bad, "event_action must be trigger, acknowledge or resolve")
	}
	if raw.DedupKey != nil && (len(*raw.DedupKey) == 0 || len(*raw.DedupKey) > 255) {
		bad = append(bad, "dedup_key must have 1-255 characters")
	}
	if raw.EventAction != nil && *raw.EventAction != "trigger" && raw.DedupKey == nil {
		bad = append(bad, "dedup_key is required for "+*raw.EventAction)
	}
	if raw.EventAction != nil && *raw.EventAction == "trigger" {
		p := raw.Payload
		switch {
		case p == nil:
			bad = append(bad, "trigger without payload")
		default:
			if p.Summary == nil || *p.Summary == "" || len(*p.Summary) > 1024 {
				bad = append(bad, "payload.summary must have 1-1024 characters")
			}
			if p.Source == nil || *p.Source == "" {
				bad = append(bad, "payload.source is required")
			}
			if p.Severity == nil || !pdSeverity[*p.Severity] {
				bad = append(bad, "payload.severity must be critical, error, warning or info")
			}
			if p.Timestamp != "" {
				if _, err := time.Parse(time.RFC3339, p.Timestamp); err != nil {
					bad = append(bad, "payload.timestamp is not ISO 8601")
				}
			}
			if len(p.CustomDetails) > 0 && p.CustomDetails[0] != '{' {
				bad = append(bad, "payload.custom_details must be an object")
			}
		}
		for i, l := range raw.Links {
			u, err := url.Parse(l["href"])
			if l["href"] == "" || err != nil || u.Scheme == "" {
				bad = append(bad, fmt.Sprintf("links[%d].href must be a URL", i))
			}
			for k := range l {
				if k != "href" && k != "text" {
					bad = append(bad, fmt.Sprintf("links[%d] has unknown field %s", i, k))
				}
			}
		}
	}
	return ev, bad
}

func (s *pdServer) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if r.Method != http.MethodPost || r.URL.Path != "/v2/enqueue" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		s.t.Errorf("PagerDuty stand-in: %s %s with Content-Type %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	ev, bad := validatePD(body)
	s.mu.Lock()
	n := s.requests
	s.requests++
	behave := s.behave
	s.mu.Unlock()
	status := http.StatusAccepted
	if behave != nil {
		st, h, delay := behave(n, ev)
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
			}
		}
		for k, v := range h {
			w.Header()[k] = v
		}
		if st != 0 {
			status = st
		}
	}
	if len(bad) > 0 {
		s.t.Errorf("PagerDuty stand-in: invalid event %s: %v", body, bad)
		status = http.StatusBadRequest
	}
	s.mu.Lock()
	s.records = append(s.records, pdRecord{At: time.Now(), Event: ev, Status: status})
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status == http.StatusAccepted {
		fmt.Fprintf(w, `{"status":"success","message":"Event processed","dedup_key":%q}`, ev.DedupKey)
	} else {
		fmt.Fprintf(w, `{"status":"error","message":"HTTP %d"}`, status)
	}
}

// accepted returns the accepted events.
func (s *pdServer) accepted() []PDEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []PDEvent
	for _, r := range s.records {
		if r.Status == http.StatusAccepted {
			out = append(out, r.Event)
		}
	}
	return out
}

func (s *pdServer) all() []pdRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pdRecord(nil), s.records...)
}

// incidents summarises accepted events as PagerDuty would: by dedup key,
// how many triggers and whether the incident is resolved.
type pdIncident struct {
	Triggers int
	Resolved bool
	Last     PDEvent // last trigger
}

func (s *pdServer) incidents() map[string]*pdIncident {
	out := map[string]*pdIncident{}
	for _, ev := range s.accepted() {
		inc := out[ev.DedupKey]
		if inc == nil {
			inc = &pdIncident{}
			out[ev.DedupKey] = inc
		}
		switch ev.EventAction {
		case "trigger":
			inc.Triggers++
			inc.Last = ev
		case "resolve":
			inc.Resolved = true
		}
	}
	return out
}

// testLogger logs to stderr (with -v only).
func testLogger(*testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
