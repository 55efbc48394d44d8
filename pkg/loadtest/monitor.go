package loadtest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/leakline/leakline/pkg/chstore"
)

// monitor samples the run (rates, lag, findings, pages, memory) every
// SampleInterval, prints a progress line every `every`, and polls
// ClickHouse for newly stored findings every PollInterval.
type monitor struct {
	out      io.Writer
	every    time.Duration
	total    int
	duration time.Duration // rate mode's production time; 0 otherwise
	ctr      *progressCounters
	st       stages
	recv     *pageReceiver
	lag      *lagReader
	store    *chstore.Store
	db       string
	t0       time.Time
	// brokerBytes is what the embedded broker holds now.
	brokerBytes func() int64
	// clickhousePID is the ClickHouse server's process id, whose
	// resident set is sampled (0: not sampled, Point.ClickHouseRSSMB -1).
	clickhousePID int

	mu        sync.Mutex
	produced  time.Time // when production ended
	stored    map[string]time.Time
	series    []Point
	maxLag    map[string]int64
	heapMax   int64
	brokerMax int64
}

func (m *monitor) setProduced(t time.Time) {
	m.mu.Lock()
	m.produced = t
	m.mu.Unlock()
}

func (m *monitor) sample(ctx context.Context) {
	tick := time.NewTicker(SampleInterval)
	defer tick.Stop()
	lastT, lastProduced, lastStored := m.t0, int64(0), uint64(0)
	lastPrint := m.t0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			lag, err := m.lag.Lag(lctx)
			cancel()
			if err != nil {
				lag = map[string]int64{}
				for _, g := range lagGroups {
					lag[g.group] = -1
				}
			}
			produced := m.ctr.produced.Load()
			stored, _ := m.st.eventsStored(ctx)
			findings := m.st.findings(ctx)
			_, incidents, _ := m.recv.Pages()
			broker := m.brokerBytes()
			dt := now.Sub(lastT).Seconds()
			pt := Point{
				T: now.Sub(m.t0).Seconds(), ProducedEPS: float64(produced-lastProduced) / dt,
				StoredEPS: float64(stored-min(stored, lastStored)) / dt, Lag: lag,
				Findings: findings, Pages: incidents, BrokerMB: float64(broker) / 1e6,
			}
			heap := m.readMemory(&pt)
			m.mu.Lock()
			m.series = append(m.series, pt)
			for g, v := range lag {
				m.maxLag[g] = max(m.maxLag[g], v)
			}
			m.heapMax = max(m.heapMax, heap)
			m.brokerMax = max(m.brokerMax, broker)
			nStored := len(m.stored)
			producedAt := m.produced
			m.mu.Unlock()
			lastT, lastProduced, lastStored = now, produced, max(stored, lastStored)
			if now.Sub(lastPrint) >= m.every {
				lastPrint = now
				m.print(now, pt, produced, stored, nStored, producedAt)
			}
		}
	}
}

// readMemory sets the memory fields of pt but BrokerMB and returns the
// Go heap objects' bytes (HeapMB).
func (m *monitor) readMemory(pt *Point) int64 {
	objects, live := goHeap()
	pt.HeapMB, pt.LiveHeapMB = float64(objects)/1e6, float64(live)/1e6
	pt.RSSMB, pt.ClickHouseRSSMB = rssMB(0), -1
	if m.clickhousePID > 0 {
		pt.ClickHouseRSSMB = rssMB(m.clickhousePID)
	}
	pt.ServicesRSSMB = m.st.rssMB()
	return objects
}

// rssMB is VmRSS of process pid (0: this one) in MB, -1 when unreadable.
func rssMB(pid int) float64 {
	b, err := currentRSS(pid)
	if err != nil {
		return -1
	}
	return float64(b) / 1e6
}

func (m *monitor) print(now time.Time, pt Point, produced int64, stored uint64, findingsStored int, producedAt time.Time) {
	var lag []string
	for _, g := range lagGroups {
		lag = append(lag, fmt.Sprintf("%s %d", g.short, pt.Lag[g.group]))
	}
	eta := "-"
	el := now.Sub(m.t0)
	switch {
	case !producedAt.IsZero():
		eta = "draining"
	case m.duration > 0:
		eta = (m.duration - el).Round(time.Second).String()
	case stored > 0:
		avg := float64(stored) / el.Seconds()
		eta = (time.Duration(float64(uint64(m.total)-min(stored, uint64(m.total)))/avg) * time.Second).Round(time.Second).String()
	}
	fmt.Fprintf(m.out, "  %6s  produced %d/%d (%.0f ev/s)  in ClickHouse %d (%.0f ev/s)  lag %s  findings %d (stored %d)  pages %d  live heap %.0f MB rss %.0f MB broker %.0f MB  eta %s\n",
		el.Round(time.Second), produced, m.total, pt.ProducedEPS, stored, pt.StoredEPS, strings.Join(lag, " "),
		pt.Findings, findingsStored, pt.Pages, pt.LiveHeapMB, pt.RSSMB, pt.BrokerMB, eta)
}

func (m *monitor) pollFindings(ctx context.Context) {
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			m.pollOnce(ctx)
		}
	}
}

// pollOnce records the first time each finding id was seen in ClickHouse.
func (m *monitor) pollOnce(ctx context.Context) {
	ids, err := storedFindings(ctx, m.store, m.db)
	if err != nil {
		return // the next poll retries; a stored time is then later, never earlier
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if _, ok := m.stored[id]; !ok {
			m.stored[id] = now
		}
	}
}

func (m *monitor) storedCopy() map[string]time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.stored)
}

func (m *monitor) heapPeak() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	objects, _ := goHeap()
	return max(m.heapMax, objects)
}

func (m *monitor) brokerPeak() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.brokerMax
}

func (m *monitor) results() ([]Point, map[string]int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Point(nil), m.series...), maps.Clone(m.maxLag)
}
