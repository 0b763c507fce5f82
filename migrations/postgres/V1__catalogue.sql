-- The catalogue on PostgreSQL (a cluster of nodes). Same tables, columns
-- and versions as migrations/sqlite/; only the type names differ.
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    path          TEXT PRIMARY KEY,
    size          BIGINT NOT NULL,
    mtime_ns      BIGINT NOT NULL,
    inode         BIGINT NOT NULL,
    device        BIGINT NOT NULL DEFAULT 0,
    probe_version BIGINT NOT NULL,
    info          TEXT NOT NULL,
    -- key frames of copied video: little-endian u64 nanoseconds each
    keyframes     BYTEA,
    keyframes_end BIGINT,
    keyframes_src TEXT,
    -- their byte offsets, then the data end: little-endian u64 each
    keyframes_pos BYTEA
);
-- where each user stopped watching each item (progress.rs)
CREATE TABLE IF NOT EXISTS progress (
    "user"      TEXT NOT NULL,
    media_id    TEXT NOT NULL,
    position_ms BIGINT NOT NULL,
    updated_s   BIGINT NOT NULL,
    PRIMARY KEY ("user", media_id)
);
