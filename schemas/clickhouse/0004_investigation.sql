-- Investigation: per-minute rollups of findings for dashboards and alert
-- rules, and the evidence-access audit log. Everything here runs on
-- ClickHouse 18.16 and on current releases (no SimpleAggregateFunction,
-- LowCardinality or TTL).
--
-- Retention: every table is partitioned by month (toYYYYMM). Drop a month
-- with, for example,
--     ALTER TABLE leakline.findings              DROP PARTITION 202601
--     ALTER TABLE leakline.findings_minute       DROP PARTITION 202601
--     ALTER TABLE leakline.findings_ingest_minute DROP PARTITION 202601
--     ALTER TABLE leakline.events                DROP PARTITION 202601
-- and keep evidence_access_audit longer than the findings it refers to.
-- On releases with TTL (19.6+) an operator may add a table TTL instead; the
-- migrations do not, so that they run on 18.16.

-- Findings per minute of their incident start (window_start), by rule, rule
-- version, pack version, severity, channel and shadow flag. A finding is
-- written once per revision and may be redelivered; the counts are distinct
-- finding ids (uniqExact states), so revisions and redeliveries of the same
-- finding never count twice: window_start, and so the minute, is part of a
-- finding's identity. Read with uniqExactMerge(findings) grouped as needed.
CREATE TABLE IF NOT EXISTS {db}.findings_minute
(
    minute       DateTime('UTC'),
    rule_id      String,
    rule_version String,
    pack_version String,
    severity     String,
    channel      String,
    shadow       UInt8,
    findings     AggregateFunction(uniqExact, String),
    actors       AggregateFunction(uniqExact, String),
    max_value    AggregateFunction(max, Float64)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, rule_id, severity, channel, shadow, rule_version, pack_version)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.findings_minute_mv TO {db}.findings_minute AS
SELECT
    toStartOfMinute(window_start) AS minute,
    rule_id, rule_version, pack_version, severity, channel, shadow,
    uniqExactState(finding_id) AS findings,
    uniqExactState(actor_uid)  AS actors,
    maxState(value)            AS max_value
FROM {db}.findings
GROUP BY minute, rule_id, rule_version, pack_version, severity, channel, shadow
;
-- Backfill from the findings already stored. Distinct-count states make this
-- safe to repeat (a re-run of this migration) and safe to overlap with rows
-- the view has already seen.
INSERT INTO {db}.findings_minute
SELECT
    toStartOfMinute(window_start) AS minute,
    rule_id, rule_version, pack_version, severity, channel, shadow,
    uniqExactState(finding_id) AS findings,
    uniqExactState(actor_uid)  AS actors,
    maxState(value)            AS max_value
FROM {db}.findings
GROUP BY minute, rule_id, rule_version, pack_version, severity, channel, shadow
;
-- Rows written to findings per minute of arrival (inserted_at), by rule:
-- the sink's throughput, revisions and redeliveries included (rows), and
-- first revisions (new incidents, redeliveries included). Counts start when
-- this migration ran: it does not backfill, since a repeated backfill of a
-- sum would count twice.
CREATE TABLE IF NOT EXISTS {db}.findings_ingest_minute
(
    minute          DateTime('UTC'),
    rule_id         String,
    rows            UInt64,
    first_revisions UInt64
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, rule_id)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.findings_ingest_minute_mv TO {db}.findings_ingest_minute AS
SELECT
    toStartOfMinute(inserted_at) AS minute,
    rule_id,
    count()                  AS rows,
    countIf(revision = 1)    AS first_revisions
FROM {db}.findings
GROUP BY minute, rule_id
;
-- Evidence access: one row per request to reveal a finding's evidence,
-- granted or denied. Who (Grafana login and org role), when, which finding,
-- why (the reason the requester gave) and through which data source.
-- Append-only; never updated.
CREATE TABLE IF NOT EXISTS {db}.evidence_access_audit
(
    audit_id       String,
    accessed_at    DateTime('UTC'),
    accessed_at_ms Int64,
    user_login     String,
    user_email     String,
    user_role      String,
    org_id         Int64,
    datasource_uid String,
    finding_id     String,
    actor_uid      String,
    outcome        String,
    reason         String
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(accessed_at)
ORDER BY (finding_id, accessed_at_ms, audit_id)
