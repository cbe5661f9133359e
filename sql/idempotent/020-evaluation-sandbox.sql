-- The evaluation sandbox's setup step (docs/evaluation.md, docs/security.md point 4).
-- An evaluation data row's setup_sql runs as llm_eval_reader, never as the caller: a row may
-- come from anyone (a shared or downloaded data set), and run as a superuser caller it could
-- reach COPY ... PROGRAM, server files or other roles' data. The caller creates the
-- throwaway schema and grants the reader USAGE and CREATE on it; this function (SECURITY
-- DEFINER owned by the reader, like llm._eval_run_as_reader, so SET ROLE / SET SESSION
-- AUTHORIZATION are refused inside it) runs the text, several statements allowed, with only
-- that schema on its search_path. Called by PUBLIC it can do nothing lasting: the reader may
-- create objects only in a schema granted to it inside an evaluation, which rolls back.
CREATE OR REPLACE FUNCTION llm._eval_setup_as_reader(setup_sql text, schema name)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM pg_catalog.set_config('search_path',
        pg_catalog.quote_ident(schema) || ', pg_temp', true);
    EXECUTE setup_sql;
END
$fn$;
ALTER FUNCTION llm._eval_setup_as_reader(text, name) OWNER TO llm_eval_reader;
GRANT EXECUTE ON FUNCTION llm._eval_setup_as_reader(text, name) TO PUBLIC;
