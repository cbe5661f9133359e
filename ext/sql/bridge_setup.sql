-- The C bridge under pg_regress. The Python side is EchoTable, a test-only wrapper
-- (tests/backend_python/pg_llm/testing/echo.py, on the test cluster's PYTHONPATH, never
-- installed): it returns as rows the values and quals the bridge handed it, so these files
-- show what a scan sends without any model or HTTP.
SET client_min_messages = warning;
CREATE EXTENSION pg_llm CASCADE;
RESET client_min_messages;

CREATE SERVER echo FOREIGN DATA WRAPPER pg_llm
    OPTIONS (wrapper 'pg_llm.testing.echo.EchoTable');
-- One prompt column, and two (a prompt is one combination of their values).
CREATE FOREIGN TABLE echo_t (content text, answer text, quals text, calls int, needed text)
    SERVER echo OPTIONS (prompt_columns 'content');
CREATE FOREIGN TABLE echo2 (question text, lang text, answer text, quals text)
    SERVER echo OPTIONS (prompt_columns 'question, lang');

-- A plain table to join with: four rows, one text twice.
CREATE TABLE questions (id int PRIMARY KEY, text text);
INSERT INTO questions VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'two');
ANALYZE questions;
