-- Which segments some node of the cluster made: the load balancer's cache
-- (deploy/nginx.conf) serves them to every later viewer, so a node that
-- takes an item over after a failover does not make them again, its
-- pre-started first segment included. Rows older than the cache's
-- inactive time (2 h) are deleted.
CREATE TABLE IF NOT EXISTS made_segments (
    title     TEXT NOT NULL,
    rendition TEXT NOT NULL,
    idx       BIGINT NOT NULL,
    made_s    BIGINT NOT NULL,
    PRIMARY KEY (title, rendition, idx)
);
