-- Review decisions: approve (the correction becomes training data), reject (never trained on),
-- escalate (to a second reviewer). review_queue.state is the item's current state; every
-- decision is also kept in review_decisions (reviewer, time, reason, previous state), which
-- nothing deletes but erasure of the user.
ALTER TABLE review_queue DROP CONSTRAINT IF EXISTS review_queue_decision_check;
ALTER TABLE review_queue
    ADD COLUMN state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'escalated', 'approved', 'rejected')),
    ADD COLUMN reason text;
UPDATE review_queue SET state = decision WHERE decision IN ('approved', 'rejected');
ALTER TABLE review_queue ADD CONSTRAINT review_queue_decision_check CHECK (decision IS NULL OR decision IN ('approved', 'rejected'));
DROP INDEX review_queue_open_idx;
CREATE INDEX review_queue_pending_idx ON review_queue (flagged_at) WHERE state IN ('open', 'escalated');

CREATE TABLE review_decisions (
    id              bigserial PRIMARY KEY,
    feedback_id     uuid NOT NULL REFERENCES review_queue (feedback_id) ON DELETE CASCADE,
    decision        text NOT NULL CHECK (decision IN ('approve', 'reject', 'escalate')),
    reviewer        text NOT NULL,
    reason          text,
    previous_state  text NOT NULL,
    decided_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX review_decisions_feedback_idx ON review_decisions (feedback_id, decided_at);
CREATE INDEX review_decisions_reviewer_idx ON review_decisions (reviewer, decided_at);

-- The reward/penalty signal of the quality score: reviewers' approvals and rejections per user.
CREATE TABLE contributor_reputation (
    user_id     text PRIMARY KEY,
    approvals   integer NOT NULL DEFAULT 0 CHECK (approvals >= 0),
    rejections  integer NOT NULL DEFAULT 0 CHECK (rejections >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contributor_reputation_updated_idx ON contributor_reputation (updated_at);
