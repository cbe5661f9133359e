"""Errors from Python keep their SQLSTATE, detail and hint; cancellation ends scans."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest


def test_llm_error_keeps_sqlstate_detail_and_hint(echo):
    echo.execute("ALTER SERVER echo OPTIONS (ADD error_sqlstate '53400', "
                 "ADD error_message 'budget exceeded', ADD error_detail 'spent 3 of 2 USD', "
                 "ADD error_hint 'raise the budget')")
    with pytest.raises(psycopg.errors.ConfigurationLimitExceeded) as err:
        echo.execute("SELECT * FROM echo_t WHERE content = 'x'")
    assert "budget exceeded" in err.value.diag.message_primary
    assert err.value.diag.message_detail == "spent 3 of 2 USD"
    assert err.value.diag.message_hint == "raise the budget"


def test_missing_prompt_value_is_22004_with_a_hint(echo):
    with pytest.raises(psycopg.errors.NullValueNotAllowed) as err:
        echo.execute("SELECT * FROM echo_t")
    assert 'prompt column "content"' in err.value.diag.message_primary
    assert "WHERE content" in err.value.diag.message_hint


def test_plpgsql_can_catch_it_by_sqlstate(echo):
    echo.execute("""
        CREATE FUNCTION try_it() RETURNS text LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM * FROM echo_t;
            RETURN 'no error';
        EXCEPTION WHEN null_value_not_allowed THEN
            RETURN 'caught ' || SQLSTATE;
        END $$""")
    assert echo.execute("SELECT try_it()").fetchone() == ("caught 22004",)


def test_a_wrapper_bug_is_an_fdw_error_not_38000(echo):
    echo.execute("ALTER SERVER echo OPTIONS (ADD python_error 'boom')")
    with pytest.raises(psycopg.Error) as err:
        echo.execute("SELECT * FROM echo_t WHERE content = 'x'")
    assert err.value.sqlstate == "HV000"
    assert "ValueError: boom" in err.value.diag.message_primary


def test_unknown_wrapper_class_is_a_clear_error(echo):
    echo.execute("CREATE SERVER nowhere FOREIGN DATA WRAPPER pg_llm OPTIONS (wrapper 'pg_llm.nowhere.Table')")
    echo.execute("CREATE FOREIGN TABLE nowhere_t (content text) SERVER nowhere")
    with pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        echo.execute("SELECT * FROM nowhere_t WHERE content = 'x'")
    assert "pg_llm.nowhere.Table" in str(err.value) and err.value.diag.message_hint


def _slow_table(db, sleep_ms=3_600_000):
    """A scan that sleeps in Python for an hour: only an interrupt can end it within the
    test's timeout (pytest-timeout fails the test otherwise), so no duration is asserted."""
    db.execute(f"CREATE FOREIGN TABLE slow_t (content text, answer text) SERVER echo "
               f"OPTIONS (sleep_ms '{sleep_ms}')")


def test_statement_timeout_interrupts_python_and_the_backend_stays_usable(echo):
    _slow_table(echo)
    echo.execute("SET statement_timeout = '1s'")
    with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
        echo.execute("SELECT * FROM slow_t WHERE content = 'x'")
    echo.execute("RESET statement_timeout")
    assert echo.execute("SELECT content FROM echo_t WHERE content = 'after'").fetchall() == [("after",)]


def test_pg_cancel_backend_interrupts_python(echo, dsn):
    _slow_table(echo)
    pid = echo.info.backend_pid

    def cancel_once_the_scan_runs():
        with psycopg.connect(dsn, autocommit=True) as other:
            while not other.execute("SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s "
                                    "AND state = 'active' AND query LIKE '%%slow_t%%')",
                                    [pid]).fetchone()[0]:
                time.sleep(0.05)
            other.execute("SELECT pg_cancel_backend(%s)", [pid])

    threading.Thread(target=cancel_once_the_scan_runs, daemon=True).start()
    with pytest.raises(psycopg.errors.QueryCanceled, match="user request"):
        echo.execute("SELECT * FROM slow_t WHERE content = 'x'")
    assert echo.execute("SELECT 1").fetchone() == (1,)
