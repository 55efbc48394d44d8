// Package chstore stores Leakline's findings (and, later, event metadata
// and rule packs) in ClickHouse, over the Native protocol, and owns the
// schema migrations.
//
// It supports ClickHouse 18.16 as well as current releases (23–25): the DDL
// and queries use nothing newer than 18.16 (no LowCardinality, Map,
// DateTime64, TTL, window functions).
//
// # Query values and system.query_log
//
// The server records the text of every query in system.query_log, readable
// even by a read-only user, so no value that may be personal data may be
// part of a query's text. clickhouse-go does not help here on 18.16:
//
//   - "?", "$1" and "@name" placeholders are bound on the client: the driver
//     formats the values into the SQL text as literals, and the server (and
//     its query_log) sees e.g. WHERE actor_uid = 'u-123'. Verified against
//     18.16 in TestQueryLogHasNoFilterValues.
//   - Server-side parameters ({name:Type} with clickhouse.WithParameters) keep
//     values out of the text, but need a protocol revision 18.16 lacks: the
//     driver then sends the placeholder itself and 18.16 fails with a syntax
//     error ("Unrecognized token").
//
// So filter values travel as external data: a one-row temporary table sent
// alongside the query in Native data blocks (clickhouse.WithExternalTable),
// which the query reads with subqueries (actor_uid IN (SELECT actor_uid
// FROM _filter)). That works on every release, never reaches query_log, and
// the key conditions still use the primary key index (18.16 builds the set
// first: use_index_for_in_with_subqueries). Inserted rows travel as Native
// data blocks too. Only identifiers (database and table names, validated)
// and integers chosen by the code (LIMIT) are ever part of a query's text.
package chstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"regexp"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/leakline/leakline/schemas"
)

// Defaults for Config fields left zero.
const (
	DefaultDatabase     = "leakline"
	DefaultDialTimeout  = 10 * time.Second
	DefaultReadTimeout  = 60 * time.Second
	DefaultMaxOpenConns = 4
)

// Config says where and how to connect.
type Config struct {
	// Addr is the server's Native protocol address, host:port (usually
	// port 9000; the HTTP interface is not supported).
	Addr string
	// Database is created if missing. Default "leakline". Letters, digits
	// and underscores only, not starting with a digit.
	Database string
	// User and Password authenticate; an empty User is "default".
	//
	// A user whose profile has readonly=1 can open an existing database and
	// read, but on current releases only with contexts that have no
	// deadline, or one under 1 s: clickhouse-go sends a longer deadline as
	// the setting max_execution_time, which readonly=1 refuses to change
	// (clickhouse-go#1748). Give read-only users readonly=2 instead.
	User, Password string
	// DialTimeout bounds connecting, including the handshake (default
	// 10 s); ReadTimeout bounds each read from the server (default 60 s).
	DialTimeout, ReadTimeout time.Duration
	// MaxOpenConns bounds the connection pool (default 4).
	MaxOpenConns int
	// TLS, when set, connects over TLS with this configuration (trusted
	// CAs in RootCAs; an empty ServerName is the host of Addr). Addr must
	// then be the server's secure Native port (tcp_port_secure, usually
	// 9440). Certificate verification cannot be turned off.
	TLS *tls.Config
}

// Store reads and writes Leakline's tables in one database. It is safe for
// concurrent use.
type Store struct {
	conn       driver.Conn
	db         string // validated identifier
	addr       string
	migrations fs.FS
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,126}$`)

// Open connects to the server, creates the database if it does not exist
// (CREATE DATABASE IF NOT EXISTS; skipped when it exists, so a user without
// DDL rights can open an existing database) and checks that it answers.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Database == "" {
		cfg.Database = DefaultDatabase
	}
	if !identRE.MatchString(cfg.Database) {
		return nil, fmt.Errorf("chstore: open: invalid database name %q (letters, digits, _; not starting with a digit)", cfg.Database)
	}
	if cfg.Addr == "" {
		return nil, fmt.Errorf("chstore: open: no address")
	}
	if cfg.TLS != nil && cfg.TLS.InsecureSkipVerify {
		return nil, fmt.Errorf("chstore: open: TLS without certificate verification is not supported")
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.MaxOpenConns <= 0 {
		cfg.MaxOpenConns = DefaultMaxOpenConns
	}
	sub, err := fs.Sub(schemas.ClickHouseMigrations, "clickhouse")
	if err != nil {
		return nil, fmt.Errorf("chstore: open: migrations: %w", err)
	}

	// The database may not exist yet, and a connection naming a missing
	// database is refused: create it over a connection to the server's
	// default database first.
	boot, err := connect(ctx, cfg, "", 1)
	if err != nil {
		return nil, err
	}
	err = ensureDatabase(ctx, boot, cfg.Database)
	boot.Close()
	if err != nil {
		return nil, fmt.Errorf("chstore: open: database %s on %s: %w", cfg.Database, cfg.Addr, err)
	}
	conn, err := connect(ctx, cfg, cfg.Database, cfg.MaxOpenConns)
	if err != nil {
		return nil, err
	}
	return &Store{conn: conn, db: cfg.Database, addr: cfg.Addr, migrations: sub}, nil
}

// connect opens a pool and pings it, bounded by the dial timeout.
func connect(ctx context.Context, cfg Config, database string, maxConns int) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol: clickhouse.Native,
		Addr:     []string{cfg.Addr},
		Auth: clickhouse.Auth{
			Database: database,
			Username: cfg.User,
			Password: cfg.Password,
		},
		TLS:          cfg.TLS,
		DialTimeout:  cfg.DialTimeout,
		ReadTimeout:  cfg.ReadTimeout,
		MaxOpenConns: maxConns,
		MaxIdleConns: maxConns,
		ClientInfo: clickhouse.ClientInfo{Products: []struct{ Name, Version string }{
			{Name: "leakline-chstore", Version: "1"},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("chstore: open %s: %w", cfg.Addr, err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		conn.Close()
		var ne net.Error
		if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()) {
			err = fmt.Errorf("%w (no answer within the dial timeout %v)", err, cfg.DialTimeout)
		}
		return nil, fmt.Errorf("chstore: open: connect to ClickHouse at %s: %w", cfg.Addr, err)
	}
	return conn, nil
}

func ensureDatabase(ctx context.Context, conn driver.Conn, db string) error {
	// The name is compared here rather than in the query's text.
	rows, err := conn.Query(ctx, "SELECT name FROM system.databases")
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if slices.Contains(names, db) {
		return nil
	}
	return conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(db))
}

// Conn is the underlying connection pool, for queries this package does not
// offer. Its default database is the store's. Never put PII into query
// text: see the package documentation.
func (s *Store) Conn() driver.Conn { return s.conn }

// Database is the store's database name.
func (s *Store) Database() string { return s.db }

// Close closes the connection pool.
func (s *Store) Close() error {
	if err := s.conn.Close(); err != nil {
		return fmt.Errorf("chstore: close: %w", err)
	}
	return nil
}

// table is a quoted, database-qualified table name.
func (s *Store) table(name string) string {
	return quoteIdent(s.db) + "." + quoteIdent(name)
}

// quoteIdent back-quotes a validated identifier.
func quoteIdent(name string) string { return "`" + name + "`" }
