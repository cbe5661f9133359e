"""response_format json_schema on the local engine: a grammar constrains decoding, so even a
random tiny model's answers parse into the schema."""

import json

import openai
import pytest

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer"},
                                           "tag": {"type": "string", "enum": ["a", "b"]}},
          "required": ["ok", "n", "tag"], "additionalProperties": False}
FORMAT = {"type": "json_schema", "json_schema": {"name": "t", "strict": True, "schema": SCHEMA}}


def test_answers_follow_the_json_schema(client):
    for seed in range(5):
        r = client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": f"say something {seed}"}],
            max_tokens=80, temperature=1.0, seed=seed, response_format=FORMAT)
        answer = json.loads(r.choices[0].message.content)
        assert set(answer) == {"ok", "n", "tag"}
        assert isinstance(answer["ok"], bool) and isinstance(answer["n"], int)
        assert answer["tag"] in ("a", "b")


def test_unconstrained_answers_do_not_parse(client):
    """The same tiny model without response_format: what the grammar prevents."""
    r = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "say something"}],
        max_tokens=20, temperature=1.0, seed=1)
    with pytest.raises(ValueError):
        json.loads(r.choices[0].message.content)


def test_json_object_and_bad_formats(client):
    r = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "x"}], max_tokens=200,
        temperature=0, response_format={"type": "json_object"})
    text = r.choices[0].message.content  # may be cut off by max_tokens, but is an object
    assert text.startswith("{")
    if r.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "x"}],
                                       response_format={"type": "xml"})
    assert "response_format" in str(err.value)


def test_arrays_are_bounded_so_a_repeating_model_still_closes_them(client):
    """The tiny random model in an array of booleans: without a bound it may go on until
    max_tokens; with the local bound (16 items) every answer closes and parses."""
    schema = {"type": "object", "properties": {"flags": {"type": "array",
                                                         "items": {"type": "boolean"}}},
              "required": ["flags"], "additionalProperties": False}
    for seed in range(3):
        r = client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": f"flags {seed}"}],
            max_tokens=160, temperature=1.0, seed=seed,
            response_format={"type": "json_schema",
                             "json_schema": {"name": "f", "schema": schema}})
        flags = json.loads(r.choices[0].message.content)["flags"]
        assert len(flags) <= 16 and all(isinstance(f, bool) for f in flags)


def test_strings_are_bounded_so_answers_close_within_max_tokens(client):
    """At temperature 1 the tiny random model writes strings of 120 to 200 tokens before it
    picks a closing quote (probed without a bound), so max_tokens 120 would cut them off.
    Sized to max_tokens, every answer closes and parses."""
    schema = {"type": "object",
              "properties": {"sql": {"type": "string"},
                             "tables": {"type": "array", "items": {"type": "string"}},
                             "n": {"type": "integer"}},
              "required": ["sql", "tables", "n"], "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "q", "strict": True, "schema": schema}}
    longest = 0
    for seed in range(12):
        r = client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": f"question {seed}"}],
            max_tokens=120, temperature=1.0, seed=seed, response_format=fmt)
        assert r.choices[0].finish_reason == "stop", r.choices[0].message.content
        answer = json.loads(r.choices[0].message.content)
        assert isinstance(answer["sql"], str) and isinstance(answer["n"], int)
        assert all(isinstance(t, str) for t in answer["tables"])
        assert r.usage.completion_tokens <= 120
        longest = max(longest, len(answer["sql"]))
    assert longest > 5  # the strings are bounded, not empty


def test_string_bound_fits_the_budget_and_keeps_a_smaller_user_bound():
    from pg_llm.serve.inference.json_grammar import _bounded, _fit

    schema = {"type": "object", "additionalProperties": False,
              "properties": {"a": {"type": "string", "maxLength": 5},
                             "b": {"type": "string", "maxLength": 10_000},
                             "c": {"type": "array", "items": {"type": "string"}},
                             "d": {"type": "number"}}}
    for budget in (128, 254, 1000):  # below ~90 not even the number and keys fit
        fitted, size = _fit(_bounded(schema), budget)
        props = fitted["properties"]
        assert size <= budget
        assert props["a"]["maxLength"] == 5
        assert 0 < props["b"]["maxLength"] < budget
        assert props["c"]["maxItems"] <= 16 and "maxLength" in props["c"]["items"]
