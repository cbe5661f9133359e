"""The answer cache: identical requests answered from ``llm.cache`` without an HTTP call.

A request's key is the SHA-256 of everything that decides its answer: the engine (name,
base_url, a hash of the API key in use, so a role never gets answers its own key could not
get), the provider model id of the resolved version (a new version never serves an old
version's answers), the rendered messages and every request option. By default only
deterministic requests are cached (temperature 0 or a seed); ``cache = 'always'`` caches all.

Lookup is one SPI query per scan; new answers are written in one INSERT, then the model's
expired rows and rows beyond ``cache_max_rows`` (oldest first) are deleted. Python runs as
the extension owner here (llm._fdw_execute is SECURITY DEFINER), so callers need no
privilege on llm.cache. In a read-only transaction nothing is written.
"""

from __future__ import annotations

import hashlib
import json

from pg_llm.catalog.plans import execute
from pg_llm.engines.client import ChatRequest, ChatResult

def request_key(settings, request: ChatRequest) -> str:
    key_hash = hashlib.sha256((settings.api_key or "").encode()).hexdigest()
    document = [settings.name, settings.base_url, key_hash, request.model,
                [list(m) for m in request.messages],
                [[k, list(v) if isinstance(v, tuple) else v] for k, v in request.options]]
    return hashlib.sha256(json.dumps(document, sort_keys=True, ensure_ascii=False)
                          .encode()).hexdigest()


def is_deterministic(request: ChatRequest) -> bool:
    options = dict(request.options)
    return options.get("temperature") == 0 or options.get("seed") is not None


def cacheable(mode: str, request: ChatRequest) -> bool:
    return mode == "always" or (mode == "on" and is_deterministic(request))


def lookup(plpy, keys: list[str]) -> dict[str, ChatResult]:
    """Live cached answers for these keys."""
    if not keys:
        return {}
    rows = execute(plpy, """
        SELECT key, answer, finish_reason, prompt_tokens, completion_tokens, provider_model_id
        FROM llm.cache
        WHERE key = ANY ($1) AND (expires_at IS NULL OR expires_at > pg_catalog.now())""",
                   ["text[]"], [keys])
    return {r["key"]: ChatResult(text=r["answer"], model_id=r["provider_model_id"],
                                 prompt_tokens=r["prompt_tokens"],
                                 completion_tokens=r["completion_tokens"], latency_ms=0.0,
                                 finish_reason=r["finish_reason"])
            for r in rows}


def store(plpy, *, model: str, entries: list[tuple[str, int, str, ChatResult]], ttl_s: int,
          max_rows: int) -> None:
    """Write (key, version, provider model id, result) answers, then prune the model's rows."""
    if not entries:
        return
    try:
        with plpy.subtransaction():
            execute(plpy, """
                INSERT INTO llm.cache AS c (key, model, version, provider_model_id, answer,
                                            finish_reason, prompt_tokens, completion_tokens,
                                            expires_at)
                SELECT k, $1, v, p, a, f, pt, ct,
                       CASE WHEN $9 > 0 THEN pg_catalog.now() + $9 * interval '1 second' END
                FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::text[],
                            $7::int[], $8::int[]) AS u(k, v, p, a, f, pt, ct)
                ON CONFLICT (key) DO UPDATE
                SET answer = excluded.answer, finish_reason = excluded.finish_reason,
                    prompt_tokens = excluded.prompt_tokens,
                    completion_tokens = excluded.completion_tokens,
                    created_at = excluded.created_at, expires_at = excluded.expires_at""",
                    ["text", "text[]", "int[]", "text[]", "text[]", "text[]", "int[]", "int[]",
                     "int8"],
                    [model, [e[0] for e in entries], [e[1] for e in entries],
                     [e[2] for e in entries], [e[3].text for e in entries],
                     [e[3].finish_reason for e in entries],
                     [e[3].prompt_tokens for e in entries],
                     [e[3].completion_tokens for e in entries], ttl_s])
            prune(plpy, model, max_rows)
    except plpy.spiexceptions.ReadOnlySqlTransaction:
        pass  # a read-only transaction or a standby still gets answers, just not cached


def prune(plpy, model: str, max_rows: int) -> None:
    execute(plpy, """
        DELETE FROM llm.cache
        WHERE model = $1
          AND (expires_at <= pg_catalog.now()
               OR ($2 > 0 AND key IN (SELECT key FROM llm.cache WHERE model = $1
                                      ORDER BY created_at DESC, key OFFSET $2)))""",
            ["text", "int8"], [model, max_rows])
