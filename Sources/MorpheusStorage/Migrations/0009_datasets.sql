-- Versioned training datasets (docs/datasets.md). A version is immutable: its files are written
-- once under the dataset root and named by the row's location; sha256 names their content.
-- status: ready, or needs_rebuild once an erasure removed examples it contains.
CREATE TABLE training_datasets (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$'),
    version         integer NOT NULL CHECK (version >= 1),
    parent_version  integer,
    modality        text NOT NULL,
    format          text NOT NULL CHECK (format IN ('sft', 'preference')),
    parameters      jsonb NOT NULL,
    sha256          text NOT NULL,
    example_count   integer NOT NULL,
    counts          jsonb NOT NULL DEFAULT '{}',
    location        text NOT NULL,
    status          text NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'needs_rebuild')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, version)
);

-- Lineage: one row per (version, example), with the correction it came from (the seed's
-- feedback_source references).
CREATE TABLE dataset_examples (
    dataset_id   bigint NOT NULL REFERENCES training_datasets (id) ON DELETE CASCADE,
    example_id   uuid NOT NULL,
    feedback_id  uuid NOT NULL,
    split        text NOT NULL CHECK (split IN ('train', 'validation')),
    PRIMARY KEY (dataset_id, example_id)
);
CREATE INDEX dataset_examples_feedback_idx ON dataset_examples (feedback_id);
