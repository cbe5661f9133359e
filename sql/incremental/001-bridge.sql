-- 0.1.0: the FDW and the two C functions it names (idempotent/001-bridge.sql re-creates
-- them with CREATE OR REPLACE; the FDW needs them to exist first).
CREATE FUNCTION llm._fdw_handler() RETURNS fdw_handler
    AS 'MODULE_PATHNAME', 'pg_llm_handler' LANGUAGE C STRICT;

CREATE FUNCTION llm._fdw_validator(text[], oid) RETURNS void
    AS 'MODULE_PATHNAME', 'pg_llm_validator' LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER pg_llm
    HANDLER llm._fdw_handler
    VALIDATOR llm._fdw_validator;
