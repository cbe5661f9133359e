-- Fine-tuning, versions, jobs and budgets from SQL.
-- Python: pg_llm.api.finetune (llm_finetune, llm_wait, llm_refresh, llm_cancel_job, budgets,
-- datasources, llm_schedule_refresh), pg_llm.api.versions (active version, rollback, drop),
-- pg_llm.finetune.* (shapes, validation, estimate, provider calls), pg_llm.finetune.lifecycle
-- (every change of a job's state), pg_llm.catalog.jobs / budgets (the only writers of the
-- tables of incremental/003-finetune.sql and 030-job-handover.sql).
-- Every function pins search_path (idempotent/999-search-path.sql); llm_finetune runs the
-- caller's training query under the caller's search_path, passed in by the default of its
-- last argument (evaluated by the caller: docs/security.md, point 7).

-- Spend and what is left, per budget.
CREATE OR REPLACE VIEW llm.budget_status AS
SELECT b.scope, b.target, b.max_usd, b.max_tokens,
       coalesce(s.tokens, 0) AS spent_tokens, coalesce(s.usd, 0) AS spent_usd,
       b.max_tokens - coalesce(s.tokens, 0) AS remaining_tokens,
       b.max_usd - coalesce(s.usd, 0) AS remaining_usd
FROM llm.budgets b
LEFT JOIN LATERAL (
    SELECT sum(l.tokens) AS tokens, sum(l.usd) AS usd FROM llm.ledger l
    WHERE (b.scope = 'model' AND l.model = b.target)
       OR (b.scope = 'engine' AND l.engine = b.target)
       OR (b.scope = 'role' AND l.role = b.target)) s ON true;  -- inference (pg_llm.spending)

-- External training data (servers of the pg_llm_datasource wrapper); passwords stay in user
-- mappings.
CREATE OR REPLACE VIEW llm.datasources AS
SELECT s.srvname AS name,
       (SELECT substr(o, 5) FROM pg_catalog.unnest(s.srvoptions) o WHERE o LIKE 'url=%') AS url,
       pg_catalog.pg_get_userbyid(s.srvowner) AS owner,
       EXISTS (SELECT FROM pg_catalog.pg_user_mapping m WHERE m.umserver = s.oid)
           AS has_password
FROM pg_catalog.pg_foreign_server s
JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
WHERE w.fdwname = 'pg_llm_datasource';

-- ---------------------------------------------------------------------------------------
-- Functions. Each body is the two-line wrapper over pg_llm.api.

DROP FUNCTION IF EXISTS @extschema@.llm_finetune(text, text, jsonb, boolean, boolean, text);
CREATE OR REPLACE FUNCTION @extschema@.llm_finetune(
    model text,
    query text,
    options jsonb DEFAULT '{}',
    dry_run boolean DEFAULT false,
    activate boolean DEFAULT true,
    datasource text DEFAULT NULL,
    search_path text DEFAULT pg_catalog.current_setting('search_path'))
RETURNS TABLE (job_id bigint, status text, conversations int, tokens bigint,
               epochs int, estimated_trained_tokens bigint, estimated_usd numeric,
               token_count_method text, provider_job_id text)
LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.finetune:finetune", model, query, options=options,
               dry_run=dry_run, activate=activate, datasource=datasource,
               search_path=search_path)
$$;
COMMENT ON FUNCTION @extschema@.llm_finetune(text, text, jsonb, boolean, boolean, text, text)
    IS 'Validate the query''s rows as training conversations, estimate tokens and cost, check and reserve budgets, queue a fine-tuning job (status pending: handed to the engine by llm_wait or llm_refresh after this transaction commits; dry_run => true: estimate only)';

CREATE OR REPLACE FUNCTION @extschema@.llm_wait(model text, timeout_s float8 DEFAULT NULL)
RETURNS llm.jobs LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.finetune:wait", model, timeout_s=timeout_s)
$$;
COMMENT ON FUNCTION @extschema@.llm_wait(text, float8)
    IS 'Block until the model''s latest job (or job id) finishes, with a NOTICE per training step; returns the final job row (a failed job gives a WARNING, not an error); cancellable';

-- The text overload reads a number as a job id (pg_llm.api.finetune._resolve_job).
CREATE OR REPLACE FUNCTION @extschema@.llm_wait(job bigint, timeout_s float8 DEFAULT NULL)
RETURNS llm.jobs LANGUAGE sql AS $$ SELECT * FROM @extschema@.llm_wait(job::text, timeout_s) $$;
COMMENT ON FUNCTION @extschema@.llm_wait(bigint, float8)
    IS 'Block until the fine-tuning job finishes, as llm_wait(model) does for a model''s latest job; returns the final job row';

CREATE OR REPLACE FUNCTION @extschema@.llm_refresh()
RETURNS jsonb LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.finetune:refresh")
$$;
COMMENT ON FUNCTION @extschema@.llm_refresh()
    IS 'Hand pending jobs to their engine and poll every unfinished job once: record new events, statuses, versions; returns a summary';

CREATE OR REPLACE FUNCTION @extschema@.llm_cancel_job(job bigint)
RETURNS llm.jobs LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.finetune:cancel_job", job)
$$;
COMMENT ON FUNCTION @extschema@.llm_cancel_job(bigint)
    IS 'Cancel a pending, queued or running fine-tuning job (at its engine too, once handed over); returns the job row; the model keeps serving its active version';

-- Versions (pg_llm.api.versions): one plpython body serves llm_set_active_version,
-- llm_rollback and llm_drop_version, SQL functions over it. Like them it checks the caller's
-- rights itself (SECURITY INVOKER: writes need llm_admin), so PUBLIC may call it.
CREATE OR REPLACE FUNCTION llm._model_version(action text, model text, version int)
RETURNS int LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.versions:change", action, model, version)
$$;
GRANT EXECUTE ON FUNCTION llm._model_version(text, text, int) TO PUBLIC;
COMMENT ON FUNCTION llm._model_version(text, text, int)
    IS 'Body of llm_set_active_version, llm_rollback and llm_drop_version (action: their name without llm_)';

CREATE OR REPLACE FUNCTION @extschema@.llm_set_active_version(model text, version int)
RETURNS int LANGUAGE sql AS $$ SELECT llm._model_version('set_active_version', model, version) $$;
COMMENT ON FUNCTION @extschema@.llm_set_active_version(text, int)
    IS 'Serve this (not dropped) version of the model from now on; returns it';

CREATE OR REPLACE FUNCTION @extschema@.llm_rollback(model text)
RETURNS int LANGUAGE sql AS $$ SELECT llm._model_version('rollback', model, NULL) $$;
COMMENT ON FUNCTION @extschema@.llm_rollback(text)
    IS 'Activate the previously active version of the model; returns it';

CREATE OR REPLACE FUNCTION @extschema@.llm_drop_version(model text, version int)
RETURNS void LANGUAGE sql AS $$ SELECT llm._model_version('drop_version', model, version) $$;
COMMENT ON FUNCTION @extschema@.llm_drop_version(text, int)
    IS 'Soft-delete a version (dropped_at): no longer served; refuses the active version and version 1';

CREATE OR REPLACE FUNCTION @extschema@.llm_set_budget(target text, max_usd numeric DEFAULT NULL,
                                           max_tokens bigint DEFAULT NULL)
RETURNS SETOF llm.budget_status LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.finetune:set_budget", target, max_usd=max_usd,
               max_tokens=max_tokens)
$$;
COMMENT ON FUNCTION @extschema@.llm_set_budget(text, numeric, bigint)
    IS 'Hard budget for an engine or model (''engine:x''/''model:x'' when a name is both): max dollars and/or trained tokens; both NULL removes it';

-- Datasources (pg_llm.finetune.datasources): one plpython body serves llm_create_datasource
-- and llm_drop_datasource, SQL functions over it; PUBLIC may call it as it may call them.
CREATE OR REPLACE FUNCTION llm._datasource(action text, name text, url text, replace boolean)
RETURNS void LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.finetune:datasource", action, name, url, replace)
$$;
GRANT EXECUTE ON FUNCTION llm._datasource(text, text, text, boolean) TO PUBLIC;
COMMENT ON FUNCTION llm._datasource(text, text, text, boolean)
    IS 'Body of llm_create_datasource and llm_drop_datasource (action: create or drop)';

CREATE OR REPLACE FUNCTION @extschema@.llm_create_datasource(name text, url text,
                                                  replace boolean DEFAULT false)
RETURNS void LANGUAGE sql AS $$ SELECT llm._datasource('create', name, url, replace) $$;
COMMENT ON FUNCTION @extschema@.llm_create_datasource(text, text, boolean)
    IS 'Register an external database (any SQLAlchemy URL) for llm_finetune(..., datasource => name); the password is kept in a user mapping';

CREATE OR REPLACE FUNCTION @extschema@.llm_drop_datasource(name text)
RETURNS void LANGUAGE sql AS $$ SELECT llm._datasource('drop', name, NULL, NULL) $$;
COMMENT ON FUNCTION @extschema@.llm_drop_datasource(text)
    IS 'Drop a datasource registered by llm_create_datasource, with its user mappings';

CREATE OR REPLACE FUNCTION @extschema@.llm_schedule_refresh(schedule text DEFAULT '* * * * *')
RETURNS bigint LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.finetune:schedule_refresh", schedule)
$$;
COMMENT ON FUNCTION @extschema@.llm_schedule_refresh(text)
    IS 'Run llm_refresh() on a pg_cron schedule when pg_cron is installed in this database; returns the cron job id (NULL and a NOTICE otherwise)';
