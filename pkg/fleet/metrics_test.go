package fleet_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/leakline/leakline/pkg/fleet"
)

func TestParseMetrics(t *testing.T) {
	tests := []struct {
		name string
		text string
		want map[string]float64
	}{
		{"counter with labels sorted", `# TYPE leakline_messages_consumed_total counter
leakline_messages_consumed_total{topic="dlp.events",group="leakline-detector"} 42
`, map[string]float64{`leakline_messages_consumed_total{group="leakline-detector",topic="dlp.events"}`: 42}},
		{"gauge without labels", "# TYPE go_goroutines gauge\ngo_goroutines 17\n", map[string]float64{"go_goroutines": 17}},
		{"untyped", "some_value 1.5\n", map[string]float64{"some_value": 1.5}},
		{"histogram", `# TYPE leakline_sink_batch_rows histogram
leakline_sink_batch_rows_bucket{le="1"} 2
leakline_sink_batch_rows_bucket{le="4"} 3
leakline_sink_batch_rows_bucket{le="+Inf"} 5
leakline_sink_batch_rows_sum 30
leakline_sink_batch_rows_count 5
`, map[string]float64{
			`leakline_sink_batch_rows_bucket{le="1"}`: 2, `leakline_sink_batch_rows_bucket{le="4"}`: 3,
			`leakline_sink_batch_rows_bucket{le="+Inf"}`: 5, "leakline_sink_batch_rows_sum": 30, "leakline_sink_batch_rows_count": 5,
		}},
		{"summary", `# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0.5"} 0.001
go_gc_duration_seconds_sum 0.01
go_gc_duration_seconds_count 7
`, map[string]float64{`go_gc_duration_seconds{quantile="0.5"}`: 0.001, "go_gc_duration_seconds_sum": 0.01, "go_gc_duration_seconds_count": 7}},
		{"escaped label value", `x{a="q\"uote"} 1` + "\n", map[string]float64{`x{a="q\"uote"}`: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := fleet.ParseMetrics(strings.NewReader(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestParseMetricsRejectsGarbage(t *testing.T) {
	for _, text := range []string{"x{a=1} 1\n", "# TYPE x counter\nx one\n"} {
		if m, err := fleet.ParseMetrics(strings.NewReader(text)); err == nil {
			t.Errorf("ParseMetrics(%q) = %v, want an error", text, m)
		}
	}
}

func TestSeries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels []string
		want   string
	}{
		{"up", nil, "up"},
		{"lag", []string{"topic", "t", "group", "g"}, `lag{group="g",topic="t"}`},
		{"odd", []string{"a", "1", "dangling"}, `odd{a="1"}`},
	} {
		if got := fleet.Series(tc.name, tc.labels...); got != tc.want {
			t.Errorf("Series(%q, %q) = %s, want %s", tc.name, tc.labels, got, tc.want)
		}
	}
}

func FuzzParseMetrics(f *testing.F) {
	f.Add("# TYPE a counter\na{b=\"c\"} 1\n")
	f.Add("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n")
	f.Add("x 1 1700000000000\n")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := fleet.ParseMetrics(strings.NewReader(text))
		if err != nil {
			return
		}
		for k := range m {
			if k == "" {
				t.Fatalf("empty series key from %q", text)
			}
		}
	})
}

func TestLineLogger(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   []string
	}{
		{"one line", []string{"hello\n"}, []string{"svc: hello"}},
		{"split across writes", []string{"hel", "lo\nwor", "ld\n"}, []string{"svc: hello", "svc: world"}},
		{"unterminated tail held back", []string{"a\nb"}, []string{"svc: a"}},
		{"empty line", []string{"\n"}, []string{"svc: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			w := fleet.LineLogger(func(format string, args ...any) { got = append(got, fmt.Sprintf(format, args...)) }, "svc")
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("logged %q, want %q", got, tc.want)
			}
		})
	}
}
