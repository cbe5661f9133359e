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

-- The option rules of pg_llm's own validator (ext/options.c: connection options only on the
-- server, a user mapping holds only api_key, api_key nowhere else) for engines on Multicorn2,
-- whose validator checks nothing: Multicorn2 merges table, server and user-mapping options
-- with the user mapping last, so a role's own mapping could otherwise redirect its requests.
-- The same C validator runs on the options after each CREATE/ALTER.
CREATE OR REPLACE FUNCTION llm._multicorn_option_guard() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cmd record;
    server oid;
    options text[];
    catalog regclass;
BEGIN
    FOR cmd IN SELECT classid, objid, object_type FROM pg_event_trigger_ddl_commands() LOOP
        IF cmd.classid = 'pg_foreign_server'::regclass THEN
            SELECT oid, srvoptions, 'pg_foreign_server' INTO server, options, catalog
            FROM pg_foreign_server WHERE oid = cmd.objid;
        ELSIF cmd.classid = 'pg_user_mapping'::regclass THEN
            SELECT umserver, umoptions, 'pg_user_mapping' INTO server, options, catalog
            FROM pg_user_mapping WHERE oid = cmd.objid;
        ELSIF cmd.object_type = 'foreign table' THEN
            SELECT ftserver, ftoptions, 'pg_foreign_table' INTO server, options, catalog
            FROM pg_foreign_table WHERE ftrelid = cmd.objid;
        ELSE
            CONTINUE;
        END IF;
        IF EXISTS (SELECT FROM pg_foreign_server s
                   JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
                   WHERE s.oid = server AND w.fdwname = 'multicorn'
                     AND EXISTS (SELECT FROM unnest(s.srvoptions) o WHERE o LIKE 'wrapper=pg\_llm.%')) THEN
            PERFORM llm._fdw_validator(coalesce(options, '{}'), catalog);
        END IF;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION llm._multicorn_option_guard() FROM PUBLIC;

DO $trigger$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = 'llm_multicorn_options') THEN
        CREATE EVENT TRIGGER llm_multicorn_options ON ddl_command_end
            WHEN TAG IN ('CREATE SERVER', 'ALTER SERVER', 'CREATE FOREIGN TABLE',
                         'ALTER FOREIGN TABLE', 'CREATE USER MAPPING', 'ALTER USER MAPPING')
            EXECUTE FUNCTION llm._multicorn_option_guard();
    END IF;
END
$trigger$;
