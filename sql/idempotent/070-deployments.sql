-- Versions served by other engines (docs/scale-out.md): llm_deploy_version loads a
-- version's PEFT adapter on an engine that loads LoRA adapters at run time (vLLM's
-- /v1/load_lora_adapter) and records it in llm.deployments; the model's foreign table then
-- sends `WHERE version = N` there. Python: pg_llm.api.deployments.

COMMENT ON TABLE llm.deployments IS
    'Versions answered by another engine than their model''s own (llm_deploy_version): engine, served model name, adapter';

-- Readable by everyone like llm.model_versions (no secrets); granted here, not only by
-- 010-roles' schema-wide grant, which runs before this table exists on a fresh install.
GRANT SELECT ON llm.deployments TO PUBLIC, llm_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON llm.deployments TO llm_admin;

CREATE OR REPLACE FUNCTION @extschema@.llm_deploy_version(model text, version int,
                                                          engine text,
                                                          adapter_path text DEFAULT NULL)
RETURNS text LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.deployments:deploy_version", model, version, engine,
               adapter_path=adapter_path)
$$;
COMMENT ON FUNCTION @extschema@.llm_deploy_version(text, int, text, text) IS
    'Serve a version from another engine (vLLM: its LoRA adapter is loaded there); returns the model name that engine answers to';

CREATE OR REPLACE FUNCTION @extschema@.llm_undeploy_version(model text, version int)
RETURNS text LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.deployments:undeploy_version", model, version)
$$;
COMMENT ON FUNCTION @extschema@.llm_undeploy_version(text, int) IS
    'Serve a version from its model''s own engine again (unloads its adapter); returns the engine it left';
