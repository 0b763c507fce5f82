-- What each node of a cluster publishes every heartbeat (5 s): its live
-- sessions (as GET /api/v1/sessions shows them, JSON) and its figures (as
-- GET /api/v1/admin/streaming-stats shows them, JSON). Rows a node has
-- not renewed for 15 s belong to a dead node and are not read.
CREATE TABLE IF NOT EXISTS node_sessions (
    node       TEXT NOT NULL,
    session_id TEXT NOT NULL,
    user_name  TEXT NOT NULL,
    view       TEXT NOT NULL,
    seen_s     BIGINT NOT NULL,
    PRIMARY KEY (node, session_id)
);
CREATE TABLE IF NOT EXISTS node_figures (
    node    TEXT PRIMARY KEY,
    figures TEXT NOT NULL,
    seen_s  BIGINT NOT NULL
);
