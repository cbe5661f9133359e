"""Per-row errors: with ``on_error = 'null'`` a request that failed (after the client's
retries) gives its row a NULL answer and an ``error`` text instead of failing the statement.

Only failures of one request qualify (HTTP errors, timeouts of that request, an answer that
does not parse). Cancellation and statement_timeout are PostgreSQL errors raised in the
backend thread, never results, so they always end the statement.
"""

from __future__ import annotations

from pg_llm.errors import InvalidParameter, LlmError
from pg_llm.model_features import ON_ERROR_VALUES


def check_policy(value) -> str:
    """A query's ``WHERE on_error = ...`` value."""
    if value not in ON_ERROR_VALUES:
        raise InvalidParameter(f"on_error must be one of {', '.join(ON_ERROR_VALUES)}, got {value!r}",
                               hint="write WHERE on_error = 'null' to get failed rows with an "
                                    "error column instead of a failed statement")
    return value


def error_text(exc: LlmError) -> str:
    """What the ``error`` column shows: SQLSTATE, message and detail, never a key (the client
    already scrubbed it)."""
    text = f"{exc.sqlstate}: {exc.message}"
    if exc.detail:
        text += f" ({exc.detail})"
    return text
