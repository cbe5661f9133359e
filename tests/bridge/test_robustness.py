"""Odd inputs get rows or a clear SQL error, never a crash; the backend stays usable."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from .conftest import explain


@pytest.mark.parametrize("where, expected", [
    ("content = ANY('{{a,b},{c,a}}'::text[])", ["a", "b", "c"]),         # 2-D array
    ("content = ANY(ARRAY(SELECT NULL::text))", []),
    ("content = ANY(ARRAY(SELECT 'x' WHERE false))", []),
    ("content = (SELECT NULL::text)", []),
    ("content = (SELECT 'sub')", ["sub"]),
    ("content = ''", [""]),
    ("content = 'a' AND content = 'b'", []),
    ("content = ANY('{a,b}') AND content = ANY('{b,c}')", ["b"]),
    ("content = 'x' OR content = 'y'", ["x", "y"]),                       # OR of = becomes ANY
    ("content::varchar = 'cast'", ["cast"]),
    ("content = 'q' COLLATE \"C\"", ["q"]),
    ("content = repeat('é', 3)", ["ééé"]),
    ("content = E'nul\\\\0 and \\\\u2028 and \"quotes\"'", ['nul\\0 and \\u2028 and "quotes"']),
])
def test_odd_quals(echo, where, expected):
    rows = echo.execute(f"SELECT content FROM echo_t WHERE {where}").fetchall()
    assert sorted(r[0] for r in rows) == sorted(expected)


def test_other_column_types(echo):
    echo.execute("CREATE DOMAIN prompt AS text CHECK (length(VALUE) < 100)")
    echo.execute("CREATE FOREIGN TABLE typed2 (content prompt, v varchar(5), j jsonb, "
                 "arr text[], ts timestamptz, quals text) SERVER echo")
    row = echo.execute("""SELECT content, v, j, arr, quals FROM typed2 WHERE content = 'd'
                          AND v = 'abc' AND j = '{"a": 1}' AND arr = '{x,y}'""").fetchone()
    assert row[:4] == ("d", "abc", {"a": 1}, ["x", "y"])
    values = {q["field"]: q["value"] for q in json.loads(row[4])}
    assert values == {"content": "d", "v": "abc", "j": '{"a": 1}', "arr": "{x,y}"}
    with pytest.raises(psycopg.errors.CheckViolation):
        echo.execute("SELECT content FROM typed2 WHERE content = %s", ["x" * 200])


def test_dropped_and_added_columns_keep_rows_aligned(echo):
    echo.execute("ALTER FOREIGN TABLE echo_t DROP COLUMN needed")
    echo.execute("ALTER FOREIGN TABLE echo_t ADD COLUMN extra text")
    row = echo.execute("SELECT content, answer, calls, extra FROM echo_t WHERE content = 'k'").fetchone()
    assert row[0] == "k" and row[1] == "echo: k" and isinstance(row[2], int) and row[3] is None


def test_explain_formats_and_verbose(echo):
    plan = explain(echo, "SELECT * FROM echo_t WHERE content = 'x'")
    assert "LLM Quals" in plan
    (doc,) = echo.execute("EXPLAIN (FORMAT JSON, VERBOSE) SELECT * FROM echo_t WHERE content = 'x'").fetchone()
    node = doc[0]["Plan"]
    assert node["LLM Quals"] == "content = 'x'::text"


def test_cursors_scroll_and_backward_fetch(echo):
    echo.execute("BEGIN")
    echo.execute("DECLARE c SCROLL CURSOR FOR SELECT content FROM echo_t "
                 "WHERE content = ANY('{a,b,c}') ORDER BY content")
    assert echo.execute("FETCH 2 FROM c").fetchall() == [("a",), ("b",)]
    assert echo.execute("FETCH BACKWARD 1 FROM c").fetchall() == [("a",)]
    echo.execute("COMMIT")


def test_many_scans_in_one_query_and_a_subtransaction_error(echo):
    rows = echo.execute("SELECT (SELECT answer FROM echo_t WHERE content = g::text) "
                        "FROM generate_series(1, 50) g").fetchall()
    assert [r[0] for r in rows] == [f"echo: {g}" for g in range(1, 51)]
    echo.execute("""DO $$ BEGIN
        BEGIN PERFORM * FROM echo_t; EXCEPTION WHEN others THEN NULL; END;
        PERFORM * FROM echo_t WHERE content = 'after';
        END $$""")
    assert echo.execute("SELECT content FROM echo_t WHERE content = 'ok'").fetchone() == ("ok",)


def test_a_non_superuser_cannot_create_a_server_with_any_wrapper(echo):
    mallory = f"mallory_{uuid.uuid4().hex[:8]}"  # roles are cluster-wide
    echo.execute(f"CREATE ROLE {mallory}")
    try:
        echo.execute(f"SET ROLE {mallory}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            echo.execute("CREATE SERVER mine FOREIGN DATA WRAPPER pg_llm "
                         "OPTIONS (wrapper 'pg_llm.testing.echo.EchoTable')")
    finally:
        echo.execute("RESET ROLE")
        echo.execute(f"DROP ROLE {mallory}")


def test_plans_still_work_when_jit_compiles_them(questions):
    questions.execute("SET jit = on")
    questions.execute("SET jit_above_cost = 0")
    rows = questions.execute("SELECT q.id, f.answer FROM questions q JOIN echo_t f "
                             "ON f.content = q.text WHERE f.content <> 'x' ORDER BY q.id").fetchall()
    assert rows == [(1, "echo: one"), (2, "echo: two"), (3, "echo: three"), (4, "echo: two")]
    assert questions.execute("SELECT content FROM echo_t WHERE content = ANY(%s)",
                             [["j1", "j2"]]).fetchall() == [("j1",), ("j2",)]
    # the doomed plain path (no prompt value) costs 1e8, above every jit threshold: still a
    # clean error, not a crash
    questions.execute("RESET jit_above_cost")
    with pytest.raises(psycopg.errors.NullValueNotAllowed):
        questions.execute("SELECT * FROM echo_t WHERE content LIKE 'x%'")
    assert questions.execute("SELECT 1").fetchone() == (1,)
