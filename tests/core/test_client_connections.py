"""The client's connections and threads against a real loopback server: keep-alive reuse,
a bounded number of sockets and worker threads, and a cancel that stops requests in flight
and their retries."""

import time

import pytest

from pg_llm.engines import http, workers
from pg_llm.engines.client import ChatRequest, EngineSettings, chat_many
from fake_openai import FakeOpenAI

KEY = "sk-test-0123456789abcdef"


@pytest.fixture
def fake():
    http.pool.close()  # each test counts its own connections
    with FakeOpenAI(models=["m1"], api_key=KEY) as server:
        yield server
        server.release()
    http.pool.close()


def settings(fake, **kw):
    return EngineSettings(name="eng", base_url=fake.url, api_key=KEY, **kw)


def ask(text):
    return ChatRequest("m1", (("user", text),))


def wait_until(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


class Cancel(Exception):
    """What check_interrupts raises in these tests (plpy.SPIError 57014 in a backend)."""


def test_one_connection_is_kept_alive_across_queries(fake):
    for i in range(20):
        [result] = chat_many(settings(fake), [ask(f"q{i}")])
        assert result.text == f"echo:q{i}"
    assert fake.connections_opened == 1
    assert len(fake.chat_requests()) == 20


def test_concurrent_scans_open_at_most_concurrency_sockets(fake):
    fake.delay = 0.02
    for round_ in range(5):
        results = chat_many(settings(fake, concurrency=4), [ask(f"r{round_}p{i}") for i in range(40)])
        assert [r.text for r in results] == [f"echo:r{round_}p{i}" for i in range(40)]
    assert fake.max_in_flight == 4
    assert fake.connections_opened <= 4  # reused across the 200 requests of 5 scans


def test_closing_the_pool_closes_the_sockets(fake):
    chat_many(settings(fake, concurrency=3), [ask(f"p{i}") for i in range(9)])
    assert fake.connections_open >= 1
    http.pool.close()
    assert wait_until(lambda: fake.connections_open == 0)


def test_at_most_sixteen_idle_connections_are_kept_per_engine(fake):
    fake.delay = 0.3
    chat_many(settings(fake, concurrency=32), [ask(f"p{i}") for i in range(32)])
    assert fake.connections_opened > 16  # more ran at once than the pool keeps
    assert http.pool.idle_count() == http.MAX_IDLE_PER_ORIGIN == 16
    assert wait_until(lambda: fake.connections_open == 16)  # the other 16 were closed


def test_a_cancel_ends_the_request_in_flight_in_the_backend_thread(fake):
    fake.hang()

    def check_interrupts():
        if fake.in_flight:
            raise Cancel()

    with pytest.raises(Cancel):
        chat_many(settings(fake), [ask("stuck")], check_interrupts)
    assert wait_until(lambda: fake.abandoned == 1 and fake.in_flight == 0)


def test_a_cancel_ends_every_request_in_flight_and_sends_no_more(fake):
    fake.hang()

    def check_interrupts():
        if fake.in_flight == 8:
            raise Cancel()

    with pytest.raises(Cancel):
        chat_many(settings(fake, concurrency=8), [ask(f"p{i}") for i in range(20)],
                  check_interrupts)
    # the engine sees all 8 requests end; the other 12 are never sent
    assert wait_until(lambda: fake.abandoned == 8 and fake.in_flight == 0)
    fake.release()
    time.sleep(0.3)
    assert len(fake.chat_requests()) == 8


def test_no_retry_is_sent_after_a_cancel(fake):
    fake.fail(503, retry_after_ms=500)  # every request fails: the client backs off, retries

    def check_interrupts():
        if fake.chat_requests():
            raise Cancel()  # cancelled during the backoff after the first attempt

    with pytest.raises(Cancel):
        chat_many(settings(fake, max_retries=5), [ask("x")], check_interrupts)
    time.sleep(1.0)  # two backoffs' worth: a retry would have arrived by now
    assert len(fake.chat_requests()) == 1


def test_no_retry_is_sent_after_a_cancel_in_worker_threads(fake):
    fake.fail(503, retry_after_ms=500)

    def check_interrupts():
        if len(fake.chat_requests()) >= 4:
            raise Cancel()

    with pytest.raises(Cancel):
        chat_many(settings(fake, concurrency=4, max_retries=5), [ask(f"p{i}") for i in range(8)],
                  check_interrupts)
    time.sleep(1.0)
    assert len(fake.chat_requests()) == 4


def test_worker_threads_stay_bounded_across_cancelled_scans(fake):
    fake.hang()
    before = workers.thread_count()
    for scan in range(10):
        def check_interrupts():
            if fake.in_flight == 4:
                raise Cancel()

        with pytest.raises(Cancel):
            chat_many(settings(fake, concurrency=4), [ask(f"s{scan}p{i}") for i in range(8)],
                      check_interrupts)
        assert wait_until(lambda: fake.in_flight == 0)
    # every cancelled scan's threads came back: ten scans reused the same ones
    assert workers.thread_count() == max(before, 4)
    assert wait_until(lambda: len(workers._idle) == workers.thread_count())


@pytest.fixture
def tls_fake(tmp_path):
    """The fake server behind TLS with a self-signed certificate for 127.0.0.1."""
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    http.pool.close()
    trusted = http.ssl_context()  # the backend's context (also arms the TLS retry paths)
    http._ssl_context = ssl.create_default_context(cafile=str(cert))
    try:
        with FakeOpenAI(models=["m1"], api_key=KEY) as server:
            server._server.socket = server_context.wrap_socket(server._server.socket,
                                                               server_side=True)
            yield server
            server.release()
    finally:
        http.pool.close()
        http._ssl_context = trusted


def test_https_engines_are_verified_and_kept_alive(tls_fake):
    https = EngineSettings(name="eng", base_url=tls_fake.url.replace("http://", "https://"),
                           api_key=KEY)
    for i in range(5):
        [result] = chat_many(https, [ask(f"tls {i}")])
        assert result.text == f"echo:tls {i}"
    assert tls_fake.connections_opened == 1
    results = chat_many(EngineSettings(name="eng", base_url=https.base_url, api_key=KEY,
                                       concurrency=4), [ask(f"p{i}") for i in range(8)])
    assert [r.text for r in results] == [f"echo:p{i}" for i in range(8)]


def test_an_untrusted_certificate_is_a_connection_error(tls_fake):
    from pg_llm.errors import EngineUnavailable

    http._ssl_context = None  # the default CA bundle does not know the self-signed certificate
    https = EngineSettings(name="eng", base_url=tls_fake.url.replace("http://", "https://"),
                           api_key=KEY, max_retries=0)
    with pytest.raises(EngineUnavailable, match="cannot connect") as err:
        chat_many(https, [ask("x")])
    assert "certificate" in err.value.detail
    assert tls_fake.chat_requests() == []


def test_sockets_numbered_above_1024_work(fake):
    """A backend may hold up to max_files_per_process (1000) relation files: the client's
    sockets then get numbers select() cannot take."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard limit of open files is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        [result] = chat_many(settings(fake), [ask("high fd")])
        assert result.text == "echo:high fd"
        results = chat_many(settings(fake, concurrency=4), [ask(f"p{i}") for i in range(8)])
        assert [r.text for r in results] == [f"echo:p{i}" for i in range(8)]
    finally:
        for fd in held:
            os.close(fd)
        http.pool.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
