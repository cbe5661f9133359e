"""Request options of a chat completion (max_tokens, temperature, top_p, seed, stop).

They come from a model's defaults or from a query's WHERE clause (``max_tokens = 1000``), as
text or typed values, and are validated here before any request is sent.
"""

from __future__ import annotations

from pg_llm.errors import InvalidParameter

REQUEST_OPTIONS = ("max_tokens", "temperature", "top_p", "seed", "stop")


def as_int(name, value, *, minimum=None):
    try:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError
        parsed = int(value.strip()) if isinstance(value, str) else value
    except ValueError:
        raise InvalidParameter(f"{name} must be an integer, got {value!r}",
                               hint=f"write e.g. WHERE {name} = 100") from None
    if minimum is not None and parsed < minimum:
        raise InvalidParameter(f"{name} must be at least {minimum}, got {parsed}",
                               hint=f"write e.g. WHERE {name} = 100")
    return parsed


def _as_float(name, value, low, high, *, low_open=False):
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{name} must be a number, got {value!r}",
                               hint=f"{name} is between {low:g} and {high:g}") from None
    if not (low < parsed if low_open else low <= parsed) or not parsed <= high:
        raise InvalidParameter(f"{name} = {value} is out of range",
                               hint=f"{name} is between {low:g} and {high:g}")
    return parsed


def check_request_option(name: str, value):
    """Validate one request option (from a qual or the model's defaults); return it typed."""
    if name == "max_tokens":
        return as_int(name, value, minimum=1)
    if name == "temperature":
        return _as_float(name, value, 0.0, 2.0)
    if name == "top_p":
        return _as_float(name, value, 0.0, 1.0, low_open=True)
    if name == "seed":
        return as_int(name, value)
    if name == "stop":
        if not isinstance(value, str) or value == "":
            raise InvalidParameter("stop must be a non-empty text", hint="write e.g. WHERE stop = ';'")
        return value
    raise InvalidParameter(f"unknown request option {name!r}",
                           hint="request options are " + ", ".join(REQUEST_OPTIONS))

