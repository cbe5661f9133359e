-- Answer cache, audit trail, per-row errors, spending guards (docs/sql-reference.md,
-- "Answer cache" ... "Spending guards"). Python: pg_llm.answering and the modules it calls.

COMMENT ON TABLE llm.cache IS
    'Answers of deterministic requests by request key (model option cache); llm_cache_clear empties it';
COMMENT ON TABLE llm.requests IS
    'One row per request of models with option audit = on: role, version, tokens, cost, latency, cached, error';

-- Prompts and answers (cache) and who asked what (requests) stay private: the scan writes
-- them as the extension owner, who may GRANT SELECT to auditors.
REVOKE ALL ON llm.cache, llm.requests FROM PUBLIC;

-- SECURITY INVOKER: the caller needs DELETE on llm.cache (the owner, or a role granted it).
CREATE OR REPLACE FUNCTION @extschema@.llm_cache_clear(model text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    removed bigint;
BEGIN
    IF llm_cache_clear.model IS NOT NULL
       AND NOT EXISTS (SELECT FROM llm.models m WHERE m.name = llm_cache_clear.model) THEN
        RAISE EXCEPTION 'model "%" does not exist', model
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT name FROM llm.models lists the models; llm_cache_clear() empties the whole cache';
    END IF;
    DELETE FROM llm.cache c
    WHERE llm_cache_clear.model IS NULL OR c.model = llm_cache_clear.model;
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END
$fn$;
COMMENT ON FUNCTION @extschema@.llm_cache_clear(text) IS
    'Delete the cached answers of one model (or of all with NULL); returns how many';

CREATE OR REPLACE FUNCTION @extschema@.llm_alter_model(name text, options jsonb)
RETURNS jsonb LANGUAGE plpython3u AS $fn$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.model_options:alter_model", name, options)
$fn$;
COMMENT ON FUNCTION @extschema@.llm_alter_model(text, jsonb) IS
    'Merge options into a model''s options (a JSON null removes one), e.g. {"cache": "on", "audit": "on"}; returns them';

-- Inference spend per role, model and day (the 'inference' rows of llm.ledger that scans of
-- models on priced engines book; pg_llm.spending). Private like the ledger.
CREATE OR REPLACE VIEW llm.spend AS
SELECT l.role, l.model, l.engine, (l.created_at AT TIME ZONE 'UTC')::date AS day,
       count(*) AS scans, sum(l.tokens) AS tokens, sum(l.usd) AS usd
FROM llm.ledger l
WHERE l.kind = 'inference'
GROUP BY 1, 2, 3, 4;
COMMENT ON VIEW llm.spend IS
    'Inference spend per role, model, engine and day (UTC) from llm.ledger';
REVOKE ALL ON llm.spend FROM PUBLIC;

-- EXPLAIN of a model scan (ext/cost.c -> pg_llm.scan_cost): the estimate of a scan whose
-- values are constants, and what the last scan spent (EXPLAIN ANALYZE). Called by the C
-- bridge through fmgr after its privilege checks, like llm._fdw_execute; nobody else may.
CREATE OR REPLACE FUNCTION llm._fdw_explain(payload text, mode text) RETURNS float8[]
LANGUAGE plpython3u SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
if 'pg_llm' not in GD:
    plpy.execute("SELECT llm._boot()")
from pg_llm.scan_cost import explain
return explain(payload, mode)
$$;
REVOKE ALL ON FUNCTION llm._fdw_explain(text, text) FROM PUBLIC;
