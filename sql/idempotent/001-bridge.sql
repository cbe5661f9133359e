-- The bridge between the C handler and Python: internal functions and their privileges.
COMMENT ON SCHEMA llm IS 'pg_llm catalog and internal functions';

CREATE OR REPLACE FUNCTION llm._fdw_handler() RETURNS fdw_handler
    AS 'MODULE_PATHNAME', 'pg_llm_handler' LANGUAGE C STRICT;

CREATE OR REPLACE FUNCTION llm._fdw_validator(text[], oid) RETURNS void
    AS 'MODULE_PATHNAME', 'pg_llm_validator' LANGUAGE C STRICT;

COMMENT ON FOREIGN DATA WRAPPER pg_llm IS 'language models as foreign tables (engine = server, model = table)';

-- The directory holding the backend's copy of the pg_llm package (GUC pg_llm.python_path).
CREATE OR REPLACE FUNCTION llm._python_path() RETURNS text
    AS 'MODULE_PATHNAME', 'pg_llm_python_path_sql' LANGUAGE C STABLE;

-- Python polls this while waiting on HTTP so that statement_timeout and
-- pg_cancel_backend() interrupt a scan (SQLSTATE 57014).
CREATE OR REPLACE FUNCTION llm._check_interrupts() RETURNS void
    AS 'MODULE_PATHNAME', 'pg_llm_check_interrupts' LANGUAGE C VOLATILE PARALLEL SAFE;

-- Once per backend: put pg_llm.python_path on sys.path. Every plpython function of the
-- extension starts with it, whoever calls: SECURITY DEFINER to read the path, and executable
-- by PUBLIC (below). It only imports from the superuser-set path.
CREATE OR REPLACE FUNCTION llm._boot() RETURNS void
LANGUAGE plpython3u SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
import sys
path = plpy.execute("SELECT llm._python_path() AS path")[0]["path"]
if path and path not in sys.path:
    sys.path.insert(0, path)
from pg_llm.boot import boot
boot(plpy, GD, path)
$$;

-- The one entry point of the C bridge: JSON payload in, one text[] per row out
-- (docs/architecture.md). The bridge calls it through fmgr after its own privilege checks;
-- nobody else may: it imports code as the postgres OS user. SECURITY DEFINER: Python runs
-- as the extension owner whoever scans (the payload names the scanning role in "user").
CREATE OR REPLACE FUNCTION llm._fdw_execute(payload text) RETURNS SETOF text[]
LANGUAGE plpython3u SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
if 'pg_llm' not in GD:
    import sys
    if 'pg_llm.preload' in sys.modules:  # imported in the postmaster: nothing to boot
        GD['pg_llm'] = True
    else:
        plpy.execute("SELECT llm._boot()")
from pg_llm.bridge import execute_scan
return execute_scan(payload)
$$;

REVOKE ALL ON FUNCTION llm._fdw_handler() FROM PUBLIC;
REVOKE ALL ON FUNCTION llm._fdw_validator(text[], oid) FROM PUBLIC;
REVOKE ALL ON FUNCTION llm._python_path() FROM PUBLIC;
REVOKE ALL ON FUNCTION llm._fdw_execute(text) FROM PUBLIC;
-- The two internal functions that run as the caller inside every llm_* function a role may
-- call (boot, and interrupt polling while HTTP waits). Harmless: one adds the superuser-set
-- path to sys.path, the other only runs CHECK_FOR_INTERRUPTS().
REVOKE ALL ON FUNCTION llm._boot() FROM PUBLIC;
REVOKE ALL ON FUNCTION llm._check_interrupts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION llm._boot() TO PUBLIC;
GRANT EXECUTE ON FUNCTION llm._check_interrupts() TO PUBLIC;
