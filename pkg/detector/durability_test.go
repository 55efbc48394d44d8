package detector_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/detector"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/fleet"
	"github.com/leakline/leakline/pkg/inspect"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/privacy"
	"github.com/leakline/leakline/pkg/testenv"
)

const partitions = 6

var testKey = []byte("0123456789abcdef0123456789abcdef-test-only-key")

// stream is a day of normalized events for 24 actors: ticketless CRM reads
// of growing volume (some actors cross the bulk-read threshold, several
// times over, some never) and mails carrying customer PII to outside
// addresses, in event-time order.
func stream(t *testing.T) []*event.Event {
	t.Helper()
	t0 := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	var evs []*event.Event
	n := 0
	for a := 0; a < 24; a++ {
		actor := event.Actor{UID: fmt.Sprintf("u-%02d", a), Email: fmt.Sprintf("u%02d@corp.example", a), Department: "support"}
		for b := 0; b < 40; b++ {
			at := t0.Add(time.Duration(b*6+a)*time.Minute + time.Duration(a)*time.Second)
			ids := make([]string, 0, a)
			for k := 0; k < a; k++ {
				ids = append(ids, fmt.Sprintf("C-%02d-%04d", a, b*a+k))
			}
			if len(ids) == 0 {
				ids = []string{"C-00"}
			}
			n++
			id := fmt.Sprintf("e-%05d", n)
			evs = append(evs, &event.Event{Kind: event.KindCRMAccess, EventID: id, Time: at, Actor: actor,
				CRM: &event.CRMAccess{SchemaVersion: 1, ClassUID: event.ClassAPIActivity, ActivityID: 2, EventID: id, Time: at, Actor: actor,
					Action: event.ActionExport, Records: event.Records{IDs: ids, Count: len(ids)}}})
			if a%3 == 0 && b%8 == 7 {
				n++
				id := fmt.Sprintf("e-%05d", n)
				text := ""
				for k := 0; k < 12; k++ {
					text += fmt.Sprintf("customer%d.%d@example.com, ", a, b*12+k)
				}
				evs = append(evs, &event.Event{Kind: event.KindOutbound, EventID: id, Time: at.Add(30 * time.Second), Actor: actor,
					Outbound: &event.Outbound{SchemaVersion: 1, ClassUID: event.ClassEmailActivity, ActivityID: 1, EventID: id, Time: at.Add(30 * time.Second), Actor: actor,
						Channel: event.ChannelEmail, Destination: event.Destination{Recipients: []string{"x@mail.example"}, Domains: []string{"mail.example"}},
						Content: event.Content{Size: int64(len(text)), Text: text}}})
			}
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	return evs
}

func engineConfig() detect.Config {
	c := detect.DefaultConfig()
	return c
}

// oracle runs one uninterrupted engine per partition, in partition order,
// and returns the latest revision of every finding.
func oracle(t *testing.T, evs []*event.Event) map[string]finding.Finding {
	t.Helper()
	tok, _ := privacy.NewTokenizer(testKey)
	sc, err := inspect.New(inspect.Config{}, tok)
	if err != nil {
		t.Fatal(err)
	}
	engines := map[int]*detect.Engine{}
	out := map[string]finding.Finding{}
	now := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	for _, ev := range evs {
		p := partitionOf(ev.Actor.UID)
		e := engines[p]
		if e == nil {
			if e, err = detect.New(engineConfig(), sc); err != nil {
				t.Fatal(err)
			}
			engines[p] = e
		}
		for _, f := range e.Process(ev, now) {
			if old, ok := out[f.FindingID]; !ok || f.Revision > old.Revision {
				out[f.FindingID] = f
			}
		}
	}
	return out
}

func partitionOf(key string) int {
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	return (&kafka.Hash{}).Balance(kafka.Message{Key: []byte(key)}, parts...)
}

func messages(t *testing.T, evs []*event.Event) []kafka.Message {
	t.Helper()
	out := make([]kafka.Message, 0, len(evs))
	for _, ev := range evs {
		b, err := event.MarshalEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, kafka.Message{Key: []byte(ev.Actor.UID), Value: b, Time: ev.Time})
	}
	return out
}

// collect reads dlp.findings in the background and keeps the latest revision
// of each finding.
type collector struct {
	mu     sync.Mutex
	latest map[string]finding.Finding
	total  int
}

func collect(t *testing.T, kc kafkaio.Config, topic string) *collector {
	t.Helper()
	c := &collector{latest: map[string]finding.Finding{}}
	cons, err := kafkaio.NewConsumer(kafkaio.ConsumerConfig{Config: kc, GroupID: "test-collector", Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = cons.Run(ctx, func(_ context.Context, b []kafka.Message) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			for _, m := range b {
				var f finding.Finding
				if err := json.Unmarshal(m.Value, &f); err != nil {
					return err
				}
				c.total++
				if old, ok := c.latest[f.FindingID]; !ok || f.Revision > old.Revision {
					c.latest[f.FindingID] = f
				}
			}
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done; cons.Close() })
	return c
}

func (c *collector) snapshot() map[string]finding.Finding {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]finding.Finding, len(c.latest))
	for k, v := range c.latest {
		out[k] = v
	}
	return out
}

func waitEqual(t *testing.T, c *collector, want map[string]finding.Finding) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		d := testenv.DiffFindings(want, c.snapshot())
		if len(d) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("findings differ from the uninterrupted oracle (%d):\n%v", len(d), d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func newDetector(t testing.TB, kc kafkaio.Config) *detector.Detector {
	t.Helper()
	d, err := detector.New(detector.Config{
		Kafka: kc, Topics: kafkaio.DefaultTopics(), Engine: engineConfig(), HMACKey: testKey,
		Consumer: kafkaio.ConsumerConfig{SessionTimeout: 2 * time.Second, HeartbeatInterval: 100 * time.Millisecond, RebalanceTimeout: 4 * time.Second},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type running struct {
	d      *detector.Detector
	cancel context.CancelFunc
	done   chan error
}

func run(t *testing.T, d *detector.Detector) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("detector stopped with error: %v", err)
		}
		r.done <- nil // let a second stop return at once
	case <-time.After(20 * time.Second):
		t.Error("detector did not stop in 20s")
	}
}

func setup(t *testing.T) (kafkaio.Config, []*event.Event, []kafka.Message, map[string]finding.Finding, *collector) {
	broker := testenv.Kafka(t, nil)
	kc := kafkaio.Config{Brokers: broker.Addrs(), ClientID: "durability"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafkaio.EnsureTopics(ctx, kc, partitions, kafkaio.DefaultTopics().All()...); err != nil {
		t.Fatal(err)
	}
	evs := stream(t)
	want := oracle(t, evs)
	if len(want) < 10 {
		t.Fatalf("the oracle found only %d findings: the scenario proves nothing", len(want))
	}
	return kc, evs, messages(t, evs), want, collect(t, kc, kafkaio.DefaultTopics().Findings)
}

// produce writes msgs in chunks, calling between(i) after chunk i.
func produce(t *testing.T, kc kafkaio.Config, msgs []kafka.Message, chunks int, between func(i int)) {
	t.Helper()
	w := kafkaio.NewWriter(kc, kafkaio.DefaultTopics().Events)
	defer w.Close()
	size := (len(msgs) + chunks - 1) / chunks
	for i := 0; i < chunks; i++ {
		lo, hi := i*size, min((i+1)*size, len(msgs))
		if lo >= hi {
			break
		}
		if err := w.Write(context.Background(), msgs[lo:hi]...); err != nil {
			t.Fatal(err)
		}
		between(i)
	}
}

// TestScaleOutAndInKeepsFindings runs 1 → 3 → 1 detectors while events flow:
// the findings equal those of one uninterrupted engine per partition.
func TestScaleOutAndInKeepsFindings(t *testing.T) {
	kc, _, msgs, want, got := setup(t)
	first := run(t, newDetector(t, kc))
	var extra []*running
	produce(t, kc, msgs, 12, func(i int) {
		switch i {
		case 3:
			extra = append(extra, run(t, newDetector(t, kc)), run(t, newDetector(t, kc)))
		case 7:
			for _, r := range extra {
				r.stop(t)
			}
		}
		time.Sleep(300 * time.Millisecond)
	})
	waitEqual(t, got, want)
	if s := first.d.Stats(); s.Events == 0 {
		t.Error("the first detector processed nothing")
	}
}

// TestKill9KeepsFindings kills a detector process with SIGKILL mid-run and
// starts another: its state is rebuilt from the partition and the findings
// equal the uninterrupted oracle.
func TestKill9KeepsFindings(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins, err := fleet.Build(ctx, t.TempDir(), "detector")
	if err != nil {
		t.Fatal(err)
	}
	kc, _, msgs, want, got := setup(t)
	start := func() *fleet.Proc {
		p, err := fleet.Start(ctx, fleet.Spec{
			Name: "detector", Bin: bins["detector"],
			Env: []string{
				"LEAKLINE_KAFKA_BROKERS=" + kc.Brokers[0],
				"LEAKLINE_HMAC_KEY=" + hex.EncodeToString(testKey),
				"LEAKLINE_LOG_LEVEL=warn",
			},
			Stdout: os.Stderr,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Kill() })
		if err := p.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		return p
	}
	victim := start()
	produce(t, kc, msgs, 10, func(i int) {
		if i == 4 {
			if err := victim.Kill(); err != nil {
				t.Fatal(err)
			}
			start()
		}
		time.Sleep(300 * time.Millisecond)
	})
	waitEqual(t, got, want)
}
