"""The one HTTP client: every call to an engine goes through the official ``openai`` client.

- One cached ``openai.OpenAI`` per backend for each (base_url, key hash, timeout, retries),
  because importing and building it costs far more than a loopback request.
- Retries with exponential backoff on 429/5xx/connection errors come from the openai client
  (``max_retries``); it honours ``retry-after``/``retry-after-ms``.
- Requests run in worker threads, at most ``concurrency`` at a time, while the calling
  (PostgreSQL) thread polls ``check_interrupts`` every ~50 ms: a sleeping socket read does not
  see statement_timeout or pg_cancel_backend, but the poll does. Worker threads never touch
  plpy; they are pooled daemons, so a hung request left behind by a cancel cannot block the
  backend (the next scan takes other threads).
- openai errors become LlmError subclasses whose text never contains the API key.
"""

from __future__ import annotations

import hashlib
import queue
import re
import signal
import threading
import time
from dataclasses import dataclass

from pg_llm.errors import (EngineAuthFailed, EngineRequestFailed, EngineUnavailable, LlmError,
                           UndefinedObject)

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_CONCURRENCY = 8
POLL_INTERVAL_S = 0.05
# The openai client insists on a key; local engines ignore it.
NO_KEY_PLACEHOLDER = "no-key"


@dataclass(frozen=True)
class EngineSettings:
    """Where and how to call one engine (from server + user mapping options)."""
    name: str
    base_url: str
    api_key: str | None = None
    timeout: float = DEFAULT_TIMEOUT_S
    max_retries: int = DEFAULT_MAX_RETRIES
    concurrency: int = DEFAULT_CONCURRENCY

    def __repr__(self) -> str:  # never show the key, even in a traceback
        return f"EngineSettings(name={self.name!r}, base_url={self.base_url!r})"


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple  # ((role, content), ...) so identical requests hash equal
    options: tuple = ()  # sorted ((name, value), ...) of max_tokens, temperature, ...


@dataclass
class ChatResult:
    text: str | None
    model_id: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    finish_reason: str | None = None


_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def get_client(settings: EngineSettings):
    """The cached openai client for these settings (one per backend and key)."""
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


def _no_interrupts() -> None:
    return None


def backend_interrupt_checker():
    """pg_llm.interrupts.check_for_interrupts inside a backend; None elsewhere (unit tests)."""
    try:
        from pg_llm.interrupts import check_for_interrupts
    except ImportError:
        return None
    return check_for_interrupts


class _PooledThread:
    """A daemon thread kept per backend between scans: starting threads per query costs
    more than the loopback request itself. It runs one scan's worker loop at a time."""

    def __init__(self):
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.retired = False
        self.thread = threading.Thread(target=self._run, name="pg_llm-request", daemon=True)

    def _run(self) -> None:
        while not self.retired:
            self.inbox.get()(self)

    def release(self) -> None:
        """Back to the idle list. Called by the job itself before it reports completion:
        once the scan returns, the backend holds the GIL until its next Python call."""
        with _pool_lock:
            if len(_idle) >= MAX_IDLE_THREADS:
                self.retired = True
            else:
                _idle.append(self)


MAX_IDLE_THREADS = 64
_idle: list[_PooledThread] = []
_pool_lock = threading.Lock()


def _idle_threads(count: int) -> list[_PooledThread]:
    """``count`` threads that are free now. A thread still busy with a cancelled scan's hung
    request is not free, so a cancel never delays the next query."""
    with _pool_lock:
        taken = [_idle.pop() for _ in range(min(count, len(_idle)))]
    fresh = [_PooledThread() for _ in range(count - len(taken))]
    if fresh:
        # Threads start with every signal blocked (they inherit the mask), so PostgreSQL's
        # handlers (statement_timeout's SIGALRM, cancel's SIGINT) always run in the backend thread.
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            for pooled in fresh:
                pooled.thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
    return taken + fresh


def run_in_workers(tasks: list, concurrency: int, check_interrupts=None) -> list:
    """Run callables in at most ``concurrency`` pooled threads; return results in order.

    The calling thread only waits and polls ``check_interrupts`` (which raises on a cancel).
    The first task error stops the hand-out of further tasks and is re-raised here.
    """
    check_interrupts = check_interrupts or _no_interrupts
    if not tasks:
        return []
    results: list = [None] * len(tasks)
    state = {"next": 0, "remaining": len(tasks), "error": None}
    lock = threading.Lock()
    finished = threading.Event()
    stop = threading.Event()

    def worker(pooled: _PooledThread) -> None:
        try:
            while not stop.is_set():
                with lock:
                    index = state["next"]
                    if index >= len(tasks):
                        return
                    state["next"] = index + 1
                try:
                    results[index] = tasks[index]()
                except BaseException as exc:  # handed to the calling thread, which re-raises it
                    with lock:
                        if state["error"] is None:
                            state["error"] = exc
                    stop.set()
                    return
                with lock:
                    state["remaining"] -= 1
        finally:
            pooled.release()
            with lock:
                if state["remaining"] == 0 or state["error"] is not None:
                    finished.set()

    for thread in _idle_threads(max(1, min(concurrency, len(tasks)))):
        thread.inbox.put(worker)
    try:
        while not finished.wait(POLL_INTERVAL_S):
            check_interrupts()
    except BaseException:
        stop.set()  # a cancel: leave in-flight requests to their timeout, start no more
        raise
    if state["error"] is not None:
        raise state["error"]
    return results


def chat_many(settings: EngineSettings, requests: list[ChatRequest], check_interrupts=None,
              *, errors_as_results: bool = False) -> list[ChatResult]:
    """Send chat completions concurrently (bounded); results in request order.

    errors_as_results (per-row errors, pg_llm.row_errors): a request that fails after its
    retries gives its LlmError as its result instead of stopping the others.
    """
    client = get_client(settings)

    def one(request: ChatRequest):
        if errors_as_results:
            return lambda: _chat_or_error(client, settings, request)
        return lambda: _chat_once(client, settings, request)

    return run_in_workers([one(r) for r in requests], settings.concurrency, check_interrupts)


def _chat_or_error(client, settings: EngineSettings, request: ChatRequest):
    try:
        return _chat_once(client, settings, request)
    except LlmError as exc:
        return exc


def _chat_once(client, settings: EngineSettings, request: ChatRequest) -> ChatResult:
    started = time.perf_counter()
    try:
        response = client.chat.completions.create(
            model=request.model,
            messages=[{"role": role, "content": content} for role, content in request.messages],
            **{k: list(v) if isinstance(v, tuple) else v for k, v in request.options},
        )
    except Exception as exc:
        raise translate_error(exc, settings, request.model) from None
    latency_ms = (time.perf_counter() - started) * 1000.0
    choice = response.choices[0] if response.choices else None
    usage = response.usage
    return ChatResult(
        text=choice.message.content if choice is not None else None,
        model_id=response.model or request.model,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        latency_ms=latency_ms,
        finish_reason=choice.finish_reason if choice is not None else None,
    )


def list_models(settings: EngineSettings, check_interrupts=None) -> list[str]:
    """GET /models: the ids the engine serves (used to verify a new engine)."""
    client = get_client(settings)

    def fetch():
        try:
            return [m.id for m in client.models.list()]
        except Exception as exc:
            raise translate_error(exc, settings, None) from None

    return run_in_workers([fetch], 1, check_interrupts)[0]


_SECRET_LIKE = re.compile(r"(sk-|Bearer\s+)[A-Za-z0-9*_.\-]{4,}")


def scrub(text: str | None, secret: str | None) -> str | None:
    """Remove the key (and anything that looks like a key) from text shown to users."""
    if not text:
        return text
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return _SECRET_LIKE.sub(lambda m: m.group(1) + "***", text)


def _body_message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(getattr(exc, "message", None) or exc)


def translate_error(exc: BaseException, settings: EngineSettings, model: str | None) -> LlmError:
    """Map an openai exception to the LlmError a user can act on (key scrubbed)."""
    import openai

    if isinstance(exc, LlmError):
        return exc
    engine = settings.name
    where = f'engine "{engine}" at {settings.base_url}'
    detail = scrub(_body_message(exc), settings.api_key)
    if isinstance(exc, openai.APITimeoutError):
        return EngineUnavailable(
            f"{where} did not answer within {settings.timeout:g} s",
            detail=detail,
            hint=f"raise the timeout with ALTER SERVER {engine} OPTIONS (ADD timeout '120'), "
                 "or check that the engine is running (`pg-llm serve` for a local engine)")
    if isinstance(exc, openai.APIConnectionError):
        return EngineUnavailable(
            f"cannot connect to {where}",
            detail=detail,
            hint=f"check the base_url of engine \"{engine}\" (ALTER SERVER {engine} OPTIONS "
                 "(SET base_url '...')) or start the local engine with `pg-llm serve`")
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        status = getattr(exc, "status_code", None)
        return EngineAuthFailed(
            f"{where} rejected the API key (HTTP {status})",
            detail=detail,
            hint=f"set a valid key with SELECT llm_set_api_key('{engine}', '<key>')")
    if isinstance(exc, openai.NotFoundError):
        what = f'model "{model}"' if model else "the endpoint"
        return UndefinedObject(
            f"{where} does not serve {what}",
            detail=detail,
            hint="check the model_name given to llm_create_model and the versions in "
                 "llm.model_versions; GET <base_url>/models lists what the engine serves")
    if isinstance(exc, openai.RateLimitError):
        return EngineUnavailable(
            f"{where} kept rate limiting the request after {settings.max_retries} retries",
            detail=detail,
            hint=f"lower the concurrency (ALTER SERVER {engine} OPTIONS (ADD concurrency '2')) "
                 "or raise max_retries")
    if isinstance(exc, openai.InternalServerError):
        return EngineUnavailable(
            f"{where} failed with HTTP {exc.status_code} after {settings.max_retries} retries",
            detail=detail,
            hint="check the engine's own log; the request was retried with backoff")
    if isinstance(exc, openai.APIStatusError):
        return EngineRequestFailed(
            f"{where} refused the request (HTTP {exc.status_code})",
            detail=detail,
            hint="check the option values (max_tokens, temperature, top_p, stop) and the model")
    if isinstance(exc, openai.APIError):
        return EngineRequestFailed(f"{where} sent an unexpected answer", detail=detail,
                                   hint="check that base_url points at an OpenAI-compatible API")
    return EngineRequestFailed(
        f"calling {where} failed: {type(exc).__name__}",
        detail=scrub(str(exc), settings.api_key),
        hint="this is unexpected; please report it with the detail above")
