"""Glue that runs inside plpython3u: call an API function, turn LlmError into plpy.error.

Every SQL function body is two lines:

    if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
    from pg_llm.boot import run_api; return run_api(plpy, "pg_llm.api.models:create_model", ...)
"""

from __future__ import annotations

import importlib
import sys

from pg_llm.errors import LlmError


def boot(plpy, gd: dict, python_path: str) -> None:
    """Make the backend's package directory importable, once per backend."""
    if python_path and python_path not in sys.path:
        sys.path.insert(0, python_path)
    gd["pg_llm"] = True


def _resolve(target: str):
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def run_api(plpy, target: str, *args, **kwargs):
    """Call ``module:function(plpy, *args, **kwargs)``; report LlmError as a proper SQL error."""
    func = _resolve(target)
    try:
        return func(plpy, *args, **kwargs)
    except LlmError as exc:
        raise_sql_error(plpy, exc)


def raise_sql_error(plpy, exc: LlmError):
    kwargs = {"sqlstate": exc.sqlstate}
    if exc.detail:
        kwargs["detail"] = exc.detail
    if exc.hint:
        kwargs["hint"] = exc.hint
    plpy.error(exc.message, **kwargs)


def notice(plpy, message: str) -> None:
    plpy.notice(message)
