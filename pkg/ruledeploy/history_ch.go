package ruledeploy

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/leakline/leakline/pkg/chstore"
)

// Record stores a deployment in ClickHouse's rule_deploys table
// (schemas/clickhouse/0006_rule_deploys.sql): seq, version, author,
// message, checksum, deployed_at and, as body, the whole signed message
// (files, signature), so a stored deploy can be verified and republished.
// The table is ordered by (seq, checksum): every deployment keeps its row —
// a rollback, which republishes an old pack version under a new seq, adds
// one — and recording the same deployment again replaces its row under
// FINAL.
func Record(ctx context.Context, st *chstore.Store, m *Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	table := "`" + st.Database() + "`.rule_deploys" // Database is a validated identifier
	batch, err := st.Conn().PrepareBatch(ctx, "INSERT INTO "+table+" (seq, version, author, message, checksum, deployed_at, body)")
	if err != nil {
		return fmt.Errorf("ruledeploy: record seq %d in ClickHouse: %w", m.Seq, err)
	}
	if err := batch.Append(m.Seq, m.Version, m.Author, m.Message, m.Checksum, m.Time.UTC().Truncate(time.Second), string(body)); err != nil {
		_ = batch.Abort()
		return fmt.Errorf("ruledeploy: record seq %d in ClickHouse: %w", m.Seq, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("ruledeploy: record seq %d in ClickHouse: %w", m.Seq, err)
	}
	return nil
}

// Recorded reads every deployment stored in ClickHouse, rollbacks
// included, in deploy order (seq). A row whose body does not decode is
// returned with Err set.
func Recorded(ctx context.Context, st *chstore.Store) ([]Entry, error) {
	table := "`" + st.Database() + "`.rule_deploys"
	rows, err := st.Conn().Query(ctx, "SELECT body FROM "+table+" FINAL ORDER BY seq, deployed_at, checksum")
	if err != nil {
		return nil, fmt.Errorf("ruledeploy: read rule_deploys: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("ruledeploy: read rule_deploys: %w", err)
		}
		m, err := Decode([]byte(body))
		out = append(out, Entry{Offset: -1, Message: m, Err: err})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ruledeploy: read rule_deploys: %w", err)
	}
	return out, nil
}
