package loadtest

import (
	"fmt"
	htmltpl "html/template"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// line is one series of a chart: (x, y) points.
type line struct {
	Name  string
	Color string
	XY    [][2]float64
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH         = 860, 260
	padL, padR, padT, padB = 70, 20, 30, 40
	plotW, plotH           = chartW - padL - padR, chartH - padT - padB
	chartTicks             = 5
	colorA, colorB, colorC = "#1f77b4", "#d62728", "#2ca02c"
	colorD, colorE         = "#9467bd", "#ff7f0e"
)

// chartColors are the colors of a chart's lines, in order.
var chartColors = []string{colorA, colorB, colorC, colorD, colorE, "#8c564b", "#e377c2", "#17becf", "#7f7f7f"}

// niceMax rounds v up to 1, 2 or 5 × a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func num(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// svgChart renders lines as an inline SVG line chart with axes, ticks and
// a legend. Points with a negative y (unknown) are skipped.
func svgChart(title, xLabel, yLabel string, lines []line) htmltpl.HTML {
	var xmax, ymax float64
	for _, l := range lines {
		for _, p := range l.XY {
			xmax, ymax = max(xmax, p[0]), max(ymax, p[1])
		}
	}
	xmax, ymax = niceMax(xmax), niceMax(ymax)
	x := func(v float64) float64 { return padL + v/xmax*plotW }
	y := func(v float64) float64 { return padT + plotH - v/ymax*plotH }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" font-family="sans-serif" font-size="12">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14" font-weight="bold">%s</text>`, padL, htmltpl.HTMLEscapeString(title))
	for i := 0; i <= chartTicks; i++ {
		yv := ymax * float64(i) / chartTicks
		xv := xmax * float64(i) / chartTicks
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, padL, padL+plotW, y(yv), y(yv))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-6, y(yv)+4, num(yv))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, x(xv), padT+plotH+16, num(xv))
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>`, padL, padL+plotW, padT+plotH, padT+plotH)
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>`, padL, padL, padT, padT+plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`, padL+plotW/2, chartH-6, htmltpl.HTMLEscapeString(xLabel))
	fmt.Fprintf(&b, `<text transform="translate(14 %d) rotate(-90)" text-anchor="middle">%s</text>`, padT+plotH/2, htmltpl.HTMLEscapeString(yLabel))
	for i, l := range lines {
		var pts []string
		for _, p := range l.XY {
			if p[1] < 0 {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1])))
		}
		if len(pts) > 0 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, l.Color, strings.Join(pts, " "))
		}
		lx := padL + plotW - 170
		ly := padT + 8 + 16*i
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="3" fill="%s"/><text x="%d" y="%d">%s</text>`, lx, ly, l.Color, lx+18, ly+5, htmltpl.HTMLEscapeString(l.Name))
	}
	b.WriteString(`</svg>`)
	return htmltpl.HTML(b.String()) //nolint:gosec // built above from numbers and escaped text
}

var chartPage = htmltpl.Must(htmltpl.New("chart").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Leakline load test</title>
<style>body{font-family:sans-serif;margin:24px;color:#222}td,th{padding:2px 10px;text-align:left}section{margin:18px 0}</style>
</head><body>
<h1>Leakline load test</h1>
<p>{{.Rep.Mode}} — {{.Rep.Events}} events, {{printf "%.0f" .Rep.ThroughputEPS}} events/s end to end;
latency produced → row in ClickHouse p50 {{printf "%.0f" .Rep.Latency.P50}} ms, p95 {{printf "%.0f" .Rep.Latency.P95}} ms, p99 {{printf "%.0f" .Rep.Latency.P99}} ms.</p>
<table><tr><th>scenario</th><th>kind</th><th>detected</th><th>paged</th></tr>
{{range .Rep.Scenarios}}<tr><td>{{.Name}}</td><td>{{.Kind}}</td><td>{{.Detected}}</td><td>{{.Paged}}</td></tr>
{{end}}</table>
{{range .Charts}}<section>{{.}}</section>
{{end}}</body></html>
`))

// WriteChart writes a self-contained HTML page (inline SVG, no script, no
// external resource) with the throughput, lag, latency and memory of the
// run.
func WriteChart(path string, r *Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("loadtest: chart: %w", err)
	}
	if err := renderChart(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("loadtest: chart: %w", err)
	}
	return nil
}

func renderChart(w io.Writer, r *Report) error {
	produced := line{Name: "produced", Color: colorA}
	stored := line{Name: "stored in ClickHouse", Color: colorB}
	lags := make([]line, len(lagGroups))
	for i, g := range lagGroups {
		lags[i] = line{Name: g.short, Color: chartColors[i%len(chartColors)]}
	}
	for _, p := range r.Series {
		produced.XY = append(produced.XY, [2]float64{p.T, p.ProducedEPS})
		stored.XY = append(stored.XY, [2]float64{p.T, p.StoredEPS})
		for i, g := range lagGroups {
			v, ok := p.Lag[g.group]
			if !ok {
				v = -1
			}
			lags[i].XY = append(lags[i].XY, [2]float64{p.T, float64(v)})
		}
	}
	p50 := line{Name: "p50", Color: colorA}
	p99 := line{Name: "p99", Color: colorB}
	for _, p := range r.LatencySeries {
		p50.XY = append(p50.XY, [2]float64{p.T, p.P50})
		p99.XY = append(p99.XY, [2]float64{p.T, p.P99})
	}
	data := struct {
		Rep    *Report
		Charts []htmltpl.HTML
	}{Rep: r, Charts: []htmltpl.HTML{
		svgChart("Throughput", "seconds since the start", "events/s", []line{produced, stored}),
		svgChart("Consumer lag (end offset − committed offset)", "seconds since the start", "records", lags),
		svgChart("Latency produced → row in ClickHouse, by second of production", "seconds since the start (produce time)", "ms", []line{p50, p99}),
		svgChart(memoryTitle(r), "seconds since the start", "MB", memoryLines(r.Series)),
	}}
	if err := chartPage.Execute(w, data); err != nil {
		return fmt.Errorf("loadtest: chart: %w", err)
	}
	return nil
}

// memoryLines are the memory series of the run: the load-test process's
// live Go heap and resident set, ClickHouse's resident set, the embedded
// broker's record bytes and each service process's resident set
// (-processes). Unknown values (negative, or a service missing from a
// sample) are not drawn.
func memoryLines(series []Point) []line {
	ls := []line{{Name: "live Go heap (load test)"}, {Name: "RSS load test"}, {Name: "RSS ClickHouse"}, {Name: "broker records"}}
	services := map[string]bool{}
	for _, p := range series {
		for name := range p.ServicesRSSMB {
			services[name] = true
		}
	}
	names := sortedKeys(services)
	for _, name := range names {
		ls = append(ls, line{Name: "RSS " + name})
	}
	for _, p := range series {
		ys := []float64{p.LiveHeapMB, p.RSSMB, p.ClickHouseRSSMB, p.BrokerMB}
		for _, name := range names {
			v, ok := p.ServicesRSSMB[name]
			if !ok {
				v = -1
			}
			ys = append(ys, v)
		}
		for i, y := range ys {
			ls[i].XY = append(ls[i].XY, [2]float64{p.T, y})
		}
	}
	for i := range ls {
		ls[i].Color = chartColors[i%len(chartColors)]
	}
	return ls
}

// memoryTitle names the memory chart and, when there is one, the window
// of the memory trend.
func memoryTitle(r *Report) string {
	if t := r.Memory.Trend; t != nil {
		return fmt.Sprintf("Memory (trend window %.0f–%.0f s: after the warm-up, until production ended)", t.FromS, t.ToS)
	}
	return "Memory"
}
