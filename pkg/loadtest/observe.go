package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/finding"
	"github.com/leakline/leakline/pkg/fleet"
	"github.com/leakline/leakline/pkg/kafkaio"
)

// peakRSS returns VmHWM (peak resident set size) of process pid in bytes;
// pid 0 is this process.
func peakRSS(pid int) (int64, error) { return procStatus(pid, "VmHWM") }

// currentRSS returns VmRSS (resident set size now) of process pid in
// bytes; pid 0 is this process.
func currentRSS(pid int) (int64, error) { return procStatus(pid, "VmRSS") }

func procStatus(pid int, key string) (int64, error) {
	v, err := fleet.StatusBytes(pid, key)
	if err != nil {
		return 0, fmt.Errorf("loadtest: %w", err)
	}
	return v, nil
}

// goHeap reads this process's Go heap (runtime/metrics): objects is the
// memory of heap objects not yet freed, garbage not yet swept included
// (/memory/classes/heap/objects:bytes); live is what the last GC marked
// live (/gc/heap/live:bytes), the part that stays.
func goHeap() (objects, live int64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	v := func(i int) int64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(s[i].Value.Uint64())
	}
	return v(0), v(1)
}

// storedFindings returns the ids of the findings in ClickHouse now.
func storedFindings(ctx context.Context, st *chstore.Store, db string) ([]string, error) {
	rows, err := st.Conn().Query(ctx, "SELECT finding_id FROM "+db+".findings GROUP BY finding_id")
	if err != nil {
		return nil, fmt.Errorf("loadtest: poll findings: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("loadtest: poll findings: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// maxLatencySamples bounds the events whose latency is read back.
const maxLatencySamples = 50000

// readLatency reads, for a hash-sample of about maxLatencySamples of the
// events, when their summary row was written to ClickHouse (the first
// write: min(inserted_at_ms)), and pairs it with when the event was
// produced (producedAt; events it does not know are skipped).
func readLatency(ctx context.Context, st *chstore.Store, db string, events int, producedAt func(id string) (time.Time, bool)) ([]latencySample, error) {
	mod := max(1, events/maxLatencySamples)
	q := "SELECT event_id, min(inserted_at_ms) FROM " + db + ".events WHERE inserted_at_ms > 0 AND cityHash64(event_id) % " +
		strconv.Itoa(mod) + " = 0 GROUP BY event_id"
	rows, err := st.Conn().Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("loadtest: read latency: %w", err)
	}
	defer rows.Close()
	var out []latencySample
	for rows.Next() {
		var (
			id string
			ms uint64
		)
		if err := rows.Scan(&id, &ms); err != nil {
			return nil, fmt.Errorf("loadtest: read latency: %w", err)
		}
		if p, ok := producedAt(id); ok {
			out = append(out, latencySample{produced: p, stored: time.UnixMilli(int64(ms))})
		}
	}
	return out, rows.Err()
}

// firstWindowEnds maps each finding id to the window end of its first
// revision (window ends only grow across revisions), read from every
// revision the detector published on the findings topic: ClickHouse keeps
// only the latest once ReplacingMergeTree merged the parts.
func firstWindowEnds(ctx context.Context, kc kafkaio.Config, topic string, partitions int) (map[string]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	m := map[string]time.Time{}
	for part := 0; part < partitions; part++ {
		_, err := kafkaio.ReplayPartition(ctx, kc, topic, part, func(msg kafka.Message) error {
			var f finding.Finding
			if err := json.Unmarshal(msg.Value, &f); err == nil {
				if t, ok := m[f.FindingID]; !ok || f.WindowEnd.Before(t) {
					m[f.FindingID] = f.WindowEnd.UTC()
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("loadtest: findings partition %d: %w", part, err)
		}
	}
	return m, nil
}

// selfCPU is the CPU time (user + system) this process has used.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("loadtest: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times (100 on
// Linux for every architecture Go supports).
const clockTicks = 100

// procCPU is the CPU time (utime + stime) process pid has used, from
// /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("loadtest: process CPU: %w", err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/PID/stat line; the command name (field 2) may hold spaces and
// parentheses, so fields are counted after its last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("loadtest: process CPU: malformed stat line")
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, errors.New("loadtest: process CPU: malformed stat line")
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 63)
	st, err2 := strconv.ParseUint(string(f[12]), 10, 63)
	if err1 != nil || err2 != nil {
		return 0, errors.New("loadtest: process CPU: malformed stat line")
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}
