-- Which node is probing which file: a node claims a new or changed file
-- here before probing it, so a cluster probes each file once. A claim
-- older than the claim timeout is taken over (its node died).
CREATE TABLE IF NOT EXISTS probe_claims (
    path      TEXT PRIMARY KEY,
    node      TEXT NOT NULL,
    claimed_s BIGINT NOT NULL
);
