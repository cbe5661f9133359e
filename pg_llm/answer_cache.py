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

import json

from pg_llm.catalog import cache as cache_catalog
from pg_llm.engines.client import ChatRequest, ChatResult


def request_key(settings, request: ChatRequest) -> str:
    import hashlib  # here: a scan without cache or audit never loads OpenSSL's digests (~7 ms)

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
    return {r["key"]: ChatResult(text=r["answer"], model_id=r["provider_model_id"],
                                 prompt_tokens=r["prompt_tokens"],
                                 completion_tokens=r["completion_tokens"], latency_ms=0.0,
                                 finish_reason=r["finish_reason"])
            for r in cache_catalog.live_answers(plpy, keys)}


def store(plpy, *, model: str, entries: list[tuple[str, int, str, ChatResult]], ttl_s: int,
          max_rows: int) -> None:
    """Write (key, version, provider model id, result) answers, then prune the model's rows."""
    if not entries:
        return
    rows = [(key, version, model_id, r.text, r.finish_reason, r.prompt_tokens,
             r.completion_tokens) for key, version, model_id, r in entries]
    try:
        with plpy.subtransaction():
            cache_catalog.put(plpy, model, rows, ttl_s)
            cache_catalog.prune(plpy, model, max_rows)
    except plpy.spiexceptions.ReadOnlySqlTransaction:
        pass  # a read-only transaction or a standby still gets answers, just not cached
