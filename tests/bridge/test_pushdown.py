"""Quals the C bridge hands to Python: constants, parameters, generic plans, = ANY."""

from __future__ import annotations

import psycopg
import pytest

from .conftest import explain, explain_number, received_quals


def test_constant_reaches_python_and_row_comes_back(echo):
    rows = echo.execute("SELECT content, answer, quals FROM echo_t WHERE content = 'hello'").fetchall()
    assert len(rows) == 1
    content, answer, quals = rows[0]
    assert (content, answer) == ("hello", "echo: hello")
    assert received_quals(quals) == [{"field": "content", "op": "=", "value": "hello"}]


def test_commuted_constant_is_pushed(echo):
    (quals,) = echo.execute("SELECT quals FROM echo_t WHERE 'hi' = content").fetchone()
    assert received_quals(quals) == [{"field": "content", "op": "=", "value": "hi"}]


def test_any_array_is_one_call_with_distinct_non_null_values(echo):
    rows = echo.execute("SELECT content, calls, quals FROM echo_t "
                        "WHERE content = ANY(ARRAY['a', 'b', NULL, 'a', 'c'])").fetchall()
    assert sorted(r[0] for r in rows) == ["a", "b", "c"]
    assert len({r[1] for r in rows}) == 1, "one Python call for the whole array"
    assert received_quals(rows[0][2]) == [{"field": "content", "op": "= ANY", "value": ["a", "b", "c"]}]


def test_in_list_is_pushed_as_any(echo):
    rows = echo.execute("SELECT content FROM echo_t WHERE content IN ('x', 'y')").fetchall()
    assert sorted(r[0] for r in rows) == ["x", "y"]


def test_prepared_statement_generic_plan(echo):
    echo.execute("SET plan_cache_mode = force_generic_plan")
    echo.execute("PREPARE ask(text) AS SELECT content, quals FROM echo_t WHERE content = $1")
    plan = "\n".join(r[0] for r in echo.execute("EXPLAIN (COSTS OFF) EXECUTE ask('x')").fetchall())
    assert "LLM Quals: content = $1" in plan, plan
    for value in ("first", "second", "first"):
        content, quals = echo.execute(f"EXECUTE ask('{value}')").fetchone()
        assert content == value
        assert received_quals(quals)[0]["value"] == value


def test_any_of_a_parameter_array_in_a_generic_plan(echo):
    echo.execute("SET plan_cache_mode = force_generic_plan")
    echo.execute("PREPARE ask_many(text[]) AS SELECT content FROM echo_t WHERE content = ANY($1)")
    rows = echo.execute("EXECUTE ask_many(ARRAY['p', 'q'])").fetchall()
    assert sorted(r[0] for r in rows) == ["p", "q"]
    rows = echo.execute("EXECUTE ask_many(ARRAY['r'])").fetchall()
    assert rows == [("r",)]


def test_server_side_bound_parameters(echo):
    # psycopg sends $1 with the value bound separately (extended protocol)
    with echo.cursor() as cur:
        cur.execute("SELECT content FROM echo_t WHERE content = %s", ["bound"], prepare=True)
        assert cur.fetchall() == [("bound",)]


def test_plpgsql_variables_stay_correct_after_the_generic_plan_kicks_in(echo):
    echo.execute("""
        CREATE FUNCTION ask(v text) RETURNS text LANGUAGE plpgsql AS $$
        DECLARE r text;
        BEGIN
            SELECT quals INTO r FROM echo_t WHERE content = v;
            RETURN r;
        END $$""")
    # PL/pgSQL switches to a generic plan after five executions
    for i in range(8):
        (quals,) = echo.execute("SELECT ask(%s)", [f"value {i}"]).fetchone()
        assert received_quals(quals) == [{"field": "content", "op": "=", "value": f"value {i}"}]


def test_null_constant_and_empty_arrays_return_nothing_without_calling_python(echo):
    for where in ("content = NULL::text", "content = ANY('{}'::text[])",
                  "content = ANY(ARRAY[NULL]::text[])", "content = ANY(NULL::text[])"):
        plan = explain(echo, f"SELECT * FROM echo_t WHERE {where}", analyze=True)
        assert explain_number(plan, "LLM Calls") == 0, plan
        assert echo.execute(f"SELECT * FROM echo_t WHERE {where}").fetchall() == []


def test_a_thousand_element_array_and_a_huge_string(echo):
    values = [f"q{i}" for i in range(1000)]
    rows = echo.execute("SELECT content, calls FROM echo_t WHERE content = ANY(%s)", [values]).fetchall()
    assert sorted(r[0] for r in rows) == sorted(values)
    assert len({r[1] for r in rows}) == 1
    huge = "x" * 2_000_000 + "\u00e9\"\\\n"
    (content,) = echo.execute("SELECT content FROM echo_t WHERE content = %s", [huge]).fetchone()
    assert content == huge


def test_non_text_columns_get_typed_values_and_cross_type_operators(echo):
    echo.execute("CREATE FOREIGN TABLE typed (content text, n int, x float8, b boolean, quals text) "
                 "SERVER echo OPTIONS (prompt_columns 'content')")
    row = echo.execute("SELECT content, n, x, b, quals FROM typed "
                       "WHERE content = 'c' AND n = 5::bigint AND x = 2.5 AND b = true").fetchone()
    assert row[:4] == ("c", 5, 2.5, True)
    values = {q["field"]: q["value"] for q in received_quals(row[4])}
    assert values == {"content": "c", "n": 5, "x": 2.5, "b": True}


def test_wrong_types_are_sql_errors_not_crashes(echo):
    with pytest.raises(psycopg.errors.UndefinedFunction):
        echo.execute("SELECT * FROM echo_t WHERE content = 5")
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        echo.execute("SELECT * FROM echo_t WHERE content = 'a' AND calls = 'not a number'")
    assert echo.execute("SELECT 1").fetchone() == (1,)


def test_other_operators_stay_local_and_python_sees_no_value(echo):
    with pytest.raises(psycopg.errors.NullValueNotAllowed) as err:
        echo.execute("SELECT * FROM echo_t WHERE content LIKE 'a%'")
    assert "content" in err.value.diag.message_hint


def test_needed_columns(echo):
    (needed,) = echo.execute("SELECT needed FROM echo_t WHERE content = 'n'").fetchone()
    assert needed == "content,needed"


def test_options_merge_server_then_table_then_the_mappings_key(echo):
    echo.execute("ALTER SERVER echo OPTIONS (ADD level 'server', only_server 's')")
    echo.execute("ALTER FOREIGN TABLE echo_t OPTIONS (ADD level 'table', only_table 't')")
    (options,) = echo.execute("SELECT options FROM echo_t WHERE content = 'o'").fetchone()
    import json
    opts = json.loads(options)
    assert (opts["level"], opts["only_server"], opts["only_table"]) == ("table", "s", "t")
    assert "wrapper" not in opts
    # a user mapping carries only the key (docs/security.md, point 1)
    echo.execute("CREATE USER MAPPING FOR PUBLIC SERVER echo OPTIONS (api_key 'k')")
    opts = json.loads(echo.execute("SELECT options FROM echo_t WHERE content = 'o'").fetchone()[0])
    assert (opts["level"], opts["api_key"]) == ("table", "k")
    # the role's own mapping, even without a key, wins over PUBLIC's
    echo.execute("CREATE USER MAPPING FOR CURRENT_USER SERVER echo")
    opts = json.loads(echo.execute("SELECT options FROM echo_t WHERE content = 'o'").fetchone()[0])
    assert opts["level"] == "table" and "api_key" not in opts


def test_explain_shows_pushed_quals(echo):
    plan = explain(echo, "SELECT * FROM echo_t WHERE content = ANY(ARRAY['a','b']) AND content = 'a'")
    assert "LLM Quals: content = ANY ('{a,b}'::text[]) AND content = 'a'::text" in plan, plan


def test_explain_without_analyze_does_not_call_python(echo):
    echo.execute("ALTER SERVER echo OPTIONS (ADD error_message 'python was called')")
    plan = explain(echo, "SELECT * FROM echo_t WHERE content = 'x'")
    assert "Foreign Scan on echo_t" in plan
    with pytest.raises(psycopg.errors.InternalError_, match="python was called"):
        echo.execute("SELECT * FROM echo_t WHERE content = 'x'")
