-- Expert review: a correction without a flag may still be held for a reviewer (review.* in the
-- configuration). reasons holds its stable codes (low_quality, new_contributor, wide_audience);
-- flags stays the contract's flag codes.
ALTER TABLE review_queue ADD COLUMN reasons text[] NOT NULL DEFAULT '{}';
-- Who saw a generation (review.audience): its corrections and its outcomes.
CREATE INDEX feedback_generation_idx ON feedback (generation_id);
CREATE INDEX outcomes_generation_idx ON outcomes (generation_id);
