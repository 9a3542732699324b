-- The ingest pipeline's tables (contract v1). Constraints make double storage impossible;
-- every derived row points back to the feedback it came from.

-- One row per stored correction. feedback_id is the editor's idempotency key; the content key
-- (user, generation, content_hash) catches the same correction sent under a new id.
CREATE TABLE feedback (
    feedback_id       uuid PRIMARY KEY,
    user_id           text NOT NULL CHECK (user_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    modality          text NOT NULL CHECK (modality IN ('text', 'image', 'layout')),
    correction_type   text NOT NULL,
    comic_id          text NOT NULL,
    scene_id          text,
    panel_id          text,
    character_id      text,
    generation_id     text NOT NULL,
    model             text NOT NULL,
    model_version     text NOT NULL,
    experiment_id     text,
    experiment_arm    text,
    prompt            text,
    original          jsonb NOT NULL,
    corrected         jsonb NOT NULL,
    payload_hash      text NOT NULL,
    content_hash      text NOT NULL,
    status            text NOT NULL CHECK (status IN ('accepted', 'flagged')),
    flags             text[] NOT NULL DEFAULT '{}',
    quality           real CHECK (quality BETWEEN 0 AND 1),
    occurred_at       timestamptz NOT NULL,
    edit_duration_ms  integer CHECK (edit_duration_ms BETWEEN 0 AND 86400000),
    client_app        text,
    client_version    text,
    received_at       timestamptz NOT NULL,
    committed_at      timestamptz NOT NULL DEFAULT now(),
    processed_at      timestamptz,
    CONSTRAINT feedback_content_key UNIQUE (user_id, generation_id, content_hash),
    CHECK ((experiment_id IS NULL) = (experiment_arm IS NULL))
);
-- A/B reports: corrections per model version and arm over time.
CREATE INDEX feedback_model_idx ON feedback (model, model_version, experiment_id, experiment_arm, received_at);
-- Privacy requests and per-user views.
CREATE INDEX feedback_user_idx ON feedback (user_id, received_at);

-- What became of generations people saw, corrected or not (idempotent by outcome_id).
CREATE TABLE outcomes (
    outcome_id      uuid PRIMARY KEY,
    user_id         text NOT NULL,
    modality        text NOT NULL CHECK (modality IN ('text', 'image', 'layout')),
    generation_id   text NOT NULL,
    model           text NOT NULL,
    model_version   text NOT NULL,
    experiment_id   text,
    experiment_arm  text,
    outcome         text NOT NULL CHECK (outcome IN ('accepted', 'corrected', 'regenerated', 'discarded')),
    payload_hash    text NOT NULL,
    occurred_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL
);
CREATE INDEX outcomes_model_idx ON outcomes (model, model_version, experiment_id, experiment_arm, occurred_at);

-- Training data derived from accepted (or approved) feedback; one example per feedback.
CREATE TABLE training_examples (
    example_id   uuid PRIMARY KEY,
    feedback_id  uuid NOT NULL UNIQUE REFERENCES feedback (feedback_id) ON DELETE CASCADE,
    modality     text NOT NULL,
    body         jsonb NOT NULL,
    created_at   timestamptz NOT NULL
);

-- Corrections held for people to decide (filled by the quality gate).
CREATE TABLE review_queue (
    feedback_id  uuid PRIMARY KEY REFERENCES feedback (feedback_id) ON DELETE CASCADE,
    flags        text[] NOT NULL,
    flagged_at   timestamptz NOT NULL,
    decision     text CHECK (decision IN ('approved', 'rejected')),
    decided_by   text,
    decided_at   timestamptz
);
CREATE INDEX review_queue_open_idx ON review_queue (flagged_at) WHERE decision IS NULL;

-- Messages that could not even be answered (no readable user or id).
CREATE TABLE dead_letters (
    id                     bigserial PRIMARY KEY,
    topic                  text NOT NULL,
    reason                 text NOT NULL,
    received_at            timestamptz NOT NULL,
    payload_sha256         text NOT NULL,
    payload_prefix         bytea NOT NULL CHECK (length(payload_prefix) <= 4096)
);

-- Events to publish, written in the same transaction as what they report; deleted once the
-- broker acknowledged them, so a crash between commit and publish means a re-publish.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    topic         text NOT NULL,
    -- The exact bytes to publish (jsonb would reorder members).
    payload       bytea NOT NULL,
    feedback_id   uuid REFERENCES feedback (feedback_id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0
);
CREATE INDEX outbox_created_idx ON outbox (id);
