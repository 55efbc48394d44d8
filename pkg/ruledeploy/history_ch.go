package ruledeploy

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/leakline/leakline/pkg/chstore"
)

// Record stores a deploy in ClickHouse's rule_packs table
// (schemas/clickhouse/0003_rule_packs.sql): version, author, message,
// checksum, deployed_at and, as body, the whole signed message (seq, files,
// signature), so a stored deploy can be verified and republished. The
// table is ordered by version: a rollback that redeploys a version
// replaces that version's row under FINAL (the newest deploy wins).
func Record(ctx context.Context, st *chstore.Store, m *Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	table := "`" + st.Database() + "`.rule_packs" // Database is a validated identifier
	batch, err := st.Conn().PrepareBatch(ctx, "INSERT INTO "+table+" (version, author, message, checksum, deployed_at, body)")
	if err != nil {
		return fmt.Errorf("ruledeploy: record seq %d in ClickHouse: %w", m.Seq, err)
	}
	if err := batch.Append(m.Version, m.Author, m.Message, m.Checksum, m.Time.UTC().Truncate(time.Second), string(body)); err != nil {
		_ = batch.Abort()
		return fmt.Errorf("ruledeploy: record seq %d in ClickHouse: %w", m.Seq, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("ruledeploy: record seq %d in ClickHouse: %w", m.Seq, err)
	}
	return nil
}

// Recorded reads the deploys stored in ClickHouse (one per pack version,
// the newest deploy of each), oldest first. A row whose body does not
// decode is returned with Err set.
func Recorded(ctx context.Context, st *chstore.Store) ([]Entry, error) {
	table := "`" + st.Database() + "`.rule_packs"
	rows, err := st.Conn().Query(ctx, "SELECT body FROM "+table+" FINAL ORDER BY deployed_at, version")
	if err != nil {
		return nil, fmt.Errorf("ruledeploy: read rule_packs: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("ruledeploy: read rule_packs: %w", err)
		}
		m, err := Decode([]byte(body))
		out = append(out, Entry{Offset: -1, Message: m, Err: err})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ruledeploy: read rule_packs: %w", err)
	}
	return out, nil
}
