-- Less written per correction (docs/performance.md, "Work per correction").
-- A batch's events repeat the same keys, topics and texts: compressed with lz4 (cheap), the
-- outbox row and its WAL shrink to a fraction (it was uncompressed: pglz cost more CPU than
-- the bytes saved). MAIN keeps a compressed batch in its row while it fits the page: no TOAST
-- chunks and TOAST index entries to write and delete.
ALTER TABLE outbox_batches ALTER COLUMN events SET STORAGE MAIN, ALTER COLUMN events SET COMPRESSION lz4;
-- The hashes as their 32 bytes instead of 64 hex digits: the same SHA-256 values (decoded here,
-- encoded again where they are read), half the room in the row and in the two indexes that
-- hold them (the content key and the history rules' same-content index).
ALTER TABLE feedback
    ALTER COLUMN payload_hash TYPE bytea USING decode(payload_hash, 'hex'),
    ALTER COLUMN content_hash TYPE bytea USING decode(content_hash, 'hex'),
    ALTER COLUMN content_key TYPE bytea USING decode(content_key, 'hex');
-- feedback_model_idx led with the model, so no report could use it for an experiment (the A/B
-- report scanned the table); one per experiment serves `report ab` and is smaller.
DROP INDEX feedback_model_idx;
CREATE INDEX feedback_experiment_idx ON feedback (experiment_id, occurred_at) WHERE experiment_id IS NOT NULL;
