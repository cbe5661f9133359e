"""The audit trail: with audit = 'on' every request writes one llm.requests row (role, model,
version, provider model id, prompt hash, tokens, cost, latency, cached, error), and each
answer row carries its request_id."""

from decimal import Decimal

import psycopg
import pytest

from conftest import run_psql
from features.conftest import BASE, TUNED, http_calls, make_model


def test_every_request_writes_one_row_and_answers_join_back(db, engine, fake):
    make_model(db, options='{"audit": "on"}')
    rows = db.execute("SELECT question, request_id FROM qa "
                      "WHERE question = ANY (ARRAY['a', 'b', 'a'])").fetchall()
    assert len(rows) == 2 and all(r[1] is not None for r in rows)
    audit = db.execute("SELECT role, model, engine, version, provider_model_id, length(prompt_hash), "
                       "prompt_tokens, completion_tokens, cost_usd, latency_ms > 0, cached, error "
                       "FROM llm.requests ORDER BY id").fetchall()
    # 'Q: a' = 2 tokens at $2/M, 'echo:Q: a' = 2 tokens at $4/M
    assert audit == [("postgres", "qa", "paid", 1, BASE, 64, 2, 2, Decimal("0.000012"), True,
                      False, None)] * 2
    # answers kept with their request_id join back to the version and template in one query
    # (not inside the scanning statement itself: its snapshot predates the audit rows)
    db.execute("CREATE TABLE answers AS SELECT question, answer, request_id FROM qa "
               "WHERE question = ANY (ARRAY['a', 'b'])")
    joined = db.execute("""
        SELECT a.answer, r.version, v.provider_model_id, m.prompt_template
        FROM answers a
        JOIN llm.requests r ON r.id = a.request_id
        JOIN llm.model_versions v ON (v.model, v.version) = (r.model, r.version)
        JOIN llm.models m ON m.name = r.model
        WHERE a.question = 'b'""").fetchall()
    assert joined[0][1:] == (1, BASE, "Q: {{question}}")


def test_cached_and_failed_requests_are_recorded_too(db, engine, fake):
    make_model(db, options='{"audit": "on", "cache": "on", "temperature": 0, "on_error": "null"}')
    db.execute("SELECT answer FROM qa WHERE question = 'a'")
    db.execute("SELECT answer FROM qa WHERE question = 'a'")
    fake.fail(400, times=1)
    db.execute("SELECT answer FROM qa WHERE question = 'z'")
    assert http_calls(fake) == 2
    rows = db.execute("SELECT cached, cost_usd > 0, split_part(error, ':', 1) "
                      "FROM llm.requests ORDER BY id").fetchall()
    assert rows == [(False, True, None), (True, False, None), (False, False, "HV000")]


def test_versions_are_recorded(db, engine, fake):
    make_model(db, options='{"audit": "on"}')
    db.execute("INSERT INTO llm.model_versions (model, version, provider_model_id) "
               "VALUES ('qa', 2, %s)", (TUNED,))
    db.execute("SELECT llm_set_active_version('qa', 2)")
    db.execute("SELECT answer FROM qa WHERE question = 'a' AND version IN (1, 2)")
    assert db.execute("SELECT version, provider_model_id FROM llm.requests ORDER BY version"
                      ).fetchall() == [(1, BASE), (2, TUNED)]


def test_off_by_default_and_switchable(db, engine, fake):
    make_model(db)
    assert db.execute("SELECT request_id FROM qa WHERE question = 'a'").fetchone() == (None,)
    assert db.execute("SELECT count(*) FROM llm.requests").fetchone() == (0,)
    dsn = f"host={db.info.host} port={db.info.port} user=postgres dbname={db.info.dbname}"
    run_psql(dsn, """SELECT llm_alter_model('qa', '{"audit": "on"}')""")
    db.execute("SELECT answer FROM qa WHERE question = 'a'")
    assert db.execute("SELECT count(*) FROM llm.requests").fetchone() == (1,)
    db.execute("""SELECT llm_alter_model('qa', '{"audit": null}')""")
    db.execute("SELECT answer FROM qa WHERE question = 'b'")
    assert db.execute("SELECT count(*) FROM llm.requests").fetchone() == (1,)


def test_an_ordinary_role_is_audited_but_cannot_read_the_trail(db, engine, fake, analyst):
    role, conn = analyst
    make_model(db, options='{"audit": "on"}')
    db.execute(f"GRANT SELECT ON qa TO {role}")
    assert conn.execute("SELECT request_id IS NOT NULL FROM qa WHERE question = 'a'"
                        ).fetchone() == (True,)
    assert db.execute("SELECT role FROM llm.requests").fetchall() == [(role,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM llm.requests")
    # a failed statement leaves no row behind
    conn.execute("SET pg_llm.max_prompts_per_statement = 1")
    with pytest.raises(psycopg.Error):
        conn.execute("SELECT x.answer, y.answer FROM qa x, qa y "
                     "WHERE x.question = 'b' AND y.question = 'c'")
    assert db.execute("SELECT count(*) FROM llm.requests").fetchone() == (1,)


def test_an_audited_model_refuses_to_answer_unaudited_in_a_read_only_transaction(db, engine, fake):
    make_model(db, options='{"audit": "on"}')
    with pytest.raises(psycopg.Error) as err:
        with db.transaction():
            db.execute("SET TRANSACTION READ ONLY")
            db.execute("SELECT answer FROM qa WHERE question = 'a'")
    assert err.value.sqlstate == "25006"
