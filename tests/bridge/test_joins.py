"""Joins and LATERAL push the outer values into the scan, batched into few Python calls."""

from __future__ import annotations

import json

import pytest

from .conftest import explain, explain_number

JOIN = "SELECT q.id, f.answer, f.quals FROM questions q JOIN echo_t f ON f.content = q.text ORDER BY q.id"
LATERAL = ("SELECT q.id, f.answer, f.quals FROM questions q "
           "CROSS JOIN LATERAL (SELECT answer, quals FROM echo_t WHERE content = q.text) f ORDER BY q.id")
EXPECTED = [(1, "echo: one"), (2, "echo: two"), (3, "echo: three"), (4, "echo: two")]


def values_asked(rows) -> set:
    asked = set()
    for row in rows:
        for q in json.loads(row[-1]):
            asked.update(q["value"] if isinstance(q["value"], list) else [q["value"]])
    return asked


@pytest.mark.parametrize("sql", [JOIN, LATERAL], ids=["join", "lateral"])
def test_join_batches_all_outer_values_into_one_call(questions, sql):
    rows = questions.execute(sql).fetchall()
    assert [r[:2] for r in rows] == EXPECTED
    # one call with the three distinct prompts, duplicates asked once
    assert {r[2] for r in rows} == {json.dumps(
        [{"field": "content", "op": "= ANY", "value": ["one", "two", "three"]}])}
    plan = explain(questions, sql, analyze=True)
    assert "LLM Batch: content = ANY ($0)" in plan, plan
    assert explain_number(plan, "LLM Calls") == 1, plan


@pytest.mark.parametrize("sql", [JOIN, LATERAL], ids=["join", "lateral"])
def test_without_batching_each_distinct_value_is_one_call(questions, sql):
    questions.execute("SET pg_llm.join_batch_size = 0")
    rows = questions.execute(sql).fetchall()
    assert [r[:2] for r in rows] == EXPECTED
    assert all(json.loads(r[2])[0]["op"] == "=" for r in rows)
    plan = explain(questions, sql, analyze=True)
    assert "LLM Quals: content = q.text" in plan and "Nested Loop" in plan, plan
    # Memoize (or rewinds) keep the repeated 'two' from a second call
    assert explain_number(plan, "LLM Calls") == 3, plan


def test_batches_are_chunked_by_join_batch_size(questions):
    questions.execute("CREATE TABLE many AS SELECT g AS id, 'q' || (g % 250) AS text "
                      "FROM generate_series(1, 1000) g")
    questions.execute("ANALYZE many")
    questions.execute("SET pg_llm.join_batch_size = 100")
    sql = "SELECT count(*), count(DISTINCT f.answer) FROM many m JOIN echo_t f ON f.content = m.text"
    assert questions.execute(sql).fetchone() == (1000, 250)
    assert explain_number(explain(questions, sql, analyze=True), "LLM Calls") == 3


def test_limit_above_a_batched_join_asks_one_chunk(questions):
    questions.execute("CREATE TABLE many AS SELECT g AS id, 'q' || g AS text FROM generate_series(1, 500) g")
    questions.execute("ANALYZE many")
    questions.execute("SET pg_llm.join_batch_size = 50")
    sql = "SELECT f.quals FROM many m JOIN echo_t f ON f.content = m.text LIMIT 3"
    rows = questions.execute(sql).fetchall()
    assert len(rows) == 3
    assert len(values_asked(rows)) == 50


def test_filtered_outer_side_with_a_generic_plan_parameter(questions):
    questions.execute("SET plan_cache_mode = force_generic_plan")
    questions.execute("PREPARE j(int) AS SELECT q.id, f.answer, f.quals FROM questions q "
                      "JOIN echo_t f ON f.content = q.text WHERE q.id > $1 ORDER BY q.id")
    rows = questions.execute("EXECUTE j(2)").fetchall()
    assert [r[:2] for r in rows] == EXPECTED[2:]
    assert values_asked(rows) == {"three", "two"}
    rows = questions.execute("EXECUTE j(0)").fetchall()
    assert [r[:2] for r in rows] == EXPECTED


def test_in_subquery_and_any_array_subquery(questions):
    rows = questions.execute("SELECT content, answer FROM echo_t WHERE content IN "
                             "(SELECT text FROM questions) ORDER BY content").fetchall()
    assert rows == [("one", "echo: one"), ("three", "echo: three"), ("two", "echo: two")]
    sql = "SELECT content FROM echo_t WHERE content = ANY(ARRAY(SELECT text FROM questions))"
    assert sorted(questions.execute(sql).fetchall()) == [("one",), ("three",), ("two",)]
    assert explain_number(explain(questions, sql, analyze=True), "LLM Calls") == 1


def test_expressions_left_joins_views_and_plpgsql(questions):
    rows = questions.execute("SELECT q.id, f.answer FROM questions q JOIN echo_t f "
                             "ON f.content = upper(q.text) ORDER BY q.id").fetchall()
    assert rows == [(i, a.replace(a[6:], a[6:].upper())) for i, a in EXPECTED]
    rows = questions.execute("SELECT q.id, f.answer FROM questions q LEFT JOIN echo_t f "
                             "ON f.content = q.text AND f.content <> 'two' ORDER BY q.id").fetchall()
    assert rows == [(1, "echo: one"), (2, None), (3, "echo: three"), (4, None)]
    questions.execute("CREATE VIEW answered AS SELECT q.id, f.answer FROM questions q "
                      "JOIN echo_t f ON f.content = q.text")
    assert questions.execute("SELECT * FROM answered ORDER BY id").fetchall() == EXPECTED
    questions.execute("""CREATE FUNCTION first_answers(n int) RETURNS SETOF text LANGUAGE plpgsql AS $$
        BEGIN RETURN QUERY SELECT f.answer FROM questions q JOIN echo_t f ON f.content = q.text
        WHERE q.id <= n ORDER BY q.id; END $$""")
    for n in range(1, 8):  # past the switch to a generic plan
        got = [r[0] for r in questions.execute("SELECT first_answers(%s)", [n]).fetchall()]
        assert got == [a for _, a in EXPECTED[:n]]


def test_correlated_subquery_and_two_join_columns(questions):
    rows = questions.execute("SELECT id, (SELECT answer FROM echo_t WHERE content = o.text) "
                             "FROM questions o ORDER BY id").fetchall()
    assert rows == EXPECTED
    questions.execute("CREATE FOREIGN TABLE echo2 (content text, lang text, answer text) "
                      "SERVER echo OPTIONS (prompt_columns 'content,lang')")
    questions.execute("CREATE TABLE q2 (t text, l text)")
    questions.execute("INSERT INTO q2 VALUES ('a', 'en'), ('b', 'fr')")
    rows = questions.execute("SELECT q2.t, q2.l, e.answer FROM q2 JOIN echo2 e "
                             "ON e.content = q2.t AND e.lang = q2.l ORDER BY 1").fetchall()
    assert rows == [("a", "en", "echo: a | en"), ("b", "fr", "echo: b | fr")]


def test_rescan_with_the_same_value_rewinds_instead_of_calling_again(questions):
    questions.execute("SET enable_memoize = off")
    questions.execute("SET pg_llm.join_batch_size = 0")
    sql = ("SELECT v.n, f.answer FROM (VALUES (1), (2), (3)) v(n) "
           "CROSS JOIN LATERAL (SELECT answer FROM echo_t WHERE content = 'same' || (v.n * 0)) f")
    assert [r[1] for r in questions.execute(sql).fetchall()] == ["echo: same0"] * 3
    plan = explain(questions, sql, analyze=True)
    assert explain_number(plan, "LLM Calls") == 1, plan
    assert explain_number(plan, "LLM Rewinds") == 2, plan


def test_a_scan_missing_its_prompt_column_in_a_join_still_errors_clearly(questions):
    import psycopg
    with pytest.raises(psycopg.errors.NullValueNotAllowed):
        questions.execute("SELECT * FROM questions q JOIN echo_t f ON f.content LIKE q.text")


@pytest.mark.parametrize("source", [
    "(VALUES ('a'), ('b'), ('a')) v(t)",
    "unnest(ARRAY['a', 'b', 'a']) t",
])
def test_values_lists_and_set_functions_are_batched_too(echo, source):
    sql = f"SELECT t, f.answer FROM {source} JOIN echo_t f ON f.content = t"
    assert sorted(echo.execute(sql).fetchall()) == [("a", "echo: a"), ("a", "echo: a"), ("b", "echo: b")]
    assert explain_number(explain(echo, sql, analyze=True), "LLM Calls") == 1


def test_null_outer_values_match_nothing(questions):
    questions.execute("INSERT INTO questions VALUES (5, NULL)")
    rows = questions.execute("SELECT q.id, f.answer FROM questions q LEFT JOIN echo_t f "
                             "ON f.content = q.text ORDER BY q.id").fetchall()
    assert rows == EXPECTED + [(5, None)]
