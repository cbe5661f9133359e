"""The request audit trail: with model option ``audit = 'on'`` every request of a scan (sent,
served from the cache, or failed under ``on_error = 'null'``) writes one ``llm.requests`` row,
in one INSERT per scan. Rows hold hashes, not prompts or answers, and are written as the
extension owner (llm._fdw_execute is SECURITY DEFINER) with the scanning role in ``role``.
Each answer row carries its ``request_id``, so an answer joins back to its version and
template in one query. A failed statement rolls its rows back with it.
"""

from __future__ import annotations

import hashlib
import json

from pg_llm.engines.client import ChatRequest

_plan = None


def prompt_hash(request: ChatRequest) -> str:
    return hashlib.sha256(json.dumps([list(m) for m in request.messages],
                                     ensure_ascii=False).encode()).hexdigest()


def record(plpy, *, role: str | None, model: str, engine: str, rows: list[dict]) -> dict[str, int]:
    """Insert one row per request (dicts with request_key, version, provider_model_id,
    prompt_hash, prompt_tokens, completion_tokens, cost_usd, latency_ms, cached, error);
    returns request_key -> id (keys are unique within a scan: requests are de-duplicated)."""
    global _plan
    if not rows:
        return {}
    if _plan is None:
        _plan = plpy.prepare("""
            INSERT INTO llm.requests (role, model, engine, version, provider_model_id,
                                      prompt_hash, request_key, prompt_tokens,
                                      completion_tokens, cost_usd, latency_ms, cached, error)
            SELECT $1, $2, $3, v, p, h, k, pt, ct, c, l, hit, e
            FROM unnest($4::int[], $5::text[], $6::text[], $7::text[], $8::int[], $9::int[],
                        $10::numeric[], $11::float8[], $12::bool[], $13::text[])
                 AS u(v, p, h, k, pt, ct, c, l, hit, e)
            RETURNING id, request_key""",
                             ["name", "text", "text", "int[]", "text[]", "text[]", "text[]",
                              "int[]", "int[]", "numeric[]", "float8[]", "bool[]", "text[]"])

    def column(name):
        return [r[name] for r in rows]

    inserted = plpy.execute(_plan, [
        role or "?", model, engine, column("version"), column("provider_model_id"),
        column("prompt_hash"), column("request_key"), column("prompt_tokens"),
        column("completion_tokens"), column("cost_usd"), column("latency_ms"),
        column("cached"), column("error")])
    return {r["request_key"]: r["id"] for r in inserted}
