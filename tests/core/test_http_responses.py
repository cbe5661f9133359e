"""pg_llm's HTTP/1.1 reader against a real socket server sending canned answers: every framing
an API may use (Content-Length, chunked, until close, 100 Continue), keep-alive rules, and
clean errors for broken answers or header injection."""

import socket
import threading

import pytest

from pg_llm.engines import http
from pg_llm.engines.client import ChatRequest, EngineSettings, chat_many
from pg_llm.errors import EngineRequestFailed, EngineUnavailable

ANSWER = (b'{"model": "m1", "choices": [{"index": 0, "finish_reason": "stop", '
          b'"message": {"role": "assistant", "content": "hi"}}], '
          b'"usage": {"prompt_tokens": 1, "completion_tokens": 1}}')


class CannedServer:
    """Answers each request on a connection with the next canned reply (bytes), then closes
    the connection after the last one; counts connections and requests."""

    def __init__(self, *replies: bytes):
        self.replies = list(replies)
        self.connections = 0
        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with conn:
            data = b""
            while self.replies:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                length = int([line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")][0] or 0)
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                data = rest[length:]
                # decided before sending: a reply the test queues after reading this one
                # must go to a new connection, never race onto this one
                last = len(self.replies) == 1
                conn.sendall(self.replies.pop(0))
                if last:
                    return

    def close(self):
        self.sock.close()


@pytest.fixture
def canned():
    servers = []

    def make(*replies):
        http.pool.close()
        servers.append(CannedServer(*replies))
        return servers[-1]

    yield make
    for server in servers:
        server.close()
    http.pool.close()


def settings(url, **kw):
    return EngineSettings(name="eng", base_url=url, api_key="sk-test-0123456789", **kw)


def ask():
    return ChatRequest("m1", (("user", "hello"),))


def ok(body: bytes = ANSWER, *extra: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"".join(extra)
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def test_content_length_answers_reuse_the_connection(canned):
    server = canned(ok(), ok())
    for _ in range(2):
        [result] = chat_many(settings(server.url), [ask()])
        assert result.text == "hi" and result.prompt_tokens == 1
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"Authorization: Bearer sk-test-0123456789\r\n" in first


def test_a_chunked_answer_with_a_trailer(canned):
    chunks = [ANSWER[:10], ANSWER[10:]]
    body = b"".join(f"{len(c):x};ext=1\r\n".encode() + c + b"\r\n" for c in chunks)
    server = canned(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body
                    + b"0\r\nX-Trailer: yes\r\n\r\n", ok())
    [result] = chat_many(settings(server.url), [ask()])
    assert result.text == "hi"
    chat_many(settings(server.url), [ask()])
    assert server.connections == 1  # still kept alive after a chunked answer


def test_an_answer_that_ends_with_the_connection(canned):
    first = canned(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + ANSWER)
    [result] = chat_many(settings(first.url), [ask()])
    assert result.text == "hi"
    assert http.pool.idle_count() == 0  # not reusable: closed


def test_100_continue_is_skipped_and_connection_close_is_honoured(canned):
    server = canned(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(ANSWER, b"Connection: close\r\n"))
    [result] = chat_many(settings(server.url), [ask()])
    assert result.text == "hi"
    assert http.pool.idle_count() == 0


def test_a_broken_status_line_is_an_engine_error(canned):
    server = canned(b"SPDY/9 hello\r\n\r\n")
    with pytest.raises(EngineUnavailable, match="cannot connect") as err:
        chat_many(settings(server.url, max_retries=0), [ask()])
    assert "invalid HTTP response" in err.value.detail


def test_a_body_that_is_not_json_is_an_unexpected_answer(canned):
    server = canned(ok(b"<html>proxy error</html>"))
    with pytest.raises(EngineRequestFailed, match="unexpected answer"):
        chat_many(settings(server.url), [ask()])


def test_a_key_with_a_line_break_is_refused_before_sending(canned):
    server = canned(ok())
    with pytest.raises(EngineRequestFailed) as err:
        chat_many(EngineSettings(name="eng", base_url=server.url,
                                 api_key="sk-abc\r\nX-Injected: 1"), [ask()])
    assert "X-Injected" not in str(err.value) + (err.value.detail or "")
    assert server.requests == []


def test_a_server_that_closed_an_idle_connection_gets_the_request_on_a_new_one(canned):
    server = canned(ok())  # one answer per connection, then it closes
    chat_many(settings(server.url), [ask()])
    server.replies.append(ok())
    [result] = chat_many(settings(server.url), [ask()])
    assert result.text == "hi" and server.connections == 2


def test_x_should_retry_false_is_not_retried(canned):
    refused = (b"HTTP/1.1 503 Service Unavailable\r\nx-should-retry: false\r\n"
               b"Content-Length: 2\r\n\r\n{}")
    server = canned(refused, ok())
    with pytest.raises(EngineUnavailable, match="HTTP 503"):
        chat_many(settings(server.url, max_retries=3), [ask()])
    assert len(server.requests) == 1


def test_retry_after_in_seconds_is_honoured(canned):
    busy = (b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 0.05\r\n"
            b'Content-Length: 35\r\n\r\n{"error": {"message": "slow down"}}')
    server = canned(busy, ok())
    [result] = chat_many(settings(server.url, max_retries=1), [ask()])
    assert result.text == "hi" and len(server.requests) == 2
