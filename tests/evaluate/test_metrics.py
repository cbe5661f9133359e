"""Unit tests of the text metrics and result comparison (no database needed)."""

import json

import pytest

from pg_llm.errors import InvalidParameter
from pg_llm.evaluate.execution import parse_rows, results_match
from pg_llm.evaluate.metrics import (exact_match, executable_sql, has_top_level_order_by,
                                     is_succinct, normalize_sql)
from pg_llm.evaluate.runner import parse_entry


@pytest.mark.parametrize("answer", [
    "SELECT name FROM customers WHERE country = 'Canada'",
    "SELECT name FROM customers WHERE country = 'Canada';",
    "  select count(*) from t group by a  \n",
    "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
    "SELECT 1 UNION SELECT 2 ORDER BY 1",
])
def test_bare_sql_is_succinct(answer):
    assert is_succinct(answer)


@pytest.mark.parametrize("answer", [
    None, "", "   ", ";",
    "Here is the query: SELECT name FROM customers",
    "SELECT name FROM customers\nThis lists every customer.",
    "```sql\nSELECT name FROM customers\n```",
    "-- customers from Canada\nSELECT name FROM customers WHERE country = 'Canada'",
    "SELECT name FROM customers /* all of them */",
    "SELECT 1; SELECT 2",
    "SELECT 1;;",
    "SELECT 1; DROP TABLE customers",
    "DELETE FROM customers",
    "DROP TABLE customers",
    "SET ROLE postgres",
    "SELECT",
    "I don't know.",
])
def test_prose_fences_comments_and_commands_are_not_succinct(answer):
    assert not is_succinct(answer)


def test_executable_sql_strips_only_whitespace_semicolon_and_a_fence():
    assert executable_sql("  SELECT 1;  ") == "SELECT 1"
    assert executable_sql("```sql\nSELECT 1;\n```") == "SELECT 1"
    assert executable_sql("Sure: SELECT 1") == "Sure: SELECT 1"  # prose stays, so it fails
    assert executable_sql("   ") is None and executable_sql(None) is None


def test_exact_match_ignores_case_whitespace_quotes_and_semicolon():
    gold = "SELECT name FROM customers WHERE country = 'Canada'"
    assert exact_match('select  "name"\nfrom Customers where COUNTRY = \'Canada\';', gold)
    assert exact_match("SELECT name FROM customers AS c WHERE c.country = 'Canada'",
                       "select name from customers c where c.country = 'Canada'")


def test_exact_match_is_still_exact():
    gold = "SELECT name FROM customers WHERE country = 'Canada'"
    assert not exact_match("SELECT name FROM customers WHERE country = 'canada'", gold)
    assert not exact_match("SELECT name, age FROM customers WHERE country = 'Canada'", gold)
    assert not exact_match("The query is " + gold, gold)
    assert not exact_match(None, gold)
    assert normalize_sql("   ") is None


def test_order_by_detection_looks_at_the_outer_query_only():
    assert has_top_level_order_by("SELECT a FROM t ORDER BY a DESC LIMIT 3")
    assert has_top_level_order_by("SELECT 1 UNION SELECT 2 ORDER BY 1")
    assert not has_top_level_order_by("SELECT * FROM (SELECT a FROM t ORDER BY a) s")
    assert not has_top_level_order_by("SELECT a FROM t")


def _rows(*rows):
    return parse_rows([json.dumps(dict((f"c{i}", v) for i, v in enumerate(r))) for r in rows])


def test_results_compare_as_multisets_unless_ordered():
    gold = _rows([1, "a"], [2, "b"], [2, "b"])
    assert results_match(gold, _rows([2, "b"], [1, "a"], [2, "b"]), ordered=False)
    assert not results_match(gold, _rows([2, "b"], [1, "a"], [2, "b"]), ordered=True)
    assert not results_match(gold, _rows([1, "a"], [2, "b"]), ordered=False)  # duplicates count
    assert not results_match(gold, _rows(["a", 1], ["b", 2], ["b", 2]), ordered=False)


def test_results_are_null_safe_and_numerically_tolerant():
    assert results_match(_rows([None, 1]), _rows([None, 1.0]), ordered=True)
    assert results_match(_rows([10 / 3]), _rows([3.3333333333333335]), ordered=True)
    assert results_match(_rows([0.1 + 0.2]), _rows([0.3]), ordered=True)
    assert not results_match(_rows([None]), _rows([0]), ordered=True)
    assert not results_match(_rows([3.33]), _rows([3.34]), ordered=True)
    assert not results_match(_rows(["1"]), _rows([1]), ordered=True)  # text is not a number


def test_duplicate_column_names_keep_every_value():
    rows = parse_rows(['{"count": 2, "count": 3}'])
    assert rows == [(("num", 2.0), ("num", 3.0))]


def test_model_entries():
    assert parse_entry("ft_sql") == ("ft_sql", None)
    assert parse_entry(" ft_sql@2 ") == ("ft_sql", 2)
    for bad in ("ft_sql@", "ft_sql@two", "ft_sql@0", "@1", "a@1@2", ""):
        with pytest.raises(InvalidParameter) as info:
            parse_entry(bad)
        assert info.value.hint
