"""Let PostgreSQL cancel Python that waits: statement_timeout, pg_cancel_backend().

A backend only notices a cancel request at CHECK_FOR_INTERRUPTS, which Python code
blocking in a sleep or a socket read never reaches. Code that waits calls
``check_for_interrupts()`` every ~50 ms; under the pg_llm bridge it runs the prepared
``SELECT llm._check_interrupts()`` (about 2 µs), which raises ``plpy.SPIError``
(QueryCanceled, SQLSTATE 57014) when the statement must end. Never swallow that error.

Under a real Multicorn2 scan there is no PL/Python call to run it in: it reads
PostgreSQL's cancel flags instead (pg_llm.multicorn_scan). Outside a backend it does nothing.
"""

from __future__ import annotations

_plan = None


def _plpy():
    try:
        import plpy  # the module PL/Python provides inside the backend
    except ImportError:
        return None
    return plpy


def check_for_interrupts() -> None:
    """Raise plpy.SPIError (57014) if the statement was cancelled or timed out."""
    global _plan
    from pg_llm import multicorn_scan

    if multicorn_scan.active():
        multicorn_scan.check_for_interrupts()
        return
    plpy = _plpy()
    if plpy is None:
        return
    if _plan is None:
        _plan = plpy.prepare("SELECT llm._check_interrupts()")
    plpy.execute(_plan)


def sleep(seconds: float, *, poll_interval: float = 0.02, check=None) -> None:
    """time.sleep that a cancel or a statement_timeout ends within poll_interval.

    ``check`` (default check_for_interrupts) runs before each slice: a caller with its own
    way of noticing a cancel (a worker thread's flag) passes that instead.
    """
    import time

    check = check or check_for_interrupts
    deadline = time.monotonic() + seconds
    while True:
        check()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, poll_interval))
