-- Events: per-event metadata, no PII content. destination is masked like a
-- finding's (email recipients masked, domains and hosts kept). A replayed
-- event (same actor, time and id) collapses under FINAL.
CREATE TABLE IF NOT EXISTS {db}.events
(
    event_id     String,
    kind         String,
    time         DateTime('UTC'),
    time_ms      Int64,
    actor_uid    String,
    department   String,
    channel      String,
    destination  String,
    size         UInt64,
    pii_types    Array(String),
    pii_counts   Array(UInt32),
    record_count UInt64,
    inserted_at  DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (actor_uid, time, event_id)
;
