-- 0.1.0: results of llm_evaluate.

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

SELECT pg_catalog.pg_extension_config_dump('llm.evaluations', '');
SELECT pg_catalog.pg_extension_config_dump('llm.evaluations_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('llm.evaluation_items', '');
