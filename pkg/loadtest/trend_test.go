package loadtest

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// linear returns one point per second from 0 to end (inclusive) with
// value(t) in every memory field, and the services' values per name.
func linear(end int, value func(t float64) float64, services map[string]func(t float64) float64) []Point {
	var s []Point
	for i := 0; i <= end; i++ {
		t := float64(i)
		p := Point{T: t, LiveHeapMB: value(t), RSSMB: value(t), ClickHouseRSSMB: value(t)}
		for name, f := range services {
			if p.ServicesRSSMB == nil {
				p.ServicesRSSMB = map[string]float64{}
			}
			if v := f(t); v >= 0 {
				p.ServicesRSSMB[name] = v
			}
		}
		s = append(s, p)
	}
	return s
}

func near(a, b float64) bool { return math.Abs(a-b) <= 0.051 }

func TestMemoryTrend(t *testing.T) {
	flat := func(float64) float64 { return 500 }
	// noisy is flat with a GC-like saw-tooth: 480, 500, 520, 480, …
	noisy := func(t float64) float64 { return 480 + 20*float64(int(t)%3) }
	grow := func(t float64) float64 { return 100 + 2*t } // 2 MB/s = 120 MB/min
	tests := []struct {
		name     string
		series   []Point
		produceS float64
		// want: nil for no trend; else thirds and slope of every series
		// the table names (the others are checked for nil).
		wantNil      bool
		from, to     float64
		thirds       [3]float64
		slope        float64
		wantCH       bool
		services     map[string][3]float64
		serviceSlope map[string]float64
	}{
		{name: "flat", series: linear(600, flat, nil), produceS: 600, from: 150, to: 600, thirds: [3]float64{500, 500, 500}, slope: 0, wantCH: true},
		// The last third, 450…600, holds 51 × 480, 50 × 500 and 50 × 520.
		{name: "saw-tooth", series: linear(600, noisy, nil), produceS: 600, from: 150, to: 600, thirds: [3]float64{500, 500, 499.9}, slope: 0, wantCH: true},
		// means of 100+2t over t = 150…299, 300…449, 450…600.
		{name: "growing", series: linear(600, grow, nil), produceS: 600, from: 150, to: 600, thirds: [3]float64{549, 849, 1150}, slope: 120, wantCH: true},
		{
			name: "drain after production ignored", produceS: 600, from: 150, to: 600, thirds: [3]float64{549, 849, 1150}, slope: 120, wantCH: true,
			series: linear(700, func(t float64) float64 {
				if t > 600 {
					return 1e6
				}
				return grow(t)
			}, nil),
		},
		{
			name: "clickhouse unknown", produceS: 600, from: 150, to: 600, thirds: [3]float64{500, 500, 500}, slope: 0,
			series: func() []Point {
				s := linear(600, flat, nil)
				for i := range s {
					s[i].ClickHouseRSSMB = -1
				}
				return s
			}(),
		},
		{
			name: "services", series: linear(600, flat, map[string]func(float64) float64{
				"detector": grow,
				"chsink":   flat,
				// the pager is missing from the last third: no trend for it
				"pager": func(t float64) float64 {
					if t >= 450 {
						return -1
					}
					return 30
				},
			}),
			produceS: 600, from: 150, to: 600, thirds: [3]float64{500, 500, 500}, slope: 0, wantCH: true,
			services:     map[string][3]float64{"detector": {549, 849, 1150}, "chsink": {500, 500, 500}},
			serviceSlope: map[string]float64{"detector": 120, "chsink": 0},
		},
		// 8 s of production: [2, 8] has thirds [2,4), [4,6), [6,8]: 2, 2, 3 samples.
		{name: "shortest with a trend", series: linear(8, grow, nil), produceS: 8, from: 2, to: 8, thirds: [3]float64{105, 109, 114}, slope: 120, wantCH: true},
		{name: "too few points", series: linear(4, grow, nil), produceS: 4, wantNil: true},
		{name: "one point", series: linear(0, grow, nil), produceS: 600, wantNil: true},
		{name: "no series", series: nil, produceS: 600, wantNil: true},
		{name: "no production time", series: linear(600, grow, nil), produceS: 0, wantNil: true},
		{name: "NaN production time", series: linear(600, grow, nil), produceS: math.NaN(), wantNil: true},
		{name: "all unknown", series: linear(600, func(float64) float64 { return -1 }, nil), produceS: 600, wantNil: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := memoryTrend(tc.series, tc.produceS)
			if tc.wantNil {
				if got != nil {
					t.Fatalf("want no trend, got %+v", got)
				}
				return
			}
			if got == nil {
				t.Fatal("no trend")
			}
			if got.FromS != tc.from || got.ToS != tc.to {
				t.Errorf("window [%v, %v], want [%v, %v]", got.FromS, got.ToS, tc.from, tc.to)
			}
			check := func(name string, s *SeriesTrend, thirds [3]float64, slope float64) {
				t.Helper()
				if s == nil {
					t.Errorf("%s: no trend", name)
					return
				}
				for k := range thirds {
					if !near(s.Thirds[k], thirds[k]) {
						t.Errorf("%s: thirds %v, want %v", name, s.Thirds, thirds)
						break
					}
				}
				if !near(s.SlopeMBPerMin, slope) {
					t.Errorf("%s: slope %v MB/min, want %v", name, s.SlopeMBPerMin, slope)
				}
			}
			check("live heap", got.LiveHeap, tc.thirds, tc.slope)
			check("process RSS", got.ProcessRSS, tc.thirds, tc.slope)
			if tc.wantCH {
				check("ClickHouse RSS", got.ClickHouseRSS, tc.thirds, tc.slope)
			} else if got.ClickHouseRSS != nil {
				t.Errorf("ClickHouse RSS: want no trend from unknown samples, got %+v", got.ClickHouseRSS)
			}
			for name, thirds := range tc.services {
				check(name, got.Services[name], thirds, tc.serviceSlope[name])
			}
			for name, s := range got.Services {
				if _, ok := tc.services[name]; !ok && s != nil {
					t.Errorf("%s: want no trend, got %+v", name, s)
				}
			}
			if tc.services == nil && got.Services != nil {
				t.Errorf("services %v in-process", got.Services)
			}
		})
	}
}

// TestReportMemoryTrend: the trend's JSON names and its table lines.
func TestReportMemoryTrend(t *testing.T) {
	rep := &Report{Memory: Memory{Trend: memoryTrend(linear(600, func(t float64) float64 { return 100 + 2*t },
		map[string]func(float64) float64{"detector": func(float64) float64 { return 40 }}), 600)}}
	b, err := json.Marshal(rep.Memory)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Trend struct {
			FromS    *float64 `json:"from_s"`
			ToS      *float64 `json:"to_s"`
			LiveHeap struct {
				Thirds []float64 `json:"thirds_mb"`
				Slope  *float64  `json:"slope_mb_per_min"`
			} `json:"live_heap_mb"`
			ProcessRSS    map[string]any            `json:"process_rss_mb"`
			ClickHouseRSS map[string]any            `json:"clickhouse_rss_mb"`
			Services      map[string]map[string]any `json:"services_rss_mb"`
		} `json:"trend"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	tr := m.Trend
	if tr.FromS == nil || *tr.FromS != 150 || tr.ToS == nil || *tr.ToS != 600 || len(tr.LiveHeap.Thirds) != 3 ||
		tr.LiveHeap.Slope == nil || *tr.LiveHeap.Slope != 120 || tr.ProcessRSS == nil || tr.ClickHouseRSS == nil || tr.Services["detector"] == nil {
		t.Errorf("JSON %s", b)
	}

	var out strings.Builder
	PrintReport(&out, rep)
	for _, want := range []string{
		"after a 25 % warm-up (150–600 s)",
		"load-test live Go heap         549 →     849 →    1150 MB     +120.0 MB/min",
		"load-test process RSS ",
		"ClickHouse RSS ",
		"detector RSS                    40 →      40 →      40 MB       +0.0 MB/min",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table has no %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	PrintReport(&out, &Report{})
	if !strings.Contains(out.String(), "memory trend: production too short to tell") {
		t.Errorf("no trend not said:\n%s", out.String())
	}
}
