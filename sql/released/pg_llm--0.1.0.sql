-- 000-bridge.sql: the schema, the FDW and the bridge between the C handler and Python.
\echo Use "CREATE EXTENSION pg_llm CASCADE" to load this file. \quit

CREATE SCHEMA llm;
COMMENT ON SCHEMA llm IS 'pg_llm catalog and internal functions';

CREATE FUNCTION llm._fdw_handler() RETURNS fdw_handler
    AS 'MODULE_PATHNAME', 'pg_llm_handler' LANGUAGE C STRICT;

CREATE FUNCTION llm._fdw_validator(text[], oid) RETURNS void
    AS 'MODULE_PATHNAME', 'pg_llm_validator' LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER pg_llm
    HANDLER llm._fdw_handler
    VALIDATOR llm._fdw_validator;
COMMENT ON FOREIGN DATA WRAPPER pg_llm IS 'language models as foreign tables (engine = server, model = table)';

-- The directory holding the backend's copy of the pg_llm package (GUC pg_llm.python_path).
CREATE FUNCTION llm._python_path() RETURNS text
    AS 'MODULE_PATHNAME', 'pg_llm_python_path_sql' LANGUAGE C STABLE;

-- Python polls this while waiting on HTTP so that statement_timeout and
-- pg_cancel_backend() interrupt a scan (SQLSTATE 57014).
CREATE FUNCTION llm._check_interrupts() RETURNS void
    AS 'MODULE_PATHNAME', 'pg_llm_check_interrupts' LANGUAGE C VOLATILE PARALLEL SAFE;

-- Once per backend: put pg_llm.python_path on sys.path. Every plpython function of the
-- extension starts with it, whoever calls: SECURITY DEFINER to read the path, and executable
-- by PUBLIC (below). It only imports from the superuser-set path.
CREATE FUNCTION llm._boot() RETURNS void
LANGUAGE plpython3u SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
import sys
path = plpy.execute("SELECT llm._python_path() AS path")[0]["path"]
if path and path not in sys.path:
    sys.path.insert(0, path)
from pg_llm.boot import boot
boot(plpy, GD, path)
$$;

-- The one entry point of the C bridge: JSON payload in, one text[] per row out
-- (docs/architecture.md). The bridge calls it through fmgr after its own privilege checks;
-- nobody else may: it imports code as the postgres OS user. SECURITY DEFINER: Python runs
-- as the extension owner whoever scans (the payload names the scanning role in "user").
CREATE FUNCTION llm._fdw_execute(payload text) RETURNS SETOF text[]
LANGUAGE plpython3u SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
if 'pg_llm' not in GD:
    plpy.execute("SELECT llm._boot()")
from pg_llm.bridge import execute_scan
return execute_scan(payload)
$$;

REVOKE ALL ON FUNCTION llm._fdw_handler() FROM PUBLIC;
REVOKE ALL ON FUNCTION llm._fdw_validator(text[], oid) FROM PUBLIC;
REVOKE ALL ON FUNCTION llm._python_path() FROM PUBLIC;
REVOKE ALL ON FUNCTION llm._fdw_execute(text) FROM PUBLIC;
-- The two internal functions that run as the caller inside every llm_* function a role may
-- call (boot, and interrupt polling while HTTP waits). Harmless: one adds the superuser-set
-- path to sys.path, the other only runs CHECK_FOR_INTERRUPTS().
REVOKE ALL ON FUNCTION llm._boot() FROM PUBLIC;
REVOKE ALL ON FUNCTION llm._check_interrupts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION llm._boot() TO PUBLIC;
GRANT EXECUTE ON FUNCTION llm._check_interrupts() TO PUBLIC;
-- Catalog of engines, models and model versions: plain tables a BI tool can read.
-- No secrets here: an engine's API key lives only in a user mapping. Rows are written only by
-- pg_llm.catalog.models (through the llm_* functions), which also keeps each model's foreign
-- table options in sync, so a scan never reads these tables.

GRANT USAGE ON SCHEMA llm TO PUBLIC;

CREATE TABLE llm.engines (
    name            text PRIMARY KEY,
    provider        text NOT NULL CHECK (provider IN ('openai', 'local')),
    base_url        text NOT NULL,
    price_input     numeric CHECK (price_input >= 0),      -- USD per million input tokens
    price_output    numeric CHECK (price_output >= 0),     -- USD per million output tokens
    price_training  numeric CHECK (price_training >= 0),   -- USD per million trained tokens
    options         jsonb NOT NULL DEFAULT '{}',           -- concurrency, timeout, max_retries
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE llm.engines IS 'Engines (foreign servers of pg_llm); API keys are in user mappings only';

CREATE TABLE llm.models (
    name            text PRIMARY KEY,                      -- also the foreign table's name
    engine          text NOT NULL REFERENCES llm.engines (name),
    base_model      text NOT NULL,                         -- provider model id of version 1
    prompt_template text NOT NULL,
    system_prompt   text,
    predict         text NOT NULL DEFAULT 'answer',
    options         jsonb NOT NULL DEFAULT '{}',           -- request defaults and call options
    active_version  integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE llm.models IS 'Models: each is a foreign table whose columns are its template variables';

CREATE TABLE llm.model_versions (
    model             text NOT NULL REFERENCES llm.models (name) ON DELETE CASCADE,
    version           integer NOT NULL CHECK (version >= 1),
    provider_model_id text NOT NULL,
    job_id            bigint,                              -- the fine-tuning job that made it
    metrics           jsonb,
    cost_usd          numeric,
    created_at        timestamptz NOT NULL DEFAULT now(),
    dropped_at        timestamptz,
    PRIMARY KEY (model, version)
);
COMMENT ON TABLE llm.model_versions IS 'Versions of each model; version 1 is the base model';

-- One row per model with its active version's provider id and its foreign table. base_url is
-- the server's current option (ALTER SERVER may have changed it since llm.engines was written).
CREATE VIEW llm.model_summary AS
SELECT m.name AS model,
       m.engine,
       e.provider,
       coalesce((SELECT substr(o, length('base_url=') + 1)
                   FROM pg_catalog.pg_foreign_server s, unnest(s.srvoptions) o
                  WHERE s.srvname = m.engine AND o LIKE 'base_url=%'), e.base_url) AS base_url,
       m.base_model,
       m.active_version,
       v.provider_model_id AS active_model_id,
       (SELECT count(*) FROM llm.model_versions x
         WHERE x.model = m.name AND x.dropped_at IS NULL) AS versions,
       (SELECT format('%I.%I', n.nspname, c.relname)
          FROM pg_catalog.pg_foreign_table ft
          JOIN pg_catalog.pg_class c ON c.oid = ft.ftrelid
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE ('model=' || m.name) = ANY (ft.ftoptions)
         LIMIT 1) AS foreign_table,
       m.prompt_template,
       m.predict,
       m.created_at
FROM llm.models m
JOIN llm.engines e ON e.name = m.engine
LEFT JOIN llm.model_versions v ON v.model = m.name AND v.version = m.active_version;

-- pg_dump keeps the rows (the tables themselves belong to the extension).
SELECT pg_catalog.pg_extension_config_dump('llm.engines', '');
SELECT pg_catalog.pg_extension_config_dump('llm.models', '');
SELECT pg_catalog.pg_extension_config_dump('llm.model_versions', '');

GRANT SELECT ON llm.engines, llm.models, llm.model_versions, llm.model_summary TO PUBLIC;
-- Engines (foreign servers + user mappings) and models (foreign tables): thin plpython3u
-- wrappers over pg_llm.api.engines / pg_llm.api.models, which validate and then write the
-- catalog through pg_llm.catalog.models.

CREATE FUNCTION llm_create_engine(
    name text,
    provider text DEFAULT 'openai',
    base_url text DEFAULT NULL,
    api_key text DEFAULT NULL,
    verify boolean DEFAULT true,
    price_input numeric DEFAULT NULL,
    price_output numeric DEFAULT NULL,
    price_training numeric DEFAULT NULL,
    options jsonb DEFAULT '{}',
    role name DEFAULT NULL
) RETURNS text LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.engines:create_engine", name, provider=provider,
               base_url=base_url, api_key=api_key, verify=verify, price_input=price_input,
               price_output=price_output, price_training=price_training, options=options,
               role=role)
$$;
COMMENT ON FUNCTION llm_create_engine(text, text, text, text, boolean, numeric, numeric, numeric, jsonb, name)
    IS 'Create an engine (foreign server); the API key goes into a user mapping only';

CREATE FUNCTION llm_set_api_key(engine text, api_key text, role name DEFAULT NULL)
RETURNS void LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.engines:set_api_key", engine, api_key, role=role)
$$;
COMMENT ON FUNCTION llm_set_api_key(text, text, name)
    IS 'Set (or with NULL remove) the API key of an engine for PUBLIC or one role';

CREATE FUNCTION llm_drop_engine(name text, cascade boolean DEFAULT false)
RETURNS void LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.engines:drop_engine", name, cascade=cascade)
$$;
COMMENT ON FUNCTION llm_drop_engine(text, boolean)
    IS 'Drop an engine, its user mappings and (with cascade => true) its models';

CREATE FUNCTION llm_create_model(
    name text,
    engine text,
    model_name text,
    prompt_template text,
    predict text DEFAULT 'answer',
    system_prompt text DEFAULT NULL,
    options jsonb DEFAULT '{}'
) RETURNS text LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.models:create_model", name, engine, model_name,
               prompt_template, predict=predict, system_prompt=system_prompt, options=options)
$$;
COMMENT ON FUNCTION llm_create_model(text, text, text, text, text, text, jsonb)
    IS 'Create a model: catalog rows (version 1 = model_name) and a foreign table in the current schema';

CREATE FUNCTION llm_drop_model(name text)
RETURNS void LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.models:drop_model", name)
$$;
COMMENT ON FUNCTION llm_drop_model(text) IS 'Drop a model: its foreign table and catalog rows';
-- Fine-tuning, versions, jobs and budgets from SQL.
-- Python: pg_llm.api.finetune (llm_finetune, llm_wait, llm_refresh, llm_cancel_job, budgets,
-- datasources, llm_schedule_refresh), pg_llm.api.versions (active version, rollback, drop),
-- pg_llm.finetune.* (shapes, validation, estimate, provider calls, jobs),
-- pg_llm.catalog.jobs (the only writer of the tables below).
-- Functions that run the caller's training query are SECURITY INVOKER and do not pin
-- search_path: unqualified names in the query resolve as the caller expects.

-- One row per fine-tuning job. estimated_tokens = estimated *trained* tokens (tokens x epochs),
-- comparable with trained_tokens once the provider reports them.
CREATE TABLE llm.jobs (
    id                          bigserial PRIMARY KEY,
    model                       text NOT NULL,
    engine                      text NOT NULL,
    status                      text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    provider_job_id             text,
    provider_file_id            text,
    provider_validation_file_id text,
    base_model                  text,
    hyperparameters             jsonb NOT NULL DEFAULT '{}',
    options                     jsonb NOT NULL DEFAULT '{}',
    activate                    boolean NOT NULL DEFAULT true,
    n_conversations             int,
    estimated_tokens            bigint,
    estimated_usd               numeric,
    trained_tokens              bigint,
    cost_usd                    numeric,
    created_by                  name NOT NULL DEFAULT current_user,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    started_at                  timestamptz,
    finished_at                 timestamptz,
    error                       text,
    result_version              int
);
CREATE INDEX ON llm.jobs (model, id);
CREATE INDEX ON llm.jobs (status) WHERE status IN ('queued', 'running');

-- Provider events (step metrics and messages), deduplicated by the provider's event id, so
-- polling the same job from llm_wait, llm_refresh and cron never records an event twice.
CREATE TABLE llm.job_events (
    id                  bigserial PRIMARY KEY,
    job_id              bigint NOT NULL REFERENCES llm.jobs (id) ON DELETE CASCADE,
    provider_event_id   text,
    step                int,
    total_steps         int,
    loss                float8,
    valid_loss          float8,
    level               text,
    message             text,
    provider_created_at timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, provider_event_id)
);

-- Hard limits per engine or model: dollars, trained tokens, or both.
CREATE TABLE llm.budgets (
    scope      text NOT NULL CHECK (scope IN ('engine', 'model')),
    target     text NOT NULL,
    max_usd    numeric CHECK (max_usd >= 0),
    max_tokens bigint CHECK (max_tokens >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, target),
    CHECK (max_usd IS NOT NULL OR max_tokens IS NOT NULL)
);

-- Append-only spend: 'estimate' when a job starts, 'release' (negative) when it ends,
-- 'actual' for what the provider trained. Spend = sum over a scope.
CREATE TABLE llm.ledger (
    id         bigserial PRIMARY KEY,
    job_id     bigint REFERENCES llm.jobs (id) ON DELETE SET NULL,
    model      text NOT NULL,
    engine     text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('estimate', 'release', 'actual')),
    tokens     bigint NOT NULL DEFAULT 0,
    usd        numeric NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON llm.ledger (job_id);

-- Which version served when (for llm_rollback = back to the previously active version).
CREATE TABLE llm.activations (
    id           bigserial PRIMARY KEY,
    model        text NOT NULL,
    version      int NOT NULL,
    reason       text,
    activated_by name NOT NULL DEFAULT current_user,
    activated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON llm.activations (model, id);

SELECT pg_catalog.pg_extension_config_dump('llm.jobs', '');
SELECT pg_catalog.pg_extension_config_dump('llm.jobs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('llm.job_events', '');
SELECT pg_catalog.pg_extension_config_dump('llm.job_events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('llm.budgets', '');
SELECT pg_catalog.pg_extension_config_dump('llm.ledger', '');
SELECT pg_catalog.pg_extension_config_dump('llm.ledger_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('llm.activations', '');
SELECT pg_catalog.pg_extension_config_dump('llm.activations_id_seq', '');

-- Spend and what is left, per budget.
CREATE VIEW llm.budget_status AS
SELECT b.scope, b.target, b.max_usd, b.max_tokens,
       coalesce(s.tokens, 0) AS spent_tokens, coalesce(s.usd, 0) AS spent_usd,
       b.max_tokens - coalesce(s.tokens, 0) AS remaining_tokens,
       b.max_usd - coalesce(s.usd, 0) AS remaining_usd
FROM llm.budgets b
LEFT JOIN LATERAL (
    SELECT sum(l.tokens) AS tokens, sum(l.usd) AS usd FROM llm.ledger l
    WHERE (b.scope = 'model' AND l.model = b.target)
       OR (b.scope = 'engine' AND l.engine = b.target)) s ON true;

-- External training data: servers of this handler-less wrapper hold the URL without its
-- password; the password lives in a USER MAPPING (option password), like an engine's key.
CREATE FOREIGN DATA WRAPPER pg_llm_datasource;

CREATE VIEW llm.datasources AS
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

CREATE FUNCTION @extschema@.llm_finetune(
    model text,
    query text,
    options jsonb DEFAULT '{}',
    dry_run boolean DEFAULT false,
    activate boolean DEFAULT true,
    datasource text DEFAULT NULL)
RETURNS TABLE (job_id bigint, status text, conversations int, tokens bigint,
               epochs int, estimated_trained_tokens bigint, estimated_usd numeric,
               token_count_method text, provider_job_id text)
LANGUAGE plpython3u
AS $fn$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.finetune:finetune", model, query, options=options,
               dry_run=dry_run, activate=activate, datasource=datasource)
$fn$;
COMMENT ON FUNCTION @extschema@.llm_finetune(text, text, jsonb, boolean, boolean, text) IS
'Validate the query''s rows as training conversations, estimate tokens and cost, check budgets, upload and start a fine-tuning job (dry_run => true: estimate only)';

CREATE FUNCTION @extschema@.llm_wait(job bigint, timeout_s float8 DEFAULT NULL)
RETURNS llm.jobs
LANGUAGE plpython3u
AS $fn$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.finetune:wait", job, timeout_s=timeout_s)
$fn$;

CREATE FUNCTION @extschema@.llm_wait(model text, timeout_s float8 DEFAULT NULL)
RETURNS llm.jobs
LANGUAGE plpython3u
AS $fn$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.finetune:wait", model, timeout_s=timeout_s)
$fn$;
COMMENT ON FUNCTION @extschema@.llm_wait(text, float8) IS
'Block until the model''s latest job (or job id) finishes, with a NOTICE per training step; returns the final job row (a failed job gives a WARNING, not an error); cancellable';

CREATE FUNCTION @extschema@.llm_refresh()
RETURNS jsonb
LANGUAGE plpython3u
AS $fn$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.finetune:refresh")
$fn$;
COMMENT ON FUNCTION @extschema@.llm_refresh() IS
'Poll the provider for every unfinished job once: record new events, statuses, versions; returns a summary';

CREATE FUNCTION @extschema@.llm_cancel_job(job bigint)
RETURNS llm.jobs
LANGUAGE plpython3u
AS $fn$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.finetune:cancel_job", job)
$fn$;

CREATE FUNCTION @extschema@.llm_set_active_version(model text, version int)
RETURNS int
LANGUAGE plpython3u
AS $fn$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.versions:set_active_version", model, version)
$fn$;

CREATE FUNCTION @extschema@.llm_rollback(model text)
RETURNS int
LANGUAGE plpython3u
AS $fn$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.versions:rollback", model)
$fn$;
COMMENT ON FUNCTION @extschema@.llm_rollback(text) IS
'Activate the previously active version of the model; returns it';

CREATE FUNCTION @extschema@.llm_drop_version(model text, version int)
RETURNS void
LANGUAGE plpython3u
AS $fn$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.versions:drop_version", model, version)
$fn$;
COMMENT ON FUNCTION @extschema@.llm_drop_version(text, int) IS
'Soft-delete a version (dropped_at): no longer served; refuses the active version and version 1';

CREATE FUNCTION @extschema@.llm_set_budget(target text, max_usd numeric DEFAULT NULL,
                                           max_tokens bigint DEFAULT NULL)
RETURNS SETOF llm.budget_status
LANGUAGE plpython3u
AS $fn$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.finetune:set_budget", target, max_usd=max_usd,
               max_tokens=max_tokens)
$fn$;
COMMENT ON FUNCTION @extschema@.llm_set_budget(text, numeric, bigint) IS
'Hard budget for an engine or model (''engine:x''/''model:x'' when a name is both): max dollars and/or trained tokens; both NULL removes it';

CREATE FUNCTION @extschema@.llm_create_datasource(name text, url text,
                                                  replace boolean DEFAULT false)
RETURNS void
LANGUAGE plpython3u
AS $fn$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.finetune:create_datasource", name, url, replace=replace)
$fn$;
COMMENT ON FUNCTION @extschema@.llm_create_datasource(text, text, boolean) IS
'Register an external database (any SQLAlchemy URL) for llm_finetune(..., datasource => name); the password is kept in a user mapping';

CREATE FUNCTION @extschema@.llm_drop_datasource(name text)
RETURNS void
LANGUAGE plpython3u
AS $fn$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.finetune:drop_datasource", name)
$fn$;

CREATE FUNCTION @extschema@.llm_schedule_refresh(schedule text DEFAULT '* * * * *')
RETURNS bigint
LANGUAGE plpython3u
AS $fn$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.finetune:schedule_refresh", schedule)
$fn$;
COMMENT ON FUNCTION @extschema@.llm_schedule_refresh(text) IS
'Run llm_refresh() on a pg_cron schedule when pg_cron is installed in this database; returns the cron job id (NULL and a NOTICE otherwise)';
-- llm_evaluate: compare models (and versions of a model) on a text-to-SQL data set.
-- Python: pg_llm.evaluate.runner (asks the models through their foreign tables),
-- pg_llm.evaluate.execution (runs gold and generated SQL as llm_eval_reader),
-- pg_llm.catalog.evaluations (the only writer of the two tables below).

-- One row per model entry of one llm_evaluate call; the rows of one call share run_id.
CREATE TABLE llm.evaluations (
    id                    bigserial PRIMARY KEY,
    run_id                bigint NOT NULL,
    name                  text,
    entry                 text NOT NULL,           -- as written: 'ft_sql' or 'ft_sql@1'
    model                 text NOT NULL,
    version               int,
    provider_model_id     text,
    n                     int NOT NULL,
    n_executable          int NOT NULL DEFAULT 0,  -- items whose gold query ran on their setup
    execution_match       float8,                  -- NULL: no item could be executed
    exact_match           float8,
    succinct_rate         float8,
    avg_prompt_tokens     float8,
    avg_completion_tokens float8,
    avg_latency_ms        float8,
    cost_usd              numeric,
    max_tokens            int,
    data_query            text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON llm.evaluations (run_id);

-- One row per (model entry, data row): the answer and why it scored what it scored.
CREATE TABLE llm.evaluation_items (
    evaluation_id     bigint NOT NULL REFERENCES llm.evaluations (id) ON DELETE CASCADE,
    item_id           text NOT NULL,
    prompt            text,
    answer            text,
    gold_sql          text,
    succinct          boolean NOT NULL,
    exact             boolean NOT NULL,
    executed_ok       boolean,   -- the answer ran without error (NULL: not executable)
    execution_match   boolean,   -- same result as the gold query (NULL: not executable)
    error             text,
    latency_ms        float8,
    prompt_tokens     int,
    completion_tokens int,
    PRIMARY KEY (evaluation_id, item_id)
);

-- Summaries are readable by everyone (like llm.model_summary); items hold prompts and
-- answers and stay private. Writing needs grants (see docs/evaluation.md).
GRANT SELECT ON llm.evaluations TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('llm.evaluations', '');
SELECT pg_catalog.pg_extension_config_dump('llm.evaluations_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('llm.evaluation_items', '');

-- The role generated SQL runs as: no login, no privileges but USAGE/SELECT on the
-- throwaway schema of one example, granted and rolled back inside the evaluation.
-- Roles are cluster-wide: another database may have created it already.
DO $do$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'llm_eval_reader') THEN
        CREATE ROLE llm_eval_reader NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
END
$do$;

-- Runs one query as llm_eval_reader and returns its rows as JSON objects (json keeps
-- duplicate column names and their order).
-- SECURITY DEFINER owned by llm_eval_reader (not SET ROLE) on purpose: inside a
-- security-definer function PostgreSQL refuses set_config('role', ...) and
-- SET SESSION AUTHORIZATION, so a generated query cannot climb back to the session user
-- even when that user is a superuser. The text is wrapped as a subquery, so only a single
-- SELECT/VALUES/WITH query can run: utility commands and data-modifying statements are
-- syntax errors. The SET clause makes the transaction read-only while it runs (a SET LOCAL
-- from PL/Python would not last: each plpy.execute is its own subtransaction, and ending a
-- subtransaction restores the parent's read-write state); a query cannot turn it off again
-- because it runs inside a subtransaction. search_path is the caller's (the throwaway schema).
CREATE FUNCTION llm._eval_run_as_reader(query text, max_rows int)
RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER
SET transaction_read_only = on
AS $fn$
BEGIN
    RETURN QUERY EXECUTE
        'SELECT pg_catalog.row_to_json(llm_eval_q)::text FROM ('
        || query
        || E'\n) AS llm_eval_q LIMIT ' || max_rows::text;
END
$fn$;
ALTER FUNCTION llm._eval_run_as_reader(text, int) OWNER TO llm_eval_reader;
-- Harmless to anyone: it only lowers privileges. llm_evaluate calls it as the caller.
GRANT EXECUTE ON FUNCTION llm._eval_run_as_reader(text, int) TO PUBLIC;

CREATE FUNCTION llm_evaluate(
    models text[],
    data text,
    name text DEFAULT NULL,
    max_tokens int DEFAULT 200,
    statement_timeout_ms int DEFAULT 2000)
RETURNS TABLE (evaluation_id bigint, model text, version int, n int,
               execution_match float8, exact_match float8, succinct_rate float8,
               avg_prompt_tokens float8, avg_completion_tokens float8,
               avg_latency_ms float8, cost_usd numeric)
LANGUAGE plpython3u
AS $fn$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.evaluate.runner:evaluate", models, data, name=name,
               max_tokens=max_tokens, statement_timeout_ms=statement_timeout_ms)
$fn$;
COMMENT ON FUNCTION llm_evaluate(text[], text, text, int, int) IS
'Ask each model (''name'' or ''name@version'') every prompt of the data query through its foreign table; score execution match, exact match and succinct rate; store in llm.evaluations';
-- The tutorial's data: deterministic text-to-SQL conversations (pg_llm.demo.generator).
-- Creates (or replaces) two tables in the caller's current schema:
--   train_table(chat_id, message_id, role, content)   long chat format, one row per message
--   eval_table(id, content, gold_sql, setup_sql, schema_key, kind)   held-out questions on
--     schemas the training split never uses; setup_sql builds a database gold_sql runs on.
CREATE FUNCTION @extschema@.llm_generate_demo_data(
    train_table text DEFAULT 'demo_data',
    eval_table text DEFAULT 'demo_eval',
    n_train int DEFAULT 400,
    n_eval int DEFAULT 60,
    seed int DEFAULT 42)
RETURNS TABLE(table_name text, row_count int, description text)
LANGUAGE plpython3u VOLATILE
AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.demo.api:generate_demo_data",
               train_table, eval_table, n_train, n_eval, seed)
$$;
COMMENT ON FUNCTION @extschema@.llm_generate_demo_data(text, text, int, int, int) IS
  'Creates the tutorial''s training conversations and held-out evaluation questions';
