-- Dead letters are idempotent: a message the broker redelivers (or a client republishes) is
-- one dead letter with a count of its arrivals, not a new row each time. The key hashes the
-- topic: an MQTT topic can be longer than a btree entry may be.
ALTER TABLE dead_letters
    ADD COLUMN occurrences integer NOT NULL DEFAULT 1,
    ADD COLUMN last_received_at timestamptz;
UPDATE dead_letters d SET occurrences = c.n, last_received_at = c.last
FROM (SELECT min(id) AS id, count(*) AS n, max(received_at) AS last FROM dead_letters GROUP BY topic, payload_sha256) c
WHERE d.id = c.id;
DELETE FROM dead_letters WHERE last_received_at IS NULL;
ALTER TABLE dead_letters ALTER COLUMN last_received_at SET NOT NULL;
CREATE UNIQUE INDEX dead_letters_message_key ON dead_letters (payload_sha256, md5(topic));
-- Retention deletes by age.
CREATE INDEX dead_letters_last_received_idx ON dead_letters (last_received_at);

-- Outbox rows are leased, so that with several instances exactly one publishes a batch: the
-- instance that committed it holds the lease while it publishes from memory; once a lease ran
-- out (its owner died or fell behind) one sweeping instance claims the row with
-- FOR UPDATE SKIP LOCKED and extends the lease while it publishes.
ALTER TABLE outbox_batches
    ADD COLUMN claimed_by text,
    ADD COLUMN claimed_until timestamptz NOT NULL DEFAULT now();
CREATE INDEX outbox_batches_claim_idx ON outbox_batches (claimed_until, id);
DROP INDEX outbox_batches_created_idx;
