"""A wrapper's scan when a real Multicorn2 runs it (docs/multicorn.md).

Multicorn2 calls Python straight from its C callbacks, outside any PL/Python call, so:
- ``plpy`` must not be used: Multicorn imports it, but ``plpy.execute`` then raises a C-level
  ERROR ("no Python function is currently executing") that jumps over the Python frames and
  leaves the interpreter broken (the next Python call crashed the backend, measured).
- Cancels are seen by reading PostgreSQL's own flags (``QueryCancelPending``,
  ``ProcDiePending``) through ctypes; nothing here may raise a PostgreSQL error from inside
  Python for the same reason. A scan that sees one hands back a row of NULLs, which the
  local re-check of its WHERE clause drops, and PostgreSQL's next CHECK_FOR_INTERRUPTS ends
  the statement with its own error (57014 for statement_timeout and pg_cancel_backend).
- Errors: Multicorn2 reports a Python exception with message, detail and hint but no
  SQLSTATE (``_is_multicorn_exception``; the client sees XX000). So a table made by
  llm_create_model on a Multicorn2 engine has a column ``multicorn_error`` of the domain
  ``llm.multicorn_error``, whose input check raises the error it is given: the scan hands
  back one row carrying its LlmError there, PostgreSQL converts it and raises the error
  with its own SQLSTATE, message, detail and hint, while no Python runs (sql/idempotent/
  040-multicorn.sql). Tables without that column get Multicorn2's XX000 errors.
"""

from __future__ import annotations

import ctypes
import json

from pg_llm import scan_context
from pg_llm.errors import InvalidParameter, LlmError
from pg_llm.multicorn import REAL_MULTICORN

ERROR_COLUMN = "multicorn_error"  # of type llm.multicorn_error (see the module doc)
_active = False  # True while a Multicorn2 scan runs ModelTable code
_flags = None


class Interrupted(BaseException):
    """PostgreSQL wants the statement to end; BaseException so no handler swallows it."""


class MulticornError(Exception):
    """An error in the shape Multicorn2's errorCheck() reports: message, hint, detail."""

    _is_multicorn_exception = True
    code = 3  # multicorn.utils.REPORT_CODES[logging.ERROR]: an ERROR, not FATAL

    def __init__(self, message: str, detail: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.hint = hint


def called_by_multicorn() -> bool:
    """True when Multicorn2 (not pg_llm's C bridge, which sets the scan_context) calls."""
    return REAL_MULTICORN and scan_context.current_request is None


def active() -> bool:
    """True inside a Multicorn2 scan: code that would use plpy must not."""
    return _active


_backend = None


def _postgres():
    """The postgres executable, which exports its globals and functions (ctypes)."""
    global _backend
    if _backend is None:
        _backend = ctypes.CDLL(None)
        _backend.GetConfigOption.restype = ctypes.c_char_p
        _backend.GetConfigOption.argtypes = [ctypes.c_char_p, ctypes.c_bool, ctypes.c_bool]
        _backend.GetCurrentStatementStartTimestamp.restype = ctypes.c_int64
        _backend.GetCurrentStatementStartTimestamp.argtypes = []
    return _backend


def _pending_flags():
    global _flags
    if _flags is None:
        _flags = [ctypes.c_int.in_dll(_postgres(), name)  # volatile sig_atomic_t
                  for name in ("QueryCancelPending", "ProcDiePending")]
    return _flags


def _setting(name: str) -> str | None:
    # missing_ok: NULL for an unknown name, never an ERROR (none may be raised from Python)
    value = _postgres().GetConfigOption(name.encode(), True, False)
    return value.decode() if value is not None else None


def statement_limits() -> dict | None:
    """The per-statement spending guards, as the C bridge hands them to Python
    (pg_llm.spending.check_guards): the GUCs, and the statement their scans add up in."""
    limits = {}
    for key, name, parse in (("max_prompts", "pg_llm.max_prompts_per_statement", int),
                             ("max_cost", "pg_llm.max_cost_per_statement", float)):
        raw = _setting(name)
        try:
            limits[key] = parse(raw) if raw not in (None, "") else 0
        except ValueError:  # a placeholder setting: pg_llm's library is not loaded to check it
            raise InvalidParameter(f"invalid value for {name}: {raw!r}",
                                   hint=f"SET {name} to a number (0: no limit)") from None
    if not (limits["max_prompts"] > 0 or limits["max_cost"] > 0):
        return None
    limits["statement"] = f"multicorn:{_postgres().GetCurrentStatementStartTimestamp()}"
    return limits


def check_for_interrupts() -> None:
    """Raise Interrupted when a cancel, a statement_timeout or a terminate is pending."""
    if any(flag.value for flag in _pending_flags()):
        raise Interrupted()


def as_llm_error(exc: BaseException) -> LlmError:
    if isinstance(exc, LlmError):
        return exc
    return LlmError(f"pg_llm wrapper failed: {type(exc).__name__}: {exc}", sqlstate="HV000",
                    hint="This is a bug in the wrapper class; please report it with this message.")


def error_row(exc: LlmError) -> dict:
    """The row whose conversion by PostgreSQL raises exc (the llm.multicorn_error domain)."""
    return {ERROR_COLUMN: json.dumps({"sqlstate": exc.sqlstate, "message": exc.message,
                                      "detail": exc.detail, "hint": exc.hint})}


def rows(compute, quals, columns, *, relay_errors: bool):
    """Multicorn2's iterator over ``compute(quals, columns)``'s rows.

    A generator: Multicorn2 runs it from its IterateForeignScan, so PostgreSQL runs between
    the rows it yields. relay_errors: the table has the multicorn_error column.
    """
    global _active
    interrupted, error = False, None
    _active = True
    try:
        result = list(compute(quals, columns) or [])
    except Interrupted:
        interrupted = True
    except Exception as exc:
        error = as_llm_error(exc)
    finally:
        _active = False
    if interrupted:
        yield {}  # all NULL: the WHERE re-check drops it, then CHECK_FOR_INTERRUPTS raises
        # PostgreSQL did not end the statement (interrupts held off): still stop the scan.
        raise MulticornError("canceling the model call: the statement was interrupted")
    if error is not None:
        if relay_errors:
            yield error_row(error)  # PostgreSQL raises it while converting the row
        raise MulticornError(error.message, error.detail, error.hint)
    yield from result
