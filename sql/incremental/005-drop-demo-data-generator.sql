-- 0.2.0: the tutorial's data generator left the extension (examples/demo-data-function.sql
-- creates it where the tutorial runs). Only the extension's own copy is dropped: a function
-- of that name that a user (or the tutorial) created is not ours to remove. A user object
-- that depends on ours stops the upgrade with PostgreSQL's "other objects depend on it".
DO $drop$
DECLARE
    fn regprocedure := pg_catalog.to_regprocedure(
        '@extschema@.llm_generate_demo_data(text, text, integer, integer, integer)');
BEGIN
    IF fn IS NOT NULL AND EXISTS (
        SELECT FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
        WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = fn
          AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
          AND d.deptype = 'e' AND e.extname = 'pg_llm') THEN
        DROP FUNCTION @extschema@.llm_generate_demo_data(text, text, integer, integer, integer);
    END IF;
END
$drop$;
