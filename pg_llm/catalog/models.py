"""The one module that writes llm.models, llm.model_versions, the engines' foreign servers
and user mappings, and the model foreign tables and their options.

One home for each fact (docs/architecture.md, "One home for each fact"): an engine is its
foreign server, and ``llm.engines`` is a view over the servers' options; a model's facts live
in ``llm.models``/``llm.model_versions``, and its foreign table's options are a copy for scans
written only by ``sync_table_options``. A model's table is found by the oid recorded in
``llm.models.relid`` when the model was created, never by searching options.

Everything here runs inside the backend through ``plpy`` and trusts its arguments: the
``pg_llm.api`` functions validate them first. Names are quoted with ``plpy.quote_ident`` and
values with ``plpy.quote_literal`` because DDL takes no parameters.
"""

from __future__ import annotations

import json

from pg_llm import templates
from pg_llm.catalog.plans import execute as _exec
from pg_llm.engines import CALL_OPTIONS
from pg_llm.errors import UndefinedObject
from pg_llm.model_features import FEATURE_OPTIONS

# Table options this module owns (others a user adds by hand are left alone).
MANAGED_TABLE_OPTIONS = ("model", "engine", "prompt_template", "system_prompt", "predict",
                         "prompt_columns", "active_version", "versions", "deployments",
                         "defaults", "call_options",
                         *CALL_OPTIONS, *FEATURE_OPTIONS)
REQUEST_DEFAULT_KEYS = ("max_tokens", "temperature", "top_p", "seed", "stop")


def _rows(plpy, sql: str, types: list[str] | None = None, args: list | None = None):
    if not types:
        return plpy.execute(sql)
    return plpy.execute(plpy.prepare(sql, types), args)


def _options_clause(plpy, options: dict) -> str:
    return ", ".join(f"{plpy.quote_ident(k)} {plpy.quote_literal(str(v))}"
                     for k, v in options.items() if v is not None)


# -- engines -------------------------------------------------------------------------------
def get_engine(plpy, name: str) -> dict | None:
    """The engine = a server of the pg_llm FDW (llm.engines shows only those)."""
    rows = _rows(plpy, "SELECT * FROM llm.engines WHERE name = $1", ["text"], [name])
    return dict(rows[0]) if rows else None


def engine_names(plpy) -> list[str]:
    return [r["name"] for r in _rows(plpy, "SELECT name FROM llm.engines ORDER BY name")]


def server_exists(plpy, name: str) -> bool:
    return bool(_rows(plpy, "SELECT 1 FROM pg_catalog.pg_foreign_server WHERE srvname = $1",
                      ["text"], [name]))


# An engine's server: on pg_llm's own FDW, or on Multicorn2's running ModelTable
# (docs/multicorn.md). `s` is pg_foreign_server, `w` its pg_foreign_data_wrapper.
ENGINE_SERVER_SQL = ("(w.fdwname = 'pg_llm' OR (w.fdwname = 'multicorn' AND "
                     "'wrapper=pg_llm.fdw.ModelTable' = ANY (s.srvoptions)))")
BRIDGES = ("pg_llm", "multicorn")


def pg_llm_server_exists(plpy, name: str) -> bool:
    return bool(_rows(plpy, f"""
        SELECT 1 FROM pg_catalog.pg_foreign_server s
        JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
        WHERE s.srvname = $1 AND {ENGINE_SERVER_SQL}""", ["text"], [name]))


def engine_bridge(plpy, name: str) -> str | None:
    """The foreign-data wrapper of the engine's server: 'pg_llm' or 'multicorn'."""
    rows = _rows(plpy, """
        SELECT w.fdwname FROM pg_catalog.pg_foreign_server s
        JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
        WHERE s.srvname = $1""", ["text"], [name])
    return rows[0]["fdwname"] if rows else None


def create_engine(plpy, *, name: str, provider: str, base_url: str, prices: dict,
                  server_options: dict, bridge: str = "pg_llm") -> None:
    """CREATE SERVER: its options are the engine (no secrets: they are world-readable)."""
    options = {"provider": provider, "base_url": base_url, **server_options}
    options.update({k: v for k, v in prices.items() if v is not None})
    if bridge == "multicorn":
        options = {"wrapper": "pg_llm.fdw.ModelTable", **options}
    plpy.execute(f"CREATE SERVER {plpy.quote_ident(name)} FOREIGN DATA WRAPPER "
                 f"{plpy.quote_ident(bridge)} OPTIONS ({_options_clause(plpy, options)})")


def user_mapping_exists(plpy, engine: str, role: str | None) -> bool:
    return bool(_rows(plpy, """
        SELECT 1 FROM pg_catalog.pg_user_mappings
        WHERE srvname = $1 AND usename = coalesce($2, 'public')""",
                      ["text", "text"], [engine, role]))


def set_api_key(plpy, engine: str, api_key: str | None, role: str | None) -> None:
    """Store (or remove, when NULL) the key in the engine's user mapping for role/PUBLIC.

    The key never becomes SQL text (pg_llm.catalog.user_mappings).
    """
    from pg_llm.catalog import user_mappings

    user_mappings.set_option(plpy, engine, role, "api_key", api_key,
                             what=f'the API key of engine "{engine}"',
                             hint="you must own the engine (its foreign server) to set its key")


def _first_line(exc) -> str:
    return str(exc.args[0] if exc.args else exc).splitlines()[0]


def drop_engine(plpy, name: str) -> None:
    """DROP SERVER ... CASCADE (its user mappings); models are dropped first."""
    plpy.execute(f"DROP SERVER IF EXISTS {plpy.quote_ident(name)} CASCADE")


def models_of_engine(plpy, engine: str) -> list[str]:
    return [r["name"] for r in _rows(plpy, "SELECT name FROM llm.models WHERE engine = $1 ORDER BY name",
                                     ["text"], [engine])]


# -- models --------------------------------------------------------------------------------
def get_model(plpy, name: str) -> dict | None:
    rows = _rows(plpy, "SELECT * FROM llm.models WHERE name = $1", ["text"], [name])
    return dict(rows[0]) if rows else None


def model_names(plpy) -> list[str]:
    return [r["name"] for r in _rows(plpy, "SELECT name FROM llm.models ORDER BY name")]


def live_versions(plpy, model: str) -> dict[int, str]:
    rows = _rows(plpy, """
        SELECT version, provider_model_id FROM llm.model_versions
        WHERE model = $1 AND dropped_at IS NULL ORDER BY version""", ["text"], [model])
    return {r["version"]: r["provider_model_id"] for r in rows}


# The model's table through llm.models.relid, and only while it is a foreign table of an
# engine server (ENGINE_SERVER_SQL) whose name the model recorded.
_MODEL_TABLE_SQL = f"""
    SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS table_name, c.oid AS relid,
           s.srvname AS server
    FROM llm.models m
    JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = m.relid
    JOIN pg_catalog.pg_class c ON c.oid = ft.ftrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
    JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
    WHERE m.name = $1 AND s.srvname = m.engine AND {ENGINE_SERVER_SQL}"""


def model_of_table(plpy, relid: int) -> str | None:
    """The name of the model whose foreign table has this oid (llm.models.relid); a plan
    kept per backend, as every scan asks."""
    rows = _exec(plpy, "SELECT name FROM llm.models WHERE relid::oid = $1", ["oid"], [relid])
    return rows[0]["name"] if rows else None


def model_table(plpy, model: str) -> dict | None:
    """{table_name, relid, server} of the table llm_create_model made for the model."""
    rows = _rows(plpy, _MODEL_TABLE_SQL, ["text"], [model])
    return dict(rows[0]) if rows else None


def find_model_table(plpy, model: str) -> str | None:
    """The model's foreign table (schema-qualified, quoted), by its recorded oid."""
    table = model_table(plpy, model)
    return table["table_name"] if table else None


def schema_exists(plpy, schema: str) -> bool:
    return bool(_rows(plpy, "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
                      ["text"], [schema]))


def relation_in_schema(plpy, schema: str, name: str) -> bool:
    return bool(_rows(plpy, """
        SELECT 1 FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relname = $2 AND n.nspname = $1""", ["text", "text"], [schema, name]))


def create_model(plpy, *, name: str, engine: str, model_name: str, prompt_template: str,
                 system_prompt: str | None, predict: str, prompt_columns: list[str],
                 options: dict, schema: str) -> str:
    """Catalog rows (version 1 = the base model, active) + a new foreign table; returns it.

    The table is created here and its oid recorded: CREATE fails if any relation of that
    name exists, so a table planted by someone else is never adopted.
    """
    _rows(plpy, """
        INSERT INTO llm.models (name, engine, base_model, prompt_template, system_prompt,
                                predict, options, active_version)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, 1)""",
          ["text", "text", "text", "text", "text", "text", "text"],
          [name, engine, model_name, prompt_template, system_prompt, predict, json.dumps(options)])
    columns = [f"{plpy.quote_ident(c)} text" for c in prompt_columns]
    columns.append(f"{plpy.quote_ident(predict)} text")
    columns += [f"{c} {t}" for c, t in {**templates.OPTION_COLUMNS, **templates.USAGE_COLUMNS}.items()]
    # typed output columns (pg_llm.structured_output), already validated
    columns += [f"{plpy.quote_ident(c)} {t}"
                for c, t in json.loads(options.get("output_columns") or "[]")]
    if engine_bridge(plpy, engine) == "multicorn":
        columns.append("multicorn_error llm.multicorn_error")  # keeps SQLSTATEs: multicorn_scan
    table = f"{plpy.quote_ident(schema)}.{plpy.quote_ident(name)}"
    plpy.execute(f"CREATE FOREIGN TABLE {table} ({', '.join(columns)}) "
                 f"SERVER {plpy.quote_ident(engine)} "
                 f"OPTIONS (model {plpy.quote_literal(name)})")
    _rows(plpy, """
        UPDATE llm.models SET relid = (
            SELECT c.oid FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $2 AND c.relname = $1 AND c.relkind = 'f')
        WHERE name = $1""", ["text", "text"], [name, schema])
    add_version(plpy, name, 1, model_name)
    return find_model_table(plpy, name)


def add_version(plpy, model: str, version: int, provider_model_id: str, *, job_id=None,
                metrics: dict | None = None, cost_usd=None) -> None:
    _rows(plpy, """
        INSERT INTO llm.model_versions (model, version, provider_model_id, job_id, metrics, cost_usd)
        VALUES ($1, $2, $3, $4, $5::jsonb, $6)""",
          ["text", "int4", "text", "int8", "text", "numeric"],
          [model, version, provider_model_id, job_id,
           json.dumps(metrics) if metrics is not None else None, cost_usd])
    sync_table_options(plpy, model)


def drop_model(plpy, name: str) -> None:
    """Drops the table the model recorded (if it still exists), never one found by name."""
    table = find_model_table(plpy, name)
    if table:
        plpy.execute(f"DROP FOREIGN TABLE {table}")
    _rows(plpy, "DELETE FROM llm.model_versions WHERE model = $1", ["text"], [name])
    _rows(plpy, "DELETE FROM llm.models WHERE name = $1", ["text"], [name])


def desired_table_options(plpy, model: dict) -> dict:
    """The foreign table options a scan needs, computed from the catalog rows."""
    prompt_columns = templates.parse_template(model["prompt_template"], predict=model["predict"])
    if model["system_prompt"]:
        for column in templates.parse_template(model["system_prompt"], what="system_prompt",
                                               predict=model["predict"]):
            if column not in prompt_columns:
                prompt_columns.append(column)
    stored = json.loads(model["options"]) if isinstance(model["options"], str) else (model["options"] or {})
    versions = live_versions(plpy, model["name"])
    options = {
        "model": model["name"],
        "engine": model["engine"],
        "prompt_template": model["prompt_template"],
        "system_prompt": model["system_prompt"],
        "predict": model["predict"],
        "prompt_columns": ",".join(prompt_columns),
        "active_version": str(model["active_version"]),
        "versions": json.dumps({str(v): mid for v, mid in versions.items()}),
        "defaults": json.dumps({k: v for k, v in stored.items() if k in REQUEST_DEFAULT_KEYS}),
        "deployments": _deployments_option(plpy, model["name"], versions),
    }
    for name in (*CALL_OPTIONS, *FEATURE_OPTIONS):
        if name in stored:
            options[name] = str(stored[name])
    # The same call options once more, where no server option can shadow them: Multicorn2
    # lets a server option win over a table option of the same name (docs/multicorn.md).
    call = {k: stored[k] for k in CALL_OPTIONS if k in stored}
    options["call_options"] = json.dumps(call) if call else None
    return options


def _deployments_option(plpy, model: str, versions: dict) -> str | None:
    """Live versions served by another engine (llm.deployments, pg_llm.deployment_routes)."""
    from pg_llm.catalog import deployments

    served = {str(v): d for v, d in deployments.routes(plpy, model).items() if v in versions}
    return json.dumps(served, sort_keys=True) if served else None


def sync_table_options(plpy, model) -> None:
    """The one writer of a model table's options: make them match llm.models/model_versions.

    Every function here that changes a model's catalog rows calls it; nothing else does.
    """
    name = model if isinstance(model, str) else model["name"]
    row = get_model(plpy, name)
    if row is None:
        return
    found = model_table(plpy, name)
    if found is None:
        # the recorded table is gone, was replaced, or (0.1.0) was never recorded: say so
        # rather than let the catalog and what the scan serves disagree
        raise UndefinedObject(f'the foreign table of model "{name}" is missing',
                              detail="llm.models.relid does not name a foreign table on engine "
                                     f'"{row["engine"]}"',
                              hint=f"SELECT llm_drop_model('{name}') and create it again "
                                   "with llm_create_model")
    table = found["table_name"]
    desired = desired_table_options(plpy, row)
    current_rows = _rows(plpy, "SELECT ftoptions FROM pg_catalog.pg_foreign_table "
                               "WHERE ftrelid = $1", ["oid"], [found["relid"]])
    current = dict(o.split("=", 1) for o in (current_rows[0]["ftoptions"] or []))
    actions = []
    for key in MANAGED_TABLE_OPTIONS:
        value = desired.get(key)
        if value is None:
            if key in current:
                actions.append(f"DROP {plpy.quote_ident(key)}")
        elif key not in current:
            actions.append(f"ADD {plpy.quote_ident(key)} {plpy.quote_literal(value)}")
        elif current[key] != value:
            actions.append(f"SET {plpy.quote_ident(key)} {plpy.quote_literal(value)}")
    if actions:
        plpy.execute(f"ALTER FOREIGN TABLE {table} OPTIONS ({', '.join(actions)})")


# -- versions written by fine-tuning (added for pg_llm.api.versions / pg_llm.finetune.lifecycle) --
def next_version(plpy, model: str) -> int:
    """1 + the highest version ever given, dropped ones included (numbers are never reused)."""
    rows = _rows(plpy, "SELECT coalesce(max(version), 0) + 1 AS v FROM llm.model_versions "
                       "WHERE model = $1", ["text"], [model])
    return rows[0]["v"]


def get_version(plpy, model: str, version: int) -> dict | None:
    rows = _rows(plpy, "SELECT * FROM llm.model_versions WHERE model = $1 AND version = $2",
                 ["text", "int4"], [model, version])
    return dict(rows[0]) if rows else None


def set_model_options(plpy, model: str, options: dict) -> None:
    _rows(plpy, "UPDATE llm.models SET options = $2::jsonb WHERE name = $1",
          ["text", "text"], [model, json.dumps(options)])
    sync_table_options(plpy, model)


def set_active_version(plpy, model: str, version: int) -> None:
    _rows(plpy, "UPDATE llm.models SET active_version = $2 WHERE name = $1",
          ["text", "int4"], [model, version])
    sync_table_options(plpy, model)


def mark_version_dropped(plpy, model: str, version: int) -> None:
    """Soft delete: the row stays (with its metrics and job), the table stops serving it."""
    _rows(plpy, "UPDATE llm.model_versions SET dropped_at = now() "
                "WHERE model = $1 AND version = $2 AND dropped_at IS NULL",
          ["text", "int4"], [model, version])
    sync_table_options(plpy, model)
