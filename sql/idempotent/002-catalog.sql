-- Catalog of engines, models and model versions: plain tables a BI tool can read.
-- No secrets here: an engine's API key lives only in a user mapping. Rows are written only by
-- pg_llm.catalog.models (through the llm_* functions), which also keeps each model's foreign
-- table options in sync, so a scan never reads these tables.

GRANT USAGE ON SCHEMA llm TO PUBLIC;

COMMENT ON TABLE llm.engines IS 'Engines (foreign servers of pg_llm); API keys are in user mappings only';
COMMENT ON TABLE llm.models IS 'Models: each is a foreign table whose columns are its template variables';
COMMENT ON TABLE llm.model_versions IS 'Versions of each model; version 1 is the base model';

-- One row per model with its active version's provider id and its foreign table. base_url is
-- the server's current option (ALTER SERVER may have changed it since llm.engines was written).
CREATE OR REPLACE VIEW llm.model_summary AS
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

GRANT SELECT ON llm.engines, llm.models, llm.model_versions, llm.model_summary TO PUBLIC;
