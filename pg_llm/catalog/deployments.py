"""llm.deployments: which versions another engine than their model's own serves.

Written only here (for pg_llm.api.deployments); every change is followed by
pg_llm.catalog.models.sync_table_options, whose ``deployments`` table option is what scans
read (pg_llm.deployment_routes).
"""

from __future__ import annotations


def _rows(plpy, sql: str, types: list[str], args: list):
    return plpy.execute(plpy.prepare(sql, types), args)


def routes(plpy, model: str) -> dict[int, dict]:
    """version -> {"engine", "model"} for the model's deployed versions."""
    return {r["version"]: {"engine": r["engine"], "model": r["served_model"]}
            for r in _rows(plpy, "SELECT version, engine, served_model FROM llm.deployments "
                                 "WHERE model = $1", ["text"], [model])}


def get(plpy, model: str, version: int) -> dict | None:
    rows = _rows(plpy, "SELECT * FROM llm.deployments WHERE model = $1 AND version = $2",
                 ["text", "int4"], [model, version])
    return dict(rows[0]) if rows else None


def record(plpy, model: str, version: int, engine: str, served_model: str,
           adapter_path: str | None) -> None:
    _rows(plpy, """
        INSERT INTO llm.deployments (model, version, engine, served_model, adapter_path)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (model, version) DO UPDATE
        SET engine = EXCLUDED.engine, served_model = EXCLUDED.served_model,
            adapter_path = EXCLUDED.adapter_path, deployed_by = current_user,
            deployed_at = now()""", ["text", "int4", "text", "text", "text"],
          [model, version, engine, served_model, adapter_path])


def remove(plpy, model: str, version: int) -> None:
    _rows(plpy, "DELETE FROM llm.deployments WHERE model = $1 AND version = $2",
          ["text", "int4"], [model, version])


def others_serving(plpy, engine: str, served_model: str, model: str, version: int) -> int:
    """Other deployments in this database that use the same adapter on the same engine."""
    return _rows(plpy, """
        SELECT count(*) AS n FROM llm.deployments
        WHERE engine = $1 AND served_model = $2 AND NOT (model = $3 AND version = $4)""",
                 ["text", "text", "text", "int4"], [engine, served_model, model, version])[0]["n"]


def on_engine(plpy, engine: str) -> list[dict]:
    return [dict(r) for r in _rows(plpy, "SELECT * FROM llm.deployments WHERE engine = $1 "
                                         "ORDER BY model, version", ["text"], [engine])]
