-- head.sql: first part of every install and upgrade script (sql/build.py).
-- llm.migration records which incremental files ran here, so each runs exactly once
-- whichever version a database comes from (pgai's ai.migration).
CREATE SCHEMA IF NOT EXISTS llm;

DO $head$
BEGIN
    IF pg_catalog.to_regclass('llm.migration') IS NULL THEN
        CREATE TABLE llm.migration (
            name               text PRIMARY KEY,       -- file name in sql/incremental/
            applied_at_version text NOT NULL,          -- the version whose script ran it
            applied_at         timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
            body               text NOT NULL           -- the text that ran
        );
    END IF;
END
$head$;
