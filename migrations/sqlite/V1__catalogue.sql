-- The catalogue on SQLite (one node). Same tables, columns and versions as
-- migrations/postgres/; only the type names differ. IF NOT EXISTS: a
-- catalogue made before migrations existed already has these tables.
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    path          TEXT PRIMARY KEY,
    size          INTEGER NOT NULL,
    mtime_ns      INTEGER NOT NULL,
    inode         INTEGER NOT NULL,
    device        INTEGER NOT NULL DEFAULT 0,
    probe_version INTEGER NOT NULL,
    info          TEXT NOT NULL,
    -- key frames of copied video: little-endian u64 nanoseconds each
    keyframes     BLOB,
    keyframes_end INTEGER,
    keyframes_src TEXT,
    -- their byte offsets, then the data end: little-endian u64 each
    keyframes_pos BLOB
);
-- where each user stopped watching each item (progress.rs)
CREATE TABLE IF NOT EXISTS progress (
    "user"      TEXT NOT NULL,
    media_id    TEXT NOT NULL,
    position_ms INTEGER NOT NULL,
    updated_s   INTEGER NOT NULL,
    PRIMARY KEY ("user", media_id)
);
