"""statement_timeout and pg_cancel_backend end a scan stuck on a hung endpoint promptly,
and the backend stays usable."""

import threading
import time

import psycopg
import pytest

from core.conftest import BASE_MODEL


def test_statement_timeout_ends_a_hung_scan(db, ft_sql, fake):
    db.execute("SELECT llm_create_model('other', engine => 'openai_compat', model_name => 'ft-model-2', "
               "prompt_template => '{{content}}')")
    fake.hang(model=BASE_MODEL)
    db.execute("SET statement_timeout = '2s'")
    started = time.monotonic()
    with pytest.raises(psycopg.errors.QueryCanceled):
        db.execute("SELECT answer FROM ft_sql WHERE content = 'stuck'")
    elapsed = time.monotonic() - started
    assert 1.9 < elapsed < 3.0, elapsed
    db.execute("RESET statement_timeout")
    # the abandoned request still hangs, yet the next scan in this backend is not held up
    started = time.monotonic()
    assert db.execute("SELECT answer FROM other WHERE content = 'meanwhile'").fetchone() == (
        "echo:meanwhile",)
    assert time.monotonic() - started < 1.0
    fake.release()
    assert db.execute("SELECT answer FROM ft_sql WHERE content = 'after'").fetchone() == ("echo:after",)


def test_the_timeout_option_bounds_each_request(db, ft_sql, fake):
    fake.hang()
    db.execute("ALTER SERVER openai_compat OPTIONS (ADD timeout '0.5', ADD max_retries '0')")
    started = time.monotonic()
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT answer FROM ft_sql WHERE content = 'slow'")
    assert err.value.sqlstate == "08001" and "did not answer within 0.5 s" in err.value.diag.message_primary
    assert "timeout" in err.value.diag.message_hint
    assert time.monotonic() - started < 2.0


def test_pg_cancel_backend_ends_a_hung_any_scan(db, ft_sql, fake, dsn):
    fake.hang()
    outcome = {}
    with psycopg.connect(dsn, autocommit=True) as victim:
        pid = victim.info.backend_pid

        def run():
            try:
                victim.execute("SELECT answer FROM ft_sql WHERE content = ANY(%s)",
                               ([f"q{i}" for i in range(20)],))
            except psycopg.Error as exc:
                outcome["error"] = exc
            outcome["ended"] = time.monotonic()

        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + 10
        while fake.in_flight < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fake.in_flight == 8  # bounded: 8 requests hang, 12 wait their turn
        cancelled_at = time.monotonic()
        assert db.execute("SELECT pg_cancel_backend(%s)", (pid,)).fetchone() == (True,)
        worker.join(10)
        assert not worker.is_alive()
        assert isinstance(outcome.get("error"), psycopg.errors.QueryCanceled)
        assert outcome["ended"] - cancelled_at < 1.0
        fake.release()
        assert victim.execute("SELECT answer FROM ft_sql WHERE content = 'again'").fetchone() == (
            "echo:again",)
