-- 0.2.0 (docs/security.md, points 1-2; docs/architecture.md, "One home for each fact"):
-- 1. a model's foreign table is found by the oid recorded when llm_create_model made it
--    (llm.models.relid), never by searching table options;
-- 2. an engine is its foreign server: llm.engines becomes a view over the servers' options
--    (idempotent/002-catalog.sql), so base_url and prices have one home;
-- 3. the links that can be foreign keys become foreign keys.
ALTER TABLE llm.models ADD COLUMN relid regclass UNIQUE;

-- 0.1.0 databases: adopt a table only when it is beyond doubt the one llm_create_model made:
-- the single pg_llm foreign table on the model's engine that names the model and whose owner
-- could write llm.models (in 0.1.0 only such a role could run llm_create_model). Anything
-- else stays NULL with a WARNING: llm_drop_model then removes just the catalog rows.
UPDATE llm.models m SET relid = pick.relid
FROM (SELECT m2.name, pg_catalog.min(c.oid) AS relid, pg_catalog.count(*) AS n
      FROM llm.models m2
      JOIN pg_catalog.pg_foreign_server s ON s.srvname = m2.engine
      JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw AND w.fdwname = 'pg_llm'
      JOIN pg_catalog.pg_foreign_table ft ON ft.ftserver = s.oid
      JOIN pg_catalog.pg_class c ON c.oid = ft.ftrelid
      WHERE ('model=' || m2.name) = ANY (ft.ftoptions)
        AND pg_catalog.has_table_privilege(c.relowner, 'llm.models', 'INSERT')
      GROUP BY m2.name) pick
WHERE pick.name = m.name AND pick.n = 1;

DO $relid$
DECLARE
    lost text;
BEGIN
    FOR lost IN SELECT name FROM llm.models WHERE relid IS NULL ORDER BY name LOOP
        RAISE WARNING 'model "%" has no foreign table pg_llm can be sure of', lost
            USING HINT = 'SELECT llm_drop_model(''' || lost || ''') removes its catalog rows; '
                         'then create it again with llm_create_model';
    END LOOP;
END
$relid$;

-- llm.engines was a table kept in step with the servers by hand; the view replaces it.
DROP VIEW IF EXISTS llm.model_summary;          -- depends on it; the idempotent files remake it
ALTER TABLE llm.models DROP CONSTRAINT IF EXISTS models_engine_fkey;
ALTER EXTENSION pg_llm DROP TABLE llm.engines;  -- also removes it from pg_dump's config list
DROP TABLE llm.engines;

-- Links that become foreign keys. jobs.model/engine, ledger.model/engine and
-- budgets.target stay text on purpose: spend and job history outlive a dropped model or
-- engine (budgets keep counting it), and a budget's target is a model or an engine.
UPDATE llm.model_versions SET job_id = NULL
WHERE job_id IS NOT NULL AND NOT EXISTS (SELECT FROM llm.jobs j WHERE j.id = job_id);
ALTER TABLE llm.model_versions
    ADD CONSTRAINT model_versions_job_id_fkey FOREIGN KEY (job_id)
    REFERENCES llm.jobs (id) ON DELETE SET NULL;
-- Activations only serve rollback of a live model: they go with it.
DELETE FROM llm.activations a WHERE NOT EXISTS (SELECT FROM llm.models m WHERE m.name = a.model);
ALTER TABLE llm.activations
    ADD CONSTRAINT activations_model_fkey FOREIGN KEY (model)
    REFERENCES llm.models (name) ON DELETE CASCADE;
