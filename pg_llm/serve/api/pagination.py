"""OpenAI list pagination: newest first, `after=<id>` continues after that item, `limit`."""

from __future__ import annotations

from ..errors import bad_request


def paginate(items: list[dict], after: str | None, limit: str | None,
             default_limit: int = 20) -> dict:
    try:
        n = default_limit if limit is None else int(limit)
    except ValueError:
        n = -1
    if not 1 <= n <= 10000:
        raise bad_request("'limit' must be an integer between 1 and 10000.", "limit")
    start = 0
    if after:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise bad_request(f"'after': no item with id {after}.", "after")
        start = ids.index(after) + 1
    page = items[start:start + n]
    return {"object": "list", "data": page, "has_more": start + n < len(items),
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None}
