"""Prepared plans for the catalog modules: each statement is planned once per backend."""

from __future__ import annotations

_plans: dict = {}


def execute(plpy, sql: str, types: list[str] = (), args: list = ()):
    """plpy.execute of `sql` with parameters $1.. of `types`, through a cached plan."""
    key = (sql, tuple(types))
    plan = _plans.get(key)
    if plan is None:
        plan = _plans[key] = plpy.prepare(sql, list(types))
    return plpy.execute(plan, list(args))
