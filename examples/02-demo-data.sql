-- Step 2: training data. A deterministic generator (pg_llm.demo.generator) writes text-to-SQL
-- conversations over 14 schemas and a held-out evaluation split over 6 other schemas.
-- Variables: n_generate (training conversations, default 400), n_eval (default 60), seed (42).
\if :{?n_generate} \else \set n_generate 400 \endif
\if :{?n_eval} \else \set n_eval 60 \endif
\if :{?seed} \else \set seed 42 \endif

-- The generator is the tutorial's own function (not the extension's): create it here, unless
-- it exists already. It is PL/Python, which only a superuser may create: where the tutorial
-- runs as a role granted llm_admin, a superuser creates it once beforehand with
-- psql -f examples/demo-data-function.sql (docs/security.md, "The tutorial as llm_admin").
SELECT to_regproc('llm_generate_demo_data') IS NOT NULL AS have_generator \gset
\if :have_generator
\else
\ir demo-data-function.sql
\endif

SELECT * FROM llm_generate_demo_data('demo_data', 'demo_eval',
    n_train => :n_generate, n_eval => :n_eval, seed => :seed);

-- The long chat format: one row per message. Each conversation is a system row, the user's
-- question after its schema, and the assistant's SQL.
SELECT chat_id, message_id, role, content
FROM demo_data
WHERE chat_id IN (1, 5)
ORDER BY chat_id, message_id;

-- Question kinds and schemas of the held-out split; none of its schemas appear in demo_data.
SELECT kind, count(*) AS questions, string_agg(DISTINCT schema_key, ', ') AS schemas
FROM demo_eval GROUP BY kind ORDER BY kind;
