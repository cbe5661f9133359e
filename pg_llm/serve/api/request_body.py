"""Reading a JSON request body with OpenAI-style 400 errors instead of framework ones."""

from __future__ import annotations

import json

from fastapi import Request

from ..errors import bad_request


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


async def json_body(request: Request) -> dict:
    raw = await request.body()
    try:
        # Python's json accepts NaN and Infinity; JSON (and every parameter here) does not.
        body = json.loads(raw or b"{}", parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise bad_request(f"The request body is not valid JSON ({exc.msg}).") from None
    except (ValueError, RecursionError) as exc:
        raise bad_request(f"The request body is not valid JSON ({exc}).") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body
