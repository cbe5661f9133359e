-- 0.2.0: llm_finetune queues a job 'pending' in the caller's transaction; a later
-- transaction hands it to the provider (pg_llm.finetune.lifecycle), so a rolled-back
-- fine-tune never trains. Until then the training data waits in llm.job_files.
ALTER TABLE llm.jobs DROP CONSTRAINT IF EXISTS jobs_status_check;
ALTER TABLE llm.jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('pending', 'queued', 'running', 'succeeded', 'failed', 'cancelled'));
ALTER TABLE llm.jobs ALTER COLUMN status SET DEFAULT 'pending';
DROP INDEX IF EXISTS llm.jobs_status_idx;
CREATE INDEX jobs_unfinished_idx ON llm.jobs (status)
    WHERE status IN ('pending', 'queued', 'running');

-- One row per file of a pending job (JSONL, one {"messages": [...]} per line); deleted when
-- the job is handed over or ends. queued_xact tells the queuing transaction, which may not
-- hand the job over itself (its budget reservation is not committed yet).
CREATE TABLE llm.job_files (
    job_id      bigint NOT NULL REFERENCES llm.jobs (id) ON DELETE CASCADE,
    purpose     text NOT NULL CHECK (purpose IN ('training', 'validation')),
    filename    text NOT NULL,
    content     text NOT NULL,
    queued_xact xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    PRIMARY KEY (job_id, purpose)
);
SELECT pg_catalog.pg_extension_config_dump('llm.job_files', '');
