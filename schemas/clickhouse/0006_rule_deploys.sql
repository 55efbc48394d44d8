-- Rule pack deploy history: one row per deployment (`leakline rules deploy`
-- or `rollback`), keyed by the deploy number seq. rule_packs (0003) is
-- ordered by pack version, so a rollback, which republishes an old version
-- under a new seq, replaced that version's row and the history lost a
-- deployment. Here every deployment keeps its row, and recording the same
-- deployment again (a retried write: same seq and checksum) replaces it
-- under FINAL. body is the whole signed message, as in rule_packs.
CREATE TABLE IF NOT EXISTS {db}.rule_deploys
(
    seq         UInt64,
    version     String,
    author      String,
    message     String,
    checksum    String,
    deployed_at DateTime('UTC'),
    body        String
)
ENGINE = ReplacingMergeTree(deployed_at)
ORDER BY (seq, checksum)
;
-- The deployments rule_packs kept are copied, their seq read from the
-- stored message (visitParamExtractUInt: 18.16 has no JSONExtract). Running
-- this again after a partial failure only rewrites the same rows.
-- rule_packs is no longer written.
INSERT INTO {db}.rule_deploys (seq, version, author, message, checksum, deployed_at, body)
SELECT visitParamExtractUInt(body, 'seq'), version, author, message, checksum, deployed_at, body
FROM {db}.rule_packs FINAL
