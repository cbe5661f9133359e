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
