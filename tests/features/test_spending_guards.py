"""pg_llm.max_prompts_per_statement / pg_llm.max_cost_per_statement refuse a scan before it
sends anything (SQLSTATE 53400, the estimate in DETAIL), settable per role, database, SET LOCAL."""

import psycopg
import pytest

from conftest import run_psql
from features.conftest import http_calls, make_model

THREE = "SELECT answer FROM qa WHERE question = ANY (ARRAY['a', 'b', 'c'])"


def test_too_many_prompts_are_refused_before_any_request(db, engine, fake):
    make_model(db)
    db.execute("SET pg_llm.max_prompts_per_statement = 2")
    with pytest.raises(psycopg.Error) as err:
        db.execute(THREE)
    assert err.value.sqlstate == "53400"
    assert "more than pg_llm.max_prompts_per_statement = 2" in err.value.diag.message_primary
    assert "would send 3 prompts" in err.value.diag.message_detail
    assert "SET LOCAL pg_llm.max_prompts_per_statement" in err.value.diag.message_hint
    assert http_calls(fake) == 0
    assert len(db.execute("SELECT answer FROM qa WHERE question IN ('a', 'b')").fetchall()) == 2
    db.execute("SET pg_llm.max_prompts_per_statement = 0")  # 0: no limit
    assert len(db.execute(THREE).fetchall()) == 3


def test_the_scans_of_one_statement_add_up(db, engine, fake):
    make_model(db)
    db.execute("SET pg_llm.max_prompts_per_statement = 2")
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT x.answer, y.answer FROM qa x, qa y "
                   "WHERE x.question IN ('a', 'b') AND y.question = 'c'")
    assert err.value.sqlstate == "53400" and "would send 3 prompts" in err.value.diag.message_primary
    assert http_calls(fake) <= 2  # the second scan sent nothing


def test_cost_limit_uses_prices_prompt_length_and_max_tokens(db, engine, fake):
    make_model(db)
    # 'Q: a' ~ 1 input token at $2/M + 100 output tokens at $4/M = $0.000402 per prompt
    db.execute("SET pg_llm.max_cost_per_statement = 0.001")
    with pytest.raises(psycopg.Error) as err:
        db.execute(THREE + " AND max_tokens = 100")
    assert err.value.sqlstate == "53400"
    assert "$0.001206" in err.value.diag.message_primary
    assert "at most 300 output tokens" in err.value.diag.message_detail
    assert http_calls(fake) == 0
    assert len(db.execute("SELECT answer FROM qa WHERE question IN ('a', 'b') "
                          "AND max_tokens = 100").fetchall()) == 2


def test_set_local_and_per_role_settings(db, engine, fake, analyst):
    role, conn = analyst
    make_model(db)
    db.execute(f"GRANT SELECT ON qa TO {role}")
    with db.transaction():
        db.execute("SET LOCAL pg_llm.max_prompts_per_statement = 1")
        with pytest.raises(psycopg.Error) as err:
            with db.transaction():
                db.execute(THREE)
        assert err.value.sqlstate == "53400"
    assert len(db.execute(THREE).fetchall()) == 3  # SET LOCAL ended with the transaction
    db.execute(f"ALTER ROLE {role} SET pg_llm.max_prompts_per_statement = 1")
    info = db.info
    with psycopg.connect(host=info.host, port=info.port, dbname=info.dbname, user=role,
                         autocommit=True) as fresh:
        with pytest.raises(psycopg.Error) as err:
            fresh.execute(THREE)
        assert err.value.sqlstate == "53400"
        # an ordinary role may raise its own limit for a statement (USERSET)
        fresh.execute("SET pg_llm.max_prompts_per_statement = 3")
        assert len(fresh.execute(THREE).fetchall()) == 3


def test_psql_shows_the_error_with_detail_and_hint(db, engine, fake):
    make_model(db)
    dsn = f"host={db.info.host} port={db.info.port} user=postgres dbname={db.info.dbname}"
    out = run_psql(dsn, "SET pg_llm.max_prompts_per_statement = 1; " + THREE, check=False)
    assert out.returncode != 0
    assert "more than pg_llm.max_prompts_per_statement = 1" in out.stderr
    assert "DETAIL:" in out.stderr and "HINT:" in out.stderr
