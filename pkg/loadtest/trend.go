package loadtest

import "math"

// minTrendPerThird is the fewest known samples each third of the trend
// window needs for a series to get a trend.
const minTrendPerThird = 2

// memoryTrend computes the memory trend of a run from its samples and its
// production time in seconds: the window is [TrendWarmup × produceS,
// produceS] in the samples' time (Point.T). It returns nil when no series
// has enough samples. Negative values are unknown and left out.
func memoryTrend(series []Point, produceS float64) *MemoryTrend {
	if !(produceS > 0) || math.IsInf(produceS, 0) {
		return nil
	}
	from, to := TrendWarmup*produceS, produceS
	of := func(v func(Point) (float64, bool)) *SeriesTrend { return seriesTrend(series, from, to, v) }
	t := &MemoryTrend{
		FromS:         from,
		ToS:           to,
		LiveHeap:      of(func(p Point) (float64, bool) { return p.LiveHeapMB, p.LiveHeapMB >= 0 }),
		ProcessRSS:    of(func(p Point) (float64, bool) { return p.RSSMB, p.RSSMB >= 0 }),
		ClickHouseRSS: of(func(p Point) (float64, bool) { return p.ClickHouseRSSMB, p.ClickHouseRSSMB >= 0 }),
	}
	for _, p := range series {
		for name := range p.ServicesRSSMB {
			if _, done := t.Services[name]; done {
				continue
			}
			if t.Services == nil {
				t.Services = map[string]*SeriesTrend{}
			}
			t.Services[name] = of(func(p Point) (float64, bool) {
				v, ok := p.ServicesRSSMB[name]
				return v, ok && v >= 0
			})
		}
	}
	if t.LiveHeap == nil && t.ProcessRSS == nil && t.ClickHouseRSS == nil {
		hasService := false
		for _, s := range t.Services {
			hasService = hasService || s != nil
		}
		if !hasService {
			return nil
		}
	}
	return t
}

// seriesTrend is the trend of the known values of value over the samples
// with from ≤ T ≤ to: the mean over each third of [from, to] and the
// least-squares slope in MB per minute; nil when a third has fewer than
// minTrendPerThird samples.
func seriesTrend(series []Point, from, to float64, value func(Point) (float64, bool)) *SeriesTrend {
	width := (to - from) / 3
	if !(width > 0) {
		return nil
	}
	var (
		sum    [3]float64
		n      [3]int
		st, sv float64
	)
	type tv struct{ t, v float64 }
	var pts []tv
	for _, p := range series {
		v, ok := value(p)
		if !ok || p.T < from || p.T > to || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		k := min(2, int((p.T-from)/width))
		sum[k] += v
		n[k]++
		st += p.T
		sv += v
		pts = append(pts, tv{p.T, v})
	}
	if min(n[0], n[1], n[2]) < minTrendPerThird {
		return nil
	}
	mt, mv := st/float64(len(pts)), sv/float64(len(pts))
	var sxy, sxx float64
	for _, p := range pts {
		sxy += (p.t - mt) * (p.v - mv)
		sxx += (p.t - mt) * (p.t - mt)
	}
	if sxx == 0 {
		return nil
	}
	out := &SeriesTrend{SlopeMBPerMin: round(sxy/sxx*60, 100), Samples: len(pts)}
	for k := range sum {
		out.Thirds[k] = round(sum[k]/float64(n[k]), 10)
	}
	return out
}

// round rounds v to 1/per (and -0 to 0).
func round(v, per float64) float64 {
	r := math.Round(v*per) / per
	if r == 0 {
		return 0
	}
	return r
}
