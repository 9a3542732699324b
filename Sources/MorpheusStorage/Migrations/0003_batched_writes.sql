-- The outbox holds one row per committed batch instead of one per event: a batch of 500
-- corrections cost 500 outbox inserts and 500 deletes before, now one of each. The events are
-- framed in one bytea (see OutboxFraming: per event a 2-byte topic length, topic, 4-byte payload
-- length, payload; big-endian), the exact bytes to publish.
CREATE TABLE outbox_batches (
    id            bigserial PRIMARY KEY,
    events        bytea NOT NULL,
    event_count   integer NOT NULL CHECK (event_count > 0),
    -- The feedback whose events are inside, so an erasure can find pending events too.
    feedback_ids  uuid[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- A batch's events are hundreds of kilobytes that live for milliseconds: compressing them
-- (pglz, TOAST's default) showed up in the profile for nothing.
ALTER TABLE outbox_batches ALTER COLUMN events SET STORAGE EXTERNAL;
-- The publisher's sweep looks for batches a dead process left behind, oldest first.
CREATE INDEX outbox_batches_created_idx ON outbox_batches (created_at);

-- Events still pending from the per-event outbox move over as batches of one.
INSERT INTO outbox_batches (events, event_count, feedback_ids, created_at)
SELECT int2send(octet_length(convert_to(topic, 'UTF8'))::smallint) || convert_to(topic, 'UTF8')
       || int4send(octet_length(payload)) || payload,
       1, CASE WHEN feedback_id IS NULL THEN '{}'::uuid[] ELSE ARRAY[feedback_id] END, created_at
FROM outbox ORDER BY id;

DROP TABLE outbox;

-- Training examples keep the exact bytes that were published (json, not jsonb: jsonb reorders
-- members and costs more to parse on every insert).
ALTER TABLE training_examples ALTER COLUMN body TYPE json USING body::json;

-- Rows of one user are found through the content key (user_id leads it); a second index on
-- user_id only cost every insert.
DROP INDEX feedback_user_idx;
