-- Roles that work out of the box (docs/security.md, "Roles"): NOLOGIN groups a DBA grants.
--   llm_admin  engines, models, versions, budgets, fine-tuning, datasources, evaluations
--   llm_user   reads the catalog; asks the models its members are granted SELECT on
-- Roles are cluster-wide: another database (or an earlier install) may have made them.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'llm_user') THEN
        CREATE ROLE llm_user NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'llm_admin') THEN
        CREATE ROLE llm_admin NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
    END IF;
END
$roles$;
COMMENT ON ROLE llm_admin IS 'pg_llm: creates engines, models, versions, budgets, fine-tuning jobs and datasources';
COMMENT ON ROLE llm_user IS 'pg_llm: reads the catalog; asks the models it is granted SELECT on';

GRANT llm_user TO llm_admin;

-- llm_user: the catalog's public face (PUBLIC reads it too; granted again so revoking it
-- from PUBLIC keeps llm_user working). No USAGE on any engine: asking a model needs only
-- SELECT on it, and without USAGE a role cannot aim a table of its own at an engine.
GRANT USAGE ON SCHEMA llm TO llm_user;
GRANT SELECT ON llm.engines, llm.models, llm.model_versions, llm.model_summary,
                llm.evaluations, llm.budget_status, llm.datasources TO llm_user;

-- llm_admin: an engine is a server of the FDW pg_llm (a datasource, of pg_llm_datasource);
-- whoever creates one owns it and alone decides where its requests go and which keys they
-- carry. The llm_* functions run as the caller, so admins write the catalog tables
-- themselves (all of schema llm but llm.migration, which only upgrades write).
GRANT USAGE ON FOREIGN DATA WRAPPER pg_llm TO llm_admin;
GRANT USAGE ON FOREIGN DATA WRAPPER pg_llm_datasource TO llm_admin;
-- Tables and sequences only (views keep their own grants): all of them exist already, since
-- every incremental file runs before the idempotent ones, so a re-run grants the same.
DO $grants$
DECLARE
    rel record;
BEGIN
    FOR rel IN
        SELECT c.oid::pg_catalog.regclass AS name, c.relkind
        FROM pg_catalog.pg_class c
        WHERE c.relnamespace = 'llm'::pg_catalog.regnamespace AND c.relkind IN ('r', 'p', 'S')
          AND c.relname NOT IN ('migration', 'cache', 'requests')
    LOOP
        IF rel.relkind = 'S' THEN
            EXECUTE pg_catalog.format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %s TO llm_admin',
                                      rel.name);
        ELSE
            EXECUTE pg_catalog.format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO llm_admin',
                                      rel.name);
        END IF;
    END LOOP;
END
$grants$;
-- The answer cache is written only by scans (as the extension's owner): an admin who could
-- insert rows could plant answers for other roles' prompts. Admins may clear it
-- (llm_cache_clear), and read and prune the audit trail, but not write it.
REVOKE INSERT, UPDATE ON llm.cache, llm.requests FROM llm_admin;
GRANT DELETE, SELECT (model) ON llm.cache TO llm_admin;  -- SELECT (model): its WHERE
GRANT SELECT, DELETE ON llm.requests TO llm_admin;
