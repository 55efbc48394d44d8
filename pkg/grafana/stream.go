package grafana

import (
	"context"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/finding"
)

// StreamPathFindings is the live stream of new findings: Grafana channel
// ds/<datasource uid>/findings. A findings query with "stream": true names
// it in its frame's meta, so the panel keeps appending what arrives.
const StreamPathFindings = "findings"

// streamBatch bounds the rows one poll reads.
const streamBatch = 1000

// SubscribeStream allows any signed-in user (Viewers included: the stream
// carries masked evidence only, like every frame) to subscribe to the
// findings stream; other paths do not exist.
func (d *Datasource) SubscribeStream(_ context.Context, req *backend.SubscribeStreamRequest) (*backend.SubscribeStreamResponse, error) {
	if req.Path != StreamPathFindings {
		return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}, nil
	}
	initial, err := backend.NewInitialFrame(findingsFrame(nil), data.IncludeSchemaOnly)
	if err != nil {
		return nil, err
	}
	return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusOK, InitialData: initial}, nil
}

// PublishStream refuses every publication: the stream is read-only.
func (d *Datasource) PublishStream(context.Context, *backend.PublishStreamRequest) (*backend.PublishStreamResponse, error) {
	return &backend.PublishStreamResponse{Status: backend.PublishStreamStatusPermissionDenied}, nil
}

// RunStream polls ClickHouse every StreamInterval for finding rows stored
// since the last poll (inserted_at, by the server's clock) and sends each
// new row — a new finding or a new revision of one — as a findings frame.
// It starts after the newest row stored when it began. A failing poll is
// logged and retried; RunStream returns when ctx ends.
func (d *Datasource) RunStream(ctx context.Context, req *backend.RunStreamRequest, sender *backend.StreamSender) error {
	if req.Path != StreamPathFindings {
		return backend.DownstreamErrorf("no stream %q", req.Path)
	}
	p := &poller{}
	interval := time.Duration(d.settings.StreamInterval)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	started := false
	for {
		if st, err := d.storeFor(ctx); err != nil {
			d.log.Warn("findings stream: connect", "error", err)
		} else if !started {
			started = p.start(ctx, st, d.log.Warn) == nil
		} else {
			fs, err := p.poll(ctx, st)
			if err != nil {
				d.log.Warn("findings stream: poll", "error", err)
			} else if len(fs) > 0 {
				if err := sender.SendFrame(findingsFrame(fs), data.IncludeAll); err != nil {
					return err
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// poller remembers what a stream has seen: rows are read from the second
// of the newest row seen on (inserted_at has whole seconds), and rows of
// that second already sent are skipped.
type poller struct {
	since time.Time
	seen  map[rowKey]bool // rows stored in the second `since`
}

type rowKey struct {
	id       string
	revision uint64
}

// start positions the poller after the newest stored row.
func (p *poller) start(ctx context.Context, st *chstore.Store, warn func(string, ...any)) error {
	f, err := st.FindingsFreshness(ctx)
	if err != nil {
		warn("findings stream: start", "error", err)
		return err
	}
	p.seen = map[rowKey]bool{}
	if f.Rows == 0 {
		p.since = time.Unix(0, 0).UTC()
		return nil
	}
	p.since = f.LastInserted
	_, err = p.poll(ctx, st) // mark the rows of that second as seen
	if err != nil {
		warn("findings stream: start", "error", err)
	}
	return err
}

// poll returns the rows stored since the last poll, oldest first.
func (p *poller) poll(ctx context.Context, st *chstore.Store) ([]finding.Finding, error) {
	rows, err := st.FindingsInsertedSince(ctx, p.since, streamBatch)
	if err != nil {
		return nil, err
	}
	var out []finding.Finding
	for _, r := range rows {
		k := rowKey{r.FindingID, r.Revision}
		if r.InsertedAt.After(p.since) {
			p.since, p.seen = r.InsertedAt, map[rowKey]bool{}
		}
		if p.seen[k] {
			continue
		}
		p.seen[k] = true
		out = append(out, r.Finding)
	}
	if len(rows) == streamBatch && !rows[len(rows)-1].InsertedAt.After(rows[0].InsertedAt) {
		// A full batch within one second: skip the rest of that second
		// rather than reading the same rows forever.
		p.since, p.seen = p.since.Add(time.Second), map[rowKey]bool{}
	}
	return out, nil
}
