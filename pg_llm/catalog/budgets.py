"""The one place that reads and writes llm.budgets and llm.ledger (spend of fine-tuning).

Spend is defined once, by the view llm.budget_status (the sum of llm.ledger over a budget's
scope); everything here reads it instead of summing the ledger again.
"""

from __future__ import annotations

from decimal import Decimal

from pg_llm.catalog import models as model_catalog
from pg_llm.catalog.plans import execute as _exec
from pg_llm.errors import InvalidParameter, UndefinedObject

_COVERING = "(scope = 'model' AND target = $1) OR (scope = 'engine' AND target = $2)"


def status_for_job(plpy, model: str, engine: str, *, reserve: bool = False) -> list[dict]:
    """The budgets covering a job on (model, engine), with what each has spent.

    reserve=True serializes fine-tunes that share a budget: the budget rows are locked (in a
    fixed order, so two jobs never deadlock) and touched until the caller's transaction ends,
    and spend is read *after* the lock, by a new statement. Under READ COMMITTED that
    statement sees the ledger rows of whoever held the lock before; under REPEATABLE READ
    or SERIALIZABLE the touch makes the second transaction fail with 40001 (retry it)
    instead of passing on a stale snapshot.
    """
    if reserve:
        locked = _exec(plpy, "SELECT scope, target FROM llm.budgets WHERE " + _COVERING +
                       " ORDER BY scope, target FOR UPDATE", ["text", "text"], [model, engine])
        if not locked:
            return []
        _exec(plpy, "UPDATE llm.budgets SET max_usd = max_usd WHERE " + _COVERING,
              ["text", "text"], [model, engine])
    # Model budgets first: the narrower limit names the fix closest to the job.
    return [dict(r) for r in _exec(
        plpy, "SELECT * FROM llm.budget_status WHERE " + _COVERING + " ORDER BY scope DESC",
        ["text", "text"], [model, engine])]


def status(plpy, scope: str, target: str):
    """llm.budget_status rows of one budget (what llm_set_budget returns)."""
    return _exec(plpy, "SELECT * FROM llm.budget_status WHERE scope = $1 AND target = $2",
                 ["text", "text"], [scope, target])


def resolve_target(plpy, target: str) -> tuple[str, str]:
    """'model:x', 'engine:x', or a bare name that is a model or an engine (not both)."""
    if target.startswith("role:"):  # what a role's queries spend (pg_llm.spending)
        role = target[len("role:"):]
        if not _exec(plpy, "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1",
                     ["text"], [role]):
            raise UndefinedObject(f'role "{role}" does not exist',
                                  hint="write llm_set_budget('role:<an existing role>', ...)")
        return "role", role
    scope, sep, name = target.partition(":")
    if sep and scope in ("model", "engine"):
        found = (model_catalog.get_model(plpy, name) if scope == "model"
                 else model_catalog.get_engine(plpy, name))
        if found is None:
            raise UndefinedObject(f'{scope} "{name}" does not exist',
                                  hint=f"see llm.{scope}s")
        return scope, name
    is_model = model_catalog.get_model(plpy, target) is not None
    is_engine = model_catalog.get_engine(plpy, target) is not None
    if is_model and is_engine:
        raise InvalidParameter(f'"{target}" is both a model and an engine',
                               hint=f"write 'model:{target}' or 'engine:{target}'")
    if not (is_model or is_engine):
        raise UndefinedObject(f'no model or engine named "{target}"',
                              hint="see llm.models and llm.engines")
    return ("model" if is_model else "engine"), target


def set_budget(plpy, scope: str, target: str, max_usd, max_tokens) -> None:
    """Create or change a budget; both limits NULL removes it."""
    if max_usd is None and max_tokens is None:
        _exec(plpy, "DELETE FROM llm.budgets WHERE scope = $1 AND target = $2",
              ["text", "text"], [scope, target])
        return
    _exec(plpy, "INSERT INTO llm.budgets (scope, target, max_usd, max_tokens) "
          "VALUES ($1, $2, $3, $4) ON CONFLICT (scope, target) DO UPDATE SET "
          "max_usd = excluded.max_usd, max_tokens = excluded.max_tokens, updated_at = now()",
          ["text", "text", "numeric", "bigint"], [scope, target, max_usd, max_tokens])


# ---- ledger: 'estimate' when a job is queued, 'release' (negative) and 'actual' at its end

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


# ---- inference: checked before a scan on a priced engine sends, booked after (pg_llm.spending)

def for_scan(plpy, model: str, engine: str, role: str | None) -> tuple[bool, list[dict]]:
    """(read-only transaction?, the budgets of the model, engine and role, in that order)."""
    rows = _exec(plpy, """
        SELECT pg_catalog.current_setting('transaction_read_only') = 'on' AS read_only,
               b.scope, b.target, b.max_usd, b.max_tokens, b.spent_usd, b.spent_tokens
        FROM (SELECT) one
        LEFT JOIN llm.budget_status b
               ON (b.scope = 'model' AND b.target = $1) OR (b.scope = 'engine' AND b.target = $2)
               OR (b.scope = 'role' AND b.target = $3)
        ORDER BY pg_catalog.array_position(ARRAY['model', 'engine', 'role'], b.scope)""",
                 ["text", "text", "text"], [model, engine, role])
    return rows[0]["read_only"], [r for r in rows if r["scope"] is not None]


def book_inference(plpy, model: str, engine: str, role: str | None, tokens: int, usd) -> None:
    _exec(plpy, """
        INSERT INTO llm.ledger (model, engine, kind, tokens, usd, role)
        VALUES ($1, $2, 'inference', $3, $4, $5)""",
          ["text", "text", "int8", "numeric", "name"], [model, engine, tokens, usd, role])
