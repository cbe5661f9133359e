-- Step 2: training data. A deterministic generator (the tutorial's own Python package,
-- pg_llm_tutorial) writes text-to-SQL conversations over 14 schemas and a held-out evaluation
-- split over 6 other schemas. It runs on the client: `pg-llm demo-data` prints CSV and psql's
-- \copy loads it, so this step needs no privilege beyond creating two tables.
-- Variables: n_generate (training conversations, default 400), n_eval (default 60), seed (42).
-- Real-style schemas (pg_llm_tutorial/realistic.py: multi-line DDL, comments, keys such as
-- vessel_id or code, 3-6 tables): n_real of the training conversations (default
-- n_generate / 2, the recipe measured for real-style schemas in docs/tutorial.md), and of
-- the held-out questions n_real_eval on new domains in the trained styles and
-- n_style_eval in a style training never uses (default n_eval / 3 each: a third of the
-- split per style group, so the real-style score rests on 40 of the 60 questions).
\if :{?n_generate} \else \set n_generate 400 \endif
\if :{?n_eval} \else \set n_eval 60 \endif
\if :{?seed} \else \set seed 42 \endif
\if :{?n_real}
\else
SELECT :n_generate / 2 AS n_real \gset
\endif
\if :{?n_real_eval}
\else
SELECT :n_eval / 3 AS n_real_eval \gset
\endif
\if :{?n_style_eval}
\else
SELECT :n_eval / 3 AS n_style_eval \gset
\endif

-- The long chat format: one row per message (system, user, assistant) of each conversation.
DROP TABLE IF EXISTS demo_data, demo_eval;
CREATE TABLE demo_data (chat_id int, message_id int, role text, content text,
                        PRIMARY KEY (chat_id, message_id));
-- Held-out questions: setup_sql builds a small database that gold_sql runs on.
CREATE TABLE demo_eval (id int PRIMARY KEY, content text, gold_sql text, setup_sql text,
                        schema_key text, kind text);

\setenv PG_LLM_N_GENERATE :n_generate
\setenv PG_LLM_N_EVAL :n_eval
\setenv PG_LLM_SEED :seed
\setenv PG_LLM_N_REAL :n_real
\setenv PG_LLM_N_REAL_EVAL :n_real_eval
\setenv PG_LLM_N_STYLE_EVAL :n_style_eval
\copy demo_data FROM PROGRAM 'pg-llm demo-data train --n "$PG_LLM_N_GENERATE" --real "$PG_LLM_N_REAL" --seed "$PG_LLM_SEED"' WITH (FORMAT csv)
\copy demo_eval FROM PROGRAM 'pg-llm demo-data eval --n "$PG_LLM_N_EVAL" --real "$PG_LLM_N_REAL_EVAL" --style "$PG_LLM_N_STYLE_EVAL" --seed "$PG_LLM_SEED"' WITH (FORMAT csv)

-- Two of the conversations.
SELECT chat_id, message_id, role, content
FROM demo_data
WHERE chat_id IN (1, 5)
ORDER BY chat_id, message_id;

-- Question kinds and schemas of the held-out split; none of its schemas appear in demo_data.
-- A real-style schema_key is domain/style: compact, orm and annotated are the trained styles,
-- documented (keys <table>_no, table constraints, a comment on every column) is never trained.
SELECT kind, count(*) AS questions, string_agg(DISTINCT schema_key, ', ') AS schemas
FROM demo_eval GROUP BY kind ORDER BY kind;
