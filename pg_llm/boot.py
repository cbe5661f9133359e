"""Glue that runs inside plpython3u: call an API function, turn LlmError into a SQL error.

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
    except plpy.SPIError as exc:
        raise_spi_error(plpy, exc, hint=_grant_hint(plpy, exc))


def _grant_hint(plpy, exc) -> str | None:
    """42501 on one of the extension's own tables: name the grant that gives the right."""
    message = str(exc.args[0]) if exc.args else ""
    if getattr(exc, "sqlstate", None) != "42501" or getattr(exc, "hint", None) \
            or not message.startswith(("permission denied for table ",
                                       "permission denied for sequence ")):
        return getattr(exc, "hint", None)
    row = plpy.execute(plpy.prepare(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_class WHERE relname = $1 "
        "AND relnamespace = 'llm'::pg_catalog.regnamespace) AS ours, "
        "pg_catalog.quote_ident(current_user) AS who", ["text"]), [message.split()[-1]])[0]
    return f"an administrator can run: GRANT llm_admin TO {row['who']};" if row["ours"] else None


# ext/messages.c strips this prefix and PL/Python's traceback from an error's report; other
# PL/Python functions' errors never carry it, so theirs are left as they are.
SQL_ERROR_PREFIX = "pg_llm.SqlError: "
_sql_error_class = None


def sql_error(plpy, message: str, sqlstate: str | None, detail: str | None = None,
              hint: str | None = None):
    """A plpy.Error that PL/Python reports with this SQLSTATE, detail and hint."""
    global _sql_error_class
    if _sql_error_class is None:
        _sql_error_class = type("SqlError", (plpy.Error,), {"__module__": "pg_llm"})
    error = _sql_error_class(message)
    error.sqlstate = sqlstate or "XX000"
    if detail:
        error.detail = detail
    if hint:
        error.hint = hint
    return error


def raise_sql_error(plpy, exc: LlmError):
    raise sql_error(plpy, exc.message, exc.sqlstate, exc.detail, exc.hint) from None


def raise_spi_error(plpy, exc, hint: str | None = None):
    """A query pg_llm ran failed (a syntax error in a query argument, a cancel): report it
    as PostgreSQL did, SQLSTATE kept, without "spiexceptions.X:" and a traceback."""
    message = str(exc.args[0]) if exc.args else "query failed"
    raise sql_error(plpy, message, getattr(exc, "sqlstate", None),
                    getattr(exc, "detail", None), hint or getattr(exc, "hint", None)) from None


def notice(plpy, message: str) -> None:
    plpy.notice(message)
