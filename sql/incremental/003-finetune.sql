-- 0.1.0: fine-tuning jobs, their events, budgets, the spend ledger, activations; the
-- handler-less wrapper of external training databases.

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

-- External training data: servers of this handler-less wrapper hold the URL without its
-- password; the password lives in a USER MAPPING (option password), like an engine's key.
CREATE FOREIGN DATA WRAPPER pg_llm_datasource;
