"""Engines: OpenAI-compatible HTTP endpoints (hosted ``openai`` or the ``local`` pg-llm serve).

An engine is a FOREIGN SERVER; its options (plus the user mapping's ``api_key``) become
``EngineSettings`` here, validated once at the boundary.
"""

from __future__ import annotations

from pg_llm.engines.client import (DEFAULT_CONCURRENCY, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_S,
                                   EngineSettings)
from pg_llm.errors import InvalidParameter

PROVIDERS = {
    "openai": {"base_url": "https://api.openai.com/v1", "prices": True},
    # `pg-llm serve` listens on 8765 by default; local compute costs nothing per token.
    "local": {"base_url": "http://127.0.0.1:8765/v1", "prices": False},
    # vLLM's OpenAI server (default port 8000); llm_deploy_version loads LoRA adapters on it
    "vllm": {"base_url": "http://127.0.0.1:8000/v1", "prices": False},
}

# Server/table options that tune calls (name -> (parser, lower bound, upper bound)).
CALL_OPTIONS = {
    "concurrency": (int, 1, 256),
    "timeout": (float, 0.1, 86400.0),
    "max_retries": (int, 0, 20),
}


def check_provider(provider) -> str:
    if provider not in PROVIDERS:
        raise InvalidParameter(f"unknown provider {provider!r}",
                               hint="use provider => 'openai' (any OpenAI-compatible API), 'local' or 'vllm'")
    return provider


def check_base_url(base_url) -> str:
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise InvalidParameter(f"invalid base_url {base_url!r}",
                               hint="give the API root, e.g. 'http://127.0.0.1:8765/v1'")
    if any(c.isspace() for c in base_url):
        raise InvalidParameter("base_url must not contain spaces",
                               hint="give the API root, e.g. 'http://127.0.0.1:8765/v1'")
    if "@" in base_url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]:
        # user:password@host would sit in server options, which every role can read
        raise InvalidParameter("base_url must not carry credentials",
                               hint="pass the key as api_key (it goes into a user mapping)")
    return base_url.rstrip("/")


def parse_call_option(name: str, value):
    """Validate concurrency/timeout/max_retries (text from options or a JSON value)."""
    parse, low, high = CALL_OPTIONS[name]
    try:
        parsed = parse(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"option {name} must be a number, got {value!r}",
                               hint=f"{name} is between {low:g} and {high:g}") from None
    if not (low <= parsed <= high):
        raise InvalidParameter(f"option {name} = {value!r} is out of range",
                               hint=f"{name} is between {low:g} and {high:g}")
    return parsed


def settings_from_options(options: dict, *, engine: str | None = None) -> EngineSettings:
    """Merged server + table + user-mapping options -> EngineSettings."""
    provider = options.get("provider", "openai")
    base_url = options.get("base_url") or PROVIDERS.get(provider, PROVIDERS["openai"])["base_url"]
    return EngineSettings(
        name=engine or options.get("engine") or "?",
        base_url=check_base_url(base_url),
        api_key=options.get("api_key") or None,
        timeout=parse_call_option("timeout", options.get("timeout", DEFAULT_TIMEOUT_S)),
        max_retries=parse_call_option("max_retries", options.get("max_retries", DEFAULT_MAX_RETRIES)),
        concurrency=parse_call_option("concurrency", options.get("concurrency", DEFAULT_CONCURRENCY)),
    )
