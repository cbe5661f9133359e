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
- Errors follow Multicorn's protocol (``_is_multicorn_exception``): message, detail and hint
  reach the client; Multicorn has no way to pass an SQLSTATE (the client sees XX000).
"""

from __future__ import annotations

import ctypes

from pg_llm.errors import LlmError
from pg_llm.multicorn import REAL_MULTICORN

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
    """True when Multicorn2 (not pg_llm's C bridge, which sets current_request) calls."""
    from pg_llm import bridge

    return REAL_MULTICORN and bridge.current_request is None


def active() -> bool:
    """True inside a Multicorn2 scan: code that would use plpy must not."""
    return _active


def _pending_flags():
    global _flags
    if _flags is None:
        backend = ctypes.CDLL(None)  # the postgres executable exports its globals
        _flags = [ctypes.c_int.in_dll(backend, name)  # volatile sig_atomic_t
                  for name in ("QueryCancelPending", "ProcDiePending")]
    return _flags


def check_for_interrupts() -> None:
    """Raise Interrupted when a cancel, a statement_timeout or a terminate is pending."""
    if any(flag.value for flag in _pending_flags()):
        raise Interrupted()


def as_multicorn_error(exc: BaseException) -> MulticornError:
    if isinstance(exc, LlmError):
        return MulticornError(exc.message, exc.detail, exc.hint)
    return MulticornError(f"pg_llm wrapper failed: {type(exc).__name__}: {exc}",
                          hint="This is a bug in the wrapper class; the server log has the "
                               "traceback.")


def rows(compute, quals, columns):
    """Multicorn2's iterator over ``compute(quals, columns)``'s rows.

    A generator: Multicorn2 runs it from its IterateForeignScan, where PostgreSQL checks
    for interrupts between rows.
    """
    global _active
    interrupted = False
    _active = True
    try:
        result = list(compute(quals, columns) or [])
    except Interrupted:
        interrupted = True
    except MulticornError:
        raise
    except Exception as exc:
        raise as_multicorn_error(exc) from None
    finally:
        _active = False
    if interrupted:
        yield {}  # all NULL: the WHERE re-check drops it, then CHECK_FOR_INTERRUPTS raises
        # PostgreSQL did not end the statement (interrupts held off): still stop the scan.
        raise MulticornError("canceling the model call: the statement was interrupted")
    yield from result
