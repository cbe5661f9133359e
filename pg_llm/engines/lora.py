"""Runtime LoRA adapters on an engine that loads them while it runs (vLLM's documented API,
started with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True):

    POST /v1/load_lora_adapter   {"lora_name", "lora_path"}  200 text "Success: ..."
                                 400 already loaded / cannot load, 404 no adapter at the path
    POST /v1/unload_lora_adapter {"lora_name"}               200 text, 404 not loaded
    GET  /v1/models              adapters listed with "parent" = the base model, "root" = path

Errors are vLLM's ErrorResponse {"error": {"message", "type", "code"}} (older releases put
the fields at the top level; both are read). Called only from llm_deploy_version and
llm_undeploy_version, with the caller's key for the target engine.
"""

from __future__ import annotations

import json

from pg_llm.engines import http
from pg_llm.engines.client import EngineSettings, list_model_cards, status_error
from pg_llm.errors import DuplicateObject, EngineRequestFailed, EngineUnavailable, UndefinedObject


def _post(settings: EngineSettings, path: str, body: dict, poll) -> http.Response:
    headers = settings.headers + [("Content-Type", "application/json")]
    try:
        return http.pool.request(settings.origin, "POST", path, headers,
                                 json.dumps(body).encode(), timeout=settings.timeout,
                                 connect_timeout=min(5.0, settings.timeout), poll=poll)
    except http.TransportError as exc:
        raise EngineUnavailable(f'engine "{settings.name}" at {settings.base_url} did not answer',
                                detail=str(exc),
                                hint="is the engine running? vLLM: python -m "
                                     "vllm.entrypoints.openai.api_server ... --enable-lora") from None


def _message(response: http.Response) -> str:
    try:
        body = json.loads(response.body)
    except ValueError:
        return response.body.decode("utf-8", "replace")[:500]
    inner = body.get("error", body) if isinstance(body, dict) else body
    return str(inner.get("message") if isinstance(inner, dict) else inner)


def _no_such_route(response: http.Response) -> bool:
    """A server without the runtime LoRA API: FastAPI's own 404/405 {"detail": ...}."""
    if response.status not in (404, 405):
        return False
    try:
        body = json.loads(response.body)
    except ValueError:
        return True
    return not (isinstance(body, dict) and "error" in body) and "message" not in body


def load_adapter(settings: EngineSettings, name: str, path: str, poll=None) -> None:
    response = _post(settings, "/load_lora_adapter", {"lora_name": name, "lora_path": path}, poll)
    if 200 <= response.status < 300:
        return
    if _no_such_route(response):
        raise EngineRequestFailed(f'engine "{settings.name}" cannot load LoRA adapters at run time',
                                  detail=f"HTTP {response.status} from POST /load_lora_adapter",
                                  hint="start vLLM with --enable-lora and the environment "
                                       "variable VLLM_ALLOW_RUNTIME_LORA_UPDATING=True")
    message = _message(response)
    if response.status == 400 and "already been loaded" in message:
        raise DuplicateObject(f'engine "{settings.name}" already serves an adapter named "{name}"',
                              detail=message)
    if response.status == 404:
        raise UndefinedObject(f'engine "{settings.name}" found no adapter at {path}',
                              detail=message,
                              hint="the path must be readable by the engine's process (a shared "
                                   "directory); pass adapter_path => '...' to llm_deploy_version")
    if response.status == 400:
        raise EngineRequestFailed(f'engine "{settings.name}" refused to load the adapter at {path}',
                                  detail=message,
                                  hint="the adapter's rank must be <= the engine's --max-lora-rank "
                                       "and its base model the one the engine serves")
    raise status_error(response.status, response.body, settings, None)


def unload_adapter(settings: EngineSettings, name: str, poll=None) -> bool:
    """True when unloaded, False when the engine did not have it (already gone)."""
    response = _post(settings, "/unload_lora_adapter", {"lora_name": name}, poll)
    if 200 <= response.status < 300:
        return True
    if response.status == 404 and "cannot be found" in _message(response):
        return False
    raise status_error(response.status, response.body, settings, None)


def served_models(settings: EngineSettings, poll=None) -> dict[str, dict]:
    """id -> model card of GET /models (base models and loaded adapters)."""
    return {card["id"]: card for card in list_model_cards(settings, poll)}
