"""statement_timeout and pg_cancel_backend end a scan stuck on a hung endpoint, and the backend
stays usable. The fake holds every answer until release(), so a cancel seen before release()
came before any response: no test here measures durations."""

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
    with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
        db.execute("SELECT answer FROM ft_sql WHERE content = 'stuck'")
    # the request reached the engine, whose answer is still held back: the timeout ended the wait
    assert [r.body["messages"][-1]["content"] for r in fake.chat_requests()] == ["stuck"]
    db.execute("RESET statement_timeout")
    # the abandoned request is still held, yet the next scan in this backend is answered
    assert db.execute("SELECT answer FROM other WHERE content = 'meanwhile'").fetchone() == (
        "echo:meanwhile",)
    fake.release()
    assert db.execute("SELECT answer FROM ft_sql WHERE content = 'after'").fetchone() == ("echo:after",)


def test_the_timeout_option_bounds_each_request(db, ft_sql, fake):
    fake.hang()
    db.execute("ALTER SERVER openai_compat OPTIONS (ADD timeout '0.5', ADD max_retries '0')")
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT answer FROM ft_sql WHERE content = 'slow'")
    # the engine never answers until release(): only the 0.5 s option can have ended the scan
    assert err.value.sqlstate == "08001" and "did not answer within 0.5 s" in err.value.diag.message_primary
    assert "timeout" in err.value.diag.message_hint
    assert len(fake.chat_requests()) == 1  # max_retries 0: no second attempt


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

        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + 10
        while fake.in_flight < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fake.in_flight == 8  # bounded: 8 requests hang, 12 wait their turn
        assert db.execute("SELECT pg_cancel_backend(%s)", (pid,)).fetchone() == (True,)
        worker.join(30)  # a bound on the wait, not a measurement
        assert not worker.is_alive()
        assert isinstance(outcome.get("error"), psycopg.errors.QueryCanceled)
        # the scan ended while every answer was still held back, and the 12 waiting prompts
        # were never sent
        assert len(fake.chat_requests()) == 8
        fake.release()
        assert victim.execute("SELECT answer FROM ft_sql WHERE content = 'again'").fetchone() == (
            "echo:again",)
