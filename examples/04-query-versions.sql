-- Step 4: the fine-tuned version answers with bare SQL. Then a prompt-engineered alternative
-- on the base model, for comparison in step 5.
-- Variables: base_model, max_tokens (default 1000), answer_tokens (default 300),
-- sql_grammar and sql_joins (on|off, default on: the same options as ft_sql, so the
-- comparison is fair).
\if :{?sql_grammar} \else \set sql_grammar on \endif
\if :{?sql_joins} \else \set sql_joins on \endif
\if :{?base_model} \else \set base_model smollm2-135m-instruct \endif
\if :{?max_tokens} \else \set max_tokens 1000 \endif
\if :{?answer_tokens} \else \set answer_tokens 300 \endif
\if :{?question} \else
\set question 'CREATE TABLE customers (id INT PRIMARY KEY, name TEXT, country TEXT, city TEXT, signup_year INT);\nCREATE TABLE orders (id INT PRIMARY KEY, customer_id INT REFERENCES customers(id), order_date DATE, amount NUMERIC(12,2), status TEXT);\n-- Which customers are from Canada? Give their names and cities.'
\endif

-- Same question as step 1, now answered by the active version 2, with room for a long answer
-- (max_tokens = 1000): the fine-tuned model stops after the query by itself.
SELECT answer, version, completion_tokens, round(latency_ms) AS latency_ms
FROM ft_sql
WHERE content = :'question' AND max_tokens = :max_tokens;

-- Any version stays queryable: version 1 is the base model.
SELECT version, answer FROM ft_sql
WHERE content = :'question' AND version = 1 AND max_tokens = :answer_tokens;

-- Prompt engineering instead of training: the base model with a template asking for SQL only.
SELECT llm_create_model('ft_sql_succinct',
    engine          => 'local',
    model_name      => :'base_model',
    prompt_template => E'Write one PostgreSQL query that answers the question. Reply with the SQL query only: no explanation, no markdown, no comments.\n\n{{content}}\n\nSQL:',
    predict         => 'answer',
    system_prompt   => 'Answer with one SQL query and nothing else.',
    options         => '{"temperature": 0, "seed": 42}'::jsonb
                       || CASE WHEN :'sql_grammar' = 'on'   -- decode under the schema's SQL grammar
                               THEN '{"sql_grammar_from": "content"}'::jsonb ELSE '{}' END
                       || CASE WHEN :'sql_joins' = 'on'     -- add the joins its columns need
                               THEN '{"sql_infer_joins_from": "content"}'::jsonb ELSE '{}' END);

SELECT answer, completion_tokens FROM ft_sql_succinct
WHERE content = :'question' AND max_tokens = :answer_tokens;
