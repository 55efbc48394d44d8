package loadtest

import (
	"slices"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/kafkaio"
)

// TestRateDefaults: rate mode fills the sink batch, flush interval and
// broker retention it needs at high rates, and keeps what was asked for.
func TestRateDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Options
		want Options
	}{
		{"zero", Options{}, Options{SinkBatch: rateSinkBatch, SinkFlush: rateSinkFlush, Retention: rateRetention}},
		{"set", Options{SinkBatch: 7, SinkFlush: time.Millisecond, Retention: 9}, Options{SinkBatch: 7, SinkFlush: time.Millisecond, Retention: 9}},
		{"retention off", Options{Retention: -1}, Options{SinkBatch: rateSinkBatch, SinkFlush: rateSinkFlush, Retention: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.rateDefaults()
			if got.SinkBatch != tt.want.SinkBatch || got.SinkFlush != tt.want.SinkFlush || got.Retention != tt.want.Retention {
				t.Fatalf("got batch %d flush %v retention %d, want %d %v %d", got.SinkBatch, got.SinkFlush, got.Retention,
					tt.want.SinkBatch, tt.want.SinkFlush, tt.want.Retention)
			}
		})
	}
}

// TestBrokerRetention: the bound covers the topics every event crosses,
// not the findings (read back by the scorer) nor the dead letters, and is
// held back by every consumer group the load test watches.
func TestBrokerRetention(t *testing.T) {
	topics := kafkaio.DefaultTopics()
	if r := brokerRetention(0, topics); r.Bytes != 0 || len(r.Topics) != 0 {
		t.Fatalf("retention 0 must be off: %+v", r)
	}
	if r := brokerRetention(-1, topics); r.Bytes != 0 {
		t.Fatalf("negative retention must be off: %+v", r)
	}
	r := brokerRetention(1<<20, topics)
	if r.Bytes != 1<<20 {
		t.Fatalf("bytes %d", r.Bytes)
	}
	want := []string{topics.CRMAccess, topics.Outbound, topics.Events, topics.EventMeta}
	if !slices.Equal(r.Topics, want) {
		t.Fatalf("topics %v, want %v", r.Topics, want)
	}
	for _, g := range lagGroups {
		if !slices.Contains(r.Groups, g.group) {
			t.Errorf("group %s does not hold retention back: %v", g.group, r.Groups)
		}
	}
	for _, tp := range []string{topics.Findings, topics.DeadLetter} {
		if slices.Contains(r.Topics, tp) {
			t.Errorf("topic %s must not be cut", tp)
		}
	}
}

// TestParseStatCPU reads utime + stime from /proc/PID/stat lines, also
// when the command name holds spaces and parentheses.
func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name, line string
		want       time.Duration
		ok         bool
	}{
		{"plain", "123 (clickhouse) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 0 0", 3 * time.Second, true},
		{"odd name", "9 (a b) c)) R 1 2 3 4 5 6 7 8 9 10 1 2 0 0", 30 * time.Millisecond, true},
		{"short", "9 (x) R 1 2 3", 0, false},
		{"no name", "garbage", 0, false},
		{"not numbers", "9 (x) R 1 2 3 4 5 6 7 8 9 10 a b 0 0", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.line))
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("got %v, %v; want %v, ok %v", got, err, tt.want, tt.ok)
			}
		})
	}
}

// TestCPUSince: per-event figures are the differences over the events.
func TestCPUSince(t *testing.T) {
	s0 := cpuSample{self: time.Second, ch: 2 * time.Second, services: map[string]time.Duration{"detector": time.Second}}
	s1 := cpuSample{self: 3 * time.Second, ch: 2500 * time.Millisecond,
		services: map[string]time.Duration{"detector": 1700 * time.Millisecond, "normalizer": 300 * time.Millisecond}}
	c := s1.since(s0, 100_000)
	if c.ProcessSeconds != 2 || c.ClickHouseSeconds != 0.5 || c.ProcessUSPerEvent != 20 || c.ClickHouseUSPerEvent != 5 ||
		c.ServicesSeconds != 1 || c.ServicesUSPerEvent != 10 || c.ServiceUSPerEvent["detector"] != 7 || c.ServiceUSPerEvent["normalizer"] != 3 {
		t.Fatalf("%+v", c)
	}
	if c := (cpuSample{self: 2 * time.Second}).since(cpuSample{self: time.Second}, 10); c.ServicesSeconds != 0 || c.ServiceUSPerEvent != nil {
		t.Fatalf("in-process run with service CPU: %+v", c)
	}
}
