"""EXPLAIN of a model scan shows the estimated input/output tokens and cost when its values
are constants; EXPLAIN ANALYZE shows prompts sent, cache hits, failures, retries, tokens and
cost actually spent."""

import pytest

from conftest import run_psql
from features.conftest import http_calls, make_model


def plan_of(db, sql):
    return db.execute("EXPLAIN (FORMAT JSON) " + sql).fetchone()[0][0]["Plan"]


def analyze_of(db, sql):
    return db.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql).fetchone()[0][0]["Plan"]


def test_explain_estimates_tokens_and_cost_without_sending(db, engine, fake):
    make_model(db)
    plan = plan_of(db, "SELECT answer FROM qa WHERE question = ANY (ARRAY['aaaa', 'bbbb', 'aaaa']) "
                       "AND max_tokens = 100")
    assert plan["LLM Prompts"] == 2
    # 'Q: aaaa' = 7 characters ~ 2 tokens each; 100 output tokens each; $2 / $4 per million
    assert plan["LLM Estimated Input Tokens"] == 4
    assert plan["LLM Estimated Output Tokens"] == 200
    assert plan["LLM Estimated Cost"] == pytest.approx((4 * 2 + 200 * 4) / 1e6)
    assert http_calls(fake) == 0
    # a value known only at run time: no estimate
    db.execute("PREPARE q(text) AS SELECT answer FROM qa WHERE question = $1")
    db.execute("SET plan_cache_mode = force_generic_plan")
    assert "LLM Estimated Cost" not in plan_of(db, "EXECUTE q('x')")


def test_explain_analyze_reports_what_was_spent(db, engine, fake):
    make_model(db, options='{"cache": "on", "temperature": 0, "on_error": "null"}')
    db.execute("SELECT answer FROM qa WHERE question = 'a'")  # cached from now on
    fake.fail(400, times=1)
    plan = analyze_of(db, "SELECT answer FROM qa WHERE question = ANY (ARRAY['a', 'b', 'c'])")
    assert plan["LLM Prompts Sent"] == 2 and plan["LLM Cache Hits"] == 1
    assert plan["LLM Failed Prompts"] == 1 and plan["LLM Retries"] == 0
    # the one answered: 'Q: b' (2 tokens at $2/M) -> 'echo:Q: b' (2 tokens at $4/M)
    assert plan["LLM Input Tokens"] == 2 and plan["LLM Output Tokens"] == 2
    assert plan["LLM Cost"] == pytest.approx(12e-6)


def test_retries_are_counted(db, engine, fake):
    db.execute("ALTER SERVER paid OPTIONS (SET max_retries '2')")
    make_model(db)
    fake.fail(503, times=2)
    plan = analyze_of(db, "SELECT answer FROM qa WHERE question = 'a'")
    assert plan["LLM Prompts Sent"] == 1 and plan["LLM Retries"] == 2
    assert http_calls(fake) == 3


def test_psql_text_explain_as_an_ordinary_role(db, engine, fake, analyst):
    role, conn = analyst
    make_model(db)
    db.execute(f"GRANT SELECT ON qa TO {role}")
    text = "\n".join(r[0] for r in conn.execute(
        "EXPLAIN SELECT answer FROM qa WHERE question IN ('a', 'b')").fetchall())
    assert "LLM Prompts: 2" in text and "LLM Estimated Cost: 0.002" in text
    dsn = f"host={db.info.host} port={db.info.port} user=postgres dbname={db.info.dbname}"
    out = run_psql(dsn, "EXPLAIN ANALYZE SELECT answer FROM qa WHERE question = 'a'")
    assert "LLM Prompts Sent: 1" in out.stdout and "LLM Cost: 0.000012 USD" in out.stdout


@pytest.mark.parametrize("batch_size", [0, 1000])
def test_the_planner_filters_and_joins_before_asking_the_model(db, engine, fake, batch_size):
    """Each prompt is costed as a remote call (pg_llm.prompt_cost): the selective join runs
    first, so only the 2 kept questions are sent, not all 200; a batch reads its values
    from that join (tests/features/test_planner_cost.py has more shapes)."""
    make_model(db)
    db.execute(f"SET pg_llm.join_batch_size = {batch_size}")
    db.execute("CREATE TABLE questions AS SELECT g AS id, 'question ' || g AS text "
               "FROM generate_series(1, 200) g")
    db.execute("CREATE TABLE picked AS SELECT g AS id, g % 100 = 0 AS keep "
               "FROM generate_series(1, 200) g")
    db.execute("ANALYZE questions; ANALYZE picked")
    rows = db.execute("SELECT q.id, f.answer FROM questions q "
                      "JOIN picked p ON p.id = q.id AND p.keep "
                      "JOIN qa f ON f.question = q.text ORDER BY q.id").fetchall()
    assert rows == [(100, "echo:Q: question 100"), (200, "echo:Q: question 200")]
    assert http_calls(fake) == 2
