"""Where a scan sends a version that llm_deploy_version put on another engine.

The model's table option ``deployments`` (written by pg_llm.catalog.models from
llm.deployments) maps a version to ``{"engine": <server>, "model": <served name>}``. As for
the table's own server (ext/privileges.c, ext/options.c), connection options come from that
engine's foreign server alone, the key from the scanning role's (else PUBLIC's) user mapping
on it, and the table's owner must still hold USAGE on it: the engine's owner decides where
requests go and can revoke the table's use of it at any time. Python runs as the extension
owner, who may read pg_user_mapping.
"""

from __future__ import annotations

from pg_llm import scan_context
from pg_llm.engines import CALL_OPTIONS, settings_from_options
from pg_llm.engines.client import EngineSettings
from pg_llm.errors import InsufficientPrivilege, LlmError, UndefinedObject

# Engine servers only: pg_llm's FDW (Multicorn2 scans cannot run SQL, see below).
_ROUTE_SQL = """
    SELECT s.srvoptions,
           pg_catalog.has_server_privilege(c.relowner, s.oid, 'USAGE') AS owner_may_use,
           pg_catalog.pg_get_userbyid(c.relowner) AS owner,
           (SELECT um.umoptions FROM pg_catalog.pg_user_mapping um
             WHERE um.umserver = s.oid
               AND um.umuser IN (0, (SELECT r.oid FROM pg_catalog.pg_roles r
                                     WHERE r.rolname = $3))
             ORDER BY um.umuser DESC LIMIT 1) AS umoptions
    FROM pg_catalog.pg_foreign_server s
    JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw AND w.fdwname = 'pg_llm'
    JOIN pg_catalog.pg_class c ON c.oid = $2
    WHERE s.srvname = $1"""


def _plpy():
    from pg_llm import multicorn_scan

    if multicorn_scan.active():
        raise LlmError("versions deployed on another engine cannot be asked through Multicorn2",
                       sqlstate="0A000",
                       hint="use the pg_llm bridge for this model, or llm_undeploy_version")
    import plpy

    return plpy


def _options(raw) -> dict:
    return dict(o.split("=", 1) for o in raw or [])


def engine_settings(engine: str, call_options: dict) -> EngineSettings:
    """The settings of the scan's request to `engine` (checked at every scan)."""
    request = scan_context.current_request
    if request is None:
        raise LlmError("a deployed version can only be asked through the model's table",
                       sqlstate="0A000")
    plpy = _plpy()
    plan = plpy.prepare(_ROUTE_SQL, ["text", "oid", "text"])
    rows = plpy.execute(plan, [engine, request.relid, request.user])
    if not rows:
        raise UndefinedObject(f'engine "{engine}" that serves a deployed version of '
                              f'{request.table} does not exist',
                              hint="see SELECT * FROM llm.deployments; llm_undeploy_version "
                                   "serves the version from its model's engine again")
    row = rows[0]
    if not row["owner_may_use"]:
        raise InsufficientPrivilege(
            f"permission denied for foreign server {engine}",
            detail=f"a version of {request.table} is deployed on engine \"{engine}\", and the "
                   f"table's owner {row['owner']} may not use that engine",
            hint=f"the engine's owner can run: GRANT USAGE ON FOREIGN SERVER {engine} "
                 f"TO {row['owner']};")
    options = {**_options(row["srvoptions"]),
               **{k: v for k, v in call_options.items() if k in CALL_OPTIONS}}
    key = _options(row["umoptions"]).get("api_key")
    if key:
        options["api_key"] = key
    return settings_from_options(options, engine=engine)
