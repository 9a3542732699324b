-- Which formats a training example has (1: sft, 2: preference), written with the example: a
-- dataset build picks candidates by this instead of parsing a million JSON bodies.
ALTER TABLE training_examples ADD COLUMN formats smallint NOT NULL DEFAULT 0;
UPDATE training_examples SET formats =
    (CASE WHEN json_typeof(body -> 'sft') = 'object' THEN 1 ELSE 0 END) | (CASE WHEN json_typeof(body -> 'preference') = 'object' THEN 2 ELSE 0 END)
WHERE body IS NOT NULL;
