package kafkaio

import (
	"fmt"
	"sort"
)

// OffsetTracker tracks the messages of one topic-partition that are processed
// in parallel, and tells which offset may be committed: a Kafka commit
// covers every earlier offset of the partition, so only the highest offset
// such that it and every earlier begun offset are done is safe.
//
// Begin offsets in increasing order (the order a partition delivers them;
// gaps are fine), and mark each Done in any order. After a rebalance that
// may redeliver earlier offsets, Reset the tracker. The zero value is ready
// to use. An OffsetTracker is not safe for concurrent use.
type OffsetTracker struct {
	pending []trackedOffset // begun and not yet committable, ascending
	head    int             // pending[:head] is consumed

	last      int64 // highest begun offset
	begun     bool
	committed int64 // highest committable offset
	hasCommit bool
	done      int // number of done entries in pending[head:]
}

type trackedOffset struct {
	offset int64
	done   bool
}

// Begin records that processing of offset started. It fails, changing
// nothing, unless offset is higher than every offset begun before.
func (t *OffsetTracker) Begin(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("kafkaio: OffsetTracker.Begin(%d): negative offset", offset)
	}
	if t.begun && offset <= t.last {
		return fmt.Errorf("kafkaio: OffsetTracker.Begin(%d): not above the last begun offset %d", offset, t.last)
	}
	if t.head > 0 && t.head == len(t.pending) {
		t.pending, t.head = t.pending[:0], 0
	}
	t.pending = append(t.pending, trackedOffset{offset: offset})
	t.last, t.begun = offset, true
	return nil
}

// Done records that processing of offset finished. It fails, changing
// nothing, if offset is not begun or already done.
func (t *OffsetTracker) Done(offset int64) error {
	p := t.pending[t.head:]
	i := sort.Search(len(p), func(i int) bool { return p[i].offset >= offset })
	if i == len(p) || p[i].offset != offset || p[i].done {
		return fmt.Errorf("kafkaio: OffsetTracker.Done(%d): offset not in progress", offset)
	}
	p[i].done = true
	t.done++
	// Advance over the finished prefix.
	for t.head < len(t.pending) && t.pending[t.head].done {
		t.committed, t.hasCommit = t.pending[t.head].offset, true
		t.head++
		t.done--
	}
	// Compact once the consumed prefix dominates, keeping appends amortized.
	if t.head > 64 && t.head*2 > len(t.pending) {
		n := copy(t.pending, t.pending[t.head:])
		t.pending, t.head = t.pending[:n], 0
	}
	return nil
}

// Committable returns the highest offset such that it and every earlier
// begun offset are done; ok is false if there is none yet. Commit it as
// "processed through offset" (kafka-go's CommitMessages with a message of
// that offset commits offset+1, the next to read).
func (t *OffsetTracker) Committable() (offset int64, ok bool) {
	return t.committed, t.hasCommit
}

// InFlight returns how many begun offsets are not done yet.
func (t *OffsetTracker) InFlight() int {
	return len(t.pending) - t.head - t.done
}

// Reset forgets every offset, as if the tracker were new.
func (t *OffsetTracker) Reset() {
	*t = OffsetTracker{pending: t.pending[:0]}
}
