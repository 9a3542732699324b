-- Retention (docs/privacy.md#retention). Old corrections keep their row — ids, model, type,
-- status, quality, times: what reports, lineage and the history rules read — while their raw
-- content (prompt, original, corrected, the training example's body) moves into compressed
-- archives of many corrections each. PostgreSQL compresses a large value itself (TOAST; lz4,
-- which this server is built with), so an archive is JSON lines in one text value and stays
-- queryable, restorable and erasable with SQL alone.
CREATE TABLE feedback_archives (
    id                bigserial PRIMARY KEY,
    -- in_dataset: older than the policy's days and in at least one dataset version;
    -- age: older than the days after which content is archived regardless.
    policy            text NOT NULL CHECK (policy IN ('in_dataset', 'age')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- The manifest: how many corrections, received when, and the hash of the lines as written.
    row_count         integer NOT NULL CHECK (row_count >= 0),
    first_received_at timestamptz,
    last_received_at  timestamptz,
    sha256            text NOT NULL,
    -- One line per correction: {"feedbackId","prompt","original","corrected","example"}.
    content           text COMPRESSION lz4 NOT NULL
);

ALTER TABLE feedback
    ADD COLUMN archive_id bigint REFERENCES feedback_archives (id),
    ALTER COLUMN original DROP NOT NULL,
    ALTER COLUMN corrected DROP NOT NULL,
    ADD CONSTRAINT feedback_content_present CHECK (archive_id IS NOT NULL OR (original IS NOT NULL AND corrected IS NOT NULL));
ALTER TABLE training_examples ALTER COLUMN body DROP NOT NULL;
-- Erasure and restores find a correction's archive.
CREATE INDEX feedback_archive_idx ON feedback (archive_id) WHERE archive_id IS NOT NULL;
-- The policy looks for old rows by time; received_at grows with the table, so a BRIN index
-- (a few pages, nearly free on insert) narrows the scan to the old end.
CREATE INDEX feedback_received_brin ON feedback USING brin (received_at);
