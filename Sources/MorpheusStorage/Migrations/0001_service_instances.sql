-- Every service instance that ever started, so operators can tell which ids share the
-- subscription group (a retired id keeps receiving its share until its session expires).
CREATE TABLE service_instances (
    instance_id  text PRIMARY KEY CHECK (length(instance_id) BETWEEN 1 AND 128),
    version      text NOT NULL,
    started_at   timestamptz NOT NULL,
    stopped_at   timestamptz,
    CHECK (stopped_at IS NULL OR stopped_at >= started_at)
);
