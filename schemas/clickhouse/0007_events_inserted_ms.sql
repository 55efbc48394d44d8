-- When each event summary was written, in milliseconds since the Unix epoch
-- (inserted_at is whole seconds, and 18.16 has no DateTime64 or now64()).
-- The writer stamps it when it assembles the insert batch (client clock), so
-- the load test can measure produced → row in ClickHouse per event; rows
-- written before this migration read 0.
ALTER TABLE {db}.events
    ADD COLUMN inserted_at_ms UInt64 DEFAULT 0
