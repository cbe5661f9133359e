"""A model queried the ways users query tables: psql, psycopg parameters, PL/pgSQL,
SQLAlchemy, = ANY, LATERAL joins."""

import psycopg
import pytest
import sqlalchemy as sa

from conftest import run_psql
from core.conftest import BASE_MODEL


def test_psql_and_usage_columns(dsn, ft_sql, fake):
    out = run_psql(dsn, "SELECT answer, model_id, prompt_tokens, completion_tokens, finish_reason, "
                        "version, latency_ms > 0 FROM ft_sql WHERE content = 'List the customers from Canada'")
    assert out.stdout.strip() == ("echo:List the customers from Canada|mistralai/Mistral-7B-Instruct-v0.1"
                                  "|5|5|stop|1|t")


def test_psycopg_parameters_and_options(db, ft_sql, fake):
    row = db.execute("SELECT content, answer, max_tokens, temperature, finish_reason FROM ft_sql "
                     "WHERE content = %s AND max_tokens = %s AND temperature = %s",
                     ("a b c d e", 3, 0)).fetchone()
    assert row == ("a b c d e", "echo:a b c", 3, 0.0, "length")
    body = fake.chat_requests()[-1].body
    assert body["max_tokens"] == 3 and body["temperature"] == 0
    # a server-side prepared statement, executed more than 5 times (generic plan)
    for i in range(7):
        assert db.execute("SELECT answer FROM ft_sql WHERE content = %s", (f"q{i}",),
                          prepare=True).fetchone() == (f"echo:q{i}",)


def test_any_fans_out_with_bounded_concurrency_and_dedupes(db, ft_sql, fake):
    fake.delay = 0.05
    prompts = [f"question {i}" for i in range(40)] + ["question 0", "question 1"]
    rows = db.execute("SELECT content, answer FROM ft_sql WHERE content = ANY(%s)", (prompts,)).fetchall()
    assert sorted(rows) == sorted((p, f"echo:{p}") for p in set(prompts))
    assert len(fake.chat_requests()) == 40  # duplicates asked once
    assert fake.max_in_flight == 8  # the default concurrency
    fake.reset()
    db.execute("ALTER SERVER openai_compat OPTIONS (ADD concurrency '3')")
    db.execute("SELECT answer FROM ft_sql WHERE content = ANY(%s)", (prompts[:12],)).fetchall()
    assert fake.max_in_flight == 3


def test_in_list_and_several_option_values(db, ft_sql, fake):
    rows = db.execute("SELECT content, max_tokens, answer FROM ft_sql "
                      "WHERE content IN ('a b c', 'd e f') AND max_tokens IN (1, 2) ORDER BY 1, 2").fetchall()
    assert rows == [("a b c", 1, "echo:a"), ("a b c", 2, "echo:a b"),
                    ("d e f", 1, "echo:d"), ("d e f", 2, "echo:d e")]


def test_lateral_join_and_join_over_a_table(db, ft_sql, fake):
    db.execute("CREATE TABLE questions (id int PRIMARY KEY, q text)")
    db.execute("INSERT INTO questions SELECT i, 'question ' || i FROM generate_series(1, 5) i")
    lateral = db.execute("SELECT q.id, f.answer FROM questions q CROSS JOIN LATERAL "
                         "(SELECT answer FROM ft_sql WHERE content = q.q) f ORDER BY q.id").fetchall()
    assert lateral == [(i, f"echo:question {i}") for i in range(1, 6)]
    joined = db.execute("SELECT q.id, f.answer FROM questions q JOIN ft_sql f ON f.content = q.q "
                        "ORDER BY q.id").fetchall()
    assert joined == lateral


def test_plpgsql_function_and_procedure_with_variables(db, ft_sql, fake):
    db.execute("""
        CREATE FUNCTION ask(question text, budget int) RETURNS text LANGUAGE plpgsql AS $$
        DECLARE reply text;
        BEGIN
            SELECT answer INTO reply FROM ft_sql WHERE content = question AND max_tokens = budget;
            RETURN reply;
        END $$""")
    assert db.execute("SELECT ask('one two three', 2)").fetchone() == ("echo:one two",)
    db.execute("CREATE TABLE inbox (id int PRIMARY KEY, q text, reply text)")
    db.execute("INSERT INTO inbox SELECT i, 'msg ' || i, NULL FROM generate_series(1, 8) i")
    db.execute("""
        CREATE PROCEDURE answer_inbox() LANGUAGE plpgsql AS $$
        DECLARE item record; got text;
        BEGIN
            FOR item IN SELECT id, q FROM inbox ORDER BY id LOOP
                SELECT answer INTO got FROM ft_sql WHERE content = item.q;
                UPDATE inbox SET reply = got WHERE id = item.id;
            END LOOP;
        END $$""")
    db.execute("CALL answer_inbox()")
    assert db.execute("SELECT id, reply FROM inbox ORDER BY id").fetchall() == [
        (i, f"echo:msg {i}") for i in range(1, 9)]
    # a PL/pgSQL handler catches a model error by SQLSTATE
    db.execute("""
        CREATE FUNCTION safe_ask(question text, budget int) RETURNS text LANGUAGE plpgsql AS $$
        BEGIN
            RETURN ask(question, budget);
        EXCEPTION WHEN invalid_parameter_value THEN
            RETURN 'bad budget';
        END $$""")
    assert db.execute("SELECT safe_ask('x', 0)").fetchone() == ("bad budget",)


def test_sqlalchemy_reflects_and_selects(dsn, ft_sql, fake):
    info = dict(part.split("=", 1) for part in dsn.split())
    engine = sa.create_engine(f"postgresql+psycopg://postgres@{info['host']}:{info['port']}/{info['dbname']}")
    try:
        table = sa.Table("ft_sql", sa.MetaData(), autoload_with=engine)
        assert {"content", "answer", "max_tokens", "model_id"} <= set(table.c.keys())
        with engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.answer, table.c.prompt_tokens)
                                .where(table.c.content == "hello sqlalchemy")
                                .where(table.c.max_tokens == 10)).all()
            assert [tuple(r) for r in rows] == [("echo:hello sqlalchemy", 2)]
            many = conn.execute(sa.select(table.c.content, table.c.answer)
                                .where(table.c.content.in_(["x", "y"]))).all()
            assert sorted(map(tuple, many)) == [("x", "echo:x"), ("y", "echo:y")]
    finally:
        engine.dispose()


def test_odd_inputs_round_trip_without_harm(db, ft_sql, fake, bridge):
    odd = ["ünïcødé ✓ 東京", "{{content}} stays literal", "x" * 100_000, "quote ' and \\ backslash",
           "line\nbreak\ttab", ""]
    for text in odd:
        assert db.execute("SELECT answer FROM ft_sql WHERE content = %s", (text,)).fetchone() == (
            f"echo:{text}",)
    # no value at all: a clear error, not a call
    if bridge == "multicorn":  # Multicorn2 passes IS NULL as `= NULL`: no row (docs/multicorn.md)
        assert db.execute("SELECT answer FROM ft_sql WHERE content IS NULL").fetchall() == []
    for where in ("content IS NULL", "content LIKE 'a%%'", "true")[bridge == "multicorn":]:
        with pytest.raises(Exception) as err:
            db.execute(f"SELECT answer FROM ft_sql WHERE {where}")
        assert getattr(err.value, "sqlstate", None) == "22004", where
    # = NULL can never match: no rows, no call
    assert db.execute("SELECT answer FROM ft_sql WHERE content = NULL").fetchall() == []
    assert db.execute("SELECT answer FROM ft_sql WHERE content = ANY(ARRAY[NULL]::text[])").fetchall() == []
    assert db.execute("SELECT 1").fetchone() == (1,)


def test_joins_and_generic_plans_stay_below_jit(db, ft_sql, fake):
    """The planner feeds a join's values into the model (no plan that lacks them) and never
    finds a plan costly enough to JIT-compile: a model row is an HTTP call, not a page."""
    db.execute("CREATE TABLE questions (id int PRIMARY KEY, q text)")
    db.execute("INSERT INTO questions SELECT i, 'question ' || i FROM generate_series(1, 200) i")
    db.execute("ANALYZE questions")
    db.execute("PREPARE ask(text) AS SELECT answer FROM ft_sql WHERE content = $1")
    db.execute("SET plan_cache_mode = force_generic_plan")
    for sql in ("SELECT q.id, f.answer FROM questions q JOIN ft_sql f ON f.content = q.q",
                "SELECT q.id, f.answer FROM questions q CROSS JOIN LATERAL "
                "(SELECT answer FROM ft_sql WHERE content = q.q) f",
                "EXECUTE ask('one')"):
        plan = db.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql).fetchone()[0][0]
        assert "JIT" not in plan, sql
        assert plan["Plan"]["Actual Rows"] == (1 if sql.startswith("EXECUTE") else 200), sql


def test_join_shapes_answer_the_same_on_both_bridges(db, ft_sql, fake):
    """The join shapes of tests/bridge/test_joins.py, on the real model class: the C bridge
    batches them, Multicorn2 runs its parameterized path once per outer row; the rows match."""
    db.execute("CREATE TABLE questions (id int PRIMARY KEY, q text)")
    db.execute("INSERT INTO questions VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'two'), "
               "(5, NULL)")
    db.execute("ANALYZE questions")
    expected = [(1, "echo:one"), (2, "echo:two"), (3, "echo:three"), (4, "echo:two")]
    assert db.execute("SELECT content, answer FROM ft_sql WHERE content IN "
                      "(SELECT q FROM questions) ORDER BY content").fetchall() == [
        ("one", "echo:one"), ("three", "echo:three"), ("two", "echo:two")]
    assert sorted(db.execute("SELECT answer FROM ft_sql WHERE content = "
                             "ANY(ARRAY(SELECT q FROM questions))").fetchall()) == [
        ("echo:one",), ("echo:three",), ("echo:two",)]
    assert db.execute("SELECT q.id, f.answer FROM questions q JOIN ft_sql f "
                      "ON f.content = upper(q.q) ORDER BY q.id").fetchall() == [
        (i, "echo:" + a[5:].upper()) for i, a in expected]
    assert db.execute("SELECT q.id, f.answer FROM questions q LEFT JOIN ft_sql f "
                      "ON f.content = q.q AND f.content <> 'two' ORDER BY q.id").fetchall() == [
        (1, "echo:one"), (2, None), (3, "echo:three"), (4, None), (5, None)]
    assert db.execute("SELECT id, (SELECT answer FROM ft_sql WHERE content = o.q) "
                      "FROM questions o WHERE id < 5 ORDER BY id").fetchall() == expected
    db.execute("CREATE VIEW answered AS SELECT q.id, f.answer FROM questions q "
               "JOIN ft_sql f ON f.content = q.q")
    assert db.execute("SELECT * FROM answered ORDER BY id").fetchall() == expected
    db.execute("""CREATE FUNCTION first_answers(n int) RETURNS SETOF text LANGUAGE plpgsql AS $$
        BEGIN RETURN QUERY SELECT f.answer FROM questions q JOIN ft_sql f ON f.content = q.q
        WHERE q.id <= n ORDER BY q.id; END $$""")
    for n in range(1, 8):  # past the switch to a generic plan
        assert [r[0] for r in db.execute("SELECT first_answers(%s)", [n]).fetchall()] == \
            [a for _, a in expected[:n]]
    # two prompt columns, both fed by the join
    db.execute("SELECT llm_create_model('translate', engine => 'openai_compat', model_name => %s, "
               "prompt_template => '{{content}} in {{lang}}')", (BASE_MODEL,))
    db.execute("CREATE TABLE q2 (t text, l text)")
    db.execute("INSERT INTO q2 VALUES ('a', 'en'), ('b', 'fr')")
    assert db.execute("SELECT q2.t, q2.l, e.answer FROM q2 JOIN translate e "
                      "ON e.content = q2.t AND e.lang = q2.l ORDER BY 1").fetchall() == [
        ("a", "en", "echo:a in en"), ("b", "fr", "echo:b in fr")]


def test_per_statement_prompt_guard_on_both_bridges(db, ft_sql, fake):
    """pg_llm.max_prompts_per_statement (tests/features has the full story on a priced engine):
    Multicorn2 scans read it and add up within a statement as the C bridge's do."""
    db.execute("SET pg_llm.max_prompts_per_statement = 2")
    with pytest.raises(psycopg.errors.ConfigurationLimitExceeded) as err:
        db.execute("SELECT answer FROM ft_sql WHERE content = ANY(ARRAY['a', 'b', 'c'])")
    assert "would send 3 prompts" in err.value.diag.message_detail
    assert "SET LOCAL pg_llm.max_prompts_per_statement" in err.value.diag.message_hint
    assert fake.chat_requests() == []
    with pytest.raises(psycopg.errors.ConfigurationLimitExceeded):
        db.execute("SELECT x.answer, y.answer FROM ft_sql x, ft_sql y "
                   "WHERE x.content IN ('a', 'b') AND y.content = 'c'")
    assert len(fake.chat_requests()) <= 2  # the second scan sent nothing
    assert len(db.execute("SELECT answer FROM ft_sql WHERE content IN ('a', 'b')").fetchall()) == 2
    db.execute("SET pg_llm.max_prompts_per_statement = 0")
    assert len(db.execute("SELECT answer FROM ft_sql WHERE content = ANY(ARRAY['a', 'b', 'c'])"
                          ).fetchall()) == 3


def test_cursors_subtransactions_and_many_scans_on_both_bridges(db, ft_sql, fake):
    """tests/bridge/test_robustness.py's shapes on the real model class: a scroll cursor read
    backwards, fifty scans in one query, and errors caught in subtransactions, after which the
    same backend keeps answering."""
    db.execute("BEGIN")
    db.execute("DECLARE c SCROLL CURSOR FOR SELECT content FROM ft_sql "
               "WHERE content = ANY('{a,b,c}') ORDER BY content")
    assert db.execute("FETCH 2 FROM c").fetchall() == [("a",), ("b",)]
    assert db.execute("FETCH BACKWARD 1 FROM c").fetchall() == [("a",)]
    db.execute("COMMIT")
    rows = db.execute("SELECT (SELECT answer FROM ft_sql WHERE content = g::text) "
                      "FROM generate_series(1, 50) g").fetchall()
    assert [r[0] for r in rows] == [f"echo:{g}" for g in range(1, 51)]
    db.execute("""DO $$ DECLARE got text; BEGIN
        BEGIN PERFORM * FROM ft_sql; EXCEPTION WHEN null_value_not_allowed THEN NULL; END;
        BEGIN PERFORM * FROM ft_sql WHERE content = 'x' AND version = 9;
        EXCEPTION WHEN undefined_object THEN NULL; END;
        SELECT answer INTO got FROM ft_sql WHERE content = 'after';
        IF got <> 'echo:after' THEN RAISE 'got %', got; END IF;
        END $$""")
    with db.transaction():
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            with db.transaction():  # a savepoint
                db.execute("SELECT answer FROM ft_sql WHERE content = 'x' AND max_tokens = -1")
        assert db.execute("SELECT answer FROM ft_sql WHERE content = 'ok'").fetchone() == ("echo:ok",)
