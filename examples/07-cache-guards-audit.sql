-- Step 7 (optional, after step 1; not one of `make demo`'s steps): what a query will cost
-- before it runs, answers cached by version, spending guards and the request audit trail.
-- Run by hand:  psql -X -v ON_ERROR_STOP=1 -e -f examples/07-cache-guards-audit.sql
-- Variables (psql -v NAME=VALUE): answer_tokens (longest answer, default 64).
\if :{?answer_tokens} \else \set answer_tokens 64 \endif
\set q1 'CREATE TABLE customers (id INT, name TEXT, country TEXT);\n-- How many customers are there?'
\set q2 'CREATE TABLE orders (id INT, amount NUMERIC, status TEXT);\n-- List the open orders.'

-- Cache deterministic answers (ft_sql has temperature 0) and write one llm.requests row per
-- request. The cache key holds the provider model id of the version that answers, so a new
-- fine-tuned version never serves the base model's answers.
SELECT llm_alter_model('ft_sql', '{"cache": "on", "audit": "on"}');

-- EXPLAIN sends nothing, yet says how many prompts and about how many tokens this will take.
EXPLAIN (COSTS OFF)
SELECT answer FROM ft_sql WHERE content = ANY (ARRAY[:'q1', :'q2']) AND max_tokens = :answer_tokens;

-- The first run asks the engine; the same query again is answered from llm.cache.
SELECT left(content, 30) AS question, cached, completion_tokens
FROM ft_sql WHERE content = ANY (ARRAY[:'q1', :'q2']) AND max_tokens = :answer_tokens;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT answer FROM ft_sql WHERE content = ANY (ARRAY[:'q1', :'q2']) AND max_tokens = :answer_tokens;

-- A spending guard: at most one new prompt per statement in this transaction. Cached answers
-- cost nothing and do not count; two new prompts are refused before anything is sent.
BEGIN;
SET LOCAL pg_llm.max_prompts_per_statement = 1;
SELECT count(*) AS cached_answers FROM ft_sql
WHERE content = ANY (ARRAY[:'q1', :'q2']) AND max_tokens = :answer_tokens;
-- Expect: ERROR (SQLSTATE 53400) with the estimate in DETAIL.
\set ON_ERROR_STOP 0
SELECT answer FROM ft_sql
WHERE content = ANY (ARRAY[:'q1' || ' Only names.', :'q2' || ' Newest first.'])
  AND max_tokens = :answer_tokens;
\set ON_ERROR_STOP 1
\echo guard_sqlstate: :LAST_ERROR_SQLSTATE
ROLLBACK;

-- The audit trail: who asked which version what (hashes, not text), tokens, cost, cache hits.
SELECT role, version, provider_model_id, cached, prompt_tokens, completion_tokens, cost_usd
FROM llm.requests ORDER BY id;

-- Back to step 1's model: no cache, no audit.
SELECT llm_cache_clear('ft_sql') AS cleared;
SELECT llm_alter_model('ft_sql', '{"cache": null, "audit": null}');
