-- Catalog of engines, models and model versions, for people and BI tools to read.
-- No secrets here: an engine's API key lives only in a user mapping. One home for each fact
-- (docs/architecture.md): an engine is its foreign server, so llm.engines is a view over the
-- servers' options; models and versions are rows written only by pg_llm.catalog.models,
-- which copies what a scan needs into each model table's options (the scan reads only
-- those). A model's table is the one whose oid llm.models.relid recorded at creation.

GRANT USAGE ON SCHEMA llm TO PUBLIC;

-- Engines: servers of the pg_llm FDW (or of Multicorn2 running pg_llm's ModelTable,
-- docs/multicorn.md) and their options as set by llm_create_engine or ALTER SERVER.
CREATE OR REPLACE VIEW llm.engines AS
SELECT s.srvname::text AS name,
       coalesce(o.opts ->> 'provider', 'openai') AS provider,
       o.opts ->> 'base_url' AS base_url,
       (o.opts ->> 'price_input')::numeric AS price_input,
       (o.opts ->> 'price_output')::numeric AS price_output,
       (o.opts ->> 'price_training')::numeric AS price_training,
       -- the other options (call tuning, feature defaults), numbers as JSON numbers
       (SELECT coalesce(jsonb_object_agg(key, CASE WHEN value #>> '{}' ~ '^-?[0-9]+(\.[0-9]+)?$'
                                                   THEN to_jsonb((value #>> '{}')::numeric)
                                                   ELSE value END), '{}')
          FROM jsonb_each(o.opts)
         WHERE key NOT IN ('provider', 'base_url', 'wrapper')
           AND key NOT LIKE 'price\_%') AS options,
       pg_catalog.pg_get_userbyid(s.srvowner) AS owner,
       w.fdwname::text AS bridge,
       s.oid AS server
FROM pg_catalog.pg_foreign_server s
JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
CROSS JOIN LATERAL (
    SELECT coalesce(jsonb_object_agg(split_part(x, '=', 1), substr(x, strpos(x, '=') + 1)), '{}')
           AS opts
    FROM pg_catalog.unnest(s.srvoptions) x) o
WHERE w.fdwname = 'pg_llm'
   OR (w.fdwname = 'multicorn' AND 'wrapper=pg_llm.fdw.ModelTable' = ANY (s.srvoptions));

COMMENT ON VIEW llm.engines IS 'Engines = foreign servers of pg_llm and their options; API keys are in user mappings only';
COMMENT ON TABLE llm.models IS 'Models: each is a foreign table (relid) whose columns are its template variables';
COMMENT ON COLUMN llm.models.relid IS 'The foreign table llm_create_model created; every lookup goes through it';
COMMENT ON TABLE llm.model_versions IS 'Versions of each model; version 1 is the base model';

-- One row per model with its active version's provider id, its foreign table (by the oid
-- recorded at creation) and the engine that table sends to.
CREATE OR REPLACE VIEW llm.model_summary AS
SELECT m.name AS model,
       m.engine,
       e.provider,
       e.base_url,
       m.base_model,
       m.active_version,
       v.provider_model_id AS active_model_id,
       (SELECT count(*) FROM llm.model_versions x
         WHERE x.model = m.name AND x.dropped_at IS NULL) AS versions,
       (SELECT format('%I.%I', n.nspname, c.relname)
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = m.relid) AS foreign_table,
       m.prompt_template,
       m.predict,
       m.created_at
FROM llm.models m
LEFT JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = m.relid
LEFT JOIN llm.engines e ON e.server = ft.ftserver
LEFT JOIN llm.model_versions v ON v.model = m.name AND v.version = m.active_version;

GRANT SELECT ON llm.engines, llm.models, llm.model_versions, llm.model_summary TO PUBLIC;
