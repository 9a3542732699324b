-- Privacy controls (docs/privacy.md).
-- privacy_settings: a user's current choices. opted_out is checked inside every batch's
-- transaction, after the batch's per-user advisory locks, so a request committed before a
-- batch always wins on any instance. refused counts the messages refused since the opt-out;
-- nothing of their content is kept.
CREATE TABLE privacy_settings (
    user_id     text PRIMARY KEY,
    opted_out   boolean NOT NULL DEFAULT false,
    anonymized  boolean NOT NULL DEFAULT false,
    refused     bigint NOT NULL DEFAULT 0 CHECK (refused >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX privacy_settings_opted_out_idx ON privacy_settings (user_id) WHERE opted_out;

-- Every privacy request, idempotent by request_id, audited: who asked (the user over MQTT, or an
-- operator through the CLI), what, when, the counts it came to. The subject is the keyed
-- pseudonym, never the user id, so erasure leaves this log as it is.
CREATE TABLE privacy_requests (
    request_id    uuid PRIMARY KEY,
    subject       text NOT NULL,
    action        text NOT NULL CHECK (action IN ('opt_out', 'opt_in', 'anonymize', 'identify', 'erase', 'status')),
    requested_by  text NOT NULL,
    reason        text,
    payload_hash  text NOT NULL,
    counts        jsonb NOT NULL DEFAULT '{}',
    applied_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX privacy_requests_subject_idx ON privacy_requests (subject, applied_at);
