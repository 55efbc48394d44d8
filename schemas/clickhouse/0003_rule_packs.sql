-- Rule packs: every deployed version with its full body. Deploying the same
-- version again keeps the latest deployment under FINAL.
CREATE TABLE IF NOT EXISTS {db}.rule_packs
(
    version     String,
    author      String,
    message     String,
    checksum    String,
    deployed_at DateTime('UTC'),
    body        String
)
ENGINE = ReplacingMergeTree(deployed_at)
ORDER BY version
;
