-- 0.2.0: the answer cache (pg_llm.answer_cache) and the request audit trail (pg_llm.audit).

-- One answer per request key: SHA-256 of the engine (name, base_url, hash of the API key),
-- the provider model id of the resolved version, the rendered messages and every request
-- option. Derived data, so pg_dump leaves it out; written only by the scan (as the owner).
CREATE TABLE llm.cache (
    key               text PRIMARY KEY,
    model             text NOT NULL,
    version           int,
    provider_model_id text NOT NULL,
    answer            text,
    finish_reason     text,
    prompt_tokens     int,
    completion_tokens int,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz                      -- NULL: no time-to-live
);
CREATE INDEX ON llm.cache (model, created_at);

-- One row per request of a model with option audit = 'on' (sent, cached or failed).
-- Hashes only: no prompt or answer text. Administrators keep, prune (DELETE ... WHERE at <
-- ...) or copy it elsewhere; rows of a failed statement roll back with it.
CREATE TABLE llm.requests (
    id                bigserial PRIMARY KEY,
    at                timestamptz NOT NULL DEFAULT now(),
    role              name NOT NULL,                   -- the role the scan ran for
    model             text NOT NULL,
    engine            text NOT NULL,
    version           int,
    provider_model_id text,
    prompt_hash       text,                            -- SHA-256 of the rendered messages
    request_key       text,                            -- the llm.cache key of the request
    prompt_tokens     int,
    completion_tokens int,
    cost_usd          numeric,                         -- 0 for cached answers
    latency_ms        float8,
    cached            boolean NOT NULL DEFAULT false,
    error             text                             -- SQLSTATE: message (on_error = 'null')
);
CREATE INDEX ON llm.requests (at);
CREATE INDEX ON llm.requests (model, at);

SELECT pg_catalog.pg_extension_config_dump('llm.requests', '');
SELECT pg_catalog.pg_extension_config_dump('llm.requests_id_seq', '');
