-- 0.2.0: model tables made by 0.1.0 get the columns of per-row errors (on_error, error), the
-- answer cache (cached) and the audit trail (request_id). A scan copes without them, so a
-- table this cannot alter (another owner) only gets a WARNING.
DO $do$
DECLARE
    model_table regclass;
BEGIN
    FOR model_table IN
        SELECT ft.ftrelid::regclass
        FROM pg_catalog.pg_foreign_table ft
        JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
        JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
        WHERE w.fdwname = 'pg_llm'
          AND EXISTS (SELECT FROM pg_catalog.unnest(ft.ftoptions) o WHERE o LIKE 'model=%')
    LOOP
        BEGIN
            EXECUTE format('ALTER FOREIGN TABLE %s ADD COLUMN IF NOT EXISTS on_error text, '
                           'ADD COLUMN IF NOT EXISTS error text, '
                           'ADD COLUMN IF NOT EXISTS cached boolean, '
                           'ADD COLUMN IF NOT EXISTS request_id bigint', model_table);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'model table % keeps its 0.1.0 columns: %', model_table, SQLERRM
                USING HINT = 'its owner can add on_error text, error text, cached boolean and '
                             'request_id bigint with ALTER FOREIGN TABLE ... ADD COLUMN';
        END;
    END LOOP;
END
$do$;
