-- Autoanalyze of feedback is the latency tail's other source next to the disk (docs/performance.md,
-- "Autoanalyze, lighter"): its 30,000-row sample costs most of a second of one core, and most of
-- that went into statistics of columns no query filters, joins or groups on — the documents, the
-- prompt, the payload hash and the client's details. Without them ANALYZE of a 1.86-million-row
-- table took 0.49 s instead of 0.80 s. A query that comes to filter on one of them should set its
-- statistics back (SET STATISTICS -1) in the migration that adds it.
ALTER TABLE feedback
    ALTER COLUMN original SET STATISTICS 0,
    ALTER COLUMN corrected SET STATISTICS 0,
    ALTER COLUMN prompt SET STATISTICS 0,
    ALTER COLUMN payload_hash SET STATISTICS 0,
    ALTER COLUMN flags SET STATISTICS 0,
    ALTER COLUMN client_app SET STATISTICS 0,
    ALTER COLUMN client_version SET STATISTICS 0,
    ALTER COLUMN edit_duration_ms SET STATISTICS 0,
    ALTER COLUMN target_key SET STATISTICS 0;
-- The example's json has no statistics to gather beyond its width.
ALTER TABLE training_examples ALTER COLUMN body SET STATISTICS 0;
