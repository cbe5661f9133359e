"""Checks of SQL function arguments that several API modules share."""

from __future__ import annotations

import json

from pg_llm.errors import InvalidParameter


def json_object(value, hint: str) -> dict:
    """A jsonb (or JSON text) `options` argument as a dict; NULL (or '') is {}."""
    if value is None or value == "":
        return {}
    try:
        parsed = json.loads(value) if isinstance(value, str) else dict(value)
    except (TypeError, ValueError):
        raise InvalidParameter("options must be a JSON object", hint=hint) from None
    if not isinstance(parsed, dict):
        raise InvalidParameter("options must be a JSON object", hint=hint)
    return parsed
