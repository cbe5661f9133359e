"""ModelTable on its own (no PostgreSQL): quals in, rows out, against a real loopback server."""

import json

import pytest

from fake_openai import FakeOpenAI
from pg_llm.errors import InvalidParameter, MissingPromptValue, UndefinedObject
from pg_llm.fdw import ModelTable
from pg_llm.multicorn import Qual

ANY = ("=", True)


@pytest.fixture
def fake():
    with FakeOpenAI(models=["base-1", "ft-2"]) as server:
        yield server


def table(fake, **options):
    base = {"base_url": fake.url, "model": "ft_sql", "prompt_template": "Q: {{content}}",
            "predict": "answer", "versions": json.dumps({"1": "base-1", "2": "ft-2"}),
            "active_version": "1"}
    base.update(options)
    return ModelTable(base, {})


def test_one_prompt_one_row_echoing_the_input(fake):
    rows = table(fake).execute([Qual("content", "=", "hi")], {"answer", "content"})
    assert len(rows) == 1
    row = rows[0]
    assert row["content"] == "hi" and row["answer"] == "echo:Q: hi"
    assert row["model_id"] == "base-1" and row["version"] == 1
    assert row["prompt_tokens"] == 2 and row["finish_reason"] == "stop"
    assert row["latency_ms"] > 0


def test_any_list_gives_one_row_per_distinct_value_in_order(fake):
    rows = table(fake).execute([Qual("content", ANY, ["b", "a", None, "b"])], {"answer"})
    assert [(r["content"], r["answer"]) for r in rows] == [("b", "echo:Q: b"), ("a", "echo:Q: a")]
    assert len(fake.chat_requests()) == 2


def test_cartesian_product_over_any_lists_and_identical_prompts_sent_once(fake):
    t = table(fake, prompt_template="{{a}}{{b}}")
    rows = t.execute([Qual("a", ANY, ["x", "xy"]), Qual("b", ANY, ["yz", "z"])], {"answer"})
    assert sorted((r["a"], r["b"], r["answer"]) for r in rows) == [
        ("x", "yz", "echo:xyz"), ("x", "z", "echo:xz"), ("xy", "yz", "echo:xyyz"), ("xy", "z", "echo:xyz")]
    assert sorted(r.body["messages"][0]["content"] for r in fake.chat_requests()) == ["xyyz", "xyz", "xz"]


def test_options_from_quals_reach_the_request_and_echo_unchanged(fake):
    rows = table(fake).execute([Qual("content", "=", "a b c d"), Qual("max_tokens", "=", "2"),
                                Qual("temperature", "=", "0"), Qual("version", "=", "2")], set())
    [request] = fake.chat_requests()
    assert request.body["max_tokens"] == 2 and request.body["temperature"] == 0.0
    assert request.body["model"] == "ft-2"
    assert rows[0]["max_tokens"] == "2" and rows[0]["version"] == "2"
    assert rows[0]["answer"] == "echo:Q: a" and rows[0]["finish_reason"] == "length"


def test_defaults_apply_and_system_prompt_is_rendered(fake):
    t = table(fake, defaults=json.dumps({"max_tokens": 50, "seed": 7}),
              system_prompt="You answer about {{topic}}.", prompt_template="{{content}}")
    rows = t.execute([Qual("content", "=", "q"), Qual("topic", "=", "sql")], {"answer"})
    [request] = fake.chat_requests()
    assert request.body["messages"] == [{"role": "system", "content": "You answer about sql."},
                                        {"role": "user", "content": "q"}]
    assert request.body["max_tokens"] == 50 and request.body["seed"] == 7
    assert rows[0]["max_tokens"] == 50


def test_missing_prompt_value_names_the_where_clause(fake):
    with pytest.raises(MissingPromptValue) as err:
        table(fake).execute([Qual("answer", "=", "x")], {"answer"})
    assert err.value.sqlstate == "22004"
    assert err.value.hint == "add WHERE content = '...'"
    assert fake.chat_requests() == []


@pytest.mark.parametrize("column, value, fragment", [
    ("max_tokens", "0", "at least 1"),
    ("max_tokens", "1.5", "must be an integer"),
    ("temperature", "2.5", "out of range"),
    ("temperature", "NaN", "out of range"),
    ("top_p", "0", "out of range"),
])
def test_bad_option_values_are_refused_before_any_request(fake, column, value, fragment):
    with pytest.raises(InvalidParameter, match=fragment) as err:
        table(fake).execute([Qual("content", "=", "x"), Qual(column, "=", value)], set())
    assert err.value.sqlstate == "22023" and err.value.hint
    assert fake.chat_requests() == []


def test_unknown_version_lists_the_versions(fake):
    with pytest.raises(UndefinedObject) as err:
        table(fake).execute([Qual("content", "=", "x"), Qual("version", "=", "9")], set())
    assert err.value.sqlstate == "42704" and "available versions: 1, 2" in err.value.hint


def test_empty_any_list_sends_nothing(fake):
    assert table(fake).execute([Qual("content", ANY, [])], set()) == []
    assert fake.chat_requests() == []


def test_too_many_prompts_in_one_scan_is_refused(fake):
    t = table(fake, prompt_template="{{a}}{{b}}")
    many = [str(i) for i in range(101)]
    with pytest.raises(InvalidParameter, match="10201 prompts"):
        t.execute([Qual("a", ANY, many), Qual("b", ANY, many)], set())
