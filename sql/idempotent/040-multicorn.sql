-- Multicorn2 (docs/multicorn.md): model tables on `FOREIGN DATA WRAPPER multicorn`.
--
-- Python under Multicorn2 cannot raise a PostgreSQL error with an SQLSTATE (Multicorn2 reports
-- every exception as XX000, and an ERROR raised from inside Python breaks the interpreter).
-- So ModelTable hands its error back as the value of the column `multicorn_error`, whose type
-- is this domain: PostgreSQL checks the value while converting the row, after Python has
-- returned, and the check raises the error with its SQLSTATE, message, detail and hint.

CREATE OR REPLACE FUNCTION llm._raise_model_error(error text) RETURNS boolean
LANGUAGE plpgsql STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e jsonb := error::jsonb;
    code text := coalesce(e->>'sqlstate', 'XX000');
    message text := coalesce(e->>'message', 'model call failed');
    detail text := e->>'detail';
    hint text := e->>'hint';
BEGIN
    IF detail IS NULL AND hint IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message;
    ELSIF detail IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message, HINT = hint;
    ELSIF hint IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message, DETAIL = detail;
    END IF;
    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message, DETAIL = detail, HINT = hint;
END
$$;
COMMENT ON FUNCTION llm._raise_model_error(text)
    IS 'Raises the model error a Multicorn2 scan hands back (JSON: sqlstate, message, detail, hint)';

DO $domain$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_type
                   WHERE typname = 'multicorn_error' AND typnamespace = 'llm'::regnamespace) THEN
        CREATE DOMAIN llm.multicorn_error AS text CHECK (llm._raise_model_error(VALUE));
    END IF;
END
$domain$;
COMMENT ON DOMAIN llm.multicorn_error
    IS 'Column type that turns an error handed back by a Multicorn2 scan into a PostgreSQL error';
