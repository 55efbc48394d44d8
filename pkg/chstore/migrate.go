package chstore

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// migration is one file of schemas/clickhouse.
type migration struct {
	version    uint32
	name       string // file name, e.g. 0001_findings.sql
	checksum   string // sha256 of the file, hex
	statements []string
}

var migrationNameRE = regexp.MustCompile(`^([0-9]+)_[A-Za-z0-9_.-]+\.sql$`)

// loadMigrations reads every *.sql file at the top of fsys, sorted by
// version.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[uint32]string{}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		m := migrationNameRE.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %q: name must be NNNN_name.sql", e.Name())
		}
		v, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil || v == 0 {
			return nil, fmt.Errorf("migration file %q: version must be 1..%d", e.Name(), uint32(1<<32-1))
		}
		if other, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("migration files %q and %q have the same version %d", other, e.Name(), v)
		}
		seen[uint32(v)] = e.Name()
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		// Line endings do not count: a checkout with CRLF is the same file.
		body = bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))
		sum := sha256.Sum256(body)
		stmts, err := splitStatements(string(body))
		if err != nil {
			return nil, fmt.Errorf("migration file %q: %w", e.Name(), err)
		}
		ms = append(ms, migration{
			version:    uint32(v),
			name:       e.Name(),
			checksum:   hex.EncodeToString(sum[:]),
			statements: stmts,
		})
	}
	slices.SortFunc(ms, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	return ms, nil
}

// splitStatements splits SQL text at ';' outside quotes and comments and
// drops statements that are empty or only comments.
func splitStatements(sql string) ([]string, error) {
	var (
		out     []string
		start   int
		content bool // the current statement has something besides comments
	)
	flush := func(end int) {
		if content {
			out = append(out, strings.TrimSpace(sql[start:end]))
		}
		start, content = end+1, false
	}
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			j := strings.IndexByte(sql[i:], '\n')
			if j < 0 {
				i = len(sql)
			} else {
				i += j
			}
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			j := strings.Index(sql[i+2:], "*/")
			if j < 0 {
				return nil, fmt.Errorf("unterminated /* comment")
			}
			i += 2 + j + 1
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for ; j < len(sql); j++ {
				if sql[j] == '\\' {
					j++
					continue
				}
				if sql[j] == c {
					if j+1 < len(sql) && sql[j+1] == c { // doubled quote
						j++
						continue
					}
					break
				}
			}
			if j >= len(sql) {
				return nil, fmt.Errorf("unterminated %c quote", c)
			}
			i, content = j, true
		case c == ';':
			flush(i)
		case c != ' ' && c != '\t' && c != '\n' && c != '\r':
			content = true
		}
	}
	flush(len(sql))
	return out, nil
}

// Migrate creates schema_migrations if needed and applies, in version
// order, every migration not yet recorded there. It refuses to run, before
// applying anything, if a recorded migration's file has changed since it was
// applied. Migrate is idempotent. It does not lock: two processes migrating
// at once both run the idempotent statements, which is harmless.
func (s *Store) Migrate(ctx context.Context) error {
	return s.migrateFS(ctx, s.migrations)
}

// migrateFS applies the migrations in fsys (tests pass their own).
func (s *Store) migrateFS(ctx context.Context, fsys fs.FS) error {
	if err := s.migrate(ctx, fsys); err != nil {
		return fmt.Errorf("chstore: migrate %s: %w", s.db, err)
	}
	return nil
}

type appliedMigration struct {
	name, checksum string
}

func (s *Store) migrate(ctx context.Context, fsys fs.FS) error {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	err = s.conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s.table("schema_migrations")+` (
    version    UInt32,
    name       String,
    applied_at DateTime('UTC'),
    checksum   String
) ENGINE = ReplacingMergeTree(applied_at) ORDER BY version`)
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied, err := s.appliedMigrations(ctx)
	if err != nil {
		return err
	}
	for _, m := range ms {
		a, ok := applied[m.version]
		if ok && a.checksum != m.checksum {
			return fmt.Errorf("migration %d (%s) was applied with checksum %s, but %s now has checksum %s: "+
				"an applied migration must not change; add a new migration instead",
				m.version, a.name, a.checksum, m.name, m.checksum)
		}
	}
	for _, m := range ms {
		if _, ok := applied[m.version]; ok {
			continue
		}
		for i, stmt := range m.statements {
			stmt = strings.ReplaceAll(stmt, "{db}", quoteIdent(s.db))
			if err := s.conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("migration %s, statement %d: %w", m.name, i+1, err)
			}
		}
		if err := s.recordMigration(ctx, m); err != nil {
			return fmt.Errorf("migration %s: record: %w", m.name, err)
		}
	}
	return nil
}

func (s *Store) appliedMigrations(ctx context.Context) (map[uint32]appliedMigration, error) {
	rows, err := s.conn.Query(ctx, "SELECT version, name, checksum FROM "+s.table("schema_migrations")+" FINAL")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[uint32]appliedMigration{}
	for rows.Next() {
		var v uint32
		var a appliedMigration
		if err := rows.Scan(&v, &a.name, &a.checksum); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		applied[v] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return applied, nil
}

func (s *Store) recordMigration(ctx context.Context, m migration) error {
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table("schema_migrations")+" (version, name, applied_at, checksum)")
	if err != nil {
		return err
	}
	defer batch.Close()
	if err := batch.Append(m.version, m.name, time.Now().UTC(), m.checksum); err != nil {
		return err
	}
	return batch.Send()
}

// SchemaVersion is the highest applied migration version, 0 if none.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var exists uint8
	if err := s.conn.QueryRow(ctx, "EXISTS TABLE "+s.table("schema_migrations")).Scan(&exists); err != nil {
		return 0, fmt.Errorf("chstore: schema version: %w", err)
	}
	if exists == 0 {
		return 0, nil
	}
	var v uint32
	if err := s.conn.QueryRow(ctx, "SELECT max(version) FROM "+s.table("schema_migrations")).Scan(&v); err != nil {
		return 0, fmt.Errorf("chstore: schema version: %w", err)
	}
	return int(v), nil
}
