"""The one module that writes llm.requests, the audit trail of models with audit = 'on'
(pg_llm.audit decides what a row holds). Runs in the backend as the extension owner."""

from __future__ import annotations

from pg_llm.catalog.plans import execute as _exec

# Per-request columns, in the order of the unnest() below; role, model and engine are shared.
_COLUMNS = ("version", "provider_model_id", "prompt_hash", "request_key", "prompt_tokens",
            "completion_tokens", "cost_usd", "latency_ms", "cached", "error")
_TYPES = ["name", "text", "text", "int[]", "text[]", "text[]", "text[]", "int[]", "int[]",
          "numeric[]", "float8[]", "bool[]", "text[]"]
_INSERT = """
    INSERT INTO llm.requests (role, model, engine, version, provider_model_id, prompt_hash,
                              request_key, prompt_tokens, completion_tokens, cost_usd,
                              latency_ms, cached, error)
    SELECT $1, $2, $3, v, p, h, k, pt, ct, c, l, hit, e
    FROM unnest($4::int[], $5::text[], $6::text[], $7::text[], $8::int[], $9::int[],
                $10::numeric[], $11::float8[], $12::bool[], $13::text[])
         AS u(v, p, h, k, pt, ct, c, l, hit, e)
    RETURNING id, request_key"""


def insert(plpy, role: str, model: str, engine: str, rows: list[dict]) -> dict[str, int]:
    """One INSERT for all rows (dicts with the _COLUMNS keys); returns request_key -> id."""
    inserted = _exec(plpy, _INSERT, _TYPES,
                     [role, model, engine, *([r[c] for r in rows] for c in _COLUMNS)])
    return {r["request_key"]: r["id"] for r in inserted}
