"""The body field "grammar" (GBNF, as llama.cpp's server takes it) on the local engine: the
tiny random model, sampling at temperature 1, only writes text the grammar admits."""

from __future__ import annotations

import re

import openai
import pytest

from sql_grammar_check import admits

from pg_llm import sql_grammar

DDL = """CREATE TABLE vessel (
    vessel_no INTEGER PRIMARY KEY,  -- the key
    vessel_name VARCHAR(40) NOT NULL,
    tonnage NUMERIC(10, 2)
);
CREATE TABLE port (port_code CHAR(5) PRIMARY KEY, port_name TEXT);
-- Which ships are heavier than 5000 tonnes?"""
GRAMMAR = sql_grammar.grammar_for_ddl(DDL)


# Sampling (temperature 1) filters the whole vocabulary at every token the random model gets
# wrong, ~0.1-1 s each on a loaded 2-core machine: keep answers short.
def ask(client, grammar, seed, max_tokens=16, **extra):
    return client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": DDL}], max_tokens=max_tokens,
        temperature=1.0, seed=seed, extra_body={"grammar": grammar, **extra})


def test_answers_follow_the_sql_grammar(client):
    for seed in range(4):
        choice = ask(client, GRAMMAR, seed).choices[0]
        text = choice.message.content
        assert admits(GRAMMAR, text, complete=choice.finish_reason == "stop"), text
        assert re.match(r"\s*(select|with)\b", text, re.IGNORECASE), text
        assert "--" not in text and "/*" not in text  # no comment can hide text
    # the same requests again: the grammar is parsed once and cloned, answers are the same
    again = ask(client, GRAMMAR, 0).choices[0].message.content
    assert again == ask(client, GRAMMAR, 0).choices[0].message.content


def test_without_the_grammar_the_tiny_model_writes_anything(client):
    """What the grammar prevents: the same prompts unconstrained are not SQL of the schema."""
    texts = [client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": DDL}], max_tokens=20,
        temperature=1.0, seed=seed).choices[0].message.content for seed in range(3)]
    assert not any(admits(GRAMMAR, t, complete=False) for t in texts), texts


def test_bad_grammars_are_400(client):
    cases = [("root ::= (", "could not parse"), ("", "non-empty"),
             ("root ::= " + '"a" ' * 70_000, "at most")]
    for grammar, words in cases:
        with pytest.raises(openai.BadRequestError) as err:
            ask(client, grammar, 0)
        assert words in str(err.value) and "grammar" in str(err.value)
    with pytest.raises(openai.BadRequestError) as err:
        ask(client, GRAMMAR, 0, response_format={"type": "json_object"})
    assert "not both" in str(err.value)
