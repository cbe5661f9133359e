"""ModelTable's Multicorn2 side without a database: planner hints and the scan iterator
(pg_llm.multicorn_scan). The SQL-level behaviour is tested on both bridges elsewhere."""

import json

import pytest

from pg_llm import multicorn_scan
from pg_llm.errors import InvalidParameter
from pg_llm.fdw import MISSING_PROMPT_ROWS, ModelTable
from pg_llm.multicorn import ColumnDefinition, Qual

OPTIONS = {"model": "m", "prompt_template": "{{a}} {{b}}", "versions": '{"1": "x"}',
           "base_url": "http://127.0.0.1:9/v1"}


def table(**extra):
    columns = {c: ColumnDefinition(c, type_name="text") for c in ("a", "b", "answer", *extra)}
    return ModelTable(OPTIONS, columns)


def test_rel_size_counts_the_prompts_and_penalises_a_missing_value():
    t = table()
    assert t.get_rel_size([Qual("a", "=", "x"), Qual("b", ("=", True), ["1", "2", "3"])],
                          {"answer"}) == (3, 1)
    assert t.get_rel_size([Qual("a", "=", "x")], {"answer"}) == (MISSING_PROMPT_ROWS, 1)
    assert t.get_rel_size([Qual("a", "~~", "x%"), Qual("b", "=", "y")], set())[0] == \
        MISSING_PROMPT_ROWS
    assert t.get_path_keys() == [(("a", "b"), 1)]


def test_rows_relays_an_error_as_one_row_then_stops():
    def failing(quals, columns):
        raise InvalidParameter("bad value", detail="d", hint="h")

    rows = multicorn_scan.rows(failing, [], set(), relay_errors=True)
    first = next(rows)
    assert json.loads(first[multicorn_scan.ERROR_COLUMN]) == {
        "sqlstate": "22023", "message": "bad value", "detail": "d", "hint": "h"}
    with pytest.raises(multicorn_scan.MulticornError) as err:
        next(rows)  # only if PostgreSQL did not raise it while converting the row
    assert (err.value.message, err.value.hint, err.value.code) == ("bad value", "h", 3)
    assert not multicorn_scan.active()


def test_rows_without_the_column_raise_multicorns_error_and_wrap_bugs():
    def buggy(quals, columns):
        raise KeyError("x")

    with pytest.raises(multicorn_scan.MulticornError) as err:
        next(multicorn_scan.rows(buggy, [], set(), relay_errors=False))
    assert err.value._is_multicorn_exception
    assert "pg_llm wrapper failed: KeyError" in err.value.message and err.value.hint


def test_an_interrupt_hands_back_a_null_row_and_nothing_else():
    def cancelled(quals, columns):
        assert multicorn_scan.active()  # plpy-free paths see the scan
        raise multicorn_scan.Interrupted()

    rows = multicorn_scan.rows(cancelled, [], set(), relay_errors=True)
    assert next(rows) == {}
    with pytest.raises(multicorn_scan.MulticornError, match="interrupted"):
        next(rows)


def test_rows_pass_results_through():
    rows = multicorn_scan.rows(lambda q, c: [{"answer": "x"}], [], set(), relay_errors=True)
    assert list(rows) == [{"answer": "x"}]


def test_the_carrier_column_is_noticed():
    assert not table().relays_errors
    assert table(multicorn_error=None).relays_errors
