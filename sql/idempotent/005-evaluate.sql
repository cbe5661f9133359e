-- llm_evaluate: compare models (and versions of a model) on a text-to-SQL data set.
-- Python: pg_llm.evaluate.runner (asks the models through their foreign tables),
-- pg_llm.evaluate.execution (runs gold and generated SQL as llm_eval_reader),
-- pg_llm.catalog.evaluations (the only writer of llm.evaluations and llm.evaluation_items).

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
-- because it runs inside a subtransaction. search_path is pinned like every function of the
-- extension (docs/security.md, point 7), then set to pg_catalog and the one throwaway schema
-- the query may see: schema defaults to the caller's current_schema(), which the sandbox
-- has just set (the default is evaluated by the caller, before the pinned path applies).
DROP FUNCTION IF EXISTS llm._eval_run_as_reader(text, int);
CREATE OR REPLACE FUNCTION llm._eval_run_as_reader(query text, max_rows int,
                                                   schema name DEFAULT pg_catalog.current_schema())
RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER
SET transaction_read_only = on
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM pg_catalog.set_config('search_path',
        'pg_catalog, ' || pg_catalog.quote_ident(schema) || ', pg_temp', true);
    RETURN QUERY EXECUTE
        'SELECT pg_catalog.row_to_json(llm_eval_q)::text FROM ('
        || query
        || E'\n) AS llm_eval_q LIMIT ' || max_rows::text;
END
$fn$;
ALTER FUNCTION llm._eval_run_as_reader(text, int, name) OWNER TO llm_eval_reader;
-- Harmless to anyone: it only lowers privileges. llm_evaluate calls it as the caller.
GRANT EXECUTE ON FUNCTION llm._eval_run_as_reader(text, int, name) TO PUBLIC;

-- search_path: the data query runs under the caller's (the default is evaluated by the
-- caller, before this function's pinned path applies: docs/security.md, point 7).
DROP FUNCTION IF EXISTS llm_evaluate(text[], text, text, int, int);
CREATE OR REPLACE FUNCTION llm_evaluate(
    models text[],
    data text,
    name text DEFAULT NULL,
    max_tokens int DEFAULT 200,
    statement_timeout_ms int DEFAULT 2000,
    search_path text DEFAULT pg_catalog.current_setting('search_path'))
RETURNS TABLE (evaluation_id bigint, model text, version int, n int,
               execution_match float8, exact_match float8, succinct_rate float8,
               avg_prompt_tokens float8, avg_completion_tokens float8,
               avg_latency_ms float8, cost_usd numeric)
LANGUAGE plpython3u
AS $fn$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.evaluate.runner:evaluate", models, data, name=name,
               max_tokens=max_tokens, statement_timeout_ms=statement_timeout_ms,
               search_path=search_path)
$fn$;
COMMENT ON FUNCTION llm_evaluate(text[], text, text, int, int, text) IS
'Ask each model (''name'' or ''name@version'') every prompt of the data query through its foreign table; score execution match, exact match and succinct rate; store in llm.evaluations';

-- Summaries are readable by everyone (like llm.model_summary); items hold prompts and
-- answers and stay private. Writing needs grants (see docs/evaluation.md).
GRANT SELECT ON llm.evaluations TO PUBLIC;
