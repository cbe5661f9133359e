"""pg_llm.bridge and pg_llm.multicorn as plain Python (no database): payload -> rows."""

from __future__ import annotations

import datetime
import json

import pytest

from pg_llm import bridge
from pg_llm.errors import InvalidParameter, MissingPromptValue
from pg_llm.multicorn import Qual


def payload(quals, options=None, columns=None):
    columns = columns or [{"name": "content", "type": "text"}, {"name": "answer", "type": "text"},
                          {"name": "n", "type": "integer"}, {"name": "quals", "type": "text"}]
    return json.dumps({"relid": 1, "table": "public.t", "user": "alice",
                       "options": {"wrapper": "pg_llm.testing.echo.EchoTable", **(options or {})},
                       "columns": columns, "needed": [c["name"] for c in columns],
                       "quals": quals})


def test_parse_turns_the_payload_into_multicorn_quals_with_typed_values():
    request = bridge.ScanRequest.parse(payload([
        {"field": "content", "op": "=", "value": "hi"},
        {"field": "n", "op": "= ANY", "value": ["1", "2"]}]))
    assert request.quals == [Qual("content", "=", "hi"), Qual("n", ("=", True), [1, 2])]
    assert request.quals[1].is_list_operator and request.quals[1].list_any_or_all is True
    assert request.user == "alice" and request.column_names == ["content", "answer", "n", "quals"]


def test_numeric_values_are_decimals():
    import decimal
    request = bridge.ScanRequest.parse(payload(
        [{"field": "price", "op": "=", "value": "0.10"}],
        columns=[{"name": "price", "type": "numeric(6,2)"}]))
    assert request.quals[0].value == decimal.Decimal("0.10")


def test_run_scan_returns_text_rows_in_column_order():
    rows = bridge.run_scan(bridge.ScanRequest.parse(payload(
        [{"field": "content", "op": "= ANY", "value": ["a", "b"]}, {"field": "n", "op": "=", "value": "7"}])))
    assert [r[:3] for r in rows] == [["a", "echo: a | 7", "7"], ["b", "echo: b | 7", "7"]]


def test_wrapper_instances_are_cached_per_table_and_options():
    scan = lambda opts: bridge.run_scan(bridge.ScanRequest.parse(payload(  # noqa: E731
        [{"field": "content", "op": "=", "value": "x"}], options=opts)))
    first = bridge.wrapper_for(bridge.ScanRequest.parse(payload([], options={"v": "1"})))
    scan({"v": "1"})
    assert bridge.wrapper_for(bridge.ScanRequest.parse(payload([], options={"v": "1"}))) is first
    assert bridge.wrapper_for(bridge.ScanRequest.parse(payload([], options={"v": "2"}))) is not first


def test_errors_are_llm_errors():
    with pytest.raises(MissingPromptValue):
        bridge.run_scan(bridge.ScanRequest.parse(payload([], options={"prompt_columns": "content"})))
    with pytest.raises(InvalidParameter):
        bridge.run_scan(bridge.ScanRequest.parse(payload([], options={"wrapper": "os.path.Thing"})))
    with pytest.raises(InvalidParameter):
        bridge.run_scan(bridge.ScanRequest.parse(payload([], options={"wrapper": "pg_llm.nope.Thing"})))


@pytest.mark.parametrize("value, text", [
    (None, None), ("s", "s"), (True, "t"), (False, "f"), (3, "3"), (2.5, "2.5"),
    ({"a": [1]}, '{"a": [1]}'), (b"\x01\xff", "\\x01ff"),
    (datetime.date(2024, 1, 2), "2024-01-02"),
])
def test_to_text(value, text):
    assert bridge.to_text(value) == text


def test_rows_as_lists_must_match_the_columns():
    assert bridge.row_to_text(["a", None], ["x", "y"]) == ["a", None]
    with pytest.raises(Exception, match="2 columns"):
        bridge.row_to_text(["a"], ["x", "y"])
