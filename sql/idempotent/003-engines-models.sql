-- Engines (foreign servers + user mappings) and models (foreign tables): thin plpython3u
-- wrappers over pg_llm.api.engines / pg_llm.api.models, which validate and then write the
-- catalog through pg_llm.catalog.models.

-- 0.2.0 added `bridge` (docs/multicorn.md): drop the 0.1.0 signature once.
DROP FUNCTION IF EXISTS @extschema@.llm_create_engine(text, text, text, text, boolean, numeric, numeric, numeric, jsonb, name);
CREATE OR REPLACE FUNCTION llm_create_engine(
    name text,
    provider text DEFAULT 'openai',
    base_url text DEFAULT NULL,
    api_key text DEFAULT NULL,
    verify boolean DEFAULT true,
    price_input numeric DEFAULT NULL,
    price_output numeric DEFAULT NULL,
    price_training numeric DEFAULT NULL,
    options jsonb DEFAULT '{}',
    role name DEFAULT NULL,
    bridge text DEFAULT 'pg_llm'
) RETURNS text LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.engines:create_engine", name, provider=provider,
               base_url=base_url, api_key=api_key, verify=verify, price_input=price_input,
               price_output=price_output, price_training=price_training, options=options,
               role=role, bridge=bridge)
$$;
COMMENT ON FUNCTION llm_create_engine(text, text, text, text, boolean, numeric, numeric, numeric, jsonb, name, text)
    IS 'Create an engine (foreign server on pg_llm, or on multicorn with bridge => ''multicorn''); the API key goes into a user mapping only';

CREATE OR REPLACE FUNCTION llm_set_api_key(engine text, api_key text, role name DEFAULT NULL)
RETURNS void LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.engines:set_api_key", engine, api_key, role=role)
$$;
COMMENT ON FUNCTION llm_set_api_key(text, text, name)
    IS 'Set (or with NULL remove) the API key of an engine for PUBLIC or one role';

CREATE OR REPLACE FUNCTION llm_drop_engine(name text, cascade boolean DEFAULT false)
RETURNS void LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.engines:drop_engine", name, cascade=cascade)
$$;
COMMENT ON FUNCTION llm_drop_engine(text, boolean)
    IS 'Drop an engine, its user mappings and (with cascade => true) its models';

-- 0.2.0 added schema: its default is evaluated by the caller, before this function's
-- pinned search_path applies (docs/security.md, point 7), so it is the caller's schema.
DROP FUNCTION IF EXISTS llm_create_model(text, text, text, text, text, text, jsonb);
DROP FUNCTION IF EXISTS llm_create_model(text, text, text, text, text, text, jsonb, name);
CREATE OR REPLACE FUNCTION llm_create_model(
    name text,
    engine text,
    model_name text,
    prompt_template text,
    predict text DEFAULT 'answer',
    system_prompt text DEFAULT NULL,
    options jsonb DEFAULT '{}',
    schema name DEFAULT pg_catalog.current_schema(),
    output_columns jsonb DEFAULT NULL     -- typed output columns (structured output)
) RETURNS text LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.models:create_model", name, engine, model_name,
               prompt_template, predict=predict, system_prompt=system_prompt, options=options,
               schema=schema, output_columns=output_columns)
$$;
COMMENT ON FUNCTION llm_create_model(text, text, text, text, text, text, jsonb, name, jsonb)
    IS 'Create a model: catalog rows (version 1 = model_name) and a new foreign table in schema (default: the current schema)';

CREATE OR REPLACE FUNCTION llm_drop_model(name text)
RETURNS void LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.boot import run_api
return run_api(plpy, "pg_llm.api.models:drop_model", name)
$$;
COMMENT ON FUNCTION llm_drop_model(text) IS 'Drop a model: its foreign table and catalog rows';
