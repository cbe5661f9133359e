"""The one place that reads and writes llm.jobs, llm.job_events, llm.budgets, llm.ledger and
llm.activations (fine-tuning). Model versions themselves go through pg_llm.catalog.models.

All SQL is schema-qualified (the calling functions do not pin search_path, so that user
queries resolve names as the caller expects). Plans are prepared once per backend.
"""

from __future__ import annotations

import json
from decimal import Decimal

from pg_llm.errors import InvalidParameter, UndefinedObject

UNFINISHED = ("queued", "running")
JOB_COLUMNS = ("model", "engine", "status", "provider_job_id", "provider_file_id",
               "provider_validation_file_id", "base_model", "hyperparameters", "options",
               "activate", "n_conversations", "estimated_tokens", "estimated_usd",
               "trained_tokens", "cost_usd", "started_at", "finished_at", "error",
               "result_version")
JSON_COLUMNS = ("hyperparameters", "options")

_plans: dict = {}


def _plan(plpy, sql: str, types: list[str]):
    key = (sql, tuple(types))
    plan = _plans.get(key)
    if plan is None:
        plan = _plans[key] = plpy.prepare(sql, types)
    return plan


def _exec(plpy, sql: str, types: list[str] = (), args: list = ()):
    return plpy.execute(_plan(plpy, sql, list(types)), list(args))


def _job(row) -> dict:
    job = dict(row)
    for col in JSON_COLUMNS:
        if isinstance(job.get(col), str):
            job[col] = json.loads(job[col])
    return job


def as_sql_row(job: dict) -> dict:
    """A job dict ready to be returned as an llm.jobs composite (jsonb as JSON text)."""
    return {k: (json.dumps(v) if k in JSON_COLUMNS and v is not None else v)
            for k, v in job.items()}


# ---- models and engines (read-only here)

def model_info(plpy, model: str) -> dict:
    rows = _exec(plpy, "SELECT m.name, m.engine, m.base_model, m.active_version, "
                 "e.provider, e.price_training FROM llm.models m "
                 "JOIN llm.engines e ON e.name = m.engine WHERE m.name = $1", ["text"], [model])
    if not rows:
        raise UndefinedObject(f'model "{model}" does not exist',
                              hint="create it with llm_create_model(...); see llm.models")
    return dict(rows[0])


def engine_options(plpy, engine: str) -> dict:
    """Server options plus the api_key of the current user's (else PUBLIC's) user mapping."""
    rows = _exec(plpy, "SELECT srvoptions FROM pg_catalog.pg_foreign_server WHERE srvname = $1",
                 ["text"], [engine])
    if not rows:
        raise UndefinedObject(f'engine "{engine}" does not exist',
                              hint="create it with llm_create_engine(...); see llm.engines")
    options = dict(o.split("=", 1) for o in rows[0]["srvoptions"] or [])
    for m in _exec(plpy, "SELECT umoptions FROM pg_catalog.pg_user_mappings WHERE srvname = $1 "
                   "AND (usename = current_user OR usename = 'public') "
                   "ORDER BY usename = 'public'", ["text"], [engine]):
        if m["umoptions"] is not None:
            um = dict(o.split("=", 1) for o in m["umoptions"])
            if um.get("api_key"):
                options["api_key"] = um["api_key"]
            break
    return options


# ---- jobs

def insert_job(plpy, **fields) -> dict:
    cols = [c for c in JOB_COLUMNS if c in fields]
    values = [json.dumps(fields[c]) if c in JSON_COLUMNS else fields[c] for c in cols]
    types = ["jsonb" if c in JSON_COLUMNS else "text" for c in cols]
    sql = (f"INSERT INTO llm.jobs ({', '.join(cols)}) VALUES "
           f"({', '.join(f'${i}::{_sqltype(c)}' for i, c in enumerate(cols, 1))}) RETURNING *")
    return _job(_exec(plpy, sql, types, values)[0])


def _sqltype(column: str) -> str:
    return {"hyperparameters": "jsonb", "options": "jsonb", "activate": "boolean",
            "n_conversations": "integer", "estimated_tokens": "bigint",
            "estimated_usd": "numeric", "trained_tokens": "bigint", "cost_usd": "numeric",
            "started_at": "timestamptz", "finished_at": "timestamptz",
            "result_version": "integer"}.get(column, "text")


def update_job(plpy, job_id: int, **fields) -> dict:
    """Update columns; 'now' for started_at/finished_at is PostgreSQL's special input."""
    cols = [c for c in JOB_COLUMNS if c in fields]
    if not cols:
        return get_job(plpy, job_id)
    values = [json.dumps(fields[c]) if c in JSON_COLUMNS
              else (None if fields[c] is None else str(fields[c])) for c in cols]
    sets = ", ".join(_set_clause(c, i) for i, c in enumerate(cols, 1))
    rows = _exec(plpy, f"UPDATE llm.jobs SET {sets} WHERE id = ${len(cols) + 1} RETURNING *",
                 ["text"] * len(cols) + ["bigint"], values + [job_id])
    return _job(rows[0])


def _set_clause(column: str, i: int) -> str:
    if column == "finished_at":
        # The provider's clock has whole seconds: never end before we started.
        return f"finished_at = greatest(${i}::timestamptz, started_at)"
    return f"{column} = ${i}::{_sqltype(column)}"


def get_job(plpy, job_id: int, *, lock: bool = False) -> dict:
    rows = _exec(plpy, "SELECT * FROM llm.jobs WHERE id = $1" + (" FOR UPDATE" if lock else ""),
                 ["bigint"], [job_id])
    if not rows:
        raise UndefinedObject(f"fine-tuning job {job_id} does not exist",
                              hint="see SELECT id, model, status FROM llm.jobs")
    return _job(rows[0])


def latest_job(plpy, model: str) -> dict:
    rows = _exec(plpy, "SELECT * FROM llm.jobs WHERE model = $1 ORDER BY id DESC LIMIT 1",
                 ["text"], [model])
    if not rows:
        raise UndefinedObject(f'model "{model}" has no fine-tuning job',
                              hint="start one with SELECT * FROM llm_finetune('model', $$query$$)")
    return _job(rows[0])


def unfinished_jobs(plpy) -> list[dict]:
    """Unfinished jobs nobody else is updating right now (SKIP LOCKED: a concurrent
    llm_wait or cron refresh owns the ones it locked)."""
    return [_job(r) for r in _exec(
        plpy, "SELECT * FROM llm.jobs WHERE status IN ('queued', 'running') "
              "ORDER BY id FOR UPDATE SKIP LOCKED")]


# ---- events

def known_event_ids(plpy, job_id: int) -> set[str]:
    return {r["provider_event_id"] for r in _exec(
        plpy, "SELECT provider_event_id FROM llm.job_events WHERE job_id = $1 "
              "AND provider_event_id IS NOT NULL", ["bigint"], [job_id])}


def add_events(plpy, job_id: int, events) -> int:
    """Insert provider events (dedup on provider id); returns how many were new."""
    added = 0
    for e in events:
        rows = _exec(plpy, "INSERT INTO llm.job_events (job_id, provider_event_id, step, "
                     "total_steps, loss, valid_loss, level, message, provider_created_at) "
                     "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, to_timestamp($9)) "
                     "ON CONFLICT (job_id, provider_event_id) DO NOTHING RETURNING 1",
                     ["bigint", "text", "integer", "integer", "float8", "float8", "text",
                      "text", "float8"],
                     [job_id, e.id, e.step, e.total_steps, e.train_loss, e.valid_loss,
                      e.level, e.message, e.created_at])
        added += len(rows)
    return added


def last_metrics(plpy, job_id: int) -> dict:
    """Final train loss / valid loss from the last step events."""
    rows = _exec(plpy, "SELECT (SELECT loss FROM llm.job_events WHERE job_id = $1 AND loss IS "
                 "NOT NULL ORDER BY step DESC NULLS LAST, id DESC LIMIT 1) AS train_loss, "
                 "(SELECT valid_loss FROM llm.job_events WHERE job_id = $1 AND valid_loss IS "
                 "NOT NULL ORDER BY step DESC NULLS LAST, id DESC LIMIT 1) AS valid_loss, "
                 "(SELECT max(step) FROM llm.job_events WHERE job_id = $1) AS steps",
                 ["bigint"], [job_id])
    return dict(rows[0])


# ---- ledger and budgets

def book(plpy, job: dict, kind: str, tokens: int, usd) -> None:
    _exec(plpy, "INSERT INTO llm.ledger (job_id, model, engine, kind, tokens, usd) "
          "VALUES ($1, $2, $3, $4, $5, $6)",
          ["bigint", "text", "text", "text", "bigint", "numeric"],
          [job["id"], job["model"], job["engine"], kind, tokens, usd])


def booked_estimate(plpy, job_id: int) -> tuple[int, Decimal]:
    """What is still booked as estimate for the job (estimate minus releases)."""
    row = _exec(plpy, "SELECT coalesce(sum(tokens), 0) AS tokens, coalesce(sum(usd), 0) AS usd "
                "FROM llm.ledger WHERE job_id = $1 AND kind IN ('estimate', 'release')",
                ["bigint"], [job_id])[0]
    return int(row["tokens"]), Decimal(str(row["usd"]))


def budgets_for(plpy, model: str, engine: str) -> list[dict]:
    """The budgets that cover a job, locked so concurrent jobs are checked one at a time."""
    return [dict(r) for r in _exec(
        plpy, "SELECT b.scope, b.target, b.max_usd, b.max_tokens, "
              "coalesce(s.tokens, 0) AS spent_tokens, coalesce(s.usd, 0) AS spent_usd "
              "FROM llm.budgets b LEFT JOIN LATERAL ("
              "  SELECT sum(l.tokens) AS tokens, sum(l.usd) AS usd FROM llm.ledger l "
              "  WHERE (b.scope = 'model' AND l.model = b.target) "
              "     OR (b.scope = 'engine' AND l.engine = b.target)) s ON true "
              "WHERE (b.scope = 'model' AND b.target = $1) OR (b.scope = 'engine' AND "
              "b.target = $2) ORDER BY b.scope DESC FOR UPDATE OF b",
        ["text", "text"], [model, engine])]


def resolve_budget_target(plpy, target: str) -> tuple[str, str]:
    """'model:x', 'engine:x', or a bare name that is a model or an engine (not both)."""
    scope, sep, name = target.partition(":")
    if sep and scope in ("model", "engine"):
        table = "llm.models" if scope == "model" else "llm.engines"
        if not _exec(plpy, f"SELECT 1 FROM {table} WHERE name = $1", ["text"], [name]):
            raise UndefinedObject(f'{scope} "{name}" does not exist',
                                  hint=f"see llm.{scope}s")
        return scope, name
    is_model = bool(_exec(plpy, "SELECT 1 FROM llm.models WHERE name = $1", ["text"], [target]))
    is_engine = bool(_exec(plpy, "SELECT 1 FROM llm.engines WHERE name = $1", ["text"],
                           [target]))
    if is_model and is_engine:
        raise InvalidParameter(f'"{target}" is both a model and an engine',
                               hint=f"write 'model:{target}' or 'engine:{target}'")
    if not (is_model or is_engine):
        raise UndefinedObject(f'no model or engine named "{target}"',
                              hint="see llm.models and llm.engines")
    return ("model" if is_model else "engine"), target


def set_budget(plpy, scope: str, target: str, max_usd, max_tokens) -> dict | None:
    if max_usd is None and max_tokens is None:
        _exec(plpy, "DELETE FROM llm.budgets WHERE scope = $1 AND target = $2",
              ["text", "text"], [scope, target])
        return None
    rows = _exec(plpy, "INSERT INTO llm.budgets (scope, target, max_usd, max_tokens) "
                 "VALUES ($1, $2, $3, $4) ON CONFLICT (scope, target) DO UPDATE SET "
                 "max_usd = excluded.max_usd, max_tokens = excluded.max_tokens, "
                 "updated_at = now() RETURNING *",
                 ["text", "text", "numeric", "bigint"], [scope, target, max_usd, max_tokens])
    return dict(rows[0])


# ---- activations (history of which version served, for rollback)

def record_activation(plpy, model: str, version: int, reason: str) -> None:
    _exec(plpy, "INSERT INTO llm.activations (model, version, reason) VALUES ($1, $2, $3)",
          ["text", "integer", "text"], [model, version, reason])


def activation_history(plpy, model: str) -> list[int]:
    """Versions activated for the model, newest first."""
    return [r["version"] for r in _exec(
        plpy, "SELECT version FROM llm.activations WHERE model = $1 ORDER BY id DESC",
        ["text"], [model])]
