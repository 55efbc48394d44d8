package chstore_test

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/testenv"
	"github.com/leakline/leakline/schemas"
)

func tableExists(t *testing.T, st *chstore.Store, table string) bool {
	t.Helper()
	var ok uint8
	if err := st.Conn().QueryRow(context.Background(), "EXISTS TABLE "+st.Database()+"."+table).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok == 1
}

func countRows(t *testing.T, st *chstore.Store, query string) uint64 {
	t.Helper()
	var n uint64
	if err := st.Conn().QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestMigrateIsIdempotent(t *testing.T) {
	ctx := context.Background()
	files, err := fs.Glob(schemas.ClickHouseMigrations, "clickhouse/*.sql")
	if err != nil || len(files) < 3 {
		t.Fatalf("embedded migrations: %v, %v", files, err)
	}

	st := testenv.ClickHouseStore(t, srv) // migrated once
	for range 2 {
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	v, err := st.SchemaVersion(ctx)
	if err != nil || v != len(files) {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, len(files))
	}
	// Re-runs recorded nothing new: one row per migration, even without FINAL.
	if n := countRows(t, st, "SELECT count() FROM schema_migrations"); n != uint64(len(files)) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(files))
	}
	var name, sum string
	if err := st.Conn().QueryRow(ctx, "SELECT name, checksum FROM schema_migrations FINAL WHERE version = 1").Scan(&name, &sum); err != nil ||
		name != "0001_findings.sql" || len(sum) != 64 {
		t.Errorf("version 1 recorded as %q %q, %v", name, sum, err)
	}
	for _, table := range []string{"findings", "events", "rule_packs"} {
		if !tableExists(t, st, table) {
			t.Errorf("table %s missing", table)
		}
	}
}

func TestSchemaVersionBeforeMigrate(t *testing.T) {
	ctx := context.Background()
	st := testenv.ClickHouseStore(t, srv)
	fresh, err := chstore.Open(ctx, chstore.Config{Addr: srv.Addr(), Database: st.Database() + "_fresh"})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if v, err := fresh.SchemaVersion(ctx); err != nil || v != 0 {
		t.Fatalf("SchemaVersion of a new database = %d, %v", v, err)
	}
}

func TestMigrateRefusesChangedMigration(t *testing.T) {
	ctx := context.Background()
	st := testenv.ClickHouseStore(t, srv)
	v1 := "-- a; semicolon in a comment\nCREATE TABLE IF NOT EXISTS {db}.m1 (s String DEFAULT 'a;b') ENGINE = Memory\n;\n" +
		"CREATE TABLE IF NOT EXISTS {db}.m1b (n UInt8) ENGINE = Memory;\n"
	fsys := fstest.MapFS{"0100_m1.sql": {Data: []byte(v1)}}
	if err := st.MigrateFS(ctx, fsys); err != nil {
		t.Fatal(err)
	}
	if !tableExists(t, st, "m1") || !tableExists(t, st, "m1b") {
		t.Fatal("multi-statement migration did not create both tables")
	}
	if v, _ := st.SchemaVersion(ctx); v != 100 {
		t.Fatalf("SchemaVersion = %d, want 100", v)
	}

	// The applied file changes, and a new migration arrives with it.
	fsys["0100_m1.sql"] = &fstest.MapFile{Data: []byte(v1 + "-- edited\n")}
	fsys["0101_m2.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE IF NOT EXISTS {db}.m2 (n UInt8) ENGINE = Memory")}
	err := st.MigrateFS(ctx, fsys)
	if err == nil {
		t.Fatal("Migrate accepted a changed migration")
	}
	for _, want := range []string{"chstore: migrate", "migration 100", "0100_m1.sql", "checksum", "must not change"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if tableExists(t, st, "m2") {
		t.Error("a later migration was applied despite the changed one")
	}

	// A failing statement stops the run with a clear error, and nothing is
	// recorded for it.
	bad := fstest.MapFS{"0200_bad.sql": {Data: []byte("CREATE TABLE {db}.broken (x NoSuchType) ENGINE = Memory")}}
	st2 := testenv.ClickHouseStore(t, srv)
	err = st2.MigrateFS(ctx, bad)
	if err == nil || !strings.Contains(err.Error(), "0200_bad.sql, statement 1") {
		t.Fatalf("bad migration: %v", err)
	}
	if n := countRows(t, st2, "SELECT count() FROM schema_migrations WHERE version = 200"); n != 0 {
		t.Error("a failed migration was recorded")
	}
}
