package detector_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/embedkafka"
	"github.com/leakline/leakline/pkg/event"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/testenv"
)

// brokerChildEnv makes the test binary run only the embedded broker (see
// TestMain): the throughput benchmark starts it as a separate process so the
// detector's CPU time can be measured apart from the broker's.
const brokerChildEnv = "LEAKLINE_BENCH_BROKER_CHILD"

var detectorProfile = flag.String("detector.cpuprofile", "", "write a CPU profile of BenchmarkDetectorThroughput's measured interval (the detector process only) to this file")

func TestMain(m *testing.M) {
	if os.Getenv(brokerChildEnv) == "1" {
		os.Exit(brokerChild())
	}
	os.Exit(m.Run())
}

// brokerChild runs an embedded broker, prints its address, and answers each
// line on stdin with its own CPU seconds (user + system) until stdin closes.
func brokerChild() int {
	b, err := embedkafka.Start(embedkafka.Options{})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	defer b.Close()
	fmt.Println(b.Addrs()[0])
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fmt.Println(strconv.FormatFloat(cpuSeconds(), 'f', 6, 64))
	}
	return 0
}

// cpuSeconds is this process's user + system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// childBroker is the embedded broker running in a child process.
type childBroker struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	addr string
}

func startChildBroker(tb testing.TB) *childBroker {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), brokerChildEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		testenv.Unavailable(tb, "Kafka broker (child process)", err)
		return nil
	}
	c := &childBroker{cmd: cmd, in: in, out: bufio.NewReader(out)}
	tb.Cleanup(func() { _ = c.in.Close(); _ = c.cmd.Wait() })
	line, err := c.out.ReadString('\n')
	line = strings.TrimSpace(line)
	if err != nil || strings.HasPrefix(line, "error:") {
		testenv.Unavailable(tb, "Kafka broker (child process)", fmt.Errorf("%s %v", line, err))
		return nil
	}
	c.addr = line
	return c
}

// cpu asks the broker process for its CPU seconds so far.
func (c *childBroker) cpu(tb testing.TB) float64 {
	tb.Helper()
	if _, err := io.WriteString(c.in, "cpu\n"); err != nil {
		tb.Fatal(err)
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		tb.Fatal(err)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(line), 64)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// benchMessages returns n normalized events of ~0.5 KB as dlp.events
// messages: 80 % CRM reads, 20 % mails, 5,000 actors.
func benchMessages(tb testing.TB, n int) []kafka.Message {
	t0 := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	text := strings.Repeat("Thanks for the update, the renewal is on track and we follow up next week. ", 4)
	msgs := make([]kafka.Message, 0, n)
	for i := 0; i < n; i++ {
		actor := event.Actor{UID: fmt.Sprintf("u-%05d", i%5000), Email: "a@corp.example", Department: "support"}
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		id := fmt.Sprintf("e-%08d", i)
		ev := &event.Event{Kind: event.KindCRMAccess, EventID: id, Time: at, Actor: actor, CRM: &event.CRMAccess{
			SchemaVersion: 1, ClassUID: event.ClassAPIActivity, ActivityID: 2, EventID: id, Time: at, Actor: actor,
			Action: event.ActionView, TicketID: "T-1", Records: event.Records{IDs: []string{fmt.Sprintf("C-%07d", i)}, Count: 1, Fields: []string{"name", "email"}}}}
		if i%5 == 0 {
			ev = &event.Event{Kind: event.KindOutbound, EventID: id, Time: at, Actor: actor, Outbound: &event.Outbound{
				SchemaVersion: 1, ClassUID: event.ClassEmailActivity, ActivityID: 1, EventID: id, Time: at, Actor: actor, Channel: event.ChannelEmail,
				Destination: event.Destination{Recipients: []string{"x@corp.example"}, Domains: []string{"corp.example"}},
				Content:     event.Content{Size: int64(len(text)), Text: text}}}
		}
		v, err := event.MarshalEvent(ev)
		if err != nil {
			tb.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(actor.UID), Value: v, Time: at})
	}
	return msgs
}

// BenchmarkDetectorThroughput measures the whole detector stage against the
// embedded broker: fetch from dlp.events, decode, inspect, evaluate the
// default pack, publish findings and event metadata, commit. Events are
// ~0.5 KB: 80 % CRM reads, 20 % mails. Run with -benchtime=1x.
//
// The broker runs in a child process (this test binary, see TestMain), so
// the benchmark process is the detector alone: detector-cpu-s is the CPU
// time (user + system, GC included) this process spent from the start of
// Run until the last event was processed, and events/cpu-s — events per
// second per core — is the number of events over it. broker-cpu-s is the
// broker's CPU time over the same interval, events/s the wall-clock rate
// with both processes sharing the machine. value-bytes/msg is the mean
// size of a dlp.events message value (the envelope as MarshalEvent writes
// it).
func BenchmarkDetectorThroughput(b *testing.B) {
	const n = 200_000
	broker := startChildBroker(b)
	kc := kafkaio.Config{Brokers: []string{broker.addr}, ClientID: "bench"}
	ctx := context.Background()
	if err := kafkaio.EnsureTopics(ctx, kc, partitions, kafkaio.DefaultTopics().All()...); err != nil {
		b.Fatal(err)
	}
	msgs := benchMessages(b, n)
	var size int
	for _, m := range msgs {
		size += len(m.Value)
	}
	w := kafkaio.NewWriter(kc, kafkaio.DefaultTopics().Events)
	for i := 0; i < len(msgs); i += 5000 {
		if err := w.Write(ctx, msgs[i:min(i+5000, len(msgs))]...); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	msgs = nil
	for b.Loop() {
		d := newDetector(b, kc)
		if *detectorProfile != "" {
			f, err := os.Create(*detectorProfile)
			if err != nil {
				b.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				b.Fatal(err)
			}
			defer f.Close()
		}
		bcpu0, cpu0, start := broker.cpu(b), cpuSeconds(), time.Now()
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- d.Run(rctx) }()
		for d.Stats().Events < n {
			time.Sleep(2 * time.Millisecond)
		}
		cpu, bcpu, el := cpuSeconds()-cpu0, broker.cpu(b)-bcpu0, time.Since(start)
		pprof.StopCPUProfile()
		cancel()
		<-done
		b.ReportMetric(float64(n)/el.Seconds(), "events/s")
		b.ReportMetric(cpu, "detector-cpu-s")
		b.ReportMetric(bcpu, "broker-cpu-s")
		b.ReportMetric(float64(n)/cpu, "events/cpu-s")
		b.ReportMetric(float64(size)/n, "value-bytes/msg")
	}
}
