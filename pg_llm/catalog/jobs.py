"""The one place that reads and writes llm.jobs, llm.job_events, llm.job_files and
llm.activations (fine-tuning). Budgets and the ledger: pg_llm.catalog.budgets; model versions:
pg_llm.catalog.models. Which of these a job's life calls, and when: pg_llm.finetune.lifecycle.

All SQL is schema-qualified (the calling functions do not pin search_path, so that user
queries resolve names as the caller expects). Plans are prepared once per backend.
"""

from __future__ import annotations

import json

from pg_llm.catalog import models as model_catalog
from pg_llm.catalog.plans import execute as _exec
from pg_llm.errors import UndefinedObject

# pending = queued in the catalog, not yet handed to the provider (see lifecycle.submit).
UNFINISHED = ("pending", "queued", "running")
JOB_COLUMNS = ("model", "engine", "status", "provider_job_id", "provider_file_id",
               "provider_validation_file_id", "base_model", "hyperparameters", "options",
               "activate", "n_conversations", "estimated_tokens", "estimated_usd",
               "trained_tokens", "cost_usd", "started_at", "finished_at", "error",
               "result_version")
JSON_COLUMNS = ("hyperparameters", "options")


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
    """What a fine-tune needs of its model and engine."""
    row = model_catalog.get_model(plpy, model)
    if row is None:
        raise UndefinedObject(f'model "{model}" does not exist',
                              hint="create it with llm_create_model(...); see llm.models")
    engine = model_catalog.get_engine(plpy, row["engine"]) or {}
    return {"name": row["name"], "engine": row["engine"], "base_model": row["base_model"],
            "active_version": row["active_version"], "provider": engine.get("provider"),
            "price_training": engine.get("price_training")}


def engine_options(plpy, engine: str) -> dict:
    """Server options plus the api_key of the current user's (else PUBLIC's) user mapping."""
    server = _first(_exec(plpy, "SELECT srvoptions FROM pg_catalog.pg_foreign_server "
                                "WHERE srvname = $1", ["text"], [engine]),
                    UndefinedObject(f'engine "{engine}" does not exist',
                                    hint="create it with llm_create_engine(...); see llm.engines"))
    options = dict(o.split("=", 1) for o in server["srvoptions"] or [])
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
    return _job(_first(
        _exec(plpy, "SELECT * FROM llm.jobs WHERE id = $1" + (" FOR UPDATE" if lock else ""),
              ["bigint"], [job_id]),
        UndefinedObject(f"fine-tuning job {job_id} does not exist",
                        hint="see SELECT id, model, status FROM llm.jobs")))


def latest_job(plpy, model: str) -> dict:
    return _job(_first(
        _exec(plpy, "SELECT * FROM llm.jobs WHERE model = $1 ORDER BY id DESC LIMIT 1",
              ["text"], [model]),
        UndefinedObject(f'model "{model}" has no fine-tuning job',
                        hint="start one with SELECT * FROM llm_finetune('model', $$query$$)")))


def _first(rows, missing: UndefinedObject):
    """The first row; raises `missing` when there is none."""
    if not rows:
        raise missing
    return rows[0]


def unfinished_jobs(plpy) -> list[dict]:
    """Unfinished jobs nobody else is updating right now (SKIP LOCKED: a concurrent
    llm_wait or cron refresh owns the ones it locked)."""
    return [_job(r) for r in _exec(
        plpy, "SELECT * FROM llm.jobs WHERE status IN ('pending', 'queued', 'running') "
              "ORDER BY id FOR UPDATE SKIP LOCKED")]


# ---- training files kept until the job is handed to the provider (after commit)

def store_file(plpy, job_id: int, purpose: str, filename: str, jsonl: str) -> None:
    _exec(plpy, "INSERT INTO llm.job_files (job_id, purpose, filename, content) "
          "VALUES ($1, $2, $3, $4)", ["bigint", "text", "text", "text"],
          [job_id, purpose, filename, jsonl])


def job_files(plpy, job_id: int) -> dict[str, dict]:
    """purpose ('training' | 'validation') -> {filename, content}."""
    return {r["purpose"]: {"filename": r["filename"], "content": r["content"]}
            for r in _exec(plpy, "SELECT purpose, filename, content FROM llm.job_files "
                           "WHERE job_id = $1", ["bigint"], [job_id])}


def drop_job_files(plpy, job_id: int) -> None:
    _exec(plpy, "DELETE FROM llm.job_files WHERE job_id = $1", ["bigint"], [job_id])


def queued_in_this_transaction(plpy, job_id: int) -> bool:
    """True while the transaction that queued the job has not committed (it is ours)."""
    return bool(_exec(plpy, "SELECT 1 FROM llm.job_files WHERE job_id = $1 AND "
                      "queued_xact = pg_catalog.pg_current_xact_id_if_assigned()",
                      ["bigint"], [job_id]))


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


# ---- activations (history of which version served, for rollback)

def record_activation(plpy, model: str, version: int, reason: str) -> None:
    _exec(plpy, "INSERT INTO llm.activations (model, version, reason) VALUES ($1, $2, $3)",
          ["text", "integer", "text"], [model, version, reason])


def activation_history(plpy, model: str) -> list[int]:
    """Versions activated for the model, newest first."""
    return [r["version"] for r in _exec(
        plpy, "SELECT version FROM llm.activations WHERE model = $1 ORDER BY id DESC",
        ["text"], [model])]
