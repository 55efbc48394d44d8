package schemas

import "embed"

// ClickHouseMigrations holds the ClickHouse migrations, clickhouse/NNNN_name.sql,
// applied in version order by chstore.Migrate. A migration may hold several
// statements separated by ';', and says {db} where the database name goes.
// An applied migration must never change (its checksum is recorded); change
// the schema with a new migration. Statements must be idempotent
// (CREATE TABLE IF NOT EXISTS ...): ClickHouse has no transactional DDL, so
// a migration that failed half-way is re-run from its first statement.
//
// DDL must work on ClickHouse 18.16 and current releases: no LowCardinality,
// Map, DateTime64, TTL or JSON types.
//
//go:embed clickhouse/*.sql
var ClickHouseMigrations embed.FS
