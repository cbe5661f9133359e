-- 0.1.0: catalog of engines, models and model versions.
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

-- pg_dump keeps the rows (the tables themselves belong to the extension).
SELECT pg_catalog.pg_extension_config_dump('llm.engines', '');
SELECT pg_catalog.pg_extension_config_dump('llm.models', '');
SELECT pg_catalog.pg_extension_config_dump('llm.model_versions', '');
