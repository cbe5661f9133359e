"""The request audit trail: with model option ``audit = 'on'`` every request of a scan (sent,
served from the cache, or failed under ``on_error = 'null'``) writes one ``llm.requests`` row,
in one INSERT per scan. Rows hold hashes, not prompts or answers, and are written as the
extension owner (llm._fdw_execute is SECURITY DEFINER) with the scanning role in ``role``.
Each answer row carries its ``request_id``, so an answer joins back to its version and
template in one query. A failed statement rolls its rows back with it.
"""

from __future__ import annotations

import json

from pg_llm.catalog import requests as requests_catalog
from pg_llm.engines.client import ChatRequest


def prompt_hash(request: ChatRequest) -> str:
    import hashlib  # here: a scan without cache or audit never loads OpenSSL's digests (~7 ms)

    return hashlib.sha256(json.dumps([list(m) for m in request.messages],
                                     ensure_ascii=False).encode()).hexdigest()


def record(plpy, *, role: str | None, model: str, engine: str, rows: list[dict]) -> dict[str, int]:
    """Insert one row per request (dicts with request_key, version, provider_model_id,
    prompt_hash, prompt_tokens, completion_tokens, cost_usd, latency_ms, cached, error);
    returns request_key -> id (keys are unique within a scan: requests are de-duplicated)."""
    if not rows:
        return {}
    return requests_catalog.insert(plpy, role or "?", model, engine, rows)
