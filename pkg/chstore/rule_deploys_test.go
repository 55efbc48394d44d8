package chstore_test

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/testenv"
	"github.com/leakline/leakline/schemas"
)

// TestRuleDeploysMigration: 0006 creates rule_deploys (ordered by seq, so
// a rollback keeps its own row) and copies what rule_packs kept, with the
// seq read from each stored message.
func TestRuleDeploysMigration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := testenv.ClickHouseStore(t, srv)
	st, err := chstore.Open(ctx, chstore.Config{Addr: srv.Addr(), Database: base.Database() + "_legacy"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = st.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+st.Database())
		st.Close()
	})
	// The schema before 0006.
	before := fstest.MapFS{}
	files, err := fs.Glob(schemas.ClickHouseMigrations, "clickhouse/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimPrefix(f, "clickhouse/")
		if name >= "0006" {
			continue
		}
		b, err := fs.ReadFile(schemas.ClickHouseMigrations, f)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = &fstest.MapFile{Data: b}
	}
	if err := st.MigrateFS(ctx, before); err != nil {
		t.Fatal(err)
	}
	// Three deployments; the third redeployed version 7, so rule_packs
	// kept two rows.
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	rows := []struct {
		seq              int
		version, message string
	}{{1, "7", "first"}, {2, "8", "second"}, {3, "7", "rollback to seq 1"}}
	for i, r := range rows {
		body := fmt.Sprintf(`{"version":%q,"seq":%d,"author":"a","message":%q,"files":{"pack.yaml":"x: \"seq\": 9"}}`, r.version, r.seq, r.message)
		batch, err := st.Conn().PrepareBatch(ctx, "INSERT INTO "+st.Database()+".rule_packs (version, author, message, checksum, deployed_at, body)")
		if err != nil {
			t.Fatal(err)
		}
		if err := batch.Append(r.version, "a", r.message, "sum-"+r.message, at.Add(time.Duration(i)*time.Minute), body); err != nil {
			t.Fatal(err)
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
	}
	if n := countRows(t, st, "SELECT count() FROM "+st.Database()+".rule_packs FINAL"); n != 2 {
		t.Fatalf("rule_packs FINAL has %d rows, want 2 (one per version)", n)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	q, err := st.Conn().Query(ctx, "SELECT seq, version, message FROM "+st.Database()+".rule_deploys FINAL ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var got []string
	for q.Next() {
		var seq uint64
		var version, message string
		if err := q.Scan(&seq, &version, &message); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d/%s/%s", seq, version, message))
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
	// What rule_packs kept is copied: seq 1 had been replaced already.
	if want := []string{"2/8/second", "3/7/rollback to seq 1"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("rule_deploys after the migration: %v, want %v", got, want)
	}
}
