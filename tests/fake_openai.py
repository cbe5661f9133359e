"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

It speaks ``GET /v1/models`` and ``POST /v1/chat/completions`` over a real socket (threaded,
HTTP/1.1 keep-alive), records every request (with its Authorization header), and can be told
to delay, hang or fail, globally or per model. The default answer is ``echo:<user prompt>``
so tests can check a full round trip through PostgreSQL.

    with FakeOpenAI(models=["m1"]) as fake:
        fake.url            # "http://127.0.0.1:PORT/v1"
        fake.delay = 0.2    # seconds before each answer
        fake.fail(503, times=2)  # the next two chat requests get HTTP 503
        fake.hang(model="m1")    # chat requests for m1 wait until release() or stop()
        fake.abandoned      # chat requests whose client hung up before the answer was sent
        fake.connections_open, fake.connections_opened  # TCP connections from clients
"""

from __future__ import annotations

import json
import select
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict
    body: dict | None
    at: float = field(default_factory=time.monotonic)

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class _Failure:
    status: int
    times: int | None  # None: every request
    model: str | None
    retry_after_ms: int | None


def echo_answer(messages: list[dict], body: dict) -> str:
    user = [m.get("content") for m in messages if m.get("role") == "user"]
    return f"echo:{user[-1] if user else ''}"


class FakeOpenAI:
    def __init__(self, models=("test-model",), *, api_key: str | None = None, delay: float = 0.0,
                 answer=echo_answer):
        self.models = list(models)
        self.api_key = api_key
        self.delay = delay
        self.model_delays: dict[str, float] = {}
        self.answer = answer
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.abandoned = 0
        self.connections_open = 0
        self.connections_opened = 0
        self._failures: list[_Failure] = []
        self._hang_models: set[str | None] = set()
        self._released = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def fail(self, status: int, *, times: int | None = None, model: str | None = None,
             retry_after_ms: int | None = None) -> None:
        with self._lock:
            self._failures.append(_Failure(status, times, model, retry_after_ms))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def hang(self, model: str | None = None) -> None:
        """Chat requests (for ``model``, or all) block until release() or stop()."""
        self._released.clear()
        self._hang_models.add(model)

    def release(self) -> None:
        self._hang_models.clear()
        self._released.set()

    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.max_in_flight = 0

    def start(self) -> "FakeOpenAI":
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- behaviour (called from handler threads) ---------------------------------------
    def _take_failure(self, model: str | None) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.model not in (None, model):
                    continue
                if failure.times is not None:
                    if failure.times <= 0:
                        continue
                    failure.times -= 1
                return failure
        return None

    def _wait_before_answer(self, model: str | None, client: socket.socket) -> bool:
        """Hold the answer back (hang, delay); False when the client hung up meanwhile."""
        if None in self._hang_models or model in self._hang_models:
            while not (self._released.is_set() or self._stopping.is_set()):
                if _hung_up(client, 0.05):
                    return False
        delay = self.model_delays.get(model, self.delay)
        deadline = time.monotonic() + delay
        while delay and not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if _hung_up(client, min(left, 0.05)):
                return False
        return True


class _Server(ThreadingHTTPServer):
    # A real API's listen backlog: with the default 5, a burst of new connections (pgbench -C)
    # loses SYNs and waits a second for the retransmit.
    request_queue_size = 256

    def handle_error(self, request, client_address) -> None:
        # A client that hung up before its answer (a cancelled scan) is no error of the fake.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _hung_up(client: socket.socket, wait: float) -> bool:
    """Whether the client closed its side (a pipelined next request does not count)."""
    if not select.select([client], [], [], wait)[0]:
        return False
    try:
        return client.recv(1, socket.MSG_PEEK) == b""
    except ValueError:  # a TLS socket cannot peek: assume the client is still there
        return False
    except OSError:
        return True


def _count_tokens(text: str) -> int:
    return len(text.split())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real API server
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle + delayed ACK add 40 ms.
    disable_nagle_algorithm = True
    fake: FakeOpenAI

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake.connections_open += 1
            self.fake.connections_opened += 1

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.fake._lock:
                self.fake.connections_open -= 1

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, code: str, headers: dict | None = None) -> None:
        self._send(status, {"error": {"message": message, "type": "invalid_request_error",
                                      "code": code}}, headers)

    def _record(self, body):
        request = RecordedRequest(self.command, self.path,
                                  {k.lower(): v for k, v in self.headers.items()}, body)
        with self.fake._lock:
            self.fake.requests.append(request)
        return request

    def _authorized(self) -> bool:
        if self.fake.api_key is None:
            return True
        given = self.headers.get("Authorization", "")
        if given == f"Bearer {self.fake.api_key}":
            return True
        # Real providers echo (part of) the wrong key: the client must scrub it.
        self._error(401, f"Incorrect API key provided: {given.removeprefix('Bearer ')}",
                    "invalid_api_key")
        return False

    def do_GET(self) -> None:
        self._record(None)
        if not self._authorized():
            return
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                for m in self.fake.models]})
        else:
            self._error(404, f"no route {self.path}", "not_found")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._record(None)
            self._error(400, "invalid JSON body", "invalid_json")
            return
        self._record(body)
        if not self._authorized():
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no route {self.path}", "not_found")
            return
        fake = self.fake
        with fake._lock:
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            self._chat(body)
        finally:
            with fake._lock:
                fake.in_flight -= 1

    def _chat(self, body: dict) -> None:
        fake = self.fake
        model = body.get("model")
        if not fake._wait_before_answer(model, self.connection):
            with fake._lock:
                fake.abandoned += 1
            self.close_connection = True
            return
        failure = fake._take_failure(model)
        if failure is not None:
            headers = {"retry-after-ms": str(failure.retry_after_ms)} if failure.retry_after_ms else {}
            self._error(failure.status, f"injected failure {failure.status}", "injected", headers)
            return
        if model not in fake.models:
            self._error(404, f"The model `{model}` does not exist", "model_not_found")
            return
        max_tokens = body.get("max_tokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            self._error(400, "max_tokens must be a positive integer", "invalid_value")
            return
        messages = body.get("messages") or []
        words = fake.answer(messages, body).split(" ")
        finish_reason = "stop"
        if max_tokens is not None and len(words) > max_tokens:
            words, finish_reason = words[:max_tokens], "length"
        text = " ".join(words)
        prompt_tokens = sum(_count_tokens(str(m.get("content", ""))) for m in messages)
        self._send(200, {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "finish_reason": finish_reason,
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(words),
                      "total_tokens": prompt_tokens + len(words)},
        })


def main(argv=None) -> None:
    """Serve from its own process (benchmarks): prints the base URL, runs until killed."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["test-model"])
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--api-key")
    args = parser.parse_args(argv)
    with FakeOpenAI(models=args.models, api_key=args.api_key, delay=args.delay) as fake:
        print(fake.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
