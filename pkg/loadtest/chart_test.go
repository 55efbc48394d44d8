package loadtest

import (
	"strings"
	"testing"
)

// TestChartMemory: the memory panel draws live heap, process RSS,
// ClickHouse RSS, broker records and each service's RSS over time, leaves
// unknown samples out, and names the trend window.
func TestChartMemory(t *testing.T) {
	series := []Point{
		{T: 1, LiveHeapMB: 10, RSSMB: 50, ClickHouseRSSMB: -1, BrokerMB: 5, ServicesRSSMB: map[string]float64{"detector": 30}},
		{T: 2, LiveHeapMB: 11, RSSMB: 52, ClickHouseRSSMB: 300, BrokerMB: 6, ServicesRSSMB: map[string]float64{"detector": 31, "chsink": 20}},
	}
	ls := memoryLines(series)
	want := []struct {
		name string
		ys   []float64
	}{
		{"live Go heap (load test)", []float64{10, 11}},
		{"RSS load test", []float64{50, 52}},
		{"RSS ClickHouse", []float64{-1, 300}},
		{"broker records", []float64{5, 6}},
		{"RSS chsink", []float64{-1, 20}},
		{"RSS detector", []float64{30, 31}},
	}
	if len(ls) != len(want) {
		t.Fatalf("%d lines, want %d: %+v", len(ls), len(want), ls)
	}
	colors := map[string]bool{}
	for i, w := range want {
		l := ls[i]
		colors[l.Color] = true
		if l.Name != w.name || len(l.XY) != len(w.ys) {
			t.Errorf("line %d: %+v, want %s with %v", i, l, w.name, w.ys)
			continue
		}
		for j, y := range w.ys {
			if l.XY[j] != [2]float64{series[j].T, y} {
				t.Errorf("%s point %d: %v, want (%v, %v)", l.Name, j, l.XY[j], series[j].T, y)
			}
		}
	}
	if len(colors) != len(want) {
		t.Errorf("%d colors for %d lines", len(colors), len(want))
	}
	if ls := memoryLines(series[:1:1]); len(ls) != 5 {
		t.Errorf("one service: %d lines, want 5", len(ls))
	}

	rep := &Report{Series: series, Memory: Memory{Trend: &MemoryTrend{FromS: 150, ToS: 600}}}
	var b strings.Builder
	if err := renderChart(&b, rep); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	i := strings.Index(html, "Memory (trend window 150–600 s")
	if i < 0 {
		t.Fatalf("no memory chart:\n%s", html)
	}
	mem := html[i:]
	mem = mem[:strings.Index(mem, "</svg>")]
	// ClickHouse and chsink have one known point each: a polyline of one
	// point is still drawn.
	if n := strings.Count(mem, "<polyline"); n != len(want) {
		t.Errorf("%d lines in the memory chart, want %d", n, len(want))
	}
	for _, w := range want {
		if !strings.Contains(mem, ">"+w.name+"<") {
			t.Errorf("no legend %q", w.name)
		}
	}
}
