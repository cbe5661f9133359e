"""Per-row errors: on_error = 'null' (model option or a WHERE pseudo-column) gives a failed
request's row a NULL answer and an error column; the default still fails the statement;
statement_timeout always ends it."""

import psycopg
import pytest

from conftest import run_psql
from features.conftest import BASE, http_calls, make_model


def test_default_fails_the_statement(db, engine, fake):
    make_model(db)
    fake.fail(400, times=1)
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT answer FROM qa WHERE question = ANY (ARRAY['a', 'b'])")
    assert err.value.sqlstate == "HV000"


def test_pseudo_column_turns_a_failed_request_into_a_row_with_an_error(db, engine, fake):
    make_model(db)
    fake.fail(400, times=1)
    rows = db.execute("SELECT question, answer, error, on_error FROM qa "
                      "WHERE question = ANY (ARRAY['a', 'b']) AND on_error = 'null' "
                      "ORDER BY question").fetchall()
    assert len(rows) == 2 and http_calls(fake) == 2
    failed = [r for r in rows if r[1] is None]
    ok = [r for r in rows if r[1] is not None]
    assert len(failed) == 1 and len(ok) == 1
    assert failed[0][2].startswith("HV000: ") and "HTTP 400" in failed[0][2]
    assert "injected failure 400" in failed[0][2]
    assert ok[0][2] is None and ok[0][1] == f"echo:Q: {ok[0][0]}"
    assert {r[3] for r in rows} == {"null"}


def test_model_option_makes_null_the_default_and_a_query_can_ask_for_errors(db, engine, fake):
    make_model(db, options='{"on_error": "null"}')
    fake.fail(503, times=1)
    out = run_psql(f"host={db.info.host} port={db.info.port} user=postgres dbname={db.info.dbname}",
                   "SELECT answer IS NULL, split_part(error, ':', 1) FROM qa WHERE question = 'x'")
    assert out.stdout.strip() == "t|08001"
    fake.fail(503, times=1)
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT answer FROM qa WHERE question = 'x' AND on_error = 'error'")
    assert err.value.sqlstate == "08001"


def test_bad_policy_value_is_a_clear_error(db, engine, fake):
    make_model(db)
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT answer FROM qa WHERE question = 'x' AND on_error = 'ignore'")
    assert err.value.sqlstate == "22023" and "on_error" in err.value.diag.message_hint
    assert http_calls(fake) == 0
    with pytest.raises(psycopg.Error) as err:
        make_model(db, "qa2", options='{"on_error": "skip"}')
    assert err.value.sqlstate == "22023"


def test_statement_timeout_still_ends_the_statement(db, engine, fake):
    make_model(db, options='{"on_error": "null"}')
    fake.hang(model=BASE)
    db.execute("SET statement_timeout = '1s'")
    try:
        with pytest.raises(psycopg.errors.QueryCanceled):
            db.execute("SELECT answer FROM qa WHERE question = 'stuck'")
    finally:
        db.execute("RESET statement_timeout")
        fake.release()


def test_an_ordinary_role_gets_error_rows(db, engine, fake, analyst):
    role, conn = analyst
    make_model(db)
    db.execute(f"GRANT SELECT ON qa TO {role}")
    fake.fail(400, times=1)
    row = conn.execute("SELECT answer, error FROM qa WHERE question = 'z' AND on_error = 'null'"
                       ).fetchone()
    assert row[0] is None and row[1].startswith("HV000: ")


def test_a_table_without_the_new_columns_still_scans(db, engine, fake):
    """A model table made by 0.1.0 lacks on_error/error/cached/request_id."""
    make_model(db, options='{"on_error": "null"}')
    for column in ("on_error", "error", "cached", "request_id"):
        db.execute(f"ALTER FOREIGN TABLE qa DROP COLUMN {column}")
    assert db.execute("SELECT answer FROM qa WHERE question = 'old'").fetchone() == ("echo:Q: old",)
    fake.fail(400, times=1)
    assert db.execute("SELECT answer FROM qa WHERE question = 'old2'").fetchone() == (None,)
