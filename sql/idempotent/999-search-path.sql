-- Last of all (docs/security.md, point 7): every SQL, PL/pgSQL and PL/Python function of the
-- extension runs with search_path = pg_catalog, pg_temp unless it pins its own, so no schema
-- or temporary table of the caller can stand in for what the extension's code names. C
-- functions run no SQL and are left alone. Functions that run SQL the caller wrote take the
-- caller's path as an argument (its default is evaluated by the caller). This file runs
-- after every other, on every install and upgrade, so functions other files re-create
-- (CREATE OR REPLACE resets their settings) are pinned again.
DO $pin$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
             AND d.objid = p.oid AND d.deptype = 'e'
        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_llm'
        JOIN pg_catalog.pg_language l ON l.oid = p.prolang
        WHERE l.lanname <> 'c'
          AND NOT EXISTS (SELECT FROM pg_catalog.unnest(p.proconfig) c
                          WHERE c LIKE 'search\_path=%')
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', fn);
    END LOOP;
END
$pin$;
