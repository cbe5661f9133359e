"""Inference spend on a priced engine: booked in llm.ledger ('inference', with the role),
shown per role, model and day by llm.spend, and capped by model, engine and role budgets
before anything is sent."""

from decimal import Decimal

import psycopg
import pytest

from features.conftest import http_calls, make_model


def test_a_scan_books_its_tokens_and_cost_and_cached_answers_cost_nothing(db, engine, fake):
    make_model(db, options='{"cache": "on", "temperature": 0}')
    db.execute("SELECT answer FROM qa WHERE question = ANY (ARRAY['a', 'b'])")
    db.execute("SELECT answer FROM qa WHERE question = ANY (ARRAY['a', 'b'])")  # cached
    # per prompt: 'Q: a' 2 tokens at $2/M + 'echo:Q: a' 2 tokens at $4/M = $0.000012
    assert db.execute("SELECT model, engine, role, kind, tokens, usd, job_id FROM llm.ledger"
                      ).fetchall() == [("qa", "paid", "postgres", "inference", 8,
                                        Decimal("0.000024"), None)]
    assert db.execute("SELECT role, model, engine, day = (now() AT TIME ZONE 'UTC')::date, "
                      "scans, tokens, usd FROM llm.spend").fetchall() == [
        ("postgres", "qa", "paid", True, 1, 8, Decimal("0.000024"))]


def test_model_and_engine_budgets_refuse_before_sending(db, engine, fake):
    make_model(db)
    db.execute("SELECT answer FROM qa WHERE question = 'a'")
    db.execute("SELECT llm_set_budget('qa', max_usd => 0.0006)")
    # 'Q: b' ~ 1 token + 256 assumed output tokens at $4/M = $0.001026 > what is left
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT answer FROM qa WHERE question = 'b'")
    assert err.value.sqlstate == "53400"
    assert err.value.diag.message_primary == 'query would exceed the budget of model "qa"'
    assert "$0.000012 spent" in err.value.diag.message_detail
    assert "llm_set_budget('model:qa'" in err.value.diag.message_hint
    assert http_calls(fake) == 1
    assert db.execute("SELECT answer FROM qa WHERE question = 'b' AND max_tokens = 10"
                      ).fetchone() == ("echo:Q: b",)
    db.execute("SELECT llm_set_budget('qa')")  # removed
    db.execute("SELECT llm_set_budget('engine:paid', max_tokens => 5)")
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT answer FROM qa WHERE question = 'c' AND max_tokens = 1")
    assert err.value.sqlstate == "53400" and 'engine "paid"' in err.value.diag.message_primary


def test_a_role_budget_caps_that_role_only(db, engine, fake, analyst):
    role, conn = analyst
    make_model(db)
    db.execute(f"GRANT SELECT ON qa TO {role}")
    rows = db.execute(f"SELECT scope, target, max_tokens FROM llm_set_budget('role:{role}', "
                      "max_tokens => 20)").fetchall()
    assert rows == [("role", role, 20)]
    assert conn.execute("SELECT answer FROM qa WHERE question = 'a' AND max_tokens = 5"
                        ).fetchone() == ("echo:Q: a",)
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT answer FROM qa WHERE question = 'b' AND max_tokens = 30")
    assert err.value.sqlstate == "53400" and f'role "{role}"' in err.value.diag.message_primary
    assert http_calls(fake) == 1
    # other roles are not capped by it
    db.execute("SELECT answer FROM qa WHERE question = 'b' AND max_tokens = 30")
    assert db.execute("SELECT role, tokens FROM llm.spend ORDER BY role").fetchall() == sorted(
        [(role, 4), ("postgres", 4)])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM llm.spend")
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT llm_set_budget('role:nobody_here', max_usd => 1)")
    assert err.value.sqlstate == "42704"


def test_free_engines_book_nothing(db, engine, fake):
    db.execute("ALTER SERVER paid OPTIONS (SET price_input '0', SET price_output '0')")
    make_model(db)
    db.execute("SELECT answer FROM qa WHERE question = 'a'")
    assert db.execute("SELECT count(*) FROM llm.ledger").fetchone() == (0,)
