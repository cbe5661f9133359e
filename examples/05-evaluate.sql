-- Step 5: compare the base model (ft_sql@1), the prompt-engineered model and the fine-tuned
-- version on the held-out split, whose schemas the training never saw. llm_evaluate asks each
-- model every question through its foreign table and scores each answer:
--   execution_match  the SQL runs in a throwaway schema built by setup_sql, under a read-only
--                    role with a statement timeout, and returns the gold query's rows;
--   exact_match      equal to the gold SQL after normalisation;
--   succinct_rate    the answer is exactly one SQL statement (sqlglot, postgres dialect).
-- Variables: eval_limit (questions to use, default ALL), eval_max_tokens (default 200),
-- out_dir (default .demo/out).
\if :{?eval_limit} \else \set eval_limit ALL \endif
\if :{?eval_max_tokens} \else \set eval_max_tokens 200 \endif
\if :{?out_dir} \else \set out_dir .demo/out \endif

-- Which models decode under the schema's SQL grammar and get the joins their answers' columns
-- need (step 1's sql_grammar and sql_joins, default on):
SELECT name AS model, options->>'sql_grammar_from' AS sql_grammar_from,
       options->>'sql_infer_joins_from' AS sql_infer_joins_from
FROM llm.models WHERE name IN ('ft_sql', 'ft_sql_succinct') ORDER BY name;

SELECT model, version, n,
       round(execution_match::numeric, 2)    AS execution_match,
       round(exact_match::numeric, 2)        AS exact_match,
       round(succinct_rate::numeric, 2)      AS succinct_rate,
       round(avg_prompt_tokens::numeric)     AS prompt_tokens,
       round(avg_completion_tokens::numeric) AS completion_tokens,
       round(avg_latency_ms::numeric)        AS latency_ms,
       cost_usd
FROM llm_evaluate(
    models => ARRAY['ft_sql@1', 'ft_sql_succinct', 'ft_sql'],
    data   => format('SELECT id, content, gold_sql, setup_sql FROM demo_eval ORDER BY id LIMIT %s',
                     :'eval_limit'),
    name   => 'tutorial',
    max_tokens => :eval_max_tokens);

-- Every answer is kept with its verdict: execution match per question kind, per model.
SELECT d.kind,
       round(avg(i.execution_match::int) FILTER (WHERE e.version = 1 AND e.model = 'ft_sql'), 2) AS base,
       round(avg(i.execution_match::int) FILTER (WHERE e.model = 'ft_sql_succinct'), 2)          AS prompt_engineered,
       round(avg(i.execution_match::int) FILTER (WHERE e.version > 1 AND e.model = 'ft_sql'), 2)  AS fine_tuned
FROM llm.evaluations e
JOIN llm.evaluation_items i ON i.evaluation_id = e.id
JOIN demo_eval d ON d.id::text = i.item_id
WHERE e.run_id = (SELECT max(run_id) FROM llm.evaluations)
GROUP BY d.kind ORDER BY d.kind;

-- ... and per schema style: simple (the generator's one-line schemas), the real-style
-- schemas in the trained styles (compact, orm, annotated) and in documented, a style the
-- training never uses (keys <table>_no, table constraints, a comment on every column).
-- needs_join: the questions whose gold query joins tables.
WITH scored AS (
    SELECT CASE WHEN d.schema_key LIKE '%/%' THEN split_part(d.schema_key, '/', 2)
                WHEN d.schema_key = 'sql-create-context' THEN d.schema_key
                ELSE 'simple' END AS style,
           d.gold_sql LIKE '% JOIN %' AS needs_join,
           CASE WHEN e.model = 'ft_sql_succinct' THEN 'prompt_engineered'
                WHEN e.version = 1 THEN 'base' ELSE 'fine_tuned' END AS entry,
           coalesce(i.execution_match, false)::int AS ok
    FROM llm.evaluations e
    JOIN llm.evaluation_items i ON i.evaluation_id = e.id
    JOIN demo_eval d ON d.id::text = i.item_id
    WHERE e.run_id = (SELECT max(run_id) FROM llm.evaluations))
SELECT coalesce(style, 'all') AS style, needs_join,
       count(*) FILTER (WHERE entry = 'fine_tuned')                     AS questions,
       round(avg(ok) FILTER (WHERE entry = 'base'), 2)                AS base,
       round(avg(ok) FILTER (WHERE entry = 'prompt_engineered'), 2)   AS prompt_engineered,
       round(avg(ok) FILTER (WHERE entry = 'fine_tuned'), 2)          AS fine_tuned
FROM scored
GROUP BY ROLLUP (style, needs_join) ORDER BY style NULLS LAST, needs_join NULLS LAST;

-- One fine-tuned answer next to the gold query.
SELECT i.item_id, i.answer, i.gold_sql, i.execution_match
FROM llm.evaluations e JOIN llm.evaluation_items i ON i.evaluation_id = e.id
WHERE e.run_id = (SELECT max(run_id) FROM llm.evaluations) AND e.model = 'ft_sql' AND e.version > 1
ORDER BY i.item_id::int LIMIT 3;

-- The chart of this run (execution match, exact match, succinct rate per model), next to the
-- loss curve of step 3.
\setenv PG_LLM_OUT :out_dir
\! pg-llm plot evaluation latest -o "$PG_LLM_OUT/accuracy.png"
