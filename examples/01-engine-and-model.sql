-- Step 1: an engine and a model. A model is a foreign table; a prompt is a WHERE clause.
-- Run by hand:  psql -X -v ON_ERROR_STOP=1 -e -f examples/01-engine-and-model.sql
-- Variables (psql -v NAME=VALUE): base_model, engine_url (default: the local engine on 8765),
-- answer_tokens (longest answer, default 300), sql_grammar (on|off, default on),
-- sql_joins (on|off, default on).
\if :{?sql_grammar} \else \set sql_grammar on \endif
\if :{?sql_joins} \else \set sql_joins on \endif
\if :{?base_model} \else \set base_model smollm2-135m-instruct \endif
\if :{?answer_tokens} \else \set answer_tokens 300 \endif
\if :{?question} \else
\set question 'CREATE TABLE customers (id INT PRIMARY KEY, name TEXT, country TEXT, city TEXT, signup_year INT);\nCREATE TABLE orders (id INT PRIMARY KEY, customer_id INT REFERENCES customers(id), order_date DATE, amount NUMERIC(12,2), status TEXT);\n-- Which customers are from Canada? Give their names and cities.'
\endif

-- The engine: `pg-llm serve`, the built-in OpenAI-compatible engine on this machine. It runs
-- on the CPU and decodes a batch of prompts at a time, so an evaluation's later prompts wait
-- their turn: give each request up to 10 minutes instead of the default 60 s.
\if :{?engine_url}
SELECT llm_create_engine('local', provider => 'local', base_url => :'engine_url',
                         options => '{"timeout": 600}');
\else
SELECT llm_create_engine('local', provider => 'local', options => '{"timeout": 600}');
\endif

-- The model: the prompt template has one variable, {{content}}, so the foreign table gets a
-- column `content` to put in the WHERE clause and a column `answer` with the reply. The system
-- prompt is the one the training conversations use (see step 2). temperature 0 is greedy
-- decoding (the engine's default, like OpenAI's, is 1); a seed makes answers reproducible:
-- the local engine decodes a seeded request in a batch of its own, because llama.cpp rounds
-- differently with what else is in the batch (a quarter of greedy answers changed).
-- sql_grammar_from: the engine decodes under a grammar of SQL over the tables and columns of
-- the CREATE TABLE statements in `content` (docs/sql-reference.md, "SQL grammar"), so no
-- version of this model can name a column the schema lacks (-v sql_grammar=off: without).
-- sql_infer_joins_from: an answer that reads a column its FROM table lacks gets the joins the
-- schema's foreign keys give, as text-to-SQL systems since IRNet infer the FROM clause from
-- the columns a query uses (docs/sql-reference.md, "Join inference"; -v sql_joins=off).
SELECT llm_create_model('ft_sql',
    engine          => 'local',
    model_name      => :'base_model',
    prompt_template => '{{content}}',
    predict         => 'answer',
    system_prompt   => 'Answer with one SQL query and nothing else.',
    options         => '{"temperature": 0, "seed": 42}'::jsonb
                       || CASE WHEN :'sql_grammar' = 'on'   -- decode under the schema's SQL grammar
                               THEN '{"sql_grammar_from": "content"}'::jsonb ELSE '{}' END
                       || CASE WHEN :'sql_joins' = 'on'     -- add the joins its columns need
                               THEN '{"sql_infer_joins_from": "content"}'::jsonb ELSE '{}' END);

\d ft_sql

-- Ask the base model for a query. Without the grammar a 135M model explains, repeats the
-- schema or wraps the SQL in prose; under it, it can only write SQL over this schema's
-- names, which is not yet the right query. Request options such as max_tokens are columns
-- too, set in the WHERE clause.
SELECT answer, version, completion_tokens, round(latency_ms) AS latency_ms
FROM ft_sql
WHERE content = :'question' AND max_tokens = :answer_tokens;
