-- The bridge's errors: a SQLSTATE a program can test (printed after each) and a hint a
-- person can act on.

-- A scan without a value for a prompt column.
SELECT * FROM echo_t;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM echo2 WHERE question = 'q';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Options are checked when they are written...
CREATE SERVER bad FOREIGN DATA WRAPPER pg_llm OPTIONS (wrapper 'os.system');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE SERVER bad FOREIGN DATA WRAPPER pg_llm OPTIONS (prompt_columns 'content');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- ... and column names, which the validator cannot see, when a scan plans.
CREATE FOREIGN TABLE no_such_column (a text) SERVER echo OPTIONS (prompt_columns 'missing');
SELECT * FROM no_such_column WHERE a = 'x';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP FOREIGN TABLE no_such_column;
-- A model table is read-only.
INSERT INTO echo_t (content) VALUES ('x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
UPDATE echo_t SET answer = 'x' WHERE content = 'a';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Errors the wrapper raises keep their SQLSTATE, detail and hint.
CREATE FOREIGN TABLE failing (content text, answer text) SERVER echo
    OPTIONS (prompt_columns 'content', error_sqlstate '53400', error_message 'over budget',
             error_hint 'raise the budget', error_detail 'spent 3 of 2');
SELECT * FROM failing WHERE content = 'x';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- A plain Python exception is a bug in the wrapper, and said to be one.
CREATE FOREIGN TABLE buggy (content text, answer text) SERVER echo
    OPTIONS (prompt_columns 'content', python_error 'list index out of range');
SELECT * FROM buggy WHERE content = 'x';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- A PL/pgSQL handler sees the same SQLSTATE and hint.
DO $$
DECLARE
    state text;
    hint text;
BEGIN
    PERFORM * FROM failing WHERE content = 'y';
EXCEPTION WHEN insufficient_resources THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, hint = PG_EXCEPTION_HINT;
    RAISE NOTICE 'caught % (hint: %)', state, hint;
END
$$;

-- An ordinary role needs SELECT on the table, like on any table...
CREATE ROLE regress_llm_user;
SET ROLE regress_llm_user;
SELECT content, answer FROM echo_t WHERE content = 'a';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
GRANT SELECT ON echo_t TO regress_llm_user;
SET ROLE regress_llm_user;
SELECT content, answer FROM echo_t WHERE content = 'a';
-- ... and cannot call the bridge's entry point itself.
SELECT llm._fdw_execute('{}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP OWNED BY regress_llm_user;
DROP ROLE regress_llm_user;
