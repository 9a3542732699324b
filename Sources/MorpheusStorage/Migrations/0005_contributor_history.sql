-- What the history rules of the quality gate (burst, repeated_content) ask of a user's earlier
-- corrections, decided inside each batch's transaction under a per-user advisory lock so that
-- two instances cannot both miss a burst split between them.
-- target_key: comic, scene, panel and character ids joined by U+001F.
-- content_key: SHA-256 of the corrected text (or image prompt and instruction), trimmed, white
-- space collapsed, lower-cased: a digest, so the index holds no free text of the user.
-- Rows stored before this migration have neither and count for burst only.
ALTER TABLE feedback ADD COLUMN target_key text, ADD COLUMN content_key text;
CREATE INDEX feedback_user_time_idx ON feedback (user_id, occurred_at);
CREATE INDEX feedback_user_content_idx ON feedback (user_id, content_key) WHERE content_key IS NOT NULL;
