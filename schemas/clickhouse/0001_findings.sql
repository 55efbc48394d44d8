-- Findings: one row per (finding_id, revision). A finding is re-emitted with
-- a higher revision as its incident grows; ReplacingMergeTree(revision) keeps
-- the highest one per sorting key, so read with FINAL. Deduplication works
-- within a partition only: window_start (the incident start, part of the
-- finding id) must not change across revisions.
--
-- Maps and slices of finding.Finding are parallel arrays. Times are DateTime
-- (UTC, seconds) for partitioning and humans, plus *_ms (unix milliseconds)
-- so sub-second precision survives (18.16 has no DateTime64).
CREATE TABLE IF NOT EXISTS {db}.findings
(
    finding_id      String,
    revision        UInt64,
    rule_id         String,
    rule_version    String,
    pack_version    String,
    title           String,
    severity        String,
    shadow          UInt8,
    actor_uid       String,
    actor_email     String,
    department      String,
    window_start    DateTime('UTC'),
    window_end      DateTime('UTC'),
    window_start_ms Int64,
    window_end_ms   Int64,
    channel         String,
    destination     String,
    value           Float64,
    threshold       Float64,
    pii_types       Array(String),
    pii_counts      Array(UInt32),
    evidence_types  Array(String),
    evidence_masked Array(String),
    evidence_tokens Array(String),
    event_ids       Array(String),
    event_count     UInt64,
    detected_at     DateTime('UTC'),
    detected_at_ms  Int64,
    inserted_at     DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(window_start)
ORDER BY (rule_id, actor_uid, finding_id)
;
