"""The one HTTP client of the engines: chat completions and model lists.

- Scans use a thin HTTP/1.1 path (``pg_llm.engines.http``): importing the official openai
  client cost ~0.5 s in every new backend, more than everything else a first query does.
  It keeps what that client gave: retries with exponential backoff on 408/409/429/5xx and
  connection errors, ``retry-after``/``retry-after-ms``, timeouts, typed errors.
- One prompt (or ``concurrency`` 1) runs in the backend thread itself, polling
  ``check_interrupts`` between 50 ms waits; more run in pooled worker threads
  (``pg_llm.engines.workers``), at most ``concurrency`` at a time, while the backend thread
  polls. A cancel aborts the requests in flight and no retry is sent after it.
- Errors become LlmError subclasses whose text never contains the API key.
- The fine-tuning calls (files, jobs) still use the official client: ``get_client`` and
  ``translate_error`` (imported only when used).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time

from pg_llm.engines import http
from pg_llm.engines.workers import run_in_workers
from pg_llm.errors import (EngineAuthFailed, EngineRequestFailed, EngineUnavailable, LlmError,
                           UndefinedObject)
from pg_llm.interrupts import sleep

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_CONCURRENCY = 8
POLL_INTERVAL_S = http.POLL_S
# The openai client insists on a key; local engines ignore it.
NO_KEY_PLACEHOLDER = "no-key"
# Backoff as the openai client: 0.5 s doubling up to 8 s, minus up to 25% jitter;
# a server's retry-after of at most 60 s wins.
INITIAL_RETRY_DELAY_S = 0.5
MAX_RETRY_DELAY_S = 8.0
MAX_RETRY_AFTER_S = 60.0
RETRY_STATUSES = frozenset({408, 409, 429})

__all__ = ["EngineSettings", "ChatRequest", "ChatResult", "chat_many", "list_models",
           "run_in_workers", "scrub", "get_client", "translate_error",
           "backend_interrupt_checker"]


class EngineSettings:
    """Where and how to call one engine (from server + user mapping options). Immutable."""

    __slots__ = ("name", "base_url", "api_key", "timeout", "max_retries", "concurrency",
                 "_origin", "_headers")

    def __init__(self, name: str, base_url: str, api_key: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, max_retries: int = DEFAULT_MAX_RETRIES,
                 concurrency: int = DEFAULT_CONCURRENCY):
        for field, value in (("name", name), ("base_url", base_url), ("api_key", api_key),
                             ("timeout", timeout), ("max_retries", max_retries),
                             ("concurrency", concurrency), ("_origin", None), ("_headers", None)):
            object.__setattr__(self, field, value)

    def __setattr__(self, name, value):
        raise AttributeError("EngineSettings is immutable")

    def _key(self) -> tuple:
        return (self.name, self.base_url, self.api_key, self.timeout, self.max_retries,
                self.concurrency)

    def __eq__(self, other):
        return isinstance(other, EngineSettings) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self) -> str:  # never show the key, even in a traceback
        return f"EngineSettings(name={self.name!r}, base_url={self.base_url!r})"

    @property
    def origin(self) -> http.Origin:
        if self._origin is None:
            object.__setattr__(self, "_origin", http.Origin(self.base_url))
        return self._origin

    @property
    def headers(self) -> list:
        if self._headers is None:
            object.__setattr__(self, "_headers", [
                ("Authorization", f"Bearer {self.api_key or NO_KEY_PLACEHOLDER}")])
        return self._headers


class ChatRequest:
    """One chat completion; hashable so that identical prompts are sent once."""

    __slots__ = ("model", "messages", "options", "_hash")

    def __init__(self, model: str, messages: tuple, options: tuple = ()):
        self.model = model
        self.messages = messages  # ((role, content), ...)
        self.options = options    # sorted ((name, value), ...) of max_tokens, temperature, ...
        self._hash = hash((model, messages, options))

    def __eq__(self, other):
        return (isinstance(other, ChatRequest) and self.model == other.model
                and self.messages == other.messages and self.options == other.options)

    def __hash__(self):
        return self._hash

    def __repr__(self) -> str:
        return f"ChatRequest(model={self.model!r}, messages={self.messages!r}, options={self.options!r})"

    def body(self) -> bytes:
        payload = {"model": self.model,
                   "messages": [{"role": role, "content": content}
                                for role, content in self.messages]}
        for name, value in self.options:
            if name == "response_format":  # JSON text, to stay hashable (structured_output)
                value = json.loads(value)
            payload[name] = list(value) if isinstance(value, tuple) else value
        return json.dumps(payload).encode()


class ChatResult:
    __slots__ = ("text", "model_id", "prompt_tokens", "completion_tokens", "latency_ms",
                 "finish_reason")

    def __init__(self, text, model_id, prompt_tokens, completion_tokens, latency_ms,
                 finish_reason=None):
        self.text = text
        self.model_id = model_id
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.latency_ms = latency_ms
        self.finish_reason = finish_reason

    def __repr__(self) -> str:
        return f"ChatResult(text={self.text!r}, model_id={self.model_id!r})"


def backend_interrupt_checker():
    """pg_llm.interrupts.check_for_interrupts inside a backend; None elsewhere (unit tests)."""
    try:
        from pg_llm.interrupts import check_for_interrupts
    except ImportError:
        return None
    return check_for_interrupts


def _no_interrupts() -> None:
    return None


# -- the thin path: chat completions and model lists ------------------------------------------

def chat_many(settings: EngineSettings, requests: list, check_interrupts=None, *,
              errors_as_results: bool = False) -> list:
    """Send chat completions concurrently (bounded); results in request order.

    With ``errors_as_results`` a request that fails (after its retries) gives its LlmError
    in place of a ChatResult instead of failing the others (on_error = 'null').
    """
    check_interrupts = check_interrupts or _no_interrupts
    if min(settings.concurrency, len(requests)) <= 1:
        # No thread hand-off: the backend thread sends, and polls interrupts while it waits.
        return [_chat_or_error(settings, r, check_interrupts, None, errors_as_results)
                for r in requests]
    scope = http.Scope()

    def one(request: ChatRequest):
        return lambda: _chat_or_error(settings, request, scope.check, scope, errors_as_results)

    return run_in_workers([one(r) for r in requests], settings.concurrency, check_interrupts,
                          on_cancel=scope.cancel)


def _chat_or_error(settings, request, poll, scope, errors_as_results: bool):
    if not errors_as_results:
        return _chat_once(settings, request, poll, scope)
    try:
        return _chat_once(settings, request, poll, scope)
    except LlmError as exc:
        return exc


def _chat_once(settings: EngineSettings, request: ChatRequest, poll, scope) -> ChatResult:
    started = time.perf_counter()
    answer = _call(settings, "POST", "/chat/completions", request.body(), request.model,
                   poll, scope)
    latency_ms = (time.perf_counter() - started) * 1000.0
    try:
        choices = answer.get("choices") or []
        choice = choices[0] if choices else None
        usage = answer.get("usage") or None
        message = (choice.get("message") or {}) if choice is not None else {}
        return ChatResult(
            text=message.get("content") if choice is not None else None,
            model_id=answer.get("model") or request.model,
            prompt_tokens=usage.get("prompt_tokens") if usage else None,
            completion_tokens=usage.get("completion_tokens") if usage else None,
            latency_ms=latency_ms,
            finish_reason=choice.get("finish_reason") if choice is not None else None,
        )
    except (AttributeError, TypeError, IndexError):
        raise _unexpected_answer(settings, "the chat completion has an unexpected shape") from None


def list_models(settings: EngineSettings, check_interrupts=None) -> list[str]:
    """GET /models: the ids the engine serves (used to verify a new engine)."""
    return [m["id"] for m in list_model_cards(settings, check_interrupts)]


def list_model_cards(settings: EngineSettings, check_interrupts=None) -> list[dict]:
    """GET /models: the model objects (vLLM adds "parent" and "root" to its LoRA adapters)."""
    answer = _call(settings, "GET", "/models", b"", None, check_interrupts or _no_interrupts, None)
    cards = answer.get("data") or []
    if not isinstance(cards, list) or not all(isinstance(m, dict) and isinstance(m.get("id"), str)
                                              for m in cards):
        raise _unexpected_answer(settings, "the model list has an unexpected shape")
    return cards


def _call(settings: EngineSettings, method: str, path: str, body: bytes, model: str | None,
          poll, scope) -> dict:
    """One API call with the openai client's retry policy; the decoded JSON answer."""
    headers = settings.headers
    if body:
        headers = headers + [("Content-Type", "application/json")]
    retries = 0
    while True:
        try:
            response = http.pool.request(
                settings.origin, method, path, headers, body, timeout=settings.timeout,
                connect_timeout=min(5.0, settings.timeout), poll=poll, scope=scope)
        except http.TransportError as exc:
            if isinstance(exc, http.InvalidRequest) or retries >= settings.max_retries:
                raise _transport_error(exc, settings) from None
            delay = _backoff(retries, None)
        else:
            if 200 <= response.status < 300:
                try:
                    answer = json.loads(response.body)
                except ValueError:
                    answer = None
                if not isinstance(answer, dict):
                    raise _unexpected_answer(settings, "the answer is not a JSON object")
                return answer
            if retries >= settings.max_retries or not _should_retry(response):
                raise status_error(response.status, response.body, settings, model)
            delay = _backoff(retries, response.headers)
        retries += 1
        with _retry_lock:
            _retry_total[0] += 1
        # A cancel ends the backoff: no retry follows it.
        sleep(delay, poll_interval=POLL_INTERVAL_S, check=poll)


# Retries this backend has sent, for EXPLAIN ANALYZE (pg_llm.answering); rare, so a lock.
_retry_lock = threading.Lock()
_retry_total = [0]


def retries_sent() -> int:
    return _retry_total[0]


def _should_retry(response: http.Response) -> bool:
    verdict = response.headers.get("x-should-retry")
    if verdict in ("true", "false"):
        return verdict == "true"
    return response.status in RETRY_STATUSES or response.status >= 500


def _backoff(retries: int, headers: dict | None) -> float:
    if headers:
        try:
            if "retry-after-ms" in headers:
                wait = float(headers["retry-after-ms"]) / 1000.0
            elif "retry-after" in headers:
                wait = _retry_after_seconds(headers["retry-after"])
            else:
                wait = None
        except ValueError:
            wait = None
        if wait is not None and 0 < wait <= MAX_RETRY_AFTER_S:
            return wait
    jitter = 1.0 - 0.25 * (os.urandom(1)[0] / 255.0)
    return min(INITIAL_RETRY_DELAY_S * 2.0 ** retries, MAX_RETRY_DELAY_S) * jitter


def _retry_after_seconds(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime  # an HTTP date: rare, import on use

        when = parsedate_to_datetime(value)
        if when is None:
            raise ValueError(value) from None
        return when.timestamp() - time.time()


def _where(settings: EngineSettings) -> str:
    return f'engine "{settings.name}" at {settings.base_url}'


def _unexpected_answer(settings: EngineSettings, detail: str) -> LlmError:
    return EngineRequestFailed(f"{_where(settings)} sent an unexpected answer", detail=detail,
                               hint="check that base_url points at an OpenAI-compatible API")


def _transport_error(exc: http.TransportError, settings: EngineSettings) -> LlmError:
    where, engine = _where(settings), settings.name
    detail = scrub(str(exc), settings.api_key)
    if isinstance(exc, http.InvalidRequest):
        return EngineRequestFailed(f"{where}: the request cannot be sent", detail=detail,
                                   hint=f"set a valid key with SELECT llm_set_api_key('{engine}', '<key>')")
    return _unavailable(settings, detail, timed_out=isinstance(exc, http.RequestTimeout))


def _unavailable(settings: EngineSettings, detail, *, timed_out: bool) -> LlmError:
    """08001 for an engine that did not answer in time or could not be reached."""
    engine = settings.name
    if timed_out:
        message = f"{_where(settings)} did not answer within {settings.timeout:g} s"
        hint = (f"raise the timeout with ALTER SERVER {engine} OPTIONS (ADD timeout '120'), "
                "or check that the engine is running (`pg-llm serve` for a local engine)")
    else:
        message = f"cannot connect to {_where(settings)}"
        hint = (f"check the base_url of engine \"{engine}\" (ALTER SERVER {engine} OPTIONS "
                "(SET base_url '...')) or start the local engine with `pg-llm serve`")
    return EngineUnavailable(message, detail=detail, hint=hint)


def _status_message(status: int, body) -> str:
    """The provider's own error message (as the openai client shows it)."""
    if isinstance(body, (bytes, bytearray)):
        text = body.decode("utf-8", "replace").strip()
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = text
    message = _error_message(body)
    if message is not None:
        return message
    if body in (None, ""):
        return f"Error code: {status}"
    return f"Error code: {status} - {str(body)[:1000]}"


def status_error(status: int, body, settings: EngineSettings, model: str | None) -> LlmError:
    """An HTTP error status (after retries) as the LlmError a user can act on (key scrubbed)."""
    where, engine = _where(settings), settings.name
    detail = scrub(_status_message(status, body), settings.api_key)
    if status in (401, 403):
        return EngineAuthFailed(
            f"{where} rejected the API key (HTTP {status})",
            detail=detail,
            hint=f"set a valid key with SELECT llm_set_api_key('{engine}', '<key>')")
    if status == 404:
        what = f'model "{model}"' if model else "the endpoint"
        return UndefinedObject(
            f"{where} does not serve {what}",
            detail=detail,
            hint="check the model_name given to llm_create_model and the versions in "
                 "llm.model_versions; GET <base_url>/models lists what the engine serves")
    if status == 429:
        return EngineUnavailable(
            f"{where} kept rate limiting the request after {settings.max_retries} retries",
            detail=detail,
            hint=f"lower the concurrency (ALTER SERVER {engine} OPTIONS (ADD concurrency '2')) "
                 "or raise max_retries")
    if status >= 500:
        return EngineUnavailable(
            f"{where} failed with HTTP {status} after {settings.max_retries} retries",
            detail=detail,
            hint="check the engine's own log; the request was retried with backoff")
    return EngineRequestFailed(
        f"{where} refused the request (HTTP {status})",
        detail=detail,
        hint="check the option values (max_tokens, temperature, top_p, stop) and the model")


# -- the official client, for the fine-tuning API -------------------------------------------

_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def get_client(settings: EngineSettings):
    """The cached openai client for these settings (one per backend and key)."""
    import hashlib

    key_hash = hashlib.sha256((settings.api_key or "").encode()).hexdigest()
    cache_key = (settings.base_url, key_hash, settings.timeout, settings.max_retries)
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is None:
            import openai  # ~0.4 s on first use: only when a call is really made

            client = openai.OpenAI(
                api_key=settings.api_key or NO_KEY_PLACEHOLDER,
                base_url=settings.base_url,
                timeout=openai.Timeout(settings.timeout, connect=min(5.0, settings.timeout)),
                max_retries=settings.max_retries,
            )
            _clients[cache_key] = client
        return client


_SECRET_LIKE = re.compile(r"(sk-|Bearer\s+)[A-Za-z0-9*_.\-]{4,}")


def scrub(text: str | None, secret: str | None) -> str | None:
    """Remove the key (and anything that looks like a key) from text shown to users."""
    if not text:
        return text
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return _SECRET_LIKE.sub(lambda m: m.group(1) + "***", text)


def _error_message(body) -> str | None:
    """The message of an OpenAI-style error body, {"error": {"message": ...}} or alike."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return None


def _body_message(exc) -> str:
    message = _error_message(getattr(exc, "body", None))
    return message if message is not None else str(getattr(exc, "message", None) or exc)


def translate_error(exc: BaseException, settings: EngineSettings, model: str | None) -> LlmError:
    """Map an openai exception (fine-tuning calls) to the same LlmError as the thin path."""
    import openai

    if isinstance(exc, LlmError):
        return exc
    detail = scrub(_body_message(exc), settings.api_key)
    if isinstance(exc, openai.APIConnectionError):  # APITimeoutError is one too
        return _unavailable(settings, detail, timed_out=isinstance(exc, openai.APITimeoutError))
    if isinstance(exc, openai.APIStatusError):
        return status_error(exc.status_code, getattr(exc, "body", None), settings, model)
    if isinstance(exc, openai.APIError):
        return _unexpected_answer(settings, detail)
    return EngineRequestFailed(
        f"calling {_where(settings)} failed: {type(exc).__name__}",
        detail=scrub(str(exc), settings.api_key),
        hint="this is unexpected; please report it with the detail above")
