-- The tutorial's data generator (pg_llm.demo.generator), created in the current schema by
-- 02-demo-data.sql. It is tutorial code, not part of the extension (0.1.0 shipped it; the
-- 0.2.0 upgrade drops that copy).
-- Creates (or replaces) two tables in the caller's current schema:
--   train_table(chat_id, message_id, role, content)   long chat format, one row per message
--   eval_table(id, content, gold_sql, setup_sql, schema_key, kind)   held-out questions on
--     schemas the training split never uses; setup_sql builds a database gold_sql runs on.
CREATE OR REPLACE FUNCTION llm_generate_demo_data(
    train_table text DEFAULT 'demo_data',
    eval_table text DEFAULT 'demo_eval',
    n_train int DEFAULT 400,
    n_eval int DEFAULT 60,
    seed int DEFAULT 42)
RETURNS TABLE(table_name text, row_count int, description text)
LANGUAGE plpython3u VOLATILE
AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.demo.api:generate_demo_data",
               train_table, eval_table, n_train, n_eval, seed)
$$;
COMMENT ON FUNCTION llm_generate_demo_data(text, text, int, int, int) IS
  'Creates the tutorial''s training conversations and held-out evaluation questions';
