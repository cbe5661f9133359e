"""Connections to the engine from real backends: kept alive within a backend, closed when it
exits, one per backend in a burst of clients; a cancelled scan stops its requests and their
retries, and the backend's worker threads stay bounded. Queries run as an ordinary role."""

import os
import threading
import time
import uuid

import psycopg
import pytest


@pytest.fixture
def user_dsn(db, ft_sql, dsn):
    role = f"reader_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {role} LOGIN")
    db.execute(f"GRANT USAGE ON FOREIGN SERVER openai_compat TO {role}")
    db.execute(f"GRANT SELECT ON ft_sql TO {role}")
    yield dsn.replace("user=postgres", f"user={role}")
    db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
    db.execute(f"DROP OWNED BY {role}")
    db.execute(f"DROP ROLE {role}")


def wait_until(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def ask(conn, text):
    return conn.execute("SELECT answer FROM ft_sql WHERE content = %s", (text,)).fetchone()[0]


def test_a_backend_keeps_one_connection_alive_and_closes_it_when_it_exits(user_dsn, fake):
    opened, still_open = fake.connections_opened, fake.connections_open  # the set-up's own
    with psycopg.connect(user_dsn, autocommit=True) as conn:
        for i in range(10):
            assert ask(conn, f"q{i}") == f"echo:q{i}"
        assert fake.connections_opened == opened + 1
        assert fake.connections_open == still_open + 1
    assert wait_until(lambda: fake.connections_open == still_open)


def test_a_burst_of_clients_opens_one_connection_each_and_leaves_nothing(db, user_dsn, fake):
    opened, still_open = fake.connections_opened, fake.connections_open
    errors = []

    def client(n):
        try:
            with psycopg.connect(user_dsn, autocommit=True) as conn:
                for i in range(5):
                    assert ask(conn, f"c{n}q{i}") == f"echo:c{n}q{i}"
        except Exception as exc:  # reported below
            errors.append(exc)

    clients = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    for t in clients:
        t.start()
    for t in clients:
        t.join(120)
    assert errors == []
    assert len(fake.chat_requests()) == 100
    assert fake.connections_opened - opened <= 20  # one per backend, not one per query
    assert wait_until(lambda: fake.connections_open == still_open)
    role = user_dsn.split("user=")[1].split()[0]
    assert wait_until(lambda: db.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s",
                                         (role,)).fetchone()[0] == 0)


def test_a_cancel_stops_the_requests_in_flight(db, user_dsn, fake):
    fake.hang()
    outcome = {}
    with psycopg.connect(user_dsn, autocommit=True) as conn:
        def scan():
            try:
                conn.execute("SELECT answer FROM ft_sql WHERE content = ANY(%s)",
                             ([f"p{i}" for i in range(20)],))
            except psycopg.Error as exc:
                outcome["error"] = exc

        worker = threading.Thread(target=scan)
        worker.start()
        assert wait_until(lambda: fake.in_flight == 8)  # concurrency 8: 12 more wait
        db.execute("SELECT pg_cancel_backend(%s)", (conn.info.backend_pid,))
        worker.join(30)
        assert isinstance(outcome.get("error"), psycopg.errors.QueryCanceled)
        # the engine saw its 8 requests end; the other 12 were never sent
        assert wait_until(lambda: fake.abandoned == 8 and fake.in_flight == 0)
        fake.release()
        assert ask(conn, "after") == "echo:after"
    assert len(fake.chat_requests()) == 9


def test_no_retry_is_sent_after_a_cancel(db, user_dsn, fake):
    db.execute("ALTER SERVER openai_compat OPTIONS (ADD max_retries '5')")
    with psycopg.connect(user_dsn, autocommit=True) as conn:
        ask(conn, "warm")  # the backend's first scan starts Python: keep it out of the 300 ms
        fake.reset()
        fake.fail(503, retry_after_ms=500)  # every attempt fails; the client would retry 5 times
        conn.execute("SET statement_timeout = '300ms'")
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT answer FROM ft_sql WHERE content = 'x'")
        time.sleep(1.2)  # two backoffs' worth: a retry would have arrived by now
        assert len(fake.chat_requests()) == 1


def test_worker_threads_stay_bounded_across_cancelled_scans(db, user_dsn, fake):
    fake.hang()
    with psycopg.connect(user_dsn, autocommit=True) as conn:
        pid = conn.info.backend_pid
        conn.execute("SET statement_timeout = '300ms'")
        for scan in range(8):
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute("SELECT answer FROM ft_sql WHERE content = ANY(%s)",
                             ([f"s{scan}p{i}" for i in range(16)],))
            assert wait_until(lambda: fake.in_flight == 0)
        # the backend thread and the 8 workers of concurrency 8, reused by every scan
        assert len(os.listdir(f"/proc/{pid}/task")) <= 9
        fake.release()
        conn.execute("RESET statement_timeout")
        assert ask(conn, "after") == "echo:after"
