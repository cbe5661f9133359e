"""HTTP/1.1 to an engine: keep-alive connections, a bounded pool per backend, and waits in
short slices so that a cancel ends a request in flight at once.

Why not the openai client on the scan path: importing it costs ~0.5 s in every new backend
(measured, docs/performance.md), and no thread can abort its request in flight. This module
needs only the standard library: the subset of HTTP/1.1 an API answer uses (Content-Length,
chunked, or until close; keep-alive) is read here, strictly.

- ``Pool.request`` sends one request and returns the whole response. Every wait (connect,
  TLS handshake, send, receive) is a ``select`` of at most ``POLL_S``, then ``poll()``: the
  caller's cancel check (``plpy`` interrupts in the backend thread, a flag in a worker).
- ``Scope.cancel()`` (from any thread) shuts the scope's sockets down: the engine sees the
  request end, and the waiting thread wakes up at once.
- Idle connections are reused (LIFO) and at most ``MAX_IDLE_PER_ORIGIN`` are kept per
  origin; the rest are closed. A backend's sockets close when it exits.
"""

from __future__ import annotations

import atexit
import errno
import os
import select
import socket
import threading
import time

POLL_S = 0.05
MAX_IDLE_PER_ORIGIN = 16
USER_AGENT = "pg_llm"


class TransportError(Exception):
    """The request did not get a complete HTTP response."""


class ConnectError(TransportError):
    """No connection could be made (refused, unreachable, DNS, TLS handshake)."""


class RequestTimeout(TransportError):
    """No complete response within the request's timeout."""


class ProtocolError(TransportError):
    """The connection broke or the peer did not speak HTTP/1.1."""
    got_bytes = True  # whether any response byte had arrived


class Cancelled(BaseException):
    """The request's scope was cancelled (the scan ended). A BaseException: nothing on the
    way up may retry it or turn it into an engine error."""


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict, body: bytes):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body


class Scope:
    """The requests of one scan: ``cancel()`` stops all of them, from any thread."""

    def __init__(self):
        self.cancelled = False
        self._live: set = set()
        self._lock = threading.Lock()

    def check(self) -> None:
        if self.cancelled:
            raise Cancelled()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            live = list(self._live)
        for connection in live:
            connection.abort()

    def _enter(self, connection) -> None:
        with self._lock:
            if self.cancelled:
                raise Cancelled()
            self._live.add(connection)

    def _leave(self, connection) -> None:
        with self._lock:
            self._live.discard(connection)


def _no_poll() -> None:
    return None


class _Deadline:
    def __init__(self, seconds: float, poll):
        self.at = time.monotonic() + seconds
        self.poll = poll or _no_poll

    def wait(self, sock, *, write: bool = False, what: str = "response") -> None:
        """Until ``sock`` is ready, polling between slices; RequestTimeout at the deadline."""
        # poll, not select: a backend may hold more than FD_SETSIZE (1024) files
        poller = select.poll()
        try:
            poller.register(sock, select.POLLOUT if write else select.POLLIN)
        except (ValueError, OSError):  # closed under us by an abort
            self.poll()
            raise ProtocolError("connection closed") from None
        while True:
            self.poll()
            left = self.at - time.monotonic()
            if left <= 0:
                raise RequestTimeout(f"no {what} in time")
            if poller.poll(min(left, POLL_S) * 1000.0):
                return  # ready, or an error/hang-up the next send or recv reports


MAX_HEAD_BYTES = 64 * 1024


class Connection:
    """One keep-alive HTTP/1.1 connection on a non-blocking socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = bytearray()  # received, not yet parsed
        self.keep_alive = False
        self.aborted = False
        self.got_bytes = False  # any byte of the current response arrived

    def abort(self) -> None:
        """Any thread: end the request in flight (the owner closes the socket)."""
        self.aborted = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def stale(self) -> bool:
        """An idle connection the server closed (or sent something on) is not reusable."""
        if self.buffer:
            return True
        poller = select.poll()
        try:
            poller.register(self.sock, select.POLLIN)
        except (ValueError, OSError):
            return True
        return bool(poller.poll(0))

    def exchange(self, method: str, target: str, headers: list, body: bytes,
                 deadline: _Deadline) -> Response:
        """Send one request and read its whole response."""
        self._send_all(_request_head(method, target, headers) + body, deadline)
        self.got_bytes = False
        try:
            while True:
                version, status, response_headers = self._read_head(deadline)
                if 100 <= status < 200:  # 100 Continue and friends: the answer follows
                    continue
                body = self._read_body(method, status, response_headers, deadline)
                connection = response_headers.get("connection", "").lower()
                self.keep_alive = ("close" not in connection if version == b"HTTP/1.1"
                                   else "keep-alive" in connection) and self.keep_alive
                return Response(status, response_headers, body)
        except ProtocolError as exc:
            exc.got_bytes = self.got_bytes
            raise

    def reusable(self) -> bool:
        return self.keep_alive and not self.aborted and not self.buffer

    def _read_head(self, deadline: _Deadline) -> tuple[bytes, int, dict]:
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise ProtocolError("invalid HTTP response: the header is too long")
            self._fill(deadline)
        head = bytes(self.buffer[:end]).decode("latin-1")
        del self.buffer[:end + 4]
        status_line, *lines = head.split("\r\n")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not (version in ("HTTP/1.1", "HTTP/1.0") and code.isdigit() and len(code) == 3):
            raise ProtocolError(f"invalid HTTP response: {status_line[:80]!r}")
        headers: dict[str, str] = {}
        for line in lines:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                raise ProtocolError(f"invalid HTTP response header: {line[:80]!r}")
            name, value = name.lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return version.encode(), int(code), headers

    def _read_body(self, method: str, status: int, headers: dict, deadline: _Deadline) -> bytes:
        self.keep_alive = True
        if method == "HEAD" or status in (204, 304):
            return b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked(deadline)
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise ProtocolError(f"invalid HTTP response: Content-Length {length[:20]!r}")
            return self._read_exactly(int(length), deadline)
        self.keep_alive = False  # the body ends when the server closes the connection
        while True:
            try:
                self._fill(deadline)
            except _Closed:
                body = bytes(self.buffer)
                self.buffer.clear()
                return body

    def _read_chunked(self, deadline: _Deadline) -> bytes:
        chunks = []
        while True:
            size_text = self._read_line(deadline).split(";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"invalid HTTP response: chunk size {size_text[:20]!r}") from None
            if size == 0:
                while self._read_line(deadline):  # trailers, up to the empty line
                    pass
                return b"".join(chunks)
            chunks.append(self._read_exactly(size, deadline))
            if self._read_line(deadline):
                raise ProtocolError("invalid HTTP response: no CRLF after a chunk")

    def _read_line(self, deadline: _Deadline) -> str:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[:end]).decode("latin-1")
                del self.buffer[:end + 2]
                return line
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise ProtocolError("invalid HTTP response: a line is too long")
            self._fill(deadline)

    def _read_exactly(self, size: int, deadline: _Deadline) -> bytes:
        while len(self.buffer) < size:
            self._fill(deadline)
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def _fill(self, deadline: _Deadline) -> None:
        chunk = self._receive(deadline)
        if not chunk:
            raise _Closed("the server closed the connection")
        self.got_bytes = True
        self.buffer += chunk

    def _send_all(self, data: bytes, deadline: _Deadline) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except (BlockingIOError, _WantWrite):
                deadline.wait(self.sock, write=True, what="request sent")
                continue
            except _WantRead:
                deadline.wait(self.sock)
                continue
            except OSError as exc:
                deadline.poll()
                raise _Unsent(str(exc)) from None
            view = view[sent:]

    def _receive(self, deadline: _Deadline) -> bytes:
        while True:
            pending = getattr(self.sock, "pending", None)
            if not (pending and pending()):  # TLS may hold decrypted bytes select cannot see
                deadline.wait(self.sock)
            try:
                return self.sock.recv(65536)
            except (BlockingIOError, _WantRead):
                continue
            except _WantWrite:
                deadline.wait(self.sock, write=True)
                continue
            except OSError as exc:
                deadline.poll()
                raise ProtocolError(str(exc)) from None


class _Unsent(ProtocolError):
    """Sending failed: on a reused connection the server had closed it (safe to resend)."""
    got_bytes = False


class _Closed(ProtocolError):
    """The server closed the connection."""


def _request_head(method: str, target: str, headers: list) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers:
        # no CR/LF/NUL: a header (say, a key) must never be able to add another one
        if any(c in value for c in "\r\n\0") or any(c in name for c in "\r\n\0: "):
            raise InvalidRequest("a request header holds characters HTTP does not allow "
                                 "(check the API key)")
        lines.append(f"{name}: {value}")
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidRequest("a request header or the URL holds characters HTTP does not "
                             "allow (check the API key and base_url)") from None


class InvalidRequest(TransportError):
    """The request cannot be sent as given."""


class _NeverRaised(Exception):
    pass


# ssl's "try again" errors; set when the first TLS context is built, so that plain-http
# backends never import ssl (~10 ms).
_WantRead = _WantWrite = _NeverRaised


class Origin:
    """scheme://host:port plus the base path of an engine's base_url."""

    __slots__ = ("scheme", "host", "port", "base_path", "host_header")

    def __init__(self, base_url: str):
        scheme, _, rest = base_url.partition("://")
        scheme = scheme.lower()
        if scheme not in ("http", "https") or not rest:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        authority, slash, path = rest.partition("/")
        authority = authority.rpartition("@")[2]  # never send userinfo as a host
        default_port = 443 if scheme == "https" else 80
        if authority.startswith("["):  # [IPv6]:port
            host, _, port_text = authority[1:].partition("]")
            port_text = port_text.lstrip(":")
        else:
            host, _, port_text = authority.partition(":")
        self.scheme = scheme
        self.host = host
        self.port = int(port_text) if port_text else default_port
        self.base_path = ("/" + path).rstrip("/") if slash else ""
        host_text = f"[{host}]" if ":" in host else host
        self.host_header = host_text if self.port == default_port else f"{host_text}:{self.port}"

    @property
    def key(self) -> tuple:
        return (self.scheme, self.host, self.port)


_ssl_context = None


def ssl_context():
    """One verifying TLS context per backend (built on first https use: ~20 ms)."""
    global _ssl_context, _WantRead, _WantWrite
    if _ssl_context is None:
        import ssl

        _WantRead, _WantWrite = ssl.SSLWantReadError, ssl.SSLWantWriteError
        try:
            import certifi  # the CA bundle the openai client used, when installed

            _ssl_context = ssl.create_default_context(cafile=certifi.where())
        except ImportError:
            _ssl_context = ssl.create_default_context()
    return _ssl_context


def _connect(origin: Origin, deadline: _Deadline, connect_timeout: float) -> Connection:
    connect_deadline = _Deadline(min(connect_timeout, deadline.at - time.monotonic()),
                                 deadline.poll)
    try:
        # an ASCII name as bytes: a str goes through the idna codec (its import: ~2 ms)
        host = origin.host.encode("ascii") if origin.host.isascii() else origin.host
        infos = socket.getaddrinfo(host, origin.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConnectError(f"cannot resolve {origin.host}: {exc}") from None
    last_error: Exception | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = sock.connect_ex(address)
            if code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                connect_deadline.wait(sock, write=True, what="connection")
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise ConnectError(f"connect to {origin.host}:{origin.port}: {os.strerror(code)}")
            if origin.scheme == "https":
                sock = _tls_handshake(sock, origin.host, connect_deadline)
            return Connection(sock)
        except (ConnectError, OSError) as exc:
            sock.close()
            last_error = exc if isinstance(exc, ConnectError) else ConnectError(str(exc))
        except BaseException:
            sock.close()
            raise
    raise last_error or ConnectError(f"no address for {origin.host}")


def _tls_handshake(sock: socket.socket, host: str, deadline: _Deadline):
    tls = ssl_context().wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
    while True:
        try:
            tls.do_handshake()
            return tls
        except _WantRead:
            deadline.wait(tls, what="TLS handshake")
        except _WantWrite:
            deadline.wait(tls, write=True, what="TLS handshake")
        except OSError as exc:
            raise ConnectError(f"TLS handshake with {host}: {exc}") from None


class Pool:
    """The backend's connections, by origin. Thread-safe."""

    def __init__(self, max_idle_per_origin: int = MAX_IDLE_PER_ORIGIN):
        self.max_idle = max_idle_per_origin
        self._idle: dict[tuple, list[Connection]] = {}
        self._lock = threading.Lock()
        self.opened = 0  # connections made in this process (for tests and benchmarks)

    def idle_count(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._idle.values())

    def _take(self, origin: Origin) -> Connection | None:
        while True:
            with self._lock:
                idle = self._idle.get(origin.key)
                connection = idle.pop() if idle else None
            if connection is None or not connection.stale():
                return connection
            connection.close()

    def _give_back(self, origin: Origin, connection: Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin.key, [])
            if len(idle) < self.max_idle:
                idle.append(connection)
                return
        connection.close()

    def request(self, origin: Origin, method: str, path: str, headers: list, body: bytes, *,
                timeout: float, connect_timeout: float = 5.0, poll=None,
                scope: Scope | None = None) -> Response:
        """One request on a pooled connection. Raises TransportError subclasses, Cancelled,
        or whatever ``poll`` raises; the connection is closed unless it can be reused."""
        deadline = _Deadline(timeout, poll)
        all_headers = [("Host", origin.host_header), ("User-Agent", USER_AGENT),
                       ("Accept", "application/json")]
        all_headers += headers
        if body:
            all_headers.append(("Content-Length", str(len(body))))
        target = origin.base_path + path
        while True:
            connection = self._take(origin)
            reused = connection is not None
            if connection is None:
                connection = _connect(origin, deadline, connect_timeout)
                with self._lock:
                    self.opened += 1
            if scope is not None:
                try:
                    scope._enter(connection)
                except BaseException:
                    connection.close()
                    raise
            keep = False
            try:
                response = connection.exchange(method, target, all_headers, body, deadline)
                keep = connection.reusable()
                return response
            except ProtocolError as exc:
                if scope is not None and scope.cancelled:
                    raise Cancelled() from None
                # the server closed an idle keep-alive connection before reading our request
                if reused and (isinstance(exc, _Unsent) or not getattr(exc, "got_bytes", True)):
                    continue
                raise
            finally:
                if scope is not None:
                    scope._leave(connection)
                if keep:
                    self._give_back(origin, connection)
                else:
                    connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()


pool = Pool()
# The kernel closes a backend's sockets when it exits anyway; this closes them cleanly where
# the interpreter does finalize (tests, scripts).
atexit.register(pool.close)
