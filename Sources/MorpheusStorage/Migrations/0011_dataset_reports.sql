-- The bias report of each dataset version (docs/datasets.md#bias-report), beside its counts.
ALTER TABLE training_datasets ADD COLUMN report jsonb NOT NULL DEFAULT '{}';
